"""`berth` (also `kubectl berth`): the command line for people running ModelDeployments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from berth_operator import api
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description="Serve LLMs on Kubernetes with Berth.")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the objects the operator would create")
    render.add_argument("-f", "--filename", action="append", required=True, help="manifest file, or - for stdin")
    render.add_argument("-n", "--namespace", default="default", help="namespace for objects that name none")
    render.add_argument("--runtime-image", help="runtime image the operator is configured with")
    render.set_defaults(run=render_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
