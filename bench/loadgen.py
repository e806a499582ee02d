"""A load generator for OpenAI-compatible servers: fixed concurrency, token-id prompts of a set
length (or a mix of lengths, taken in turn), a set number of output tokens (EOS ignored), streaming,
so that time to first token and inter-token latency are measured as a client sees them.

    python bench/loadgen.py --url http://127.0.0.1:8000 --concurrency 8 --requests 16
    python bench/loadgen.py --prompt-len 128,128,128,1024   # one long prompt in four
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp


@dataclass
class RequestTiming:
    start: float
    first_token: float = 0.0
    token_times: list[float] = field(default_factory=list)
    end: float = 0.0
    output_tokens: int = 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]


async def one_request(session: aiohttp.ClientSession, url: str, prompt: list[int], output: int) -> RequestTiming:
    body = {"prompt": prompt, "max_tokens": output, "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    timing = RequestTiming(start=time.perf_counter())
    async with session.post(url + "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            now = time.perf_counter()
            # Parse only what carries usage: a full JSON parse per token would take CPU from the
            # server under test on a small machine.
            if '"usage"' in line:
                timing.output_tokens = json.loads(line[6:])["usage"]["completion_tokens"]
            elif '"text":""' not in line:
                if not timing.first_token:
                    timing.first_token = now
                timing.token_times.append(now)
    timing.end = time.perf_counter()
    return timing


def prompt_lengths(text: str) -> tuple[int, ...]:
    """A length, or a comma-separated mix such as 128,128,128,1024 that requests take in turn."""
    return tuple(int(part) for part in text.split(","))


async def run_load(
    url: str, concurrency: int, requests: int, prompt_len: int | Sequence[int], output: int, seed: int = 0
) -> dict:
    lengths = (prompt_len,) if isinstance(prompt_len, int) else tuple(prompt_len)
    rng = random.Random(seed)
    prompts = [[rng.randrange(300, 32000) for _ in range(lengths[i % len(lengths)])] for i in range(requests)]
    queue: asyncio.Queue[list[int]] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    timings: list[RequestTiming] = []
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            while not queue.empty():
                timings.append(await one_request(session, url, queue.get_nowait(), output))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ttft = [t.first_token - t.start for t in timings]
    itl = [b - a for t in timings for a, b in zip(t.token_times, t.token_times[1:], strict=False)]
    e2e = [t.end - t.start for t in timings]
    tokens = sum(t.output_tokens for t in timings)
    return {
        "concurrency": concurrency, "requests": requests, "prompt_len": prompt_len, "output_len": output,
        "elapsed_s": elapsed, "output_tokens": tokens, "output_tok_s": tokens / elapsed,
        "ttft_p50_ms": percentile(ttft, 50) * 1000, "ttft_p99_ms": percentile(ttft, 99) * 1000,
        "itl_p50_ms": percentile(itl, 50) * 1000, "itl_p99_ms": percentile(itl, 99) * 1000,
        "itl_mean_ms": statistics.fmean(itl) * 1000 if itl else float("nan"),
        "itl_max_ms": max(itl, default=float("nan")) * 1000,  # the longest stall, which p99 can hide
        "e2e_p50_s": percentile(e2e, 50), "e2e_p99_s": percentile(e2e, 99),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, help="default: 2 x concurrency")
    parser.add_argument("--prompt-len", type=prompt_lengths, default=(128,))
    parser.add_argument("--output-len", type=int, default=128)
    args = parser.parse_args()
    result = asyncio.run(run_load(args.url, args.concurrency, args.requests or 2 * args.concurrency,
                                  args.prompt_len, args.output_len))  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
