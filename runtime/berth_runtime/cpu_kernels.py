"""Linear layers through oneDNN on CPU.

PyTorch's default CPU matmul (`F.linear`) goes through MKL, which on AMD CPUs takes a code path about
half as fast as the hardware allows; oneDNN, also bundled with PyTorch, does not. On the benchmark
machine (AMD EPYC, AVX-512) a float32 1024x1024 matmul runs at ~195 GFLOP/s through MKL and ~435
through oneDNN, and the standard model decodes 1.5-2x faster (docs/benchmarks.md). The runner swaps
the model's plain `nn.Linear` layers for `OneDnnLinear`, which shares their weights and calls
oneDNN's linear, the same kernel `torch.compile` uses for CPU linears. Quantized layers are not plain
`nn.Linear` and stay as they are; so do bfloat16 layers, for which oneDNN was not faster overall
on that machine (slower for prefill-sized inputs).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class OneDnnLinear(nn.Linear):
    """An `nn.Linear` computed by oneDNN; built by `from_linear`, sharing the original's parameters."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> OneDnnLinear:
        fast = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta")
        fast.weight = linear.weight
        fast.bias = linear.bias
        return fast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onednn_linear(x, self.weight, self.bias)


@functools.cache
def onednn_works() -> bool:
    """oneDNN's linear is there (a CPU build with mkldnn) and agrees with F.linear on a probe."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 64, generator=generator)
    weight = torch.randn(32, 64, generator=generator)
    try:
        got = onednn_linear(x, weight, None)
    except RuntimeError:
        return False
    return torch.allclose(got, F.linear(x, weight), rtol=1e-4, atol=1e-4)


def use_onednn_linears(model: nn.Module) -> int:
    """Replaces the model's plain float32 CPU `nn.Linear` layers by `OneDnnLinear`;
    returns how many. A model on another device, or a torch without oneDNN, is left unchanged."""
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear and child.weight.device.type == "cpu" and child.weight.dtype == torch.float32
    ]
    if not targets or not onednn_works():
        return 0
    for parent, name, child in targets:
        setattr(parent, name, OneDnnLinear.from_linear(child))
    return len(targets)
