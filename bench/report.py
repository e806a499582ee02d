"""Prints a benchmark result file (bench/run.py --out) as the Markdown table in docs/benchmarks.md.

python bench/report.py bench/results/cpu.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(result: dict) -> str:
    lines = [
        "| concurrency | Berth tok/s | generate() tok/s | static batch tok/s | generate_batch tok/s "
        "| vs generate() | vs static batch | vs generate_batch | TTFT p50 / p99 ms | ITL p50 / p99 ms "
        "| e2e p50 / p99 s | GFLOP/s incl. prefill (of peak) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['concurrency']} | {fmt(row['berth_tok_s'])} | {fmt(row.get('generate_tok_s'))} "
            f"| {fmt(row.get('static_batch_tok_s'))} | {fmt(row.get('generate_batch_tok_s'))} "
            f"| {fmt(row.get('vs_generate'), 2)} | {fmt(row.get('vs_static_batch'), 2)} "
            f"| {fmt(row.get('vs_generate_batch'), 2)} "
            f"| {fmt(row['ttft_p50_ms'], 0)} / {fmt(row['ttft_p99_ms'], 0)} "
            f"| {fmt(row['itl_p50_ms'])} / {fmt(row['itl_p99_ms'])} "
            f"| {fmt(row['e2e_p50_s'], 2)} / {fmt(row['e2e_p99_s'], 2)} "
            f"| {fmt(row['achieved_gflop_s'])} ({row['of_peak']:.0%}) |"
        )
    lines.append("")
    lines.append(f"Measured matmul peak: {result['peak_gflop_s']:.1f} GFLOP/s (float32, 1024x1024). "
                 f"{result['flops_per_token'] / 1e6:.1f} MFLOP per token (2 x matmul parameters).")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
