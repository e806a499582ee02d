"""The model runner: a Llama-family forward pass over a preallocated KV cache, for one prompt (prefill)
or for every running sequence at once (decode).

It calls the loaded transformers model's own modules (projections, norms, MLP, rotary embedding), so
weights and quantized layers are the library's (on CPU its linear layers run through oneDNN:
berth_runtime.cpu_kernels); what it adds is the cache layout that lets sequences join and leave the
batch at every step. Running sequences occupy cache slots 0..B-1, so a decode step reads a view of
the cache, never a copy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from berth_runtime.cpu_kernels import use_onednn_linears
from berth_runtime.loader import LoadedModel


@dataclass(frozen=True)
class Shape:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int


def shape_of(config: Any) -> Shape:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return Shape(config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads, head_dim)


class KVCache:
    """Keys and values for `slots` sequences of up to `max_len` tokens: [layers, slots, kv_heads, len, dim]."""

    def __init__(self, shape: Shape, slots: int, max_len: int, dtype: torch.dtype, device: torch.device) -> None:
        size = (shape.layers, slots, shape.kv_heads, max_len, shape.head_dim)
        self.k = torch.zeros(size, dtype=dtype, device=device)
        self.v = torch.zeros(size, dtype=dtype, device=device)
        self.slots, self.max_len = slots, max_len

    def move(self, source: int, target: int, length: int) -> None:
        """Moves a sequence to another slot (to keep running sequences in slots 0..B-1)."""
        self.k[:, target, :, :length] = self.k[:, source, :, :length]
        self.v[:, target, :, :length] = self.v[:, source, :, :length]


class ModelRunner:
    def __init__(self, loaded: LoadedModel, slots: int, shape: Shape | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:  # fmt: skip
        """shape and reduce are for a tensor-parallel rank (berth_runtime.parallel): its share of the
        heads, and the all-reduce that sums the ranks' partial outputs."""
        model = loaded.model
        self.loaded = loaded
        self.device = loaded.device
        if self.device.type == "cpu":
            use_onednn_linears(model)  # twice MKL's rate on AMD CPUs (berth_runtime.cpu_kernels)
        self.shape = shape or shape_of(model.config)
        self.reduce = reduce or (lambda x: x)
        self.skip_logits = False  # a tensor-parallel worker: rank 0 alone computes logits
        self.layers = list(model.model.layers)
        self.embed = model.model.embed_tokens
        self.norm = model.model.norm
        self.lm_head = model.lm_head
        self.rotary = model.model.rotary_emb
        self.apply_rotary = sys.modules[type(self.layers[0].self_attn).__module__].apply_rotary_pos_emb
        self.scaling = self.layers[0].self_attn.scaling
        # Quantized CPU layers compute in float32; the cache holds what the attention produces.
        self.act_dtype = self.embed.weight.dtype
        self.cache = KVCache(self.shape, slots, loaded.max_model_len, self.act_dtype, self.device)

    def _qkv(self, layer: Any, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attn = layer.self_attn
        batch, length = hidden.shape[:2]
        split = (batch, length, -1, self.shape.head_dim)
        q, k, v = attn.q_proj(hidden).view(split), attn.k_proj(hidden).view(split), attn.v_proj(hidden).view(split)
        if hasattr(attn, "q_norm"):  # Qwen3 normalizes queries and keys per head
            q, k = attn.q_norm(q), attn.k_norm(k)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def _rest_of_layer(self, layer: Any, residual: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Output projection and MLP, each with its residual (and the ranks' all-reduce)."""
        hidden = residual + self.reduce(layer.self_attn.o_proj(attended))
        return hidden + self.reduce(layer.mlp(layer.post_attention_layernorm(hidden)))

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.skip_logits:
            return hidden
        return self.lm_head(self.norm(hidden)).float()

    @torch.inference_mode()
    def prefill(self, slots: list[int], prompts: list[list[int]]) -> torch.Tensor:
        """Runs whole prompts (right-padded into one batch), fills each slot's cache, and returns each
        prompt's next-token logits [k, vocab]. Padding sits after every real token, so causal
        attention keeps it out of the real positions."""
        lengths = [len(p) for p in prompts]
        width = max(lengths)
        ids = torch.tensor([p + [0] * (width - len(p)) for p in prompts], device=self.device)
        positions = torch.arange(width, device=self.device)[None].expand(len(prompts), width)
        hidden = self.embed(ids)
        cos, sin = self.rotary(hidden, positions)
        for index, layer in enumerate(self.layers):
            residual = hidden
            q, k, v = self._qkv(layer, layer.input_layernorm(hidden))
            q, k = self.apply_rotary(q, k, cos, sin)
            for row, (slot, length) in enumerate(zip(slots, lengths, strict=True)):
                self.cache.k[index, slot, :, :length] = k[row, :, :length]
                self.cache.v[index, slot, :, :length] = v[row, :, :length]
            out = F.scaled_dot_product_attention(q, k, v, is_causal=width > 1, scale=self.scaling, enable_gqa=True)
            hidden = self._rest_of_layer(layer, residual, out.transpose(1, 2).reshape(len(prompts), width, -1))
        last = hidden[torch.arange(len(prompts), device=self.device), torch.tensor(lengths, device=self.device) - 1]
        return self._logits(last)

    @torch.inference_mode()
    def prefill_chunk(self, slot: int, tokens: list[int], start: int) -> torch.Tensor:
        """A piece of one prompt at positions start.., attending to what the slot's cache already holds,
        so a long prompt can go in between decode steps. Returns the last token's next-token logits."""
        end = start + len(tokens)
        positions = torch.arange(start, end, device=self.device)
        # Causal across pieces: the token at position p sees cache positions 0..p.
        allowed = torch.arange(end, device=self.device)[None] <= positions[:, None]
        hidden = self.embed(torch.tensor([tokens], device=self.device))
        cos, sin = self.rotary(hidden, positions[None])
        for index, layer in enumerate(self.layers):
            residual = hidden
            q, k, v = self._qkv(layer, layer.input_layernorm(hidden))
            q, k = self.apply_rotary(q, k, cos, sin)
            self.cache.k[index, slot, :, start:end] = k[0]
            self.cache.v[index, slot, :, start:end] = v[0]
            keys, values = self.cache.k[index, slot, :, :end][None], self.cache.v[index, slot, :, :end][None]
            out = F.scaled_dot_product_attention(
                q, keys, values, attn_mask=allowed, scale=self.scaling, enable_gqa=True
            )
            hidden = self._rest_of_layer(layer, residual, out.transpose(1, 2).reshape(1, len(tokens), -1))
        return self._logits(hidden[:, -1])[0]

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One step for the sequences in slots 0..B-1: tokens[b] sits at positions[b]. Returns [B, vocab]."""
        batch = tokens.shape[0]
        span = int(positions.max()) + 1
        slots = torch.arange(batch, device=self.device)
        # Cache positions past a sequence's own length hold another sequence's leftovers: masked out.
        hidden_mask = (torch.arange(span, device=self.device)[None] > positions[:, None])[:, None, None, :]
        hidden = self.embed(tokens[:, None])
        cos, sin = self.rotary(hidden, positions[:, None])
        for index, layer in enumerate(self.layers):
            residual = hidden
            q, k, v = self._qkv(layer, layer.input_layernorm(hidden))
            q, k = self.apply_rotary(q, k, cos, sin)
            self.cache.k[index, slots, :, positions] = k[:, :, 0]
            self.cache.v[index, slots, :, positions] = v[:, :, 0]
            keys = self.cache.k[index, :batch, :, :span]
            values = self.cache.v[index, :batch, :, :span]
            out = self._decode_attention(q, keys, values, hidden_mask)
            hidden = self._rest_of_layer(layer, residual, out.reshape(batch, 1, -1))
        return self._logits(hidden[:, 0])

    def _decode_attention(
        self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, hidden_mask: torch.Tensor
    ) -> torch.Tensor:
        """Attention for one query per sequence, the query heads of a KV group batched together: two
        small matmuls instead of a flash kernel built for long queries (docs/benchmarks.md)."""
        batch, _, _, dim = q.shape
        groups = q.view(batch, self.shape.kv_heads, -1, dim)  # [B, kv, heads per kv, dim]
        scores = torch.matmul(groups, keys.transpose(-1, -2)) * self.scaling  # [B, kv, g, span]
        scores = scores.masked_fill(hidden_mask, float("-inf"))
        out = torch.matmul(torch.softmax(scores, dim=-1), values)  # [B, kv, g, dim]
        return out.view(batch, self.shape.heads, dim)
