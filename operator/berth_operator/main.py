"""`berth-operator`: runs the ModelDeployment operator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kopf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth-operator", description=__doc__)
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig to use outside a cluster (default: in-cluster, then KUBECONFIG)"
    )
    parser.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port (0: off)")
    parser.add_argument("--health-port", type=int, default=8081, help="liveness endpoint port, /healthz (0: off)")
    parser.add_argument(
        "--leader-elect", action="store_true", help="reconcile only while holding a Lease (for replicas > 1)"
    )
    parser.add_argument("--leader-election-lease", default="berth-operator", help="the Lease's name")
    parser.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "berth-system"),
        help="the Lease's namespace (default: POD_NAMESPACE, else berth-system)",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)  # fmt: skip


@contextlib.contextmanager
def standby_health(port: int) -> Iterator[None]:
    """Answers /healthz while this replica waits for the lease (kopf serves it once leading)."""
    if not port:
        yield
        return

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.kubeconfig:
        # Kopf's own login and Berth's client both read it from the environment.
        os.environ["KUBECONFIG"] = args.kubeconfig
    from berth_operator import handlers  # noqa: F401  (registers the handlers)
    from berth_operator.kube import Kube, load_api_client
    from berth_operator.leader import LeaderElector, identity

    elector = None
    if args.leader_elect:
        lease = (args.leader_election_namespace, args.leader_election_lease)
        elector = LeaderElector(Kube(load_api_client()), *lease, identity())
        with standby_health(args.health_port):  # a waiting replica is alive, not stuck
            elector.acquire()
    memo = kopf.Memo(metrics_port=args.metrics_port, namespaces=args.namespace)
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    try:
        asyncio.run(
            kopf.operator(
                standalone=True,
                clusterwide=not args.namespace,
                namespaces=args.namespace,
                liveness_endpoint=liveness,
                memo=memo,
            )
        )
    finally:
        if elector:
            elector.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
