"""Quantization at load time, and what runs where (docs/runtime.md has the table).

| mode | CPU | GPU |
|---|---|---|
| none | float32 (or --dtype) | the checkpoint's 16-bit dtype, else bfloat16 |
| bf16 | bfloat16 weights | bfloat16 weights |
| fp16 | refused at start-up | float16 weights |
| int8 | torch.ao dynamic qint8 Linear (fbgemm/x86) | torchao int8 weight-only |
| int4 | refused at start-up | torchao int4 weight-only (group 128, tinygemm, bfloat16, compute capability 8.0+) |
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import torch
from torch import nn

from berth_runtime.errors import LoadError as QuantizationError


def check_supported(mode: str, device: torch.device) -> None:
    """Fails at start-up, before loading anything, when the mode cannot run on the device."""
    on_gpu = device.type == "cuda"
    if mode in ("none", "bf16"):
        return
    if mode == "fp16" and not on_gpu:
        raise QuantizationError("quantization fp16 needs a GPU; on CPU use none, bf16 or int8")
    if mode == "int4" and not on_gpu:
        raise QuantizationError("quantization int4 needs a GPU (torchao int4 weight-only); on CPU use int8")
    if mode == "int8" and not on_gpu and not ({"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines)):
        raise QuantizationError("quantization int8 on CPU needs an x86 CPU (fbgemm); use none or bf16")
    if mode in ("int8", "int4") and on_gpu and importlib.util.find_spec("torchao") is None:
        raise QuantizationError(f"quantization {mode} on GPU needs torchao: pip install 'berth[runtime-gpu]'")
    if mode == "int4" and on_gpu and torch.cuda.get_device_capability(device)[0] < 8:
        raise QuantizationError("quantization int4 needs a GPU of compute capability 8.0 or newer (tinygemm); use int8")
    if mode not in ("fp16", "int8", "int4"):
        raise QuantizationError(f"unknown quantization {mode!r}: none, bf16, fp16, int8 or int4")


def apply(model: nn.Module, mode: str, device: torch.device) -> nn.Module:
    if device.type == "cpu":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            # Dynamic int8: weights stored as qint8, activations quantized per call; the one CPU path
            # measured to speed decoding up (see docs/benchmarks.md).
            return torch.ao.quantization.quantize_dynamic(model.float(), {nn.Linear}, dtype=torch.qint8)
    return quantize_weight_only(model, mode)


def quantize_weight_only(model: nn.Module, mode: str) -> nn.Module:
    """The GPU path: torchao weight-only quantization of every Linear layer, in place."""
    from torchao.quantization import quantize_

    quantize_(model, torchao_config(mode))
    return model


def torchao_config(mode: str) -> Any:
    from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig

    if mode == "int8":
        return Int8WeightOnlyConfig()
    # torchao's default int4 packing needs the mslk kernels, which PyPI does not carry; tile_packed_to_4d
    # runs on torch's own tinygemm kernel (bfloat16, compute capability 8.0+).
    return Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d")


def weight_bytes(model: nn.Module) -> int:
    """Bytes the weights occupy, quantized ones counted at their stored width."""
    total = 0
    for value in model.state_dict().values():
        total += _nbytes(value)
    return total


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor) and hasattr(value, "__tensor_flatten__"):
        # A quantized tensor subclass (torchao) looks like its original dtype; its storage is its inner tensors.
        names, _ = value.__tensor_flatten__()
        return sum(_nbytes(getattr(value, name)) for name in names)
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 0
