"""Continuous batching in its own thread: requests join the running batch at every step (prefilled
into a free KV-cache slot) and leave it the step they finish, so the batch is always as full as the
waiting queue allows. The HTTP event loop only submits requests and receives their events."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from berth_runtime import metrics
from berth_runtime.runner import ModelRunner
from berth_runtime.sampling import SamplingParams, logprobs_of, make_generator, sample

log = logging.getLogger("berth.engine")


class Overloaded(Exception):
    """The waiting queue is full; the caller should answer 429 with Retry-After."""


@dataclass(frozen=True)
class Token:
    token: int
    eos: bool = False  # an end-of-sequence token: counted, never shown as text
    logprob: float | None = None
    top_logprobs: list[tuple[int, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Finished:
    reason: str  # stop | length | abort | error
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


Event = Token | Finished


Dispatch = Callable[[list[tuple[Callable[[Event], None], Event]]], None]


def deliver_here(items: list[tuple[Callable[[Event], None], Event]]) -> None:
    for sink, event in items:
        sink(event)


@dataclass
class GenerationRequest:
    request_id: str
    prompt: list[int]
    params: SamplingParams
    sink: Callable[[Event], None]  # called by the engine's dispatch
    arrival: float = field(default_factory=time.monotonic)
    cancelled: bool = False


@dataclass
class _Sequence:
    request: GenerationRequest
    slot: int
    length: int = 0  # tokens in the cache
    last_token: int = 0  # sampled, not yet in the cache
    generated: int = 0
    generator: torch.Generator | None = None
    first_token_at: float = 0.0
    last_token_at: float = 0.0


MAX_PREFILL_GROUP = 16
PADDING_ALLOWANCE = 1.25  # a group's padded size may exceed its real tokens by this factor


def prefill_groups(requests: list[GenerationRequest]) -> list[list[GenerationRequest]]:
    """Prompts of similar length, prefilled together in one batched forward (big matmuls are where a
    CPU or GPU is efficient), in groups whose padding stays small."""
    groups: list[list[GenerationRequest]] = []
    for request in sorted(requests, key=lambda r: len(r.prompt)):
        group = groups[-1] if groups else None
        if group is not None and len(group) < MAX_PREFILL_GROUP:
            width = len(request.prompt)  # sorted: the longest so far
            real = sum(len(r.prompt) for r in group) + width
            if (len(group) + 1) * width <= PADDING_ALLOWANCE * real:
                group.append(request)
                continue
        groups.append([request])
    return groups


class Engine:
    def __init__(
        self,
        runner: ModelRunner,
        eos_token_ids: frozenset[int],
        max_batch_size: int,
        max_queue: int = 256,
        prefill_token_budget: int = 4096,
        dispatch: Dispatch = deliver_here,
        prefill_chunk: int = 0,
    ) -> None:
        """dispatch receives each step's events at once: the server hands them to its event loop in
        one wake-up per step rather than one per token. prefill_chunk > 0: a prompt longer than that,
        arriving while others decode, goes in pieces of that many tokens, one piece per step, so no
        decode step waits for a whole long prefill; shorter prompts behind it are admitted meanwhile,
        up to that many prompt tokens per step (0: whole prompts only)."""
        self.runner = runner
        self.eos = eos_token_ids
        self.max_batch = min(max_batch_size, runner.cache.slots)
        self.max_queue = max_queue
        self.prefill_budget = prefill_token_budget
        self.prefill_chunk = prefill_chunk
        # A long prompt going in pieces, in the cache's last slot (running sequences fill 0..B-1, and
        # B stays below max_batch while it is there), so admissions and finishes never move it.
        self._prefilling: _Sequence | None = None
        self.max_len = runner.cache.max_len
        self._waiting: deque[GenerationRequest] = deque()
        self._running: list[_Sequence] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._dispatch = dispatch
        self._outbox: list[tuple[Callable[[Event], None], Event]] = []
        self._thread = threading.Thread(target=self._loop, name="berth-engine", daemon=True)

    # -- called from other threads ------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, request: GenerationRequest) -> None:
        with self._cond:
            if len(self._waiting) >= self.max_queue:
                raise Overloaded(f"{len(self._waiting)} requests are waiting")
            self._waiting.append(request)
            self._cond.notify()
        metrics.WAITING.set(len(self._waiting))

    def cancel(self, request: GenerationRequest) -> None:
        request.cancelled = True
        with self._cond:
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._busy()

    def _busy(self) -> bool:
        return bool(self._waiting or self._running or self._prefilling)

    def abort_all(self) -> None:
        with self._cond:
            for request in self._waiting:
                request.cancelled = True
            for sequence in [*self._running, *([self._prefilling] if self._prefilling else [])]:
                sequence.request.cancelled = True
            self._cond.notify()

    def stop(self, timeout: float = 10) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- the engine thread --------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._busy() and not self._stopping:
                    self._cond.wait(timeout=1.0)
                if self._stopping and not self._running and not self._prefilling and not self._waiting:
                    return
                admitted = self._take_admissions()
            try:
                self._drop_cancelled()
                for group in prefill_groups(admitted):
                    self._prefill(group)
                    self._flush()  # first tokens go out now, not after the other prefills
                if self._prefilling:
                    self._prefill_piece()
                if self._running:
                    self._decode_step()
            except Exception as error:  # a bug, not a client mistake: fail what is in flight, keep serving
                log.exception("Engine step failed")
                for sequence in [*self._running, *([self._prefilling] if self._prefilling else [])]:
                    self._finish(sequence, "error", error=str(error))
                self._prefilling = None
            self._flush()
            self._publish_load()

    def _send(self, request: GenerationRequest, event: Event) -> None:
        self._outbox.append((request.sink, event))

    def _flush(self) -> None:
        if self._outbox:
            items, self._outbox = self._outbox, []
            self._dispatch(items)

    def _take_admissions(self) -> list[GenerationRequest]:
        admitted: list[GenerationRequest] = []
        budget = self.prefill_budget
        if self.prefill_chunk and (self._running or self._prefilling):
            budget = self.prefill_chunk  # decoding requests wait for this step's prefills: bound them too
        room = self.max_batch - len(self._running) - (1 if self._prefilling else 0)
        while self._waiting and len(admitted) < room:
            long_prompt = self.prefill_chunk and len(self._waiting[0].prompt) > self.prefill_chunk
            if long_prompt and (self._running or admitted or self._prefilling):
                if self._prefilling:  # one long prompt at a time; the queue keeps its order behind it
                    break
                self._start_in_pieces(self._waiting.popleft())
                room -= 1
                continue
            if admitted and len(self._waiting[0].prompt) > budget:
                break
            request = self._waiting.popleft()
            budget -= len(request.prompt)
            admitted.append(request)
        return admitted

    def _publish_load(self) -> None:
        metrics.RUNNING.set(len(self._running))
        metrics.WAITING.set(len(self._waiting))
        used = sum(s.length for s in self._running)
        metrics.KV_USAGE.set(used / (self.runner.cache.slots * self.max_len))

    def _prefill(self, requests: list[GenerationRequest]) -> None:
        now = time.monotonic()
        live = []
        for request in requests:
            metrics.QUEUE_TIME.observe(now - request.arrival)
            if request.cancelled:
                self._send(request, Finished("abort", len(request.prompt), 0))
            else:
                live.append(request)
        if not live:
            return
        sequences = []
        for request in live:
            sequence = _Sequence(request, slot=len(self._running), generator=make_generator(request.params))
            self._running.append(sequence)
            sequences.append(sequence)
        logits = self.runner.prefill([s.slot for s in sequences], [r.prompt for r in live])
        for row, sequence in enumerate(sequences):
            sequence.length = len(sequence.request.prompt)
            metrics.PROMPT_TOKENS.inc(sequence.length)
            self._emit(sequence, logits[row], self._choose(sequence, logits[row]))

    def _start_in_pieces(self, request: GenerationRequest) -> None:
        metrics.QUEUE_TIME.observe(time.monotonic() - request.arrival)
        generator = make_generator(request.params)
        self._prefilling = _Sequence(request, slot=self.runner.cache.slots - 1, generator=generator)

    def _prefill_piece(self) -> None:
        """The next piece of the long prompt; when it is the last, the sequence joins the decode batch."""
        sequence = self._prefilling
        assert sequence is not None
        prompt = sequence.request.prompt
        if sequence.request.cancelled:
            self._prefilling = None
            self._send(sequence.request, Finished("abort", len(prompt), 0))
            return
        piece = prompt[sequence.length : sequence.length + self.prefill_chunk]
        logits = self.runner.prefill_chunk(sequence.slot, piece, sequence.length)
        sequence.length += len(piece)
        if sequence.length < len(prompt):
            return
        self._prefilling = None
        self.runner.cache.move(sequence.slot, len(self._running), sequence.length)  # joins the dense slots
        sequence.slot = len(self._running)
        self._running.append(sequence)
        metrics.PROMPT_TOKENS.inc(len(prompt))
        self._emit(sequence, logits, self._choose(sequence, logits))

    def _decode_step(self) -> None:
        running = self._running
        tokens = torch.tensor([s.last_token for s in running], device=self.runner.device)
        positions = torch.tensor([s.length for s in running], device=self.runner.device)
        logits = self.runner.decode(tokens, positions)
        greedy = logits.argmax(dim=-1).tolist()
        for sequence in running:
            sequence.length += 1
        for index, sequence in enumerate(list(running)):
            row = logits[index]
            token = greedy[index] if sequence.request.params.greedy else self._choose(sequence, row)
            self._emit(sequence, row, token)

    def _choose(self, sequence: _Sequence, logits: torch.Tensor) -> int:
        return sample(logits, sequence.request.params, sequence.generator)

    def _emit(self, sequence: _Sequence, logits: torch.Tensor, token: int) -> None:
        params = sequence.request.params
        now = time.monotonic()
        if sequence.generated == 0:
            sequence.first_token_at = now
            metrics.TTFT.observe(now - sequence.request.arrival)
        else:
            metrics.ITL.observe(now - sequence.last_token_at)
        sequence.last_token_at = now
        sequence.generated += 1
        sequence.last_token = token
        metrics.GENERATION_TOKENS.inc()
        eos = token in self.eos and not params.ignore_eos
        logprob, top = (None, [])
        if params.logprobs is not None:
            logprob, top = logprobs_of(logits, token, params.logprobs)
        self._send(sequence.request, Token(token, eos=eos, logprob=logprob, top_logprobs=top))
        if eos or token in params.stop_token_ids:
            self._finish(sequence, "stop")
        elif sequence.generated >= params.max_tokens or sequence.length >= self.max_len:
            self._finish(sequence, "length")

    def _drop_cancelled(self) -> None:
        for sequence in [s for s in self._running if s.request.cancelled]:
            self._finish(sequence, "abort")

    def _finish(self, sequence: _Sequence, reason: str, error: str | None = None) -> None:
        """Frees the slot, moving the last running sequence into it to keep slots 0..B-1 dense."""
        running = self._running
        if sequence in running:
            last = running[-1]
            if last is not sequence:
                self.runner.cache.move(last.slot, sequence.slot, last.length)
                last.slot = sequence.slot
                running[sequence.slot] = last
            running.pop()
        request = sequence.request
        metrics.E2E.observe(time.monotonic() - request.arrival)
        metrics.SUCCESS.labels(reason).inc()
        self._send(request, Finished(reason, len(request.prompt), sequence.generated, error))
