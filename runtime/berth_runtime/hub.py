"""hf://org/name sources: the Hugging Face Hub's HTTP API (or a mirror's, via HF_ENDPOINT).

A revision (tag, branch or SHA) is resolved to its commit SHA first and every file is then read at
that SHA, so a tag that moves during a download cannot mix two revisions.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from berth_runtime.transfer import FetchError, Progress, http_get, save

DEFAULT_ENDPOINT = "https://huggingface.co"
HINTS = {401: "check the token (HF_TOKEN)", 403: "the token has no access", 404: "no such model or revision"}


@dataclass(frozen=True)
class HubRef:
    repo: str  # org/name
    revision: str


def parse_hf_source(source: str, revision: str | None) -> HubRef:
    repo = source.removeprefix("hf://").strip("/")
    if repo.count("/") != 1:
        raise FetchError(f"source {source!r}: expected hf://org/name")
    if not revision:
        raise FetchError("--revision is required for hf:// sources: pin a commit SHA or tag")
    return HubRef(repo, revision)


class Hub:
    def __init__(self, endpoint: str | None = None, token: str | None = None, timeout: float = 60) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token if token is not None else os.environ.get("HF_TOKEN")
        self.timeout = timeout

    def _get(self, path: str):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return http_get(self.endpoint + path, headers, self.timeout, HINTS)

    def resolve(self, ref: HubRef) -> tuple[str, list[str]]:
        """The commit SHA the revision points at, and the repository's files at that commit."""
        quoted = urllib.parse.quote(ref.revision, safe="")
        with self._get(f"/api/models/{ref.repo}/revision/{quoted}") as response:
            info = json.load(response)
        return info["sha"], [s["rfilename"] for s in info.get("siblings", [])]

    def download(self, ref: HubRef, sha: str, filename: str, target: Path, progress: Progress | None = None) -> int:
        return save(self._get(f"/{ref.repo}/resolve/{sha}/{urllib.parse.quote(filename)}"), target, progress)


class HubRemote:
    """One pinned revision of one hub repository, as berth_runtime.fetch reads remotes."""

    def __init__(self, source: str, revision: str | None, hub: Hub | None = None) -> None:
        self.ref = parse_hf_source(source, revision)
        self.source, self.revision = source, revision
        self.hub = hub or Hub()
        self.label = f"{self.ref.repo}@{self.ref.revision}"
        self.sha = ""

    def resolve(self) -> tuple[str, list[str]]:
        self.sha, files = self.hub.resolve(self.ref)
        return self.sha, files

    def download(self, filename: str, target: Path, progress: Progress | None = None) -> int:
        return self.hub.download(self.ref, self.sha, filename, target, progress)
