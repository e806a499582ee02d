"""Long prompts arriving while others decode: inter-token latency and throughput with whole-prompt
prefills (--prefill-chunk 0) against prefills in pieces (--prefill-chunk N), on two servers loaded in
turn, run by run, so the VM's drift touches both sides.

    python bench/prefill_chunk.py --chunk 256 --concurrency 8 --prompt-len 1024 --runs 3
    python bench/prefill_chunk.py --chunk 256 --concurrency 8 --prompt-len 128,128,128,1024 --requests 32 --runs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alternate import Load, Variant, alternate, medians
from loadgen import prompt_lengths
from run import OUTPUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompt-len", type=prompt_lengths, default=(1024,), help="a length or a mix: 128,1024")
    parser.add_argument("--requests", type=int, help="default: 2 x concurrency")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = {
        "whole prompts": Variant(["--prefill-chunk", "0"]),
        f"pieces of {args.chunk}": Variant(["--prefill-chunk", str(args.chunk)]),
    }
    load = Load(args.concurrency, args.requests or 2 * args.concurrency, args.prompt_len, OUTPUT)
    results = alternate(variants, load, args.runs, args.concurrency)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpus": torch.get_num_threads()}
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine, "medians": medians(results),
              "runs": results}  # fmt: skip
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(medians(results), indent=2))


if __name__ == "__main__":
    main()
