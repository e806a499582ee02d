"""GPU-aware rollouts on the real control plane: kwok nodes with GPU capacity, the scheduler counting
them, the Deployment controller doing each step the operator plans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.cluster import Cluster, wait_for
from tests.support.manifests import model_deployment
from tests.support.operator import (
    OperatorProcess,
    apply_manifest,
    condition,
    events,
    get_json,
    wait_condition,
    wait_events,
    wait_status,
    with_claim,
)

pytestmark = pytest.mark.cluster


def on_node(name: str, node: str, **spec: Any) -> dict[str, Any]:
    """Two 1-GPU replicas of version v1, pinned to one node so that its GPUs are the whole cluster."""
    scheduling = {"nodeSelector": {"kubernetes.io/hostname": node}}
    return model_deployment(name, replicas=2, version="v1", scheduling=scheduling, **spec)


def gpus_in_use(cluster: Cluster, node: str) -> int:
    pods = get_json(cluster, "pods", "-A", "--field-selector", f"spec.nodeName={node}")["items"]
    return sum(
        int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        for p in pods
        if p["status"].get("phase") not in ("Succeeded", "Failed")
        for c in p["spec"]["containers"]
    )


def wait_node_idle(cluster: Cluster, node: str) -> None:
    """Earlier tests' namespaces may still be going away: start from a node with every GPU free."""
    wait_for(lambda: gpus_in_use(cluster, node) == 0, 90, f"no GPU in use on {node}")


