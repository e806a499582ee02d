"""The bridge between the HTTP event loop and the engine thread: one choice of one request, as an
async stream of text pieces ending with a finish reason and token counts."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from berth_runtime.engine import Dispatch, Engine, Event, Finished, GenerationRequest, Overloaded, Token, deliver_here
from berth_runtime.protocol import ApiError
from berth_runtime.sampling import SamplingParams
from berth_runtime.text import Detokenizer, StopMatcher

_ids = itertools.count()


@dataclass
class Piece:
    """Text released by one engine event (possibly empty), with the tokens behind it."""

    text: str
    tokens: list[Token] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Choice:
    """One generation: submits to the engine and turns its events into Pieces."""

    def __init__(self, engine: Engine, tokenizer: Any, prompt: list[int], params: SamplingParams,
                 stops: list[str]) -> None:  # fmt: skip
        self.engine = engine
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.detokenizer = Detokenizer(tokenizer, prompt)
        self.stops = StopMatcher(stops)
        # The engine's dispatch (loop_dispatch) delivers events on this event loop's thread.
        self.request = GenerationRequest(f"r{next(_ids)}", prompt, params, self.events.put_nowait)

    def start(self) -> None:
        try:
            self.engine.submit(self.request)
        except Overloaded as error:
            raise ApiError(429, f"the server is busy ({error}); retry shortly", "rate_limit_error",
                           code="overloaded", retry_after=1) from None  # fmt: skip

    def cancel(self) -> None:
        self.engine.cancel(self.request)

    async def pieces(self) -> AsyncIterator[Piece]:
        held: list[Token] = []
        generated = 0
        while True:
            event = await self.events.get()
            if isinstance(event, Token):
                generated += 1
                text = "" if event.eos else self.detokenizer.push(event.token)
                released = self.stops.feed(text)
                held.append(event)
                if self.stops.stopped:
                    self.cancel()  # the rest would be thrown away
                    yield Piece(released, held, "stop", len(self.request.prompt), generated)
                    return
                if released:  # tokens without text yet (a partial character, EOS) ride with the next piece
                    yield Piece(released, held)
                    held = []
                continue
            assert isinstance(event, Finished)
            if event.reason == "error":
                raise ApiError(500, f"generation failed: {event.error}", "server_error")
            reason = "length" if event.reason == "length" else "stop"
            yield Piece(self.stops.flush(), held, reason, event.prompt_tokens, event.completion_tokens)
            return


def loop_dispatch(loop: asyncio.AbstractEventLoop) -> Dispatch:
    """An engine dispatch that hands a whole step's events to the event loop in one wake-up."""

    def dispatch(items: list) -> None:
        loop.call_soon_threadsafe(deliver_here, items)

    return dispatch


async def run_choices(choices: list[Choice]) -> AsyncIterator[tuple[int, Piece]]:
    """Interleaves the pieces of several choices as they come, cancelling all if the caller stops."""
    for choice in choices:
        choice.start()
    queue: asyncio.Queue[tuple[int, Piece | BaseException | None]] = asyncio.Queue()

    async def pump(index: int, choice: Choice) -> None:
        try:
            async for piece in choice.pieces():
                await queue.put((index, piece))
        except BaseException as error:
            await queue.put((index, error))
        finally:
            await queue.put((index, None))

    tasks = [asyncio.create_task(pump(i, c)) for i, c in enumerate(choices)]
    remaining = len(choices)
    try:
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for choice, task in zip(choices, tasks, strict=True):
            choice.cancel()
            task.cancel()
