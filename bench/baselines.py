"""The baselines Berth's runtime is compared with, on the same model in the same run: transformers
`generate()` one request at a time, a padded static batch through `generate()`, and transformers' own
continuous batching (`generate_batch`). Each returns output tokens per second."""

from __future__ import annotations

import time
from typing import Any

import torch


def generate_one_at_a_time(model: Any, prompts: list[list[int]], output: int) -> float:
    started = time.perf_counter()
    tokens = 0
    for prompt in prompts:
        out = model.generate(torch.tensor([prompt]), max_new_tokens=output, min_new_tokens=output, do_sample=False)
        tokens += out.shape[1] - len(prompt)
    return tokens / (time.perf_counter() - started)


def static_batch(model: Any, prompts: list[list[int]], output: int, pad_id: int = 0) -> float:
    """Left-padded to the longest prompt, as a batch job would."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    started = time.perf_counter()
    out = model.generate(ids, attention_mask=mask, max_new_tokens=output, min_new_tokens=output, do_sample=False,
                         pad_token_id=pad_id)  # fmt: skip
    return (out.shape[1] - width) * len(prompts) / (time.perf_counter() - started)


def transformers_continuous_batching(model: Any, prompts: list[list[int]], output: int) -> float:
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=output, min_new_tokens=output, do_sample=False, eos_token_id=-1,
                              pad_token_id=0)  # fmt: skip
    started = time.perf_counter()
    results = model.generate_batch(inputs=prompts, generation_config=config, progress_bar=False)
    elapsed = time.perf_counter() - started
    tokens = sum(len(r.generated_tokens) for r in results.values())
    return tokens / elapsed


def matmul_peak_flops(size: int = 1024, runs: int = 3) -> float:
    """The machine's measured float32 matmul rate (FLOP/s), the ceiling for compute-bound decoding:
    the faster of torch's default matmul (MKL) and oneDNN's, which Berth's runner uses on CPU
    (berth_runtime.cpu_kernels; on AMD CPUs oneDNN is about twice as fast)."""
    from cpu_kernels import linears  # bench/cpu_kernels.py, which times both kernels

    fastest_us = min(linears(size, [(size, size)], runs).values())
    return 2 * size**3 / (fastest_us / 1e6)


def flops_per_token(model: Any) -> float:
    """2 x the parameters every generated token multiplies through (embedding lookup excluded)."""
    matmul_params = sum(
        p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name and p.dim() == 2
    )
    return 2.0 * matmul_params
