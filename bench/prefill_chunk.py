"""Long prompts arriving while others decode: inter-token latency and throughput with whole-prompt
prefills (--prefill-chunk 0) against prefills in pieces (--prefill-chunk N), on two servers loaded in
turn, run by run, so the VM's drift touches both sides.

    python bench/prefill_chunk.py --chunk 256 --concurrency 8 --prompt-len 1024 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import run_load
from run import OUTPUT, start_server

KEYS = ("output_tok_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "e2e_p50_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=1024)
    parser.add_argument("--requests", type=int, help="default: 2 x concurrency")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    requests = args.requests or 2 * args.concurrency
    servers = {
        "whole prompts": (8101, start_server(8101, args.concurrency, "--prefill-chunk", "0")),
        f"pieces of {args.chunk}": (8102, start_server(8102, args.concurrency, "--prefill-chunk", str(args.chunk))),
    }
    results: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for port, _ in servers.values():
            asyncio.run(run_load(f"http://127.0.0.1:{port}", 2, 4, args.prompt_len, 16))  # warm-up
        for run in range(args.runs):
            for name, (port, _) in servers.items():
                load = run_load(f"http://127.0.0.1:{port}", args.concurrency, requests, args.prompt_len, OUTPUT, run)
                results[name].append(asyncio.run(load))
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(60)
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in KEYS} for name, runs in results.items()}
    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpus": torch.get_num_threads()}
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine, "medians": medians,
              "runs": results}  # fmt: skip
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(medians, indent=2))


if __name__ == "__main__":
    main()
