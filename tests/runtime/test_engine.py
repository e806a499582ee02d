"""The engine against transformers' own generate(): identical greedy tokens, alone and mixed with
concurrent requests of other lengths; reproducible seeded sampling."""

from __future__ import annotations

import random
import threading

import pytest
import torch

from berth_runtime.engine import Engine, Finished, GenerationRequest, Token, prefill_groups
from berth_runtime.runner import ModelRunner
from berth_runtime.sampling import SamplingParams
from tests.support.cluster import wait_for


def generate_reference(model, prompt: list[int], tokens: int) -> list[int]:
    out = model.generate(torch.tensor([prompt]), max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    return out[0, len(prompt) :].tolist()


def run(engine: Engine, jobs: list[tuple[list[int], SamplingParams]]) -> list[tuple[list[int], Finished]]:
    results: list[tuple[list[int], Finished | None]] = [([], None) for _ in jobs]
    done = threading.Semaphore(0)

    def sink(index: int):
        def receive(event):
            if isinstance(event, Token):
                results[index][0].append(event.token)
            else:
                results[index] = (results[index][0], event)
                done.release()

        return receive

    for index, (prompt, params) in enumerate(jobs):
        engine.submit(GenerationRequest(f"t{index}", prompt, params, sink(index)))
    for _ in jobs:
        assert done.acquire(timeout=120)
    return results  # type: ignore[return-value]


@pytest.fixture(scope="module")
def engine(demo_model):
    engine = Engine(ModelRunner(demo_model, slots=8), demo_model.eos_token_ids, max_batch_size=8)
    engine.start()
    yield engine
    engine.stop()


def random_prompt(rng: random.Random, length: int) -> list[int]:
    return [1] + [rng.randrange(3, 32000) for _ in range(length - 1)]


def test_greedy_alone_matches_generate(engine: Engine, demo_model, transformers_model) -> None:
    prompt = demo_model.tokenizer("The quick brown fox")["input_ids"]
    ((tokens, finished),) = run(engine, [(prompt, SamplingParams(max_tokens=24, temperature=0, ignore_eos=True))])
    assert tokens == generate_reference(transformers_model, prompt, 24)
    assert (finished.reason, finished.completion_tokens) == ("length", 24)


def test_greedy_mixed_with_concurrent_requests_matches_generate(engine: Engine, demo_model, transformers_model) -> None:
    """Ten requests of lengths 3..160 and outputs 4..40 tokens, more than the 8 slots: they join and
    leave the batch at different steps, and each still gets exactly generate()'s tokens."""
    rng = random.Random(7)
    jobs = [(random_prompt(rng, rng.choice([3, 17, 64, 160])), rng.choice([4, 12, 40])) for _ in range(10)]
    results = run(engine, [(p, SamplingParams(max_tokens=n, temperature=0, ignore_eos=True)) for p, n in jobs])
    for (prompt, n), (tokens, _) in zip(jobs, results, strict=True):
        assert tokens == generate_reference(transformers_model, prompt, n)


def test_seeded_sampling_is_reproducible_whatever_else_runs(engine: Engine) -> None:
    rng = random.Random(3)
    prompt = random_prompt(rng, 20)
    params = SamplingParams(max_tokens=16, temperature=0.9, top_p=0.95, top_k=50, seed=1234, ignore_eos=True)
    ((alone, _),) = run(engine, [(prompt, params)])
    noise = [
        (random_prompt(rng, 40), SamplingParams(max_tokens=16, temperature=1.0, ignore_eos=True)) for _ in range(5)
    ]
    mixed = run(engine, [*noise[:2], (prompt, params), *noise[2:]])
    assert mixed[2][0] == alone
    ((other, _),) = run(engine, [(prompt, SamplingParams(max_tokens=16, temperature=0.9, seed=99, ignore_eos=True))])
    assert other != alone


def test_eos_stops_unless_ignored(engine: Engine, demo_model, transformers_model) -> None:
    eos = next(iter(demo_model.eos_token_ids))
    prompt = [1, 5, 6, 7]
    stop_params = SamplingParams(
        max_tokens=8, temperature=0, stop_token_ids=frozenset({generate_reference(transformers_model, prompt, 1)[0]})
    )
    ((tokens, finished),) = run(engine, [(prompt, stop_params)])
    assert finished.reason == "stop" and len(tokens) == 1
    assert eos in demo_model.eos_token_ids


def test_long_prompts_arriving_while_others_decode_go_in_pieces_and_still_match_generate(
    demo_model, transformers_model
) -> None:
    """Prompts of 150 and 90 tokens join, in pieces of 32, a batch that is decoding. A short prompt
    queued behind the first long one is admitted, decodes and finishes while that one is still going
    in (so the batch shrinks under it); the second long one waits its turn. Every request gets exactly
    generate()'s tokens."""
    rng = random.Random(11)
    engine = Engine(ModelRunner(demo_model, slots=4), demo_model.eos_token_ids, max_batch_size=4, prefill_chunk=32)
    engine.start()
    try:
        jobs = [(random_prompt(rng, 6), 120), (random_prompt(rng, 9), 3), (random_prompt(rng, 150), 12),
                (random_prompt(rng, 5), 2), (random_prompt(rng, 90), 10)]  # fmt: skip
        results: list[tuple[list[int], Finished] | None] = [None] * len(jobs)
        done, decoding = threading.Semaphore(0), threading.Event()
        order: list[tuple[int, str]] = []

        def sink(index: int):
            tokens: list[int] = []

            def receive(event) -> None:
                if isinstance(event, Token):
                    tokens.append(event.token)
                    order.append((index, "token"))
                    decoding.set()
                else:
                    results[index] = (tokens, event)
                    order.append((index, "finished"))
                    done.release()

            return receive

        def submit(index: int) -> None:
            prompt, n = jobs[index]
            params = SamplingParams(max_tokens=n, temperature=0, ignore_eos=True)
            engine.submit(GenerationRequest(f"p{index}", prompt, params, sink(index)))

        submit(0)
        submit(1)
        assert decoding.wait(30), "the short requests never started decoding"
        with engine._cond:  # queued together, so the test does not depend on when the engine looks
            for index in (2, 3, 4):
                submit(index)
        for _ in jobs:
            assert done.acquire(timeout=120)
    finally:
        engine.stop()
    for (prompt, n), result in zip(jobs, results, strict=True):
        assert result is not None and result[0] == generate_reference(transformers_model, prompt, n)
    assert order.index((3, "finished")) < order.index((2, "token")), "the short prompt waited for the long one"
    assert order.index((2, "token")) < order.index((4, "token")), "one long prompt at a time, in arrival order"


def test_cancelled_request_frees_its_slot(engine: Engine) -> None:
    events: list = []
    request = GenerationRequest(
        "c", [1, 2, 3], SamplingParams(max_tokens=1000, temperature=0, ignore_eos=True), events.append
    )
    engine.submit(request)
    wait_for(lambda: events, 30, "the first token")
    engine.cancel(request)
    wait_for(lambda: isinstance(events[-1], Finished), 30, "the request finished", interval=0.01)
    assert events[-1].reason == "abort" and engine.idle()


def test_prompts_of_similar_length_prefill_together_padded_and_still_match_generate(
    engine: Engine, demo_model, transformers_model
) -> None:
    rng = random.Random(11)
    prompts = [random_prompt(rng, n) for n in (40, 44, 48, 7)]
    groups = prefill_groups(
        [GenerationRequest(str(i), p, SamplingParams(max_tokens=1), print) for i, p in enumerate(prompts)]
    )
    assert sorted(len(g) for g in groups) == [1, 3], "the three similar prompts share one padded forward"
    results = run(engine, [(p, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)) for p in prompts])
    for prompt, (tokens, _) in zip(prompts, results, strict=True):
        assert tokens == generate_reference(transformers_model, prompt, 12)


