"""`--model demo`: the embedded default model, made locally and deterministically, never downloaded.

A Llama-architecture model with random weights (seed 0) and a tokenizer built here: byte-level
encoding plus made-up pseudo-words so that generated ids decode to word-like text. Its output is
not meaningful language; it exists so that the runtime, the demo and the benchmarks run anywhere.
Its shape is the benchmark's standard model (docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

SHAPE = {
    "vocab_size": 32000,
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
}
SPECIALS = ["<unk>", "<s>", "</s>"]
# The default chat template (docs/runtime-contract.md): also used for any model that has none.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
FORMAT_VERSION = 1


def cache_dir() -> Path:
    root = Path(os.environ.get("BERTH_CACHE", Path.home() / ".cache" / "berth"))
    return root / "models" / f"demo-v{FORMAT_VERSION}"


def _pseudo_words(count: int) -> list[str]:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    words = ("".join(parts) for n in (1, 2, 3) for parts in itertools.product(syllables, repeat=n))
    return list(itertools.islice(words, count))


def build_tokenizer():  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte_symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIALS + byte_symbols)}
    space = "\u0120"  # byte-level's symbol for a leading space
    for word in _pseudo_words(SHAPE["vocab_size"] - len(vocab)):
        vocab[space + word] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


def create(target: Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPE, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, rms_norm_eps=1e-5)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(partial, safe_serialization=True)
    build_tokenizer().save_pretrained(partial)
    (partial / "berth-demo.json").write_text(json.dumps({"seed": seed, "shape": SHAPE}))
    partial.replace(target)
    return target


def ensure_demo_model() -> Path:
    """The demo model's folder, created on first use and reused after."""
    target = cache_dir()
    if not (target / "berth-demo.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        create(target)
    return target
