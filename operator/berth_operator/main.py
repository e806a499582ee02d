"""`berth-operator`: runs the ModelDeployment operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

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
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)  # fmt: skip


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

    memo = kopf.Memo(metrics_port=args.metrics_port)
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=liveness,
            memo=memo,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
