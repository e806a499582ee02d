"""`berth-runtime fetch` against a stand-in hub on loopback, through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from berth_runtime import contract
from berth_runtime.cli import build_parser
from tests.support.stand_in_hub import StandInRepo, stand_in_hub

SHA = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer.json": b"{}",
    "model-00001-of-00002.safetensors": b"weights-1",
    "model-00002-of-00002.safetensors": b"weights-2",
    "model.safetensors.index.json": b"{}",
    "pytorch_model.bin": b"pickled weights must never be fetched",
    "modeling_custom.py": b"code must never be fetched",
    "README.md": b"docs",
}


def run_fetch(hub_url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env["HF_ENDPOINT"] = hub_url
    if token:
        env["HF_TOKEN"] = token
    command = [sys.executable, "-m", "berth_runtime.cli", "fetch", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_fetches_only_safetensors_config_and_tokenizer_at_the_pinned_sha(tmp_path: Path) -> None:
    repos = {"org/tiny": StandInRepo(SHA, FILES, tags={"v1.0": SHA})}
    with stand_in_hub(repos) as hub:
        done = run_fetch(hub.url, "hf://org/tiny", "--revision", "v1.0", "--dest", str(tmp_path))
    assert done.returncode == 0, done.stderr
    fetched = {p.name for p in tmp_path.iterdir()}
    assert fetched == {
        "config.json", "tokenizer.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", ".berth-source.json",
    }  # fmt: skip
    assert (tmp_path / "model-00002-of-00002.safetensors").read_bytes() == b"weights-2"
    record = json.loads((tmp_path / ".berth-source.json").read_text())
    assert (record["revision"], record["sha"]) == ("v1.0", SHA)
    assert all(f"/resolve/{SHA}/" in r for r in hub.requests if "/resolve/" in r), "files are fetched by SHA"


def test_a_second_fetch_of_the_same_sha_downloads_nothing(tmp_path: Path) -> None:
    with stand_in_hub({"org/tiny": StandInRepo(SHA, FILES)}) as hub:
        assert run_fetch(hub.url, "hf://org/tiny", "--revision", SHA, "--dest", str(tmp_path)).returncode == 0
        before = len(hub.requests)
        assert run_fetch(hub.url, "hf://org/tiny", "--revision", SHA, "--dest", str(tmp_path)).returncode == 0
        assert hub.requests[before:] == [f"/api/models/org/tiny/revision/{SHA}"]


def test_token_from_the_environment_is_sent(tmp_path: Path) -> None:
    with stand_in_hub({"org/gated": StandInRepo(SHA, FILES, token="s3cret")}) as hub:
        denied = run_fetch(hub.url, "hf://org/gated", "--revision", SHA, "--dest", str(tmp_path))
        allowed = run_fetch(hub.url, "hf://org/gated", "--revision", SHA, "--dest", str(tmp_path), token="s3cret")
    assert denied.returncode == 2 and "HTTP 401" in denied.stderr and "HF_TOKEN" in denied.stderr
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(
    ("repos", "args", "says"),
    [
        ({}, ["hf://org/missing", "--revision", SHA], "HTTP 404"),
        ({"org/tiny": StandInRepo(SHA, FILES)}, ["hf://org/tiny", "--revision", "no-such-tag"], "HTTP 404"),
        ({"org/tiny": StandInRepo(SHA, FILES)}, ["hf://org/tiny"], "--revision is required"),
        (
            {"org/old": StandInRepo(SHA, {"pytorch_model.bin": b"x", "config.json": b"{}"})},
            ["hf://org/old", "--revision", SHA],
            "safetensors only",
        ),
    ],
    ids=["unknown-repo", "unknown-revision", "unpinned", "pickle-only"],
)
def test_fetch_failures_say_what_to_change(tmp_path: Path, repos: dict, args: list[str], says: str) -> None:
    with stand_in_hub(repos) as hub:
        done = run_fetch(hub.url, *args, "--dest", str(tmp_path / "dest"))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not (tmp_path / "dest" / ".berth-source.json").exists()


def test_the_operators_fetch_args_parse_as_the_runtime_expects() -> None:
    rendered = contract.FetchArgs(source="hf://org/tiny", revision="v1", dest="/models").argv()
    parsed = build_parser().parse_args(rendered)
    assert (parsed.command, parsed.source, parsed.revision, parsed.dest) == ("fetch", "hf://org/tiny", "v1", "/models")


def test_progress_is_printed_while_a_file_downloads_and_when_it_is_done(tmp_path: Path) -> None:
    """The lines `berth status` shows as a staging Job's latest progress."""
    from berth_runtime.hub import Hub
    from berth_runtime.transfer import save

    big = {**FILES, "model-00001-of-00002.safetensors": bytes(3 << 20)}
    with stand_in_hub({"org/tiny": StandInRepo(SHA, big)}) as hub:
        seen: list[tuple[int, int | None]] = []
        response = Hub(hub.url)._get(f"/org/tiny/resolve/{SHA}/model-00001-of-00002.safetensors")
        assert save(response, tmp_path / "w.safetensors", lambda *p: seen.append(p), every=0) == 3 << 20
        assert len(seen) > 2 and seen[-1] == (3 << 20, 3 << 20), "several reports as it goes, then the total"
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)
        done = run_fetch(hub.url, "hf://org/tiny", "--revision", SHA, "--dest", str(tmp_path / "dest"))
    assert "[2/5] model-00001-of-00002.safetensors: 3.0 MiB of 3.0 MiB (100%)" in done.stdout, done.stdout
