"""Continuous streaming load through a URL, counted as the clients saw it: each client opens a fresh connection,
streams one chat completion, reads every SSE line, and starts the next, until stopped. Bounded in streams and
in time. A stream counts as whole only with a finish_reason and the closing `data: [DONE]`."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Stream:
    started: float  # wall-clock seconds, comparable with the API's timestamps
    ended: float = 0.0
    status: int = 0
    chunks: int = 0
    finish_reason: str | None = None
    done: bool = False
    error: str | None = None

    @property
    def whole(self) -> bool:
        return self.status == 200 and self.error is None and self.done and self.finish_reason is not None


class StreamingLoad:
    def __init__(self, base_url: str, model: str, clients: int = 4, max_tokens: int = 256,
                 max_streams: int = 2000, max_seconds: float = 900) -> None:  # fmt: skip
        url = urlsplit(base_url.rstrip("/") + "/chat/completions")
        self.host, self.port, self.path = url.hostname, url.port or 80, url.path
        self.body = {
            "model": model,
            "messages": [{"role": "user", "content": "Tell me a long story."}],
            "max_tokens": max_tokens,
            "stream": True,
        }
        self.clients, self.max_streams, self.deadline = clients, max_streams, time.monotonic() + max_seconds
        self.streams: list[Stream] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> StreamingLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> list[Stream]:
        """Lets every stream in progress finish, then returns them all."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=300)
        return self.streams

    def finished(self) -> list[Stream]:
        with self.lock:
            return [s for s in self.streams if s.ended]

    def _more(self) -> bool:
        with self.lock:
            return (
                not self.stopping.is_set() and len(self.streams) < self.max_streams and time.monotonic() < self.deadline
            )

    def _client(self) -> None:
        while self._more():
            stream = Stream(started=time.time())
            with self.lock:
                self.streams.append(stream)
            self._one(stream)
            stream.ended = time.time()

    def _one(self, stream: Stream) -> None:
        # A fresh connection per stream, as a client behind a connection-per-request proxy would make.
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request("POST", self.path, json.dumps(self.body), {"Content-Type": "application/json",
                                                                          "Connection": "close"})  # fmt: skip
            response = connection.getresponse()
            stream.status = response.status
            if response.status != 200:
                stream.error = response.read().decode(errors="replace")[:300]
                return
            for raw in response:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                data = line.removeprefix("data: ")
                if data == "[DONE]":
                    stream.done = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    stream.error = json.dumps(chunk["error"])[:300]
                stream.chunks += 1
                for choice in chunk.get("choices", []):
                    stream.finish_reason = choice.get("finish_reason") or stream.finish_reason
        except (OSError, http.client.HTTPException, json.JSONDecodeError, UnicodeDecodeError) as error:
            stream.error = f"{type(error).__name__}: {error}"
        finally:
            connection.close()


def summary(streams: list[Stream]) -> str:
    broken = [s for s in streams if not s.whole]
    lines = [f"{len(streams)} streams, {len(broken)} not whole"]
    lines += [f"  status={s.status} finish={s.finish_reason} done={s.done} chunks={s.chunks} error={s.error}"
              for s in broken[:10]]  # fmt: skip
    return "\n".join(lines)
