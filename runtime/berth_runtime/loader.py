"""Loads a local transformers checkpoint: safetensors only, no remote code, shard by shard so that
progress can be reported, then dtype and quantization applied at load time."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from berth_runtime import quantization
from berth_runtime.contract import DEMO_MODEL
from berth_runtime.demo_model import DEFAULT_CHAT_TEMPLATE, ensure_demo_model
from berth_runtime.errors import LoadError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SUPPORTED_LAYOUT = ("q_proj", "k_proj", "v_proj", "o_proj")  # the Llama family's attention


@dataclass
class LoadProgress:
    """What /health and /metrics report while the model loads."""

    phase: str = "starting"  # starting, loading, quantizing, warming, self-test, ready, failed, draining
    shards_loaded: int = 0
    shards_total: int = 0
    detail: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, phase: str, detail: str = "") -> None:
        with self._lock:
            self.phase, self.detail = phase, detail

    def shard(self, loaded: int, total: int) -> None:
        with self._lock:
            self.shards_loaded, self.shards_total = loaded, total

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"phase": self.phase, "shards_loaded": self.shards_loaded,
                    "shards_total": self.shards_total, "detail": self.detail}  # fmt: skip


@dataclass
class LoadedModel:
    model: Any  # a transformers *ForCausalLM in eval mode
    tokenizer: Any
    path: Path
    device: torch.device
    dtype: torch.dtype
    quantization: str
    weight_bytes: int
    max_model_len: int
    eos_token_ids: frozenset[int]


def resolve_model_path(model: str) -> Path:
    if model == DEMO_MODEL:
        return ensure_demo_model()
    path = Path(model)
    if not (path / "config.json").is_file():
        raise LoadError(f"--model {model}: no config.json there; expected a local transformers checkpoint or 'demo'")
    return path


def safetensors_shards(path: Path) -> list[Path]:
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl"))
        raise LoadError(
            f"{path}: no safetensors weights"
            + (f" (found {', '.join(found)}: pickled weights are never loaded)" if found else "")
            + "; convert the checkpoint to safetensors"
        )
    return shards


def choose_dtype(dtype: str, quant: str, device: torch.device, config_dtype: Any) -> torch.dtype:
    if quant in ("bf16", "fp16"):
        return torch.bfloat16 if quant == "bf16" else torch.float16
    if quant == "int4":  # tinygemm computes in bfloat16 only
        if dtype not in ("auto", "bfloat16"):
            raise LoadError(f"--dtype {dtype} with quantization int4: int4 computes in bfloat16; drop --dtype")
        return torch.bfloat16
    if dtype != "auto":
        return DTYPES[dtype]
    if device.type == "cpu":
        return torch.float32  # CPU kernels are fastest and exact in float32
    return config_dtype if isinstance(config_dtype, torch.dtype) and config_dtype != torch.float32 else torch.bfloat16


def _check_architecture(model: Any) -> None:
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not layers or not all(hasattr(layers[0].self_attn, name) for name in SUPPORTED_LAYOUT):
        raise LoadError(
            f"{type(model).__name__}: unsupported architecture; Berth serves Llama-family decoder models "
            "(Llama, Mistral, Qwen2, Qwen3)"
        )


def _load_weights(model: Any, shards: list[Path], device: torch.device, progress: LoadProgress) -> None:
    from safetensors.torch import load_file

    for index, shard in enumerate(shards, 1):
        state = load_file(str(shard), device=str(device))
        model.load_state_dict(state, strict=False, assign=True)
        progress.shard(index, len(shards))
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    missing = [name for name, p in model.named_parameters() if p.is_meta]
    if missing:
        raise LoadError(f"weights missing from the checkpoint: {', '.join(missing[:5])}")


def load(
    model: str,
    device: str = "cpu",
    dtype: str = "auto",
    quant: str = "none",
    max_model_len: int | None = None,
    progress: LoadProgress | None = None,
) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    progress = progress or LoadProgress()
    target = torch.device(device)
    quantization.check_supported(quant, target)
    path = resolve_model_path(model)
    shards = safetensors_shards(path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    chosen = choose_dtype(dtype, quant, target, getattr(config, "dtype", None))
    if target.type == "cpu" and chosen == torch.float16:
        raise LoadError("float16 is not supported on CPU; use float32 or bfloat16 (or run with a GPU)")
    progress.set("loading")
    progress.shard(0, len(shards))
    with torch.device("meta"):
        net = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    _check_architecture(net)
    _load_weights(net, shards, target, progress)
    # Non-persistent buffers (rotary frequencies) are not in checkpoints: build them for real.
    with target:
        net.model.rotary_emb = type(net.model.rotary_emb)(config=net.config)
    net = net.to(dtype=chosen).eval()
    if quant in ("int8", "int4"):
        progress.set("quantizing", quant)
        net = quantization.apply(net, quant, target)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    limit = getattr(config, "max_position_embeddings", None) or 2048
    if max_model_len and max_model_len > limit:
        raise LoadError(f"--max-model-len {max_model_len} exceeds the model's limit of {limit} positions")
    return LoadedModel(
        model=net,
        tokenizer=tokenizer,
        path=path,
        device=target,
        dtype=chosen,
        quantization=quant,
        weight_bytes=quantization.weight_bytes(net),
        max_model_len=max_model_len or limit,
        eos_token_ids=_eos_ids(path, config, tokenizer),
    )


def _eos_ids(path: Path, config: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    generation = path / "generation_config.json"
    sources = [getattr(config, "eos_token_id", None), tokenizer.eos_token_id]
    if generation.exists():
        sources.append(json.loads(generation.read_text()).get("eos_token_id"))
    for value in sources:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    return frozenset(ids)
