"""`berth` (also `kubectl berth`): the command line for people running ModelDeployments."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from berth_operator import api, views
from berth_operator.render import Settings, render_all
from berth_operator.validation import SpecError, parse_model_deployment


def _documents(files: list[str]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        found += [(name, doc) for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    return found


def render_command(args: argparse.Namespace) -> int:
    """Prints the objects the operator would create, for review in GitOps pull requests."""
    settings = Settings(runtime_image=args.runtime_image) if args.runtime_image else Settings.from_env()
    rendered: list[dict[str, Any]] = []
    failed = False
    for source, doc in _documents(args.filename):
        if doc.get("kind") != api.KIND:
            continue
        doc.setdefault("metadata", {}).setdefault("namespace", args.namespace)
        try:
            md = parse_model_deployment(doc)
        except SpecError as error:
            failed = True
            name = doc["metadata"].get("name", "<unnamed>")
            for problem in error.problems:
                print(f"{source}: {api.KIND} {name}: {problem}", file=sys.stderr)
            continue
        rendered += render_all(md, settings)
    if rendered:
        sys.stdout.write(yaml.safe_dump_all(rendered, sort_keys=False))
    return 1 if failed else 0


def _read(args: argparse.Namespace, with_pods: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from berth_operator.kube import Kube, KubeError, load_api_client
    from berth_operator.naming import serving_pods_selector

    kube = Kube(load_api_client(args.kubeconfig))
    try:
        found = kube.get(api.API_VERSION, api.KIND, args.namespace, args.name)
    except KubeError as error:
        if error.status != 404:
            raise
        raise SystemExit(
            f"berth: this cluster does not serve {api.API_VERSION} {api.KIND} ({error.message}): install the CRD "
            f"{api.PLURAL}.{api.GROUP} first (the Helm chart, deploy/install.yaml or crds/)"
        ) from None
    if found is None:
        raise SystemExit(f"berth: {api.KIND} {args.namespace}/{args.name} not found")
    pods = kube.list("v1", "Pod", args.namespace, serving_pods_selector(args.name)) if with_pods else []
    return found, pods


def _staging_progress(args: argparse.Namespace, md: dict[str, Any]) -> str | None:
    """The running stager's latest progress line, read from its log with the user's own credentials (the
    operator keeps no byte counts: it would need to read logs)."""
    from berth_operator.kube import Kube, KubeError, load_api_client
    from berth_operator.staging import staging_selector

    staging = (md.get("status") or {}).get("staging") or {}
    if staging.get("phase") != "Staging":
        return None
    kube = Kube(load_api_client(args.kubeconfig))
    try:
        pods = kube.list("v1", "Pod", args.namespace, staging_selector(args.name, staging.get("key")))
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        if not running:
            return None
        return kube.pod_log_tail(args.namespace, running[-1]["metadata"]["name"]) or None
    except (KubeError, OSError):
        return None  # no right to read logs, or no kubelet to ask: the status line still says what runs


def history_command(args: argparse.Namespace) -> int:
    """Versions deployed, with the revision each ran and how its rollout ended."""
    print(views.history_table(_read(args)[0]))
    return 0


def status_command(args: argparse.Namespace) -> int:
    """Exit codes like `kubectl rollout status`: 0 complete, 1 failed or timed out, 2 still in progress."""
    deadline = time.monotonic() + args.timeout
    shown = ""
    while True:
        md, pods = _read(args, with_pods=True)
        text = views.status_text(md, pods, _staging_progress(args, md))
        if text != shown:
            print(text, flush=True)
            shown = text
        outcome = views.verdict(md)
        if outcome == views.COMPLETE:
            return 0
        if outcome == views.FAILED:
            return 1
        if not args.watch:
            return 2
        if time.monotonic() > deadline:
            print(f"berth: timed out after {args.timeout:.0f}s", file=sys.stderr)
            return 1
        time.sleep(1)


def rollback_command(args: argparse.Namespace) -> int:
    """Sets the spec back to an earlier version from status.history (like `kubectl rollout undo`).
    Under GitOps, revert the commit instead: Argo CD or Flux would put this change back."""
    from berth_operator.kube import Kube, load_api_client, path

    kube = Kube(load_api_client(args.kubeconfig))
    md, _ = _read(args)
    entry = views.rollback_target(md, args.to)
    if entry is None:
        wanted = f"version {args.to}" if args.to else "an earlier succeeded version"
        print(f"berth: {args.namespace}/{args.name} has no {wanted} in its history", file=sys.stderr)
        return 1
    url = path(api.API_VERSION, api.KIND, args.namespace, args.name)
    kube.request("PATCH", url, body=views.rollback_patch(entry), content_type="application/merge-patch+json")
    release = f"{entry['source']}@{entry.get('revision') or '-'}"
    print(f"{args.namespace}/{args.name}: rolling back to version {entry['version']} ({release}); "
          f"follow it with `berth status {args.name} --watch`")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    # Installed twice: as `berth`, and as `kubectl-berth`, which kubectl runs for `kubectl berth ...`.
    prog = "kubectl berth" if Path(sys.argv[0]).name == "kubectl-berth" else "berth"
    parser = argparse.ArgumentParser(prog=prog, description="Serve LLMs on Kubernetes with Berth.")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the objects the operator would create")
    render.add_argument("-f", "--filename", action="append", required=True, help="manifest file, or - for stdin")
    render.add_argument("-n", "--namespace", default="default", help="namespace for objects that name none")
    render.add_argument("--runtime-image", help="runtime image the operator is configured with")
    render.set_defaults(run=render_command)
    inspections = [
        ("status", status_command, "show a ModelDeployment's rollout status"),
        ("history", history_command, "list the versions a ModelDeployment has deployed"),
        ("rollback", rollback_command, "go back to an earlier version from the history"),
    ]
    for name, run, text in inspections:
        command = commands.add_parser(name, help=text)
        command.add_argument("name")
        command.add_argument("-n", "--namespace", default="default")
        command.add_argument("--kubeconfig", help="default: KUBECONFIG, then in-cluster")
        if name == "status":
            command.add_argument("-w", "--watch", action="store_true", help="wait until the rollout finishes")
            command.add_argument("--timeout", type=float, default=600, help="seconds --watch waits")
        if name == "rollback":
            command.add_argument("--to", help="the version to go back to (default: the last succeeded before now)")
        command.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
