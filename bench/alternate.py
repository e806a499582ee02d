"""Several runtime servers measured in turn, run by run, so that the VM's drift touches every side of
a comparison alike. Each variant is a server started with its own flags and environment (for
example PYTHONPATH pointing at another checkout's runtime/ to compare two versions of the code)."""

from __future__ import annotations

import asyncio
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import run_load
from run import start_server

KEYS = ("output_tok_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "itl_max_ms", "e2e_p50_s")


@dataclass(frozen=True)
class Variant:
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Load:
    concurrency: int
    requests: int
    prompt_len: int | tuple[int, ...]
    output: int


def alternate(variants: dict[str, Variant], load: Load, runs: int, max_batch: int, port: int = 8101) -> dict:
    """{variant: [loadgen result per run]}; the servers idle while another one is measured."""
    servers = {}
    try:
        for offset, (name, variant) in enumerate(variants.items()):
            servers[name] = (port + offset, start_server(port + offset, max_batch, *variant.args, env=variant.env))
        for server_port, _ in servers.values():
            asyncio.run(run_load(f"http://127.0.0.1:{server_port}", 2, 4, load.prompt_len, 16))  # warm-up
        results: dict[str, list[dict]] = {name: [] for name in variants}
        for run in range(runs):
            for name, (server_port, _) in servers.items():
                url = f"http://127.0.0.1:{server_port}"
                results[name].append(
                    asyncio.run(run_load(url, load.concurrency, load.requests, load.prompt_len, load.output, run))
                )
        return results
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(60)


def medians(results: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    return {name: {key: statistics.median(r[key] for r in runs) for key in KEYS} for name, runs in results.items()}
