"""The two CPU effects behind the runtime's speed on the benchmark machine (docs/benchmarks.md):
torch's default float32 matmul (MKL) against oneDNN's linear, for the standard model's shapes; and
the cost of a parallel op from a second computing thread (a second OpenMP pool) against the first.
Each figure is the median of --runs timings.

    python bench/cpu_kernels.py --runs 3 --out bench/results/cpu-kernels.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from berth_runtime.cpu_kernels import onednn_linear

# (out, in) of one decoder layer of the standard model: q, k, v, o, gate, up, down; then the vocabulary.
LAYER = [(512, 512), (256, 512), (256, 512), (512, 512), (1376, 512), (1376, 512), (512, 1376)]
VOCAB = (32000, 512)


def microseconds(work: Callable[[], object], runs: int, seconds: float = 0.5) -> float:
    timings = []
    for _ in range(runs):
        work()
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            work()
            count += 1
        timings.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(timings)


def linears(rows: int, shapes: list[tuple[int, int]], runs: int) -> dict[str, float]:
    """Microseconds for one pass through the shapes, per kernel."""
    pairs = [(torch.randn(rows, k), torch.randn(n, k)) for n, k in shapes]
    return {
        "default": microseconds(lambda: [F.linear(x, w) for x, w in pairs], runs),
        "onednn": microseconds(lambda: [onednn_linear(x, w, None) for x, w in pairs], runs),
    }


def second_thread_penalty(runs: int) -> dict[str, float]:
    values = torch.randn(200_000)
    result = {"first thread": microseconds(lambda: values + values, runs)}

    def measure() -> None:
        result["second thread"] = microseconds(lambda: values + values, runs)

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    size = 1024
    report = {
        "matmul_1024_gflop_s": {
            name: 2 * size**3 / us / 1e3 for name, us in linears(size, [(size, size)], args.runs).items()
        },
        "decoder_layer_us": {rows: linears(rows, LAYER, args.runs) for rows in (1, 32, 2048)},
        "vocabulary_us": {rows: linears(rows, [VOCAB], args.runs) for rows in (1, 32)},
        "parallel_add_200k_us": second_thread_penalty(args.runs),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
