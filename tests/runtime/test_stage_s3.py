"""`berth-runtime stage` and `fetch` from s3:// against a stand-in S3 store over HTTPS with a private CA,
through the real command line: a custom endpoint, SigV4-signed requests, paged listings, the CA bundle
the operator mounts (BERTH_CA_BUNDLE), and the errors a platform engineer would hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from berth_runtime import contract
from berth_runtime.s3 import Credentials
from tests.runtime.test_fetch import FILES
from tests.support.stand_in_s3 import stand_in_s3
from tests.support.tls import PrivatePki, make_test_pki

KEYS = Credentials("BERTHTESTACCESSKEY", "berth/test/secret/key")
PREFIX = "models/tiny/2026-11-01/"
EXPECTED = {
    "config.json", "tokenizer.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
}  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PrivatePki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def bucket(files: dict[str, bytes] = FILES) -> dict[str, dict[str, bytes]]:
    objects = {PREFIX + name: data for name, data in files.items()}
    objects[PREFIX + "nested/model.safetensors"] = b"only top-level files are part of the checkpoint"
    objects["models/other/model.safetensors"] = b"another model"
    return {"weights": objects}


def run(
    command: str, url: str, pki: PrivatePki | None, *args: str, credentials: Credentials | None = KEYS
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != contract.ENV_CA_BUNDLE}
    env |= {"AWS_ENDPOINT_URL": url, "AWS_REGION": "eu-west-1"}
    if credentials:
        env |= {"AWS_ACCESS_KEY_ID": credentials.access_key, "AWS_SECRET_ACCESS_KEY": credentials.secret_key}
    if pki:
        env[contract.ENV_CA_BUNDLE] = str(pki.ca)
    argv = [sys.executable, "-m", "berth_runtime.cli", command, "s3://weights/" + PREFIX.rstrip("/"), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def stage(url: str, pki: PrivatePki | None, cache: Path, *args: str, **kwargs) -> tuple[int, dict]:
    report = cache.parent / "report.json"
    report.unlink(missing_ok=True)
    done = run("stage", url, pki, "--cache", str(cache), "--key", "k1", "--report", str(report), *args, **kwargs)
    return done.returncode, json.loads(report.read_text()) if report.exists() else {"stderr": done.stderr}


def test_stages_from_a_custom_endpoint_with_a_private_ca(tmp_path: Path, pki: PrivatePki) -> None:
    cache = tmp_path / "cache"
    with stand_in_s3(bucket(), pki, KEYS) as store:
        code, outcome = stage(store.url, pki, cache)
        assert code == 0, outcome
        assert {p.name for p in (cache / "k1").iterdir()} == EXPECTED | {".berth-source.json"}
        assert (cache / "k1" / "model-00002-of-00002.safetensors").read_bytes() == b"weights-2"
        digest = outcome["sha"]
        assert digest.startswith("sha256:") and outcome["files"] == 5
        lists = [r for r in store.requests if r.startswith("LIST")]
        assert len(lists) == 5, "eight objects in pages of two: the client followed the continuation tokens"
        assert all(r == f"LIST weights {PREFIX}" for r in lists)
        assert {r.removeprefix(f"GET weights/{PREFIX}") for r in store.requests if r.startswith("GET")} == EXPECTED

        # Unchanged files: only listed again, nothing downloaded; the digest pins them.
        before = len(store.requests)
        code, again = stage(store.url, pki, cache, "--revision", digest)
        assert code == 0 and again["sha"] == digest
        assert all(r.startswith("LIST") for r in store.requests[before:])

    # The files change under the same prefix: a new digest, restaged; a pin on the old one refuses.
    changed = {**FILES, "model-00002-of-00002.safetensors": b"weights-2, retrained"}
    with stand_in_s3(bucket(changed), pki, KEYS) as store:
        code, outcome = stage(store.url, pki, cache, "--revision", digest)
        assert code == 2 and f"model.revision pins {digest}" in outcome["error"]
        assert (cache / "k1" / "model-00002-of-00002.safetensors").read_bytes() == b"weights-2"
        code, outcome = stage(store.url, pki, cache)
        assert code == 0 and outcome["sha"] not in (digest, None)
        assert (cache / "k1" / "model-00002-of-00002.safetensors").read_bytes() == b"weights-2, retrained"


def test_the_errors_name_what_to_fix(tmp_path: Path, pki: PrivatePki) -> None:
    cache = tmp_path / "cache"
    with stand_in_s3(bucket(), pki, KEYS) as store:
        code, outcome = stage(store.url, None, cache)
        assert code == 2 and "CERTIFICATE_VERIFY_FAILED" in outcome["error"]
        assert "spec.model.caBundle" in outcome["error"]

        code, outcome = stage(store.url, pki, cache, credentials=Credentials(KEYS.access_key, "wrong"))
        assert code == 2 and "HTTP 403 SignatureDoesNotMatch" in outcome["error"]
        assert "model.credentialsSecret" in outcome["error"]
    with stand_in_s3({"other-bucket": {}}, pki, KEYS) as store:
        code, outcome = stage(store.url, pki, cache)
        assert code == 2 and "HTTP 404 NoSuchBucket" in outcome["error"]
    with stand_in_s3({"weights": {PREFIX + "pytorch_model.bin": b"pickle"}}, pki, KEYS) as store:
        code, outcome = stage(store.url, pki, cache)
        assert code == 2 and "no safetensors weights (found ['pytorch_model.bin'])" in outcome["error"]
    assert not cache.exists() or not any(cache.iterdir()), "nothing half-staged is left behind"


def test_fetch_reads_the_same_store_for_an_init_container(tmp_path: Path, pki: PrivatePki) -> None:
    with stand_in_s3(bucket(), pki, KEYS) as store:
        assert run("fetch", store.url, pki, "--dest", str(tmp_path / "signed")).returncode == 0
        assert "AccessDenied" in run("fetch", store.url, pki, "--dest", str(tmp_path / "x"), credentials=None).stderr
    with stand_in_s3(bucket(), pki, credentials=None) as store:  # a public bucket: unsigned requests
        done = run("fetch", store.url, pki, "--dest", str(tmp_path / "anonymous"), credentials=None)
    assert done.returncode == 0, done.stderr
    for folder in ("signed", "anonymous"):
        assert {p.name for p in (tmp_path / folder).iterdir()} == EXPECTED | {".berth-source.json"}
