"""Two operator replicas with --leader-elect on the real control plane: only the Lease holder reconciles;
a killed leader is replaced once its lease expires, and a stopped one hands over at once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, wait_for
from tests.support.manifests import model_deployment
from tests.support.operator import OperatorProcess, apply_manifest, get_json, wait_status

pytestmark = pytest.mark.cluster


def holder(cluster: Cluster, lease: str) -> str | None:
    found = cluster.kubectl("get", "lease", lease, "-n", "berth-system", "-o", "json", check=False)
    return (json.loads(found.stdout).get("spec") or {}).get("holderIdentity") if found.returncode == 0 else None


def test_only_the_lease_holder_reconciles_and_a_standby_takes_over(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    lease = f"berth-test-{uuid.uuid4().hex[:6]}"
    args = ("--leader-elect", "--leader-election-lease", lease, "--leader-election-namespace", "berth-system")
    replicas = {
        name: OperatorProcess(operator.kubeconfig, tmp_path / f"{name}.log", extra_args=args,
                              extra_env={"POD_NAME": name})
        for name in ("berth-a", "berth-b")
    }  # fmt: skip
    a, b = replicas["berth-a"], replicas["berth-b"]
    operator.stop()  # the session's operator runs without leader election
    try:
        a.start()
        wait_for(lambda: holder(cluster, lease) == "berth-a", 20, "berth-a holds the lease")
        b.start()  # healthy while it waits
        with cluster.namespace("md") as ns:
            spec = {"model": {"source": "file:///opt/models/tiny"}, "gpus": 0, "replicas": 1}
            apply_manifest(cluster, ns, model_deployment("led", **spec))
            wait_status(cluster, ns, "led", "observedGeneration", 1)
            assert "Waiting to lead" in b.log() and "Leading as" not in b.log()
            assert "led" not in b.log(), "the standby did not touch it"

            a.kill()  # no chance to release: b waits out the lease
            wait_for(lambda: holder(cluster, lease) == "berth-b", 40, "berth-b took over the lease")
            cluster.kubectl("patch", "md", "led", "-n", ns, "--type=merge", "-p", '{"spec": {"replicas": 2}}')
            wait_status(cluster, ns, "led", "observedGeneration", 2)
            assert get_json(cluster, "deployment", "led", "-n", ns)["spec"]["replicas"] == 2
            # status.replicas mirrors the Deployment's status, which its controller updates after the scale.
            wait_status(cluster, ns, "led", "replicas", 2, timeout=30)

            b.stop()  # SIGTERM: hands the lease back at once
            wait_for(lambda: holder(cluster, lease) is None, 10, "the lease released")
            transitions = json.loads(cluster.kubectl("get", "lease", lease, "-n", "berth-system", "-o", "json").stdout)[
                "spec"
            ]["leaseTransitions"]
            assert transitions == 1
    finally:
        for replica in replicas.values():
            replica.kill()
        cluster.kubectl("delete", "lease", lease, "-n", "berth-system", check=False)
        operator.start()
