"""`berth-runtime`: the command the inference pods run (docs/runtime-contract.md)."""

from __future__ import annotations

import argparse

from berth_runtime import contract


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth-runtime", description="Berth's model runtime.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(contract.FETCH, help="download a pinned hub revision (safetensors only)")
    fetch.add_argument("source", help="hf://org/name")
    fetch.add_argument("--revision", help="commit SHA or tag (required)")
    fetch.add_argument("--dest", default=contract.MODEL_DIR, help="folder to fetch into")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == contract.FETCH:
        from berth_runtime import fetch

        return fetch.main(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
