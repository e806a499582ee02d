"""Start-up, self-test, overload, API keys, quantization and the graceful drain, each on its own
runtime process over loopback."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from tests.support.held_model import held_model
from tests.support.runtime_server import RuntimeServer


def server(tmp_path: Path, *args: str) -> RuntimeServer:
    return RuntimeServer(["--model", "demo", *args], tmp_path / "server.log")


def test_graceful_drain_finishes_the_stream_refuses_new_work_and_exits_zero(tmp_path: Path) -> None:
    runtime = server(tmp_path, "--drain-timeout", "60").start()
    body = json.dumps({"prompt": "drain", "max_tokens": 200, "stream": True, "ignore_eos": True}).encode()
    chunks: list[str] = []

    def consume() -> None:
        request = urllib.request.Request(runtime.url + "/v1/completions", data=body)
        with urllib.request.urlopen(request, timeout=120) as response:
            for line in response:
                if line.strip():
                    chunks.append(line.decode().strip())

    reader = threading.Thread(target=consume)
    reader.start()
    runtime.wait_until(lambda: len(chunks) >= 5, 60, "the stream to be under way")
    runtime.terminate()
    runtime.wait_until(lambda: runtime.get("/ready")[0] == 503, 10, "/ready to turn false")
    status, answer, headers = runtime.post("/v1/completions", {"prompt": "late", "max_tokens": 2})
    assert status == 503 and answer["error"]["type"] == "service_unavailable" and "Retry-After" in headers
    reader.join(120)
    assert chunks[-1] == "data: [DONE]"
    finals = [json.loads(c[6:]) for c in chunks[:-1]]
    assert finals[-1]["choices"][0]["finish_reason"] == "length"
    assert runtime.process.wait(30) == 0


def test_a_drain_closes_kept_alive_connections_so_their_next_request_goes_elsewhere(tmp_path: Path) -> None:
    """A client that keeps its connection open between requests (the openai client's pool does) would send its
    next request to the stopping pod and meet a 503; the drain closes such a connection instead (idle at once,
    busy after its response), so the client reconnects and the Service picks a replica that serves."""
    runtime = server(tmp_path, "--drain-timeout", "60").start()
    busy = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=120)
    body = json.dumps({"prompt": "drain", "max_tokens": 600, "stream": True, "ignore_eos": True})
    busy.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    streaming = busy.getresponse()
    lines = [streaming.readline() for _ in range(4)]  # under way
    idle = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    idle.request("GET", "/v1/models")
    assert idle.getresponse().read() and idle.sock is not None, "kept alive"
    runtime.terminate()
    idle.sock.settimeout(5)
    assert idle.sock.recv(1) == b"", "the drain closed the idle kept-alive connection"
    assert runtime.process.poll() is None, "closed by the drain, not by the process ending"
    lines += list(streaming)  # while the busy one gets its whole stream
    assert lines[-2:] == [b"data: [DONE]\n", b"\n"], lines[-3:]
    assert runtime.process.wait(30) == 0


def test_overload_is_429_with_retry_after_and_the_server_keeps_serving(tmp_path: Path) -> None:
    runtime = server(tmp_path, "--max-batch-size", "1", "--max-queue", "1").start()
    try:
        results: list[int] = []
        refusals: list[tuple[dict, dict]] = []

        def call() -> None:
            status, answer, headers = runtime.post(
                "/v1/completions", {"prompt": "x", "max_tokens": 60, "ignore_eos": True}
            )
            results.append(status)
            if status == 429:
                refusals.append((answer, headers))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert 429 in results and 200 in results, results
        answer, headers = refusals[0]
        assert answer["error"]["type"] == "rate_limit_error" and headers["Retry-After"] == "1"
        assert runtime.post("/v1/completions", {"prompt": "after", "max_tokens": 2})[0] == 200
    finally:
        runtime.stop()


def test_api_key_is_required_when_configured(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    runtime = server(tmp_path, "--api-key-file", str(key_file)).start()
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=runtime.url + "/v1", api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=runtime.url + "/v1", api_key="s3cret", max_retries=0)
        assert good.models.list().data[0].id == "demo"
        assert runtime.get("/health")[0] == 200, "probes need no key"
    finally:
        runtime.stop()


def test_failing_self_test_keeps_the_pod_unready(tmp_path: Path) -> None:
    runtime = server(tmp_path, "--self-test-prompt", "Say OK", "--self-test-expect", "^OK$")
    runtime.start(wait_ready=False)
    try:
        runtime.wait_until(lambda: runtime.get("/ready")[1].get("phase") == "failed", 120, "the self-test to fail")
        status, ready = runtime.get("/ready")
        assert status == 503 and "self-test failed" in ready["detail"] and "does not match" in ready["detail"]
        assert runtime.get("/health")[0] == 200
    finally:
        runtime.stop()


def test_a_stop_while_loading_exits_at_once(tmp_path: Path) -> None:
    """A load that hangs (held_model: its last file never comes) must not hold a stopping pod for the whole grace
    period: SIGTERM while loading exits 0 at once, as nothing is in flight."""
    fifo = held_model(tmp_path / "model")
    runtime = RuntimeServer(["--model", str(fifo.parent)], tmp_path / "server.log").start(wait_ready=False)
    try:
        runtime.wait_until(lambda: runtime.get("/health")[1].get("phase") == "loading", 120, "the load under way")
        time.sleep(1)
        assert runtime.get("/ready")[0] == 503 and runtime.get("/health")[0] == 200
        runtime.terminate()
        assert runtime.process.wait(10) == 0
        assert "Stopped while loading" in runtime.log()
    finally:
        runtime.stop()


def test_passing_self_test_turns_ready(tmp_path: Path) -> None:
    runtime = server(tmp_path, "--self-test-prompt", "Say OK", "--self-test-budget-ms", "60000").start()
    runtime.stop()


def test_int8_on_cpu_serves_with_smaller_weights(tmp_path: Path) -> None:
    runtime = server(tmp_path, "--quantization", "int8").start()
    try:
        metrics = runtime.get("/metrics")[1]
        weight = next(
            float(m.split()[-1]) for m in metrics.splitlines() if m.startswith("berth_runtime_model_weight_bytes")
        )
        assert weight < 224e6 / 2, weight  # float32 demo weights are 224 MB
        assert runtime.post("/v1/completions", {"prompt": "int8", "max_tokens": 4})[0] == 200
    finally:
        runtime.stop()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "demo", "--quantization", "int4"], "int4 needs a GPU"),
        (["--model", "demo", "--quantization", "fp16"], "fp16 needs a GPU"),
        (["--model", "demo", "--max-model-len", "100000"], "exceeds the model's limit"),
        (["--model", "/nonexistent"], "no config.json"),
        (["--model", "demo", "--tensor-parallel-size", "3"], "must divide the model's 8 attention heads"),
    ],
)
def test_unservable_configurations_fail_at_start_up_with_a_clear_message(args: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "berth_runtime.cli", "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and says in done.stderr, done.stderr[-2000:]


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    done = subprocess.run([sys.executable, "-m", "berth_runtime.cli", "serve", "--port", "0", "--model", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "pickled weights are never loaded" in done.stderr


def test_tensor_parallel_over_two_cpu_ranks_gives_the_same_tokens(tmp_path: Path, demo_server: RuntimeServer) -> None:
    """Two ranks over gloo, each with half the heads and MLP columns, summed by all-reduce: the greedy
    output equals the single-device server's (the multi-GPU path, exercised on CPU)."""
    body = {"prompt": "Tensor parallel", "max_tokens": 24, "temperature": 0, "ignore_eos": True}
    expected = demo_server.post("/v1/completions", body)[1]["choices"][0]["text"]
    # A long prompt while the first request decodes goes in pieces, mirrored on the other rank too.
    long_body = {**body, "prompt": " ".join(["parallel ranks"] * 40), "max_tokens": 8}
    long_expected = demo_server.post("/v1/completions", long_body)[1]["choices"][0]["text"]
    first_body = {**body, "max_tokens": 48}
    first_expected = demo_server.post("/v1/completions", first_body)[1]["choices"][0]["text"]
    runtime = server(tmp_path, "--tensor-parallel-size", "2", "--prefill-chunk", "16").start()
    try:
        assert runtime.post("/v1/completions", body)[1]["choices"][0]["text"] == expected
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(runtime.post, "/v1/completions", first_body)
            time.sleep(0.3)
            second = pool.submit(runtime.post, "/v1/completions", long_body)
            assert first.result()[1]["choices"][0]["text"] == first_expected
            assert second.result()[1]["choices"][0]["text"] == long_expected
    finally:
        assert runtime.stop() == 0
