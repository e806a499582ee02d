"""Tensor parallelism: `--tensor-parallel-size N` splits every layer's attention heads and MLP columns
over N ranks (one per GPU, or N processes on CPU with gloo), Megatron-style: each rank computes its
share, and the partial outputs of the attention and MLP projections are summed with an all-reduce.

Rank 0 runs the engine; ranks 1..N-1 are worker processes that receive each step (prefill, decode,
cache move) as a broadcast and run the same forward pass on their shard.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from berth_runtime.errors import LoadError
from berth_runtime.runner import ModelRunner, Shape, shape_of

log = logging.getLogger("berth.parallel")
PREFILL, DECODE, MOVE, STOP, CHUNK = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class LoadArgs:
    model: str
    dtype: str
    quantization: str
    max_model_len: int | None
    slots: int


def _rows(linear: nn.Linear, start: int, stop: int) -> None:
    linear.weight = nn.Parameter(linear.weight[start:stop].clone(), requires_grad=False)
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias[start:stop].clone(), requires_grad=False)
    linear.out_features = stop - start


def _columns(linear: nn.Linear, start: int, stop: int, keep_bias: bool) -> None:
    linear.weight = nn.Parameter(linear.weight[:, start:stop].clone(), requires_grad=False)
    if linear.bias is not None and not keep_bias:
        linear.bias = None  # added once, by rank 0, not once per rank
    linear.in_features = stop - start


def _check(heads: int, kv_heads: int, width: int, world: int) -> None:
    if heads % world or kv_heads % world or width % world:
        raise LoadError(f"--tensor-parallel-size {world} must divide the model's {heads} attention heads, "
                        f"{kv_heads} key/value heads and MLP width {width}")  # fmt: skip


def check_divisible(model: str, world: int) -> None:
    from transformers import AutoConfig

    from berth_runtime.loader import resolve_model_path

    config = AutoConfig.from_pretrained(resolve_model_path(model), trust_remote_code=False, local_files_only=True)
    _check(config.num_attention_heads, config.num_key_value_heads, config.intermediate_size, world)


def shard_model(model: Any, rank: int, world: int) -> Shape:
    """Keeps this rank's heads and MLP columns in place; returns the rank's attention shape."""
    full = shape_of(model.config)
    _check(full.heads, full.kv_heads, model.config.intermediate_size, world)
    heads, kv, dim = full.heads // world, full.kv_heads // world, full.head_dim
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        _rows(attn.q_proj, rank * heads * dim, (rank + 1) * heads * dim)
        _rows(attn.k_proj, rank * kv * dim, (rank + 1) * kv * dim)
        _rows(attn.v_proj, rank * kv * dim, (rank + 1) * kv * dim)
        _columns(attn.o_proj, rank * heads * dim, (rank + 1) * heads * dim, keep_bias=rank == 0)
        share = mlp.gate_proj.out_features // world
        _rows(mlp.gate_proj, rank * share, (rank + 1) * share)
        _rows(mlp.up_proj, rank * share, (rank + 1) * share)
        _columns(mlp.down_proj, rank * share, (rank + 1) * share, keep_bias=rank == 0)
    return Shape(full.layers, heads, kv, dim)


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(tensor)
    return tensor


_control: Any = None  # a gloo group for the step messages (NCCL groups carry only GPU tensors)


def _init(address: str, rank: int, world: int) -> None:
    global _control
    torch.set_num_threads(max(1, (os.cpu_count() or world) // world))
    if torch.cuda.is_available():
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", init_method=address,
                            rank=rank, world_size=world)  # fmt: skip
    _control = dist.new_group(backend="gloo") if torch.cuda.is_available() else dist.group.WORLD


def _send(*tensors: torch.Tensor) -> None:
    for tensor in tensors:
        dist.broadcast(tensor, 0, group=_control)


def _make_rank_runner(args: LoadArgs, rank: int, world: int, progress: Any = None) -> tuple[Any, ModelRunner]:
    from berth_runtime.loader import load

    device = f"cuda:{rank}" if torch.cuda.is_available() else "cpu"
    loaded = load(args.model, device, args.dtype, args.quantization, args.max_model_len, progress)
    shape = shard_model(loaded.model, rank, world)
    return loaded, ModelRunner(loaded, args.slots, shape=shape, reduce=_all_reduce)


def _worker(rank: int, world: int, address: str, args: LoadArgs) -> None:
    _init(address, rank, world)
    _, runner = _make_rank_runner(args, rank, world)
    runner.skip_logits = True  # only rank 0 samples
    header = torch.zeros(4, dtype=torch.long)
    while True:
        _send(header)
        op, a, b, n = header.tolist()
        if op == STOP:
            break
        if op == MOVE:
            runner.cache.move(a, b, n)
            continue
        if op == CHUNK:  # a: slot, b: start
            tokens = torch.empty(n, dtype=torch.long)
            _send(tokens)
            runner.prefill_chunk(a, tokens.tolist(), b)
            continue
        if op == PREFILL:
            slots, lengths = torch.empty(a, dtype=torch.long), torch.empty(a, dtype=torch.long)
            tokens = torch.empty(n, dtype=torch.long)
            _send(slots, lengths, tokens)
            flat = tokens.tolist()
            offsets = [0, *torch.cumsum(lengths, 0).tolist()]
            runner.prefill(slots.tolist(), [flat[offsets[i] : offsets[i + 1]] for i in range(a)])
        else:
            tokens = torch.empty(n, dtype=torch.long)
            _send(tokens)
            positions = torch.empty(n, dtype=torch.long)
            _send(positions)
            runner.decode(tokens.to(runner.device), positions.to(runner.device))
    dist.destroy_process_group()


def _free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


class _BroadcastingCache:
    """Rank 0's cache: a move is replayed on every rank's cache."""

    def __init__(self, runner: ModelRunner) -> None:
        self._cache = runner.cache
        self.slots, self.max_len = runner.cache.slots, runner.cache.max_len

    def move(self, source: int, target: int, length: int) -> None:
        _send(torch.tensor([MOVE, source, target, length]))
        self._cache.move(source, target, length)


class TensorParallelRunner:
    """Rank 0: the ModelRunner interface the engine uses, with every step mirrored on the workers."""

    def __init__(self, args: LoadArgs, world: int, progress: Any = None) -> None:
        check_divisible(args.model, world)  # before any process starts
        address = _free_address()
        context = multiprocessing.get_context("spawn")
        self.workers = [context.Process(target=_worker, args=(r, world, address, args), daemon=True)
                        for r in range(1, world)]  # fmt: skip
        for worker in self.workers:
            worker.start()
        _init(address, 0, world)
        self.loaded, self.local = _make_rank_runner(args, 0, world, progress)
        self.device = self.local.device
        self.cache = _BroadcastingCache(self.local)

    def prefill(self, slots: list[int], prompts: list[list[int]]) -> torch.Tensor:
        flat = [token for prompt in prompts for token in prompt]
        _send(torch.tensor([PREFILL, len(prompts), 0, len(flat)]), torch.tensor(slots),
              torch.tensor([len(p) for p in prompts]), torch.tensor(flat, dtype=torch.long))  # fmt: skip
        return self.local.prefill(slots, prompts)

    def prefill_chunk(self, slot: int, tokens: list[int], start: int) -> torch.Tensor:
        _send(torch.tensor([CHUNK, slot, start, len(tokens)]), torch.tensor(tokens, dtype=torch.long))
        return self.local.prefill_chunk(slot, tokens, start)

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        _send(torch.tensor([DECODE, 0, 0, tokens.shape[0]]), tokens.cpu(), positions.cpu())
        return self.local.decode(tokens, positions)

    def close(self) -> None:
        _send(torch.tensor([STOP, 0, 0, 0]))
        for worker in self.workers:
            worker.join(30)
        dist.destroy_process_group()
