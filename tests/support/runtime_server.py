"""`berth-runtime serve` as the tests run it: a real process on a free loopback port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.operator import free_port


@dataclass
class RuntimeServer:
    args: list[str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # A whole command line (args unused), with its own --port, and the environment it runs with.
    argv: list[str] | None = None
    env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout: float = 120) -> RuntimeServer:
        serve = [sys.executable, "-m", "berth_runtime.cli", "serve", "--port", str(self.port), *self.args]
        command = self.argv or serve
        self.process = subprocess.Popen(
            command, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=self.env
        )
        if wait_ready:
            self.wait_until(lambda: self.get("/ready")[0] == 200, timeout, "/ready")
        return self

    def wait_until(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"runtime exited with {self.process.returncode}:\n{self.log()}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                body = response.read().decode()
                return response.status, json.loads(body) if body.startswith("{") else body
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode() or "{}")

    def post(
        self, path: str, body: Any, raw: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict]:
        data = raw if raw is not None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}"), dict(error.headers)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode if self.process else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]
