"""A stand-in for the Hugging Face Hub, on loopback: the two endpoints `berth-runtime fetch` uses,
serving repositories made in memory. Tests never reach the real hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from tests.support.loopback import serve_on_loopback


@dataclass
class StandInRepo:
    sha: str
    files: dict[str, bytes]
    tags: dict[str, str] = field(default_factory=dict)  # revision name -> sha
    token: str | None = None  # when set, requests must carry it


@dataclass
class StandInHub:
    repos: dict[str, StandInRepo]
    requests: list[str] = field(default_factory=list)
    url: str = ""


def _handler(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            hub.requests.append(self.path)
            parts = [unquote(p) for p in self.path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "revision":
                repo_name, revision = f"{parts[2]}/{parts[3]}", parts[5]
            elif len(parts) >= 5 and parts[2] == "resolve":
                repo_name, revision = f"{parts[0]}/{parts[1]}", parts[3]
            else:
                return self._send(404, b'{"error": "not found"}')
            repo = hub.repos.get(repo_name)
            if repo is None:
                return self._send(404, b'{"error": "Repository not found"}')
            if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                return self._send(401, b'{"error": "Invalid credentials"}')
            sha = repo.sha if revision == repo.sha else repo.tags.get(revision)
            if sha is None:
                return self._send(404, b'{"error": "Revision not found"}')
            if parts[0] == "api":
                siblings = [{"rfilename": name} for name in sorted(repo.files)]
                return self._send(200, json.dumps({"id": repo_name, "sha": sha, "siblings": siblings}).encode())
            name = "/".join(parts[4:])
            if name not in repo.files:
                return self._send(404, b'{"error": "Entry not found"}')
            return self._send(200, repo.files[name], "application/octet-stream")

    return Handler


@contextmanager
def stand_in_hub(repos: dict[str, StandInRepo], host: str = "127.0.0.1") -> Iterator[StandInHub]:
    hub = StandInHub(repos)
    with serve_on_loopback(_handler(hub), host=host) as hub.url:
        yield hub