def replica_set_of(cluster: Cluster, namespace: str, version: str) -> str:
    sets = get_json(cluster, "replicasets", "-n", namespace)["items"]
    return next(r["metadata"]["name"] for r in sets
                if r["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == version)  # fmt: skip


def bump(cluster: Cluster, namespace: str, name: str, patch: dict[str, Any]) -> None:
    cluster.kubectl("patch", "md", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": patch}))


def test_with_spare_gpus_a_new_version_surges_and_keeps_every_replica_ready(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    wait_node_idle(cluster, "kwok-gpu-b")  # 4 GPUs: 2 replicas leave room for 2 more
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, on_node("tiny", "kwok-gpu-b"))
        wait_status(cluster, ns, "tiny", "servingVersion", "v1")
        bump(cluster, ns, "tiny", {"version": "v2"})
        md = wait_status(cluster, ns, "tiny", "servingVersion", "v2")
        assert [(e["version"], e["outcome"]) for e in md["status"]["history"]] == [
            ("v1", "Succeeded"),
            ("v2", "Succeeded"),
        ]
        strategy = get_json(cluster, "deployment", "tiny", "-n", ns)["spec"]["strategy"]["rollingUpdate"]
        assert strategy == {"maxSurge": 1, "maxUnavailable": 0}, "room to surge: nothing taken down first"
        new, old = replica_set_of(cluster, ns, "v2"), replica_set_of(cluster, ns, "v1")
        # The Deployment controller's scaling Events tell how each rollout step really went.
        up, down = f"Scaled up replica set {new} from 0 to 1", f"Scaled down replica set {old} from 2 to 1"
        steps = [m for m in wait_events(cluster, ns, "Deployment", up, down) if new in m or f"{old} from 2" in m]
        assert steps[0] == up and steps.index(down) > 0, steps


def test_a_full_node_holds_with_max_unavailable_zero_then_replaces_one_at_a_time(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    wait_node_idle(cluster, "kwok-gpu-a")  # 2 GPUs: 2 replicas fill it
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        held = {"maxSurge": 1, "maxUnavailable": 0}
        apply_manifest(cluster, ns, on_node("full", "kwok-gpu-a", rollout=held))
        wait_status(cluster, ns, "full", "servingVersion", "v1")
        before = {p["metadata"]["uid"] for p in get_json(cluster, "pods", "-n", ns)["items"]}

        bump(cluster, ns, "full", {"version": "v2"})
        md = wait_condition(cluster, ns, "full", "Progressing", "False", "InsufficientGPU")
        message = condition(md, "Progressing")["message"]
        assert "needs 1 nvidia.com/gpu" in message and "kwok-gpu-a=0" in message and "maxUnavailable 0" in message
        assert condition(md, "Degraded")["reason"] == "InsufficientGPU"
        assert condition(md, "Ready")["status"] == "True" and md["status"]["servingVersion"] == "v1"
        assert md["status"]["rolloutVersion"] == "v2"
        # Nothing deleted, nothing Pending: the old version's pods and template are untouched.
        assert {p["metadata"]["uid"] for p in get_json(cluster, "pods", "-n", ns)["items"]} == before
        assert len(get_json(cluster, "replicasets", "-n", ns)["items"]) == 1

        bump(cluster, ns, "full", {"rollout": {"maxUnavailable": 1}})
        md = wait_status(cluster, ns, "full", "servingVersion", "v2", timeout=90)
        assert condition(md, "Degraded")["status"] == "False"
        new, old = replica_set_of(cluster, ns, "v2"), replica_set_of(cluster, ns, "v1")
        down, up = f"Scaled down replica set {old} from 2 to 1", f"Scaled up replica set {new} from 0 to 1"
        steps = wait_events(cluster, ns, "Deployment", down, up)
        assert steps.index(down) < steps.index(up), steps
        pods = [p for p in get_json(cluster, "pods", "-n", ns)["items"] if not p["metadata"].get("deletionTimestamp")]
        assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods} == {"v2"}
        assert [(e["version"], e["outcome"]) for e in md["status"]["history"]] == [
            ("v1", "Succeeded"),
            ("v2", "Succeeded"),
        ]


def test_operator_restarted_in_the_middle_of_a_rollout_finishes_it(cluster: Cluster, operator: OperatorProcess) -> None:
    wait_node_idle(cluster, "kwok-gpu-a")
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, on_node("tiny", "kwok-gpu-a"))
        wait_status(cluster, ns, "tiny", "servingVersion", "v1")
        operator.kill()
        bump(cluster, ns, "tiny", {"version": "v2"})  # the change arrives while no operator runs
        operator.start()

        def template_version() -> str:
            template = get_json(cluster, "deployment", "tiny", "-n", ns)["spec"]["template"]
            return template["metadata"]["labels"]["app.kubernetes.io/version"]

        wait_for(lambda: template_version() == "v2", 30, "the rollout started")
        operator.kill()  # mid-way: the Deployment controller carries on, the operator must pick up the books
        operator.start()
        md = wait_status(cluster, ns, "tiny", "servingVersion", "v2", timeout=90)
        assert [(e["version"], e["outcome"]) for e in md["status"]["history"]] == [
            ("v1", "Succeeded"),
            ("v2", "Succeeded"),
        ]
        assert condition(md, "Ready")["status"] == "True" and "rolloutVersion" not in md["status"]
        assert len(get_json(cluster, "deployments", "-n", ns)["items"]) == 1
        assert len(get_json(cluster, "replicasets", "-n", ns)["items"]) == 2

        def reasons() -> list[str]:
            return [e["reason"] for e in events(cluster, ns, "ModelDeployment")]

        wait_for(lambda: reasons().count("RolloutComplete") >= 2, 30, "both versions' RolloutComplete Events")
        assert reasons().count("RolloutComplete") == 2, reasons()


def test_weights_are_staged_before_any_new_pod_while_the_old_version_serves(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """kwok completes the staging Job's pod (nothing downloads here: the stager itself is tested against
    the stand-in hub in tests/runtime); cordoned nodes keep the next Job's pod Pending on purpose."""
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns, "weights", access="ReadWriteMany")
        model = {"source": "hf://org/tiny", "revision": "1111111", "cache": {"claimName": "weights"}}
        apply_manifest(cluster, ns, model_deployment("tiny", replicas=2, version="v1", model=model))
        md = wait_status(cluster, ns, "tiny", "servingVersion", "v1")
        assert md["status"]["staging"]["phase"] == "Staged"
        (job,) = get_json(cluster, "jobs", "-n", ns)["items"]
        done_at = job["status"]["completionTime"]
        pods = get_json(cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=inference")["items"]
        assert pods and all(p["metadata"]["creationTimestamp"] >= done_at for p in pods), "no pod before staging"
        volume = get_json(cluster, "deployment", "tiny", "-n", ns)["spec"]["template"]["spec"]["volumes"]
        assert {"name": "model", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}} in volume

        nodes = [n["metadata"]["name"] for n in get_json(cluster, "nodes")["items"]]
        cluster.kubectl("cordon", *nodes)
        try:
            bump(cluster, ns, "tiny", {"version": "v2", "model": {**model, "revision": "2222222"}})
            md = wait_condition(cluster, ns, "tiny", "Progressing", "True", "Staging")
            md = wait_for(lambda: (m := get_json(cluster, "md", "tiny", "-n", ns))["status"]["staging"]["message"]
                          .count("cannot be scheduled") and m, 30, "the staging pod reported Pending")  # fmt: skip
            assert md["status"]["servingVersion"] == "v1" and md["status"]["rolloutVersion"] == "v2"
            assert condition(md, "Ready")["status"] == "True", "the old version serves while the new one stages"
            versions = {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in get_json(
                cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=inference")["items"]}  # fmt: skip
            assert versions == {"v1"} and len(get_json(cluster, "replicasets", "-n", ns)["items"]) == 1
        finally:
            cluster.kubectl("uncordon", *nodes)
        md = wait_status(cluster, ns, "tiny", "servingVersion", "v2", timeout=90)
        assert [(e["version"], e["revision"], e["outcome"]) for e in md["status"]["history"]] == [
            ("v1", "1111111", "Succeeded"),
            ("v2", "2222222", "Succeeded"),
        ]
        jobs = get_json(cluster, "jobs", "-n", ns)["items"]
        assert len(jobs) == 2, "the previous version's entry is kept for a fast rollback"
        stage = next(j for j in jobs if j["metadata"]["name"] != job["metadata"]["name"])
        args = stage["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--keep") + 1] == job["metadata"]["labels"]["berth.dev/cache-key"]

        bump(cluster, ns, "tiny", {"version": "v3", "model": {**model, "revision": "3333333"}})
        wait_status(cluster, ns, "tiny", "servingVersion", "v3", timeout=90)
        names = {j["metadata"]["name"] for j in get_json(cluster, "jobs", "-n", ns)["items"]}
        assert job["metadata"]["name"] not in names and len(names) == 2, "entries older than the previous one go"
