"""Loading computes in a thread that ends with it, so the engine thread is the only one left that
OpenMP keeps a worker pool for (berth_runtime.serve.in_passing_thread)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from berth_runtime.serve import in_passing_thread


def test_the_result_comes_back_and_the_thread_is_gone() -> None:
    seen: list[threading.Thread] = []

    def work() -> int:
        seen.append(threading.current_thread())
        return 42

    assert asyncio.run(in_passing_thread(work)) == 42
    assert seen[0] is not threading.main_thread()
    seen[0].join(5)
    assert not seen[0].is_alive()


def test_an_error_reaches_the_awaiting_coroutine() -> None:
    def fail() -> None:
        raise ValueError("no such model")

    with pytest.raises(ValueError, match="no such model"):
        asyncio.run(in_passing_thread(fail))
