"""The runtime over real HTTP on loopback, with the official openai client unchanged."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from tests.support.runtime_server import RuntimeServer


@pytest.fixture(scope="module")
def client(demo_server: RuntimeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo_server.url + "/v1", api_key="unused", max_retries=0)


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["demo"]


def test_completion(client: openai.OpenAI) -> None:
    result = client.completions.create(model="demo", prompt="Hello there", max_tokens=8, temperature=0)
    choice = result.choices[0]
    assert choice.text and choice.finish_reason in ("length", "stop")
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens <= 8
    again = client.completions.create(model="demo", prompt="Hello there", max_tokens=8, temperature=0)
    assert again.choices[0].text == choice.text, "greedy is deterministic"


def test_chat_completion(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="demo", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=6, temperature=0.7, seed=5, n=2,
    )  # fmt: skip
    assert len(result.choices) == 2 and all(c.message.role == "assistant" for c in result.choices)
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_streaming_chat_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Count"}], max_tokens=10, temperature=0,
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["length"] and chunks[-1].usage.completion_tokens == 10
    unstreamed = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Count"}], max_tokens=10, temperature=0
    )
    assert text == unstreamed.choices[0].message.content


def test_streaming_completion_ends_with_done(demo_server: RuntimeServer) -> None:
    body = json.dumps({"prompt": "abc", "max_tokens": 3, "stream": True}).encode()
    request = urllib.request.Request(demo_server.url + "/v1/completions", data=body)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in response.read().decode().split("\n") if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_stop_sequence_and_logprobs(client: openai.OpenAI) -> None:
    free = client.completions.create(model="demo", prompt="Once", max_tokens=12, temperature=0)
    stop = free.choices[0].text.strip().split(" ")[1]
    cut = client.completions.create(model="demo", prompt="Once", max_tokens=12, temperature=0, stop=[stop], logprobs=2)
    assert cut.choices[0].finish_reason == "stop" and stop not in cut.choices[0].text
    assert free.choices[0].text.startswith(cut.choices[0].text)
    logprobs = cut.choices[0].logprobs
    assert len(logprobs.token_logprobs) == len(logprobs.tokens) and all(lp <= 0 for lp in logprobs.token_logprobs)
    assert all(len(top) == 2 for top in logprobs.top_logprobs)


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"prompt": "x", "bogus": 1}, "bogus", "unrecognized request argument"),
        ({"prompt": "x", "temperature": 3}, "temperature", "less than or equal to 2"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"prompt": "x", "max_tokens": 4000}, "max_tokens", "maximum context length is 2048"),
        ({"prompt": "x " * 3000}, "max_tokens", "maximum context length"),
        ({"prompt": "x", "n": 99}, "n", "less than or equal to 16"),
        ({"prompt": "x", "presence_penalty": 0.5}, "presence_penalty", "not supported"),
        ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({}, "prompt", "required"),
        ([1, 2], None, "JSON object"),
    ],
)
def test_client_mistakes_are_400s_in_openais_shape(demo_server: RuntimeServer, body, param, says) -> None:
    status, answer, _ = demo_server.post("/v1/completions", body)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param
    assert says in answer["error"]["message"]


def test_malformed_json_and_wrong_model(demo_server: RuntimeServer) -> None:
    status, answer, _ = demo_server.post("/v1/chat/completions", None, raw=b"{not json")
    assert status == 400 and "not valid JSON" in answer["error"]["message"]
    status, answer, _ = demo_server.post(
        "/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}
    )
    assert status == 404 and answer["error"]["code"] == "model_not_found"
    status, answer, _ = demo_server.post("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})
    assert status == 400 and answer["error"]["param"] == "messages.0.role"
    status, _, _ = demo_server.post("/v1/completions", {"prompt": "still serving", "max_tokens": 2})
    assert status == 200


def test_ops_endpoints_and_metrics_move(demo_server: RuntimeServer, client: openai.OpenAI) -> None:
    assert demo_server.get("/health")[0] == 200
    status, ready = demo_server.get("/ready")
    assert status == 200 and ready["phase"] == "ready" and ready["shards_loaded"] == ready["shards_total"] == 1

    def counter(text: str, name: str) -> float:
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    before = demo_server.get("/metrics")[1]
    client.completions.create(model="demo", prompt="metrics", max_tokens=5, temperature=0)
    after = demo_server.get("/metrics")[1]
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
                 "vllm:e2e_request_latency_seconds_bucket", "vllm:request_queue_time_seconds_bucket",
                 'berth_runtime_load_phase{phase="ready"} 1.0', "berth_runtime_model_weight_bytes"):  # fmt: skip
        assert name in after, name
    assert counter(after, "vllm:generation_tokens_total") == counter(before, "vllm:generation_tokens_total") + 5
    assert counter(after, "vllm:prompt_tokens_total") > counter(before, "vllm:prompt_tokens_total")
    assert counter(after, 'vllm:request_success_total{finished_reason="length"}') > counter(
        before, 'vllm:request_success_total{finished_reason="length"}'
    )
