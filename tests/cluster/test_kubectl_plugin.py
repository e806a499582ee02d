"""The kubectl plugin as a user gets it: the package's `kubectl-berth` script on PATH, found by the real
kubectl (the one the control plane is built with)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_kubectl_berth_help_and_plugin_discovery(api_installed: Cluster) -> None:
    cluster = api_installed  # the CRD is there: the object is what is missing
    scripts = Path(sys.executable).parent  # where pip installed the console scripts
    assert (scripts / "kubectl-berth").exists()
    env = {**os.environ, "PATH": f"{scripts}:{cluster.bin_dir}:/usr/bin:/bin", "KUBECONFIG": str(cluster.kubeconfig)}
    kubectl = str(cluster.bin_dir / "kubectl")
    listed = subprocess.run([kubectl, "plugin", "list"], capture_output=True, text=True, env=env)
    assert str(scripts / "kubectl-berth") in listed.stdout, listed.stdout + listed.stderr
    done = subprocess.run([kubectl, "berth", "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: kubectl berth")
    assert all(command in done.stdout for command in ("status", "history", "rollback", "render"))
    missing = subprocess.run([kubectl, "berth", "status", "no-such-model", "-n", "default"], capture_output=True,
                             text=True, env=env)  # fmt: skip
    assert missing.returncode != 0 and "ModelDeployment default/no-such-model not found" in missing.stderr, missing
