"""`berth-runtime`: the command the inference pods run (docs/runtime-contract.md)."""

from __future__ import annotations

import argparse

from berth_runtime import contract

# Off by default: on a CPU, where a prefill piece costs many decode steps, pieces raised the p99
# inter-token latency rather than lowering it (docs/benchmarks.md); a GPU run is to decide its default there.
PREFILL_CHUNK = 0
REVISION_HELP = "hf://: commit SHA or tag (required); s3://: the listing digest to insist on (optional)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth-runtime", description="Berth's model runtime.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(contract.SERVE, help="serve a model over the OpenAI API")
    serve.add_argument("--model", required=True, help="a local checkpoint folder, or 'demo' (the embedded default)")
    serve.add_argument("--served-model-name", help="model id in the API (default: --model)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=contract.PORT)
    serve.add_argument("--device", default="auto", help="auto, cpu or cuda")
    serve.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    serve.add_argument("--quantization", default="none", choices=["none", "bf16", "fp16", "int8", "int4"])
    serve.add_argument("--tensor-parallel-size", type=int, default=1)
    serve.add_argument("--max-batch-size", type=int, default=32)
    serve.add_argument("--max-model-len", type=int, help="default: the model's own limit")
    serve.add_argument("--max-queue", type=int, default=256, help="waiting requests before 429s")
    serve.add_argument(
        "--prefill-chunk", type=int, default=PREFILL_CHUNK,
        help="a longer prompt arriving while others decode goes in pieces of this many tokens (0: off)",
    )  # fmt: skip
    serve.add_argument("--drain-timeout", type=float, default=60, help="seconds SIGTERM waits for in-flight work")
    serve.add_argument("--api-key-file", help="require this key as a Bearer token (else BERTH_API_KEY, if set)")
    serve.add_argument("--self-test-prompt", help="a golden prompt that must produce output before /ready")
    serve.add_argument("--self-test-expect", help="a regular expression the self-test output must match")
    serve.add_argument("--self-test-budget-ms", type=int, help="the self-test's latency budget")
    fetch = commands.add_parser(contract.FETCH, help="download a pinned model revision (safetensors only)")
    fetch.add_argument("source", help="hf://org/name or s3://bucket/prefix")
    fetch.add_argument("--revision", help=REVISION_HELP)
    fetch.add_argument("--dest", default=contract.MODEL_DIR, help="folder to fetch into")
    stage = commands.add_parser(contract.STAGE, help="stage a pinned model revision into the model cache")
    stage.add_argument("source", help="hf://org/name or s3://bucket/prefix")
    stage.add_argument("--revision", help=REVISION_HELP)
    stage.add_argument("--cache", default=contract.CACHE_DIR, help="the model cache folder")
    stage.add_argument("--key", required=True, help="the cache entry to stage into")
    stage.add_argument("--keep", action="append", default=[], help="another entry to keep (repeatable)")
    stage.add_argument("--report", default="/dev/termination-log", help="where the outcome is written as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == contract.SERVE:
        from berth_runtime import serve

        return serve.main(args)
    if args.command == contract.FETCH:
        from berth_runtime import fetch

        return fetch.main(args)
    if args.command == contract.STAGE:
        from berth_runtime import stage

        return stage.main(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
