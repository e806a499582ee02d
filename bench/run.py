"""Berth's runtime against transformers' baselines, on the standard model, in one run.

Standard model: the demo model (Llama architecture, vocab 32000, hidden 512, intermediate 1376,
8 layers, 8 heads, 4 KV heads, random weights with seed 0), float32 on CPU. Prompts of 128 random
token ids, 128 output tokens with EOS ignored, concurrency 1, 8 and 32; 2 x concurrency requests
per measurement (3 at concurrency 1). Each figure is the median of --runs runs.

    python bench/run.py --runs 3 --out bench/results/cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import (
    flops_per_token,
    generate_one_at_a_time,
    matmul_peak_flops,
    static_batch,
    transformers_continuous_batching,
)
from loadgen import run_load

PROMPT, OUTPUT = 128, 128


def requests_for(concurrency: int) -> int:
    return 3 if concurrency == 1 else 2 * concurrency


def prompts_for(concurrency: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(300, 32000) for _ in range(PROMPT)] for _ in range(requests_for(concurrency))]


def start_server(port: int, max_batch: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "berth_runtime.cli", "serve", "--model", "demo", "--dtype", "float32",
               "--port", str(port), "--max-batch-size", str(max_batch), "--max-queue", "4096", *extra]  # fmt: skip
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    import urllib.request

    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the runtime did not become ready")


def measure(concurrencies: list[int], runs: int, port: int) -> tuple[dict, dict, float]:
    """Berth over HTTP and the baselines in-process, alternating per concurrency and run so that the
    machine's drift (a shared VM) touches both sides of each ratio alike. The server idles while a
    baseline runs."""
    from berth_runtime.loader import load

    model = load("demo", dtype="float32").model
    generate_one_at_a_time(model, prompts_for(1, 99)[:1], 8)  # warm-up
    server = start_server(port, max(concurrencies))
    berth: dict[int, list[dict]] = {c: [] for c in concurrencies}
    baselines: dict[int, dict[str, list[float]]] = {c: {} for c in concurrencies}
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(run_load(url, 2, 4, PROMPT, 16))  # warm-up
        for run in range(runs):
            for c in concurrencies:
                berth[c].append(asyncio.run(run_load(url, c, requests_for(c), PROMPT, OUTPUT, seed=run)))
                for name, rate in baseline_rates(model, c, prompts_for(c, run)).items():
                    baselines[c].setdefault(name, []).append(rate)
    finally:
        server.terminate()
        server.wait(60)
    return berth, baselines, flops_per_token(model)


def baseline_rates(model: object, concurrency: int, prompts: list[list[int]]) -> dict[str, float]:
    if concurrency == 1:
        return {"generate": generate_one_at_a_time(model, prompts, OUTPUT)}
    # The static batch serves requests `concurrency` at a time, as a batch job would.
    started, tokens = time.perf_counter(), 0
    for first in range(0, len(prompts), concurrency):
        chunk = prompts[first : first + concurrency]
        static_batch(model, chunk, OUTPUT)
        tokens += len(chunk) * OUTPUT
    return {
        "static_batch": tokens / (time.perf_counter() - started),
        "generate_batch": transformers_continuous_batching(model, prompts, OUTPUT),
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(
    berth: dict[int, list[dict]], baselines: dict[int, dict[str, list[float]]], flops: float, peak: float
) -> dict:
    rows = []
    for c, runs in berth.items():
        tok_s = median([r["output_tok_s"] for r in runs])
        row = {
            "concurrency": c,
            "berth_tok_s": tok_s,
            "ttft_p50_ms": median([r["ttft_p50_ms"] for r in runs]),
            "ttft_p99_ms": median([r["ttft_p99_ms"] for r in runs]),
            "itl_p50_ms": median([r["itl_p50_ms"] for r in runs]),
            "itl_p99_ms": median([r["itl_p99_ms"] for r in runs]),
            "e2e_p50_s": median([r["e2e_p50_s"] for r in runs]),
            "e2e_p99_s": median([r["e2e_p99_s"] for r in runs]),
            # Every request also prefills PROMPT tokens: count them, or the figure undersells the work.
            "achieved_gflop_s": tok_s * flops * (PROMPT + OUTPUT) / OUTPUT / 1e9,
            "of_peak": tok_s * flops * (PROMPT + OUTPUT) / OUTPUT / peak,
            "runs": [r["output_tok_s"] for r in runs],
        }
        for name, values in baselines[c].items():
            row[f"{name}_tok_s"] = median(values)
            row[f"vs_{name}"] = tok_s / median(values)
            row[f"{name}_runs"] = values
        rows.append(row)
    return {"rows": rows, "peak_gflop_s": peak / 1e9, "flops_per_token": flops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--port", type=int, default=18123)
    parser.add_argument("--out", type=Path, default=Path("bench/results/cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    peak = matmul_peak_flops()
    berth, baselines, flops = measure(args.concurrency, args.runs, args.port)
    result = report(berth, baselines, flops, peak)
    result["machine"] = {"cpu_count": torch.get_num_threads(), "platform": platform.platform(),
                         "python": platform.python_version(), "torch": torch.__version__}  # fmt: skip
    result["command"] = " ".join(["python", *sys.argv])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for row in result["rows"]:
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if "runs" not in k}))
    print(f"peak {result['peak_gflop_s']:.1f} GFLOP/s; {flops / 1e6:.1f} MFLOP per token")


if __name__ == "__main__":
    main()
