"""The GPU quantization path (torchao weight-only) on what exists here: torchao's int8 weight-only runs on
CPU tensors too, so the call the runtime makes on a GPU is exercised with the pinned torchao; int4 needs
a CUDA kernel (tinygemm), so only its configuration is checked."""

from __future__ import annotations

import pytest
import torch

from berth_runtime import quantization
from berth_runtime.errors import LoadError
from berth_runtime.loader import choose_dtype, load

pytest.importorskip("torchao")


def test_gpu_int8_path_quantizes_every_linear_and_reports_the_smaller_weights() -> None:
    model = load("demo", dtype="bfloat16").model
    prompt = torch.tensor([[1, 306, 4658, 278, 6593, 310, 2834, 338]])
    with torch.no_grad():
        reference = model(prompt).logits[0, -1].float()
    before = quantization.weight_bytes(model)

    quantization.quantize_weight_only(model, "int8")

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m.weight).__name__ == "Int8Tensor" for m in linears)
    after = quantization.weight_bytes(model)
    assert after < 0.65 * before, (before, after)  # linear weights at 1 byte instead of 2, plus scales
    with torch.no_grad():
        logits = model(prompt).logits[0, -1].float()
    assert torch.nn.functional.cosine_similarity(logits, reference, dim=0) > 0.99
    assert logits.argmax() == reference.argmax()


def test_gpu_int4_uses_torchs_tinygemm_kernel_not_mslk() -> None:
    # torchao's default int4 packing needs the mslk kernels, which PyPI does not carry (found without a GPU).
    assert quantization.torchao_config("int4").int4_packing_format == "tile_packed_to_4d"


def test_int4_computes_in_bfloat16() -> None:
    gpu = torch.device("cuda")
    assert choose_dtype("auto", "int4", gpu, torch.float16) == torch.bfloat16
    with pytest.raises(LoadError, match="int4 computes in bfloat16"):
        choose_dtype("float16", "int4", gpu, None)
