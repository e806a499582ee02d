"""The HTTP server around the engine: OpenAI API, ops endpoints (/health, /ready, /metrics), API keys,
errors in OpenAI's shape, and the lifecycle: load -> warm up -> self-test -> ready -> drain -> exit 0."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from berth_runtime import contract, metrics
from berth_runtime.engine import Engine
from berth_runtime.loader import LoadProgress
from berth_runtime.openai_api import ModelInfo, OpenAIApi
from berth_runtime.protocol import ApiError

log = logging.getLogger("berth.server")
OPS_PATHS = (contract.HEALTH_PATH, contract.READY_PATH, contract.METRICS_PATH)


@dataclass
class SelfTest:
    """A golden prompt that must produce output (matching `expect`, within `budget_ms`) before /ready."""

    prompt: str
    expect: str | None = None
    budget_ms: int | None = None
    max_tokens: int = 16


@dataclass
class ServerState:
    progress: LoadProgress = field(default_factory=LoadProgress)
    engine: Engine | None = None
    api: OpenAIApi | None = None
    api_key: str | None = None
    draining: bool = False
    in_flight: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    drain_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.progress.phase == "ready" and not self.draining


def _error_response(error: ApiError) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    metrics.REJECTED.labels(str(error.status)).inc()
    return web.json_response(error.body(), status=error.status, headers=headers)


def build_app(state: ServerState) -> web.Application:
    @web.middleware
    async def openai_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in OPS_PATHS:
            return await handler(request)
        try:
            if state.api_key is not None:
                given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                if not hmac.compare_digest(given.encode(), state.api_key.encode()):
                    raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
            if state.draining:
                raise ApiError(503, "the server is shutting down; retry on another replica", "service_unavailable",
                               retry_after=1)  # fmt: skip
            if state.api is None:
                raise ApiError(503, f"the model is not ready yet ({state.progress.phase})", "service_unavailable",
                               retry_after=5)  # fmt: skip
            state.in_flight += 1
            try:
                return await handler(request)
            finally:
                state.in_flight -= 1
        except ApiError as error:
            return _error_response(error)
        except web.HTTPException as error:  # unknown path or method: still OpenAI's shape
            return _error_response(ApiError(error.status, error.reason, code=error.reason.lower().replace(" ", "_")))
        except Exception:
            log.exception("Request %s %s failed", request.method, request.path)
            return _error_response(ApiError(500, "internal error", "server_error"))

    async def health(_: web.Request) -> web.Response:
        engine_ok = state.engine is None or state.engine.alive()
        body = {"status": "ok" if engine_ok else "engine stopped", **state.progress.snapshot()}
        return web.json_response(body, status=200 if engine_ok else 503)

    async def ready(_: web.Request) -> web.Response:
        body = {"ready": state.ready, "draining": state.draining, **state.progress.snapshot()}
        return web.json_response(body, status=200 if state.ready else 503)

    async def prometheus(_: web.Request) -> web.Response:
        snap = state.progress.snapshot()
        metrics.publish_phase(snap["phase"], snap["shards_loaded"], snap["shards_total"])
        return web.Response(body=generate_latest(metrics.REGISTRY), content_type="text/plain", charset="utf-8")

    async def api_route(request: web.Request) -> web.StreamResponse:
        assert state.api is not None
        handler = state.api.handlers.get((request.method, request.path))
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request)

    app = web.Application(middlewares=[openai_errors], client_max_size=16 * 1024 * 1024)
    app.router.add_get(contract.HEALTH_PATH, health)
    app.router.add_get(contract.READY_PATH, ready)
    app.router.add_get(contract.METRICS_PATH, prometheus)
    app.router.add_route("*", contract.API_PREFIX + "/{tail:.*}", api_route)
    return app


async def run_self_test(api: OpenAIApi, test: SelfTest) -> str | None:
    """None when it passes, else why not."""
    from berth_runtime.generation import Choice, run_choices
    from berth_runtime.sampling import SamplingParams

    tokenizer = api.info.tokenizer
    prompt = tokenizer(test.prompt)["input_ids"]
    started = time.monotonic()
    choice = Choice(api.engine, tokenizer, prompt, SamplingParams(max_tokens=test.max_tokens, temperature=0), [])
    text = "".join([piece.text async for _, piece in run_choices([choice])])
    elapsed_ms = (time.monotonic() - started) * 1000
    if not text.strip():
        return "the golden prompt produced no output"
    if test.expect and not re.search(test.expect, text):
        return f"output {text[:80]!r} does not match {test.expect!r}"
    if test.budget_ms and elapsed_ms > test.budget_ms:
        return f"took {elapsed_ms:.0f} ms, over the budget of {test.budget_ms} ms"
    return None


def install_drain(state: ServerState, drain_timeout: float, server: web.Server | None = None) -> None:
    """SIGTERM/SIGINT: /ready false and new requests 503 at once; in-flight work finishes (bounded). Kept-alive
    connections are closed (idle ones at once, busy ones after their response), so a client that reuses one
    opens a new connection, which the Service sends to another replica, instead of meeting the 503."""
    loop = asyncio.get_running_loop()

    async def drain() -> None:
        deadline = loop.time() + drain_timeout
        while loop.time() < deadline:
            engine_idle = state.engine is None or state.engine.idle()
            if engine_idle and state.in_flight == 0:
                break
            await asyncio.sleep(0.05)
        else:
            log.warning("Drain timeout of %ss reached; aborting what is left", drain_timeout)
            if state.engine is not None:
                state.engine.abort_all()
            await asyncio.sleep(0.5)
        state.drained.set()

    def begin(signame: str) -> None:
        if state.draining:
            return
        log.info("%s received: draining (%s requests in flight)", signame, state.in_flight)
        state.draining = True
        state.progress.set("draining")
        for connection in list(server.connections if server else ()):
            # aiohttp's close() leaves an idle kept-alive connection open (it only ends the handler's wait), so an
            # idle one is closed outright; a busy one closes once its response is done.
            if getattr(connection, "_request_in_progress", True):
                connection.close()
            else:
                connection.force_close()
        state.drain_task = loop.create_task(drain())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, begin, sig.name)


def model_info(name: str, tokenizer: Any, max_model_len: int) -> ModelInfo:
    return ModelInfo(name=name, tokenizer=tokenizer, max_model_len=max_model_len, created=int(time.time()))
