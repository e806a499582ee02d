"""Probes on a real kubelet mean what they say. A held model (tests/support/held_model.py) on a hostPath volume
keeps the runtime's load at its last step, with /health answering, for as long as the test likes: a load held
for longer than liveness would allow ends Ready without a restart, and a load held past startupTimeoutSeconds
is restarted by the kubelet."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from berth_operator.render import RUNTIME_CONTAINER
from berth_runtime import contract
from tests.support.cluster import Cluster, wait_for
from tests.support.held_model import held_model, release
from tests.support.operator import OperatorProcess, apply_manifest, events, with_claim
from tests.support.real_node import demo_on_real_node, pod_url, pods_of, ready

pytestmark = [pytest.mark.cluster, pytest.mark.real, pytest.mark.timeout(600)]
HELD_SECONDS = 45  # longer than liveness allows a dead process (3 x 10 s)


def http_status(url: str) -> int:
    """The status a GET gets, or 0 when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def runtime_status(pod: dict) -> dict:
    return next(s for s in pod["status"].get("containerStatuses", []) if s["name"] == RUNTIME_CONTAINER)


def test_startup_waits_for_the_model_and_restarts_a_load_that_hangs(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    volume = tmp_path / "models"
    volume.mkdir(mode=0o755)
    slow_fifo, _ = held_model(volume / "slow"), held_model(volume / "hang")
    tmp_path.chmod(0o755)
    with cluster.namespace("real-probes") as namespace:
        with_claim(cluster, namespace, path=str(volume))
        for name, timeout in (("slow", 300), ("hang", 60)):
            manifest = demo_on_real_node(namespace, model={"source": f"pvc://models/{name}"}, replicas=1)
            manifest["metadata"]["name"] = name
            manifest["spec"]["runtime"]["startupTimeoutSeconds"] = timeout
            apply_manifest(cluster, namespace, manifest)

        def running(name: str) -> dict | None:
            pods = [p for p in pods_of(cluster, namespace, name) if p["status"].get("podIP")]
            return pods[0] if pods and runtime_status(pods[0]).get("state", {}).get("running") else None

        slow = wait_for(lambda: running("slow"), 300, "the slow pod's runtime running")
        held_since = time.monotonic()
        # Up and alive, but not started and not ready while the load is held: /health answers 200 (the probe the
        # startup probe used to ask, which would have passed here), /ready 503.
        health = pod_url(slow, contract.HEALTH_PATH)
        wait_for(lambda: http_status(health) == 200, 120, "/health answering during the load")
        while time.monotonic() - held_since < HELD_SECONDS:
            pod = pods_of(cluster, namespace, "slow")[0]
            status = runtime_status(pod)
            assert not status.get("started") and not ready(pod) and status["restartCount"] == 0, status
            assert http_status(pod_url(pod, contract.READY_PATH)) == 503
            time.sleep(3)
        threading.Thread(target=release, args=(slow_fifo,), daemon=True).start()
        wait_for(lambda: ready(pods_of(cluster, namespace, "slow")[0]), 120, "the slow pod Ready once loaded")
        assert runtime_status(pods_of(cluster, namespace, "slow")[0])["restartCount"] == 0

        # Nobody ever releases the other one: after startupTimeoutSeconds the kubelet restarts it.
        def restarted() -> list[dict]:
            return [p for p in pods_of(cluster, namespace, "hang") if runtime_status(p)["restartCount"] >= 1]

        hang = wait_for(restarted, 240, "the hung load restarted")[0]
        assert not ready(hang)
        said = [e["message"] for e in events(cluster, namespace, "Pod", hang["metadata"]["name"])]
        assert any("Startup probe failed" in m for m in said), said
        assert any("failed startup probe, will be restarted" in m for m in said), said
