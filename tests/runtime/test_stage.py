"""`berth-runtime stage` against a stand-in hub on loopback, through the real command line."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from berth_runtime import stage as stage_command
from tests.runtime.test_fetch import FILES, SHA
from tests.support.stand_in_hub import StandInRepo, stand_in_hub

NEXT_SHA = "89abcdef0123456789abcdef0123456789abcdef"


def run_stage(hub_url: str, cache: Path, key: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    env = {**{k: v for k, v in os.environ.items() if k != "HF_TOKEN"}, "HF_ENDPOINT": hub_url}
    report = cache.parent / f"{key}.report"
    command = [sys.executable, "-m", "berth_runtime.cli", "stage", "hf://org/tiny", "--cache", str(cache),
               "--key", key, "--report", str(report), *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    return done, json.loads(report.read_text()) if report.exists() else {}


def test_stages_atomically_reports_the_resolved_sha_and_collects_garbage(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    repos = {"org/tiny": StandInRepo(SHA, FILES, tags={"v1.0": SHA})}
    with stand_in_hub(repos) as hub:
        done, outcome = run_stage(hub.url, cache, "aaaa", "--revision", "v1.0")
        assert done.returncode == 0, done.stderr
        assert outcome["sha"] == SHA and outcome["files"] == 5 and outcome["bytes"] > 0
        assert sorted(p.name for p in cache.iterdir()) == ["aaaa"], "the partial folder was renamed into place"
        assert (cache / "aaaa" / "model-00001-of-00002.safetensors").read_bytes() == b"weights-1"

        # The same revision again: nothing downloaded, only resolved.
        before = len(hub.requests)
        done, outcome = run_stage(hub.url, cache, "aaaa", "--revision", "v1.0")
        assert done.returncode == 0 and outcome["sha"] == SHA
        assert hub.requests[before:] == ["/api/models/org/tiny/revision/v1.0"]

        # A second key keeping the first; then a third keeping only the second: "aaaa" is collected.
        (cache / "stale.partial").mkdir()
        assert run_stage(hub.url, cache, "bbbb", "--revision", SHA, "--keep", "aaaa")[0].returncode == 0
        assert sorted(p.name for p in cache.iterdir()) == ["aaaa", "bbbb"]
        assert run_stage(hub.url, cache, "cccc", "--revision", SHA, "--keep", "bbbb")[0].returncode == 0
        assert sorted(p.name for p in cache.iterdir()) == ["bbbb", "cccc"]


def test_a_moved_tag_is_restaged_and_a_failure_is_reported(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with stand_in_hub({"org/tiny": StandInRepo(SHA, FILES, tags={"stable": SHA})}) as hub:
        assert run_stage(hub.url, cache, "k", "--revision", "stable")[0].returncode == 0
    with stand_in_hub({"org/tiny": StandInRepo(NEXT_SHA, FILES, tags={"stable": NEXT_SHA})}) as hub:
        done, outcome = run_stage(hub.url, cache, "k", "--revision", "stable")
        assert done.returncode == 0 and outcome["sha"] == NEXT_SHA
        assert json.loads((cache / "k" / ".berth-source.json").read_text())["sha"] == NEXT_SHA
        done, outcome = run_stage(hub.url, cache, "k", "--revision", "no-such-tag")
    assert done.returncode == 2 and "no such model or revision" in outcome["error"]
    assert (cache / "k").exists(), "a failed staging leaves the staged entry alone"


def test_a_cache_folder_the_pod_s_user_cannot_write_is_reported_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a volume without fsGroup support gives the staging pod (seen on the real node: a root-owned folder).
    The tests run as root, whom no folder refuses, so the refusal is raised where the stager would meet it."""

    def refused(*_: object, **__: object) -> dict:
        raise PermissionError(13, "Permission denied", "/cache/k.partial")

    monkeypatch.setattr(stage_command, "stage", refused)
    report = tmp_path / "report"
    args = argparse.Namespace(source="hf://org/tiny", revision=SHA, cache=str(tmp_path), key="k", keep=[],
                              report=str(report))  # fmt: skip
    assert stage_command.main(args) == 2
    error = json.loads(report.read_text())["error"]
    assert error.startswith("cannot write to the model cache (/cache/k.partial: permission denied)")
    assert f"uid {os.getuid()}" in error and "fsGroup" in error and error in capsys.readouterr().err
