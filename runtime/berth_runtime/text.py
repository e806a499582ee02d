"""Token ids to text as they arrive: incremental detokenization (never splitting a multi-byte
character) and stop sequences (text that ends generation and is not returned)."""

from __future__ import annotations

from typing import Any

PREFIX_TOKENS = 5  # prompt tokens decoded with the output, so the first word keeps its leading space


class Detokenizer:
    def __init__(self, tokenizer: Any, prompt: list[int]) -> None:
        self.tokenizer = tokenizer
        self.ids = list(prompt[-PREFIX_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.ids)

    def push(self, token: int) -> str:
        """The text this token completes; empty while a character is still partial."""
        self.ids.append(token)
        decode = self.tokenizer.decode
        before = decode(self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        after = decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return after[len(before) :]
        return ""


class StopMatcher:
    """Holds back the text that could still become a stop sequence; reports when one appears."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text safe to release now (everything before a stop sequence, if one appeared)."""
        if self.stopped:
            return ""
        self.pending += text
        hits = [(self.pending.find(s), s) for s in self.stops if s in self.pending]
        if hits:
            self.stopped = True
            released, self.pending = self.pending[: min(hits)[0]], ""
            return released
        if not self.hold:
            released, self.pending = self.pending, ""
            return released
        cut = max(len(self.pending) - self.hold, 0)
        released, self.pending = self.pending[:cut], self.pending[cut:]
        return released

    def flush(self) -> str:
        released, self.pending = ("" if self.stopped else self.pending), ""
        return released