def test_every_token_reaches_a_streamed_chunk_with_its_logprob(demo_model, transformers_model) -> None:
    """Tokens that release no text (here the end-of-sequence token) still reach the client: a stream writes
    only pieces with text or a finish reason, so they must ride with one of those."""
    import asyncio

    from berth_runtime.generation import Choice, loop_dispatch

    prompt = demo_model.tokenizer("The quick brown fox")["input_ids"]
    third = generate_reference(transformers_model, prompt, 3)[2]
    # The same model, as if its config named the third greedy token end-of-sequence.
    runner = ModelRunner(demo_model, slots=2)

    async def stream() -> list:
        engine = Engine(
            runner, frozenset({third}), max_batch_size=2, dispatch=loop_dispatch(asyncio.get_running_loop())
        )
        engine.start()
        try:
            choice = Choice(
                engine, demo_model.tokenizer, prompt, SamplingParams(max_tokens=8, temperature=0, logprobs=1), []
            )
            choice.start()
            return [piece async for piece in choice.pieces()]
        finally:
            engine.stop()

    pieces = asyncio.run(stream())
    written = [p for p in pieces if p.text or p.finish_reason]
    tokens = [t for p in written for t in p.tokens]
    assert pieces[-1].finish_reason == "stop" and pieces[-1].completion_tokens == 3
    assert [t.token for t in tokens][-1] == third and len(tokens) == 3
    assert all(t.logprob is not None for t in tokens)


class PieceFailsOnceRunner(ModelRunner):
    """A runner whose first prompt piece raises, standing in for a bug in a step."""

    failed = False

    def prefill_chunk(self, slot: int, tokens: list[int], start: int) -> torch.Tensor:
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected failure")
        return super().prefill_chunk(slot, tokens, start)


def test_a_failing_step_fails_what_is_in_flight_including_a_prompt_in_pieces_and_keeps_serving(demo_model) -> None:
    rng = random.Random(5)
    engine = Engine(PieceFailsOnceRunner(demo_model, slots=4), demo_model.eos_token_ids, max_batch_size=4,
                    prefill_chunk=16)  # fmt: skip
    engine.start()
    try:
        greedy = SamplingParams(max_tokens=200, temperature=0, ignore_eos=True)
        # The short one decodes; the long one, arriving with it or a step later, goes in pieces.
        failed = run(engine, [(random_prompt(rng, 4), greedy), (random_prompt(rng, 40), greedy)])
        assert [(finished.reason, finished.error) for _, finished in failed] == [("error", "injected failure")] * 2
        ((tokens, finished),) = run(engine, [(random_prompt(rng, 40), SamplingParams(max_tokens=3, temperature=0))])
        assert finished.reason == "length" and len(tokens) == 3
    finally:
        engine.stop()
