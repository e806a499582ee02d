"""The OpenAI-compatible endpoints: /v1/models, /v1/completions, /v1/chat/completions, streamed as
server-sent events ending with `data: [DONE]`."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from berth_runtime.engine import Engine, Token
from berth_runtime.generation import Choice, Piece, run_choices
from berth_runtime.protocol import ApiError, ChatRequest, CompletionRequest, parse
from berth_runtime.sampling import SamplingParams


@dataclass
class ModelInfo:
    name: str
    tokenizer: Any
    max_model_len: int
    created: int


def _check_model(requested: str | None, info: ModelInfo) -> None:
    if requested is not None and requested != info.name:
        raise ApiError(404, f"The model `{requested}` does not exist; this server serves `{info.name}`",
                       param="model", code="model_not_found")  # fmt: skip


def _params(
    request: CompletionRequest | ChatRequest, max_tokens: int, logprobs: int | None, index: int
) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=max(request.top_k, 0),
        seed=None if request.seed is None else request.seed + index,
        ignore_eos=request.ignore_eos,
        logprobs=logprobs,
    )


def _budget(prompt: list[int], requested: int | None, info: ModelInfo) -> int:
    """Output tokens allowed: as requested, else what the context has left; a prompt that leaves no
    room, or a request beyond the context, is the client's mistake (400)."""
    room = info.max_model_len - len(prompt)
    if room <= 0 or (requested is not None and requested > room):
        asked = len(prompt) + (requested or 1)
        raise ApiError(400, f"This model's maximum context length is {info.max_model_len} tokens. However, you "
                       f"requested {asked} tokens ({len(prompt)} in the prompt, {requested or 1} for the output). "
                       "Please reduce the length of the prompt or max_tokens.", param="max_tokens",
                       code="context_length_exceeded")  # fmt: skip
    return requested if requested is not None else room


