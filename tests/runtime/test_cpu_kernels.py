"""oneDNN linears on CPU: the same results as nn.Linear, the same parameters (no second copy of the
weights), and only plain float32 layers swapped."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from berth_runtime.cpu_kernels import OneDnnLinear, onednn_works, use_onednn_linears

needs_onednn = pytest.mark.skipif(not onednn_works(), reason="this torch has no oneDNN linear")


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(64, 96)
        self.head = nn.Linear(96, 10, bias=False)
        self.norm = nn.LayerNorm(96)
        self.int8 = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(10, 4)), {nn.Linear})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.int8(self.head(self.norm(self.proj(x))))


@needs_onednn
def test_swapped_layers_compute_the_same_on_the_same_parameters() -> None:
    torch.manual_seed(0)
    block = Block().eval()
    x = torch.randn(3, 5, 64)
    with torch.inference_mode():
        expected = block(x)
    parameters = {name: p.data_ptr() for name, p in block.named_parameters()}

    assert use_onednn_linears(block) == 2
    assert type(block.proj) is OneDnnLinear and type(block.head) is OneDnnLinear
    assert type(block.int8[0]) is not OneDnnLinear  # quantized: left alone
    assert {name: p.data_ptr() for name, p in block.named_parameters()} == parameters
    with torch.inference_mode():
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-4)


@needs_onednn
def test_only_float32_layers_are_swapped() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8).bfloat16(), nn.Linear(8, 8).half())
    assert use_onednn_linears(model) == 1
    assert [type(layer) for layer in model] == [OneDnnLinear, nn.Linear, nn.Linear]


def test_a_model_on_another_device_is_left_alone() -> None:
    model = nn.Sequential(nn.Linear(8, 8, device="meta"))
    assert use_onednn_linears(model) == 0
