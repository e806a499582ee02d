"""`berth-runtime fetch`: downloads one pinned revision of a hub model, safetensors only.

Runs in the inference pod's init container, so the runtime itself never touches the network. Speaks
the Hugging Face Hub's HTTP API (or a mirror's, via HF_ENDPOINT): the revision is resolved to its
commit SHA, only weights in safetensors form plus config and tokenizer files are fetched (pickled
weights and code are never), files land atomically, and the resolved SHA is recorded beside them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
SOURCE_RECORD = ".berth-source.json"
# What a transformers checkpoint needs, and nothing that could execute code when loaded.
WANTED = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A fetch that cannot succeed as asked; the message says what to change."""


@dataclass(frozen=True)
class HubRef:
    repo: str  # org/name
    revision: str


def parse_hf_source(source: str, revision: str | None) -> HubRef:
    if not source.startswith("hf://"):
        raise FetchError(f"source {source!r}: only hf://org/name sources are fetched by this command")
    repo = source.removeprefix("hf://").strip("/")
    if repo.count("/") != 1:
        raise FetchError(f"source {source!r}: expected hf://org/name")
    if not revision:
        raise FetchError("--revision is required: pin a commit SHA or tag")
    return HubRef(repo, revision)


def wanted(filename: str) -> bool:
    name = filename.rsplit("/", 1)[-1]
    return "/" not in filename and any(fnmatch.fnmatch(name, pattern) for pattern in WANTED)


class Hub:
    def __init__(self, endpoint: str | None = None, token: str | None = None, timeout: float = 60) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token if token is not None else os.environ.get("HF_TOKEN")
        self.timeout = timeout

    def _open(self, path: str):  # -> http.client.HTTPResponse
        request = urllib.request.Request(self.endpoint + path)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            hint = {401: "check the token (HF_TOKEN)", 403: "the token has no access", 404: "no such model or revision"}
            raise FetchError(
                f"GET {self.endpoint}{path}: HTTP {error.code}: {hint.get(error.code, error.reason)}"
            ) from None
        except urllib.error.URLError as error:
            raise FetchError(f"GET {self.endpoint}{path}: {error.reason}") from None

    def resolve(self, ref: HubRef) -> tuple[str, list[str]]:
        """The commit SHA the revision points at, and the repository's files at that commit."""
        quoted = urllib.parse.quote(ref.revision, safe="")
        with self._open(f"/api/models/{ref.repo}/revision/{quoted}") as response:
            info = json.load(response)
        return info["sha"], [s["rfilename"] for s in info.get("siblings", [])]

    def download(self, ref: HubRef, sha: str, filename: str, target: Path) -> int:
        partial = target.with_name(target.name + ".partial")
        with (
            self._open(f"/{ref.repo}/resolve/{sha}/{urllib.parse.quote(filename)}") as response,
            partial.open("wb") as out,
        ):
            shutil.copyfileobj(response, out, CHUNK)
        partial.replace(target)
        return target.stat().st_size


def fetch(source: str, revision: str | None, dest: Path, hub: Hub | None = None, log=print) -> str:
    """Fetches into dest; returns the resolved commit SHA. A completed fetch of the same SHA is kept."""
    ref = parse_hf_source(source, revision)
    hub = hub or Hub()
    sha, files = hub.resolve(ref)
    record = dest / SOURCE_RECORD
    if record.exists() and json.loads(record.read_text()).get("sha") == sha:
        log(f"{ref.repo}@{sha} already present in {dest}")
        return sha
    chosen = sorted(f for f in files if wanted(f))
    if not any(f.endswith(".safetensors") for f in chosen):
        skipped = sorted(set(files) - set(chosen))
        raise FetchError(
            f"{ref.repo}@{ref.revision} has no safetensors weights (found {skipped[:8]}); Berth loads safetensors only"
        )
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for index, filename in enumerate(chosen, 1):
        size = hub.download(ref, sha, filename, dest / filename)
        total += size
        log(f"[{index}/{len(chosen)}] {filename} ({size} bytes)")
    record.write_text(json.dumps({"source": source, "revision": ref.revision, "sha": sha, "files": chosen}, indent=2))
    log(f"fetched {ref.repo}@{sha}: {len(chosen)} files, {total} bytes")
    return sha


def main(args) -> int:  # args: argparse.Namespace from berth_runtime.cli
    try:
        fetch(args.source, args.revision, Path(args.dest))
    except FetchError as error:
        print(f"berth-runtime fetch: {error}", file=sys.stderr)
        return 2
    return 0