def _encode_prompts(prompt: Any, tokenizer: Any) -> list[list[int]]:
    if isinstance(prompt, str):
        return [tokenizer(prompt)["input_ids"]]
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]
    if all(isinstance(p, str) for p in prompt):
        return [tokenizer(p)["input_ids"] for p in prompt]
    return [list(p) for p in prompt]


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class OpenAIApi:
    def __init__(self, engine: Engine, info: ModelInfo) -> None:
        self.engine, self.info = engine, info
        # (method, path) -> handler; the server routes /v1/* here once the model is loaded.
        self.handlers = {
            ("GET", "/v1/models"): self.models,
            ("POST", "/v1/completions"): self.completions,
            ("POST", "/v1/chat/completions"): self.chat,
        }

    async def models(self, _: web.Request) -> web.Response:
        card = {"id": self.info.name, "object": "model", "created": self.info.created, "owned_by": "berth",
                "max_model_len": self.info.max_model_len}  # fmt: skip
        return web.json_response({"object": "list", "data": [card]})

    async def completions(self, http: web.Request) -> web.StreamResponse:
        request: CompletionRequest = parse(CompletionRequest, await _json(http))
        _check_model(request.model, self.info)
        tokenizer = self.info.tokenizer
        choices = []
        for prompt in _encode_prompts(request.prompt, tokenizer):
            limit = _budget(prompt, request.max_tokens, self.info)
            for _ in range(request.n):
                params = _params(request, limit, request.logprobs, len(choices))
                choices.append(Choice(self.engine, tokenizer, prompt, params, request.stops))
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.info.name}  # fmt: skip

        def chunk(index: int, piece: Piece) -> dict[str, Any]:
            logprobs = self._completion_logprobs(piece.tokens) if request.logprobs is not None else None
            return {"index": index, "text": piece.text, "logprobs": logprobs, "finish_reason": piece.finish_reason}

        return await self._respond(http, request, choices, head, chunk, self._merge_completion)

    async def chat(self, http: web.Request) -> web.StreamResponse:
        request: ChatRequest = parse(ChatRequest, await _json(http))
        _check_model(request.model, self.info)
        tokenizer = self.info.tokenizer
        messages = [{"role": m.role, "content": m.text()} for m in request.messages]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = _budget(prompt, request.output_limit, self.info)
        logprobs = (request.top_logprobs or 0) if request.logprobs else None
        choices = [Choice(self.engine, tokenizer, prompt, _params(request, limit, logprobs, i), request.stops)
                   for i in range(request.n)]  # fmt: skip
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": self.info.name}  # fmt: skip
        first_seen: set[int] = set()

        def chunk(index: int, piece: Piece) -> dict[str, Any]:
            delta: dict[str, Any] = {"content": piece.text} if piece.text or index not in first_seen else {}
            if index not in first_seen:
                first_seen.add(index)
                delta = {"role": "assistant", **delta}
            logprobs = {"content": self._chat_logprobs(piece.tokens)} if request.logprobs else None
            return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": piece.finish_reason}

        return await self._respond(http, request, choices, head, chunk, self._merge_chat)

    async def _respond(self, http, request, choices, head, chunk, merge) -> web.StreamResponse:
        """Runs the choices; one JSON body, or SSE chunks as text arrives (usage counts each prompt once)."""
        prompt_tokens = sum({id(c.request.prompt): len(c.request.prompt) for c in choices}.values())
        completion = 0
        if not request.stream:
            collected: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(choices))}
            async for index, piece in run_choices(choices):
                collected[index].append(chunk(index, piece))
                completion += piece.completion_tokens if piece.finish_reason else 0
            body = {**head, "object": head["object"].removesuffix(".chunk"),
                    "choices": [merge(parts) for parts in collected.values()],
                    "usage": _usage(prompt_tokens, completion)}  # fmt: skip
            return web.json_response(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(http)
        async for index, piece in run_choices(choices):
            completion += piece.completion_tokens if piece.finish_reason else 0
            if piece.text or piece.finish_reason:
                await response.write(_sse({**head, "choices": [chunk(index, piece)]}))
        if request.include_usage:
            await response.write(_sse({**head, "choices": [], "usage": _usage(prompt_tokens, completion)}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _token_text(self, token_id: int) -> str:
        return self.info.tokenizer.decode([token_id])

    def _completion_logprobs(self, tokens: list[Token]) -> dict[str, Any]:
        return {
            "tokens": [self._token_text(t.token) for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{self._token_text(i): lp for i, lp in t.top_logprobs} for t in tokens],
        }

    def _chat_logprobs(self, tokens: list[Token]) -> list[dict[str, Any]]:
        def entry(token_id: int, logprob: float) -> dict[str, Any]:
            text = self._token_text(token_id)
            return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

        return [{**entry(t.token, t.logprob or 0.0), "top_logprobs": [entry(i, lp) for i, lp in t.top_logprobs]}
                for t in tokens]  # fmt: skip

    @staticmethod
    def _merge_completion(parts: list[dict[str, Any]]) -> dict[str, Any]:
        merged = {"index": parts[0]["index"], "text": "".join(p["text"] for p in parts), "logprobs": None,
                  "finish_reason": parts[-1]["finish_reason"]}  # fmt: skip
        if parts[0]["logprobs"] is not None:
            merged["logprobs"] = {key: [v for p in parts for v in p["logprobs"][key]]
                                  for key in ("tokens", "token_logprobs", "top_logprobs")}  # fmt: skip
        return merged

    @staticmethod
    def _merge_chat(parts: list[dict[str, Any]]) -> dict[str, Any]:
        content = "".join(p["delta"].get("content", "") for p in parts)
        logprobs = None
        if parts[0]["logprobs"] is not None:
            logprobs = {"content": [e for p in parts for e in p["logprobs"]["content"]]}
        return {"index": parts[0]["index"], "message": {"role": "assistant", "content": content},
                "logprobs": logprobs, "finish_reason": parts[-1]["finish_reason"]}  # fmt: skip


async def _json(http: web.Request) -> Any:
    try:
        return await http.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}") from None
