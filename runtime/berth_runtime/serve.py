"""`berth-runtime serve`: starts answering /health at once, loads the model, warms up, runs the
self-test, turns /ready true, and on SIGTERM drains and exits 0."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from berth_runtime import metrics
from berth_runtime.errors import LoadError
from berth_runtime.server import SelfTest, ServerState, build_app, install_drain, model_info, run_self_test

log = logging.getLogger("berth.serve")
T = TypeVar("T")


def api_key(args: argparse.Namespace) -> str | None:
    if args.api_key_file:
        return Path(args.api_key_file).read_text().strip() or None
    return os.environ.get("BERTH_API_KEY") or None


def device_of(args: argparse.Namespace) -> str:
    import torch

    if args.device != "auto":
        return args.device
    return "cuda" if torch.cuda.is_available() else "cpu"


async def in_passing_thread(function: Callable[[], T]) -> T:
    """Runs function in a thread of its own that ends with it. OpenMP keeps a pool of workers for each
    thread that ever computed in parallel; once the pools' threads outnumber the cores, libgomp stops
    spinning between parallel regions, and every torch op of the engine thread pays a wake-up: on the
    2-core benchmark machine a pooled loading thread (asyncio.to_thread) made decoding 1.5-2x slower
    (docs/benchmarks.md). So loading computes in a thread that goes away, and the engine thread is the
    only one left computing."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        try:
            outcome = functools.partial(future.set_result, function())
        except BaseException as error:  # handed to the awaiting coroutine
            outcome = functools.partial(future.set_exception, error)
        loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="berth-load", daemon=True).start()
    return await future


async def until_drained(state: ServerState, work: Awaitable[T]) -> T | None:
    """work's result, or None if the server drained first (a SIGTERM while loading: a load that hangs, or a
    pod deleted before it was ready, must not hold the kubelet for the whole grace period)."""
    task = asyncio.ensure_future(work)
    drained = asyncio.ensure_future(state.drained.wait())
    await asyncio.wait({task, drained}, return_when=asyncio.FIRST_COMPLETED)
    drained.cancel()
    if task.done():
        return task.result()
    task.cancel()  # the loading thread is a daemon and is left behind
    return None


async def serve(args: argparse.Namespace) -> int:
    from berth_runtime.engine import Engine
    from berth_runtime.generation import loop_dispatch
    from berth_runtime.loader import load
    from berth_runtime.openai_api import OpenAIApi
    from berth_runtime.parallel import LoadArgs, TensorParallelRunner
    from berth_runtime.runner import ModelRunner

    state = ServerState(api_key=api_key(args))
    site_runner = web.AppRunner(build_app(state), access_log=None)
    await site_runner.setup()
    await web.TCPSite(site_runner, args.host, args.port).start()
    install_drain(state, args.drain_timeout, site_runner.server)
    log.info("Listening on %s:%s; loading %s", args.host, args.port, args.model)
    if args.tensor_parallel_size > 1:
        load_args = LoadArgs(args.model, args.dtype, args.quantization, args.max_model_len, args.max_batch_size)
        loading = in_passing_thread(lambda: TensorParallelRunner(load_args, args.tensor_parallel_size, state.progress))
    else:
        device = device_of(args)
        loading = in_passing_thread(lambda: ModelRunner(
            load(args.model, device, args.dtype, args.quantization, args.max_model_len, state.progress),
            args.max_batch_size,
        ))  # fmt: skip
    try:
        runner = await until_drained(state, loading)
        if runner is None:  # told to stop while loading: nothing is in flight, so there is nothing to wait for
            log.info("Stopped while loading %s; exiting", args.model)
            await site_runner.cleanup()
            return 0
        loaded = runner.loaded
    except LoadError as error:
        state.progress.set("failed", str(error))
        log.error("Cannot serve %s: %s", args.model, error)
        await site_runner.cleanup()
        return 1
    metrics.WEIGHT_BYTES.set(loaded.weight_bytes)
    log.info("Loaded %s: %s, quantization %s, %.1f MB of weights", loaded.path, loaded.dtype,
             loaded.quantization, loaded.weight_bytes / 1e6)  # fmt: skip
    engine = Engine(runner, loaded.eos_token_ids, args.max_batch_size, args.max_queue,
                    dispatch=loop_dispatch(asyncio.get_running_loop()), prefill_chunk=args.prefill_chunk)  # fmt: skip
    engine.start()
    state.engine = engine
    api = OpenAIApi(engine, model_info(args.served_model_name or args.model, loaded.tokenizer, loaded.max_model_len))
    state.progress.set("warming")
    await run_self_test(api, SelfTest(prompt="Hello", max_tokens=2))  # first-step allocations, kernels
    if args.self_test_prompt:
        state.progress.set("self-test")
        test = SelfTest(args.self_test_prompt, args.self_test_expect, args.self_test_budget_ms)
        failure = await run_self_test(api, test)
        if failure:
            state.progress.set("failed", f"self-test failed: {failure}")
            log.error("Self-test failed: %s; staying unready", failure)
    if state.progress.phase != "failed" and not state.draining:
        state.api = api
        state.progress.set("ready")
        log.info("Ready: serving %s", api.info.name)
    await state.drained.wait()
    await site_runner.cleanup()
    engine.stop()
    if isinstance(runner, TensorParallelRunner):
        runner.close()
    log.info("Drained; exiting")
    return 0


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(args))
