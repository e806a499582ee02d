"""The operator against the real control plane, acting with only the RBAC it declares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from berth_operator.render import Settings, render_all
from berth_operator.rollout_plan import Strategy
from berth_operator.validation import parse_model_deployment
from tests.support.cluster import Cluster, wait_for
from tests.support.manifests import INVALID, Invalid, model_deployment, subset
from tests.support.operator import (
    OperatorProcess,
    apply_manifest,
    condition,
    get_json,
    wait_condition,
    wait_events,
    wait_status,
    with_claim,
)

pytestmark = pytest.mark.cluster
BERTH = str(Path(sys.executable).parent / "berth")


@pytest.mark.parametrize("invalid", INVALID, ids=lambda i: i.case)
def test_api_server_rejects_invalid_manifest_naming_the_field(api_installed: Cluster, invalid: Invalid) -> None:
    manifest = invalid.manifest()
    manifest["metadata"]["name"] = f"invalid-{invalid.case}"
    done = api_installed.kubectl("apply", "-n", "default", "-f", "-", stdin=json.dumps(manifest), check=False)
    assert done.returncode != 0, f"{invalid.case} was accepted"
    assert invalid.path in done.stderr, done.stderr
    for word in invalid.says:
        assert word in done.stderr, done.stderr


def test_create_renders_children_schedules_on_gpu_nodes_and_reports_ready(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        manifest = model_deployment("tiny", gpus=2, replicas=2)
        apply_manifest(cluster, ns, manifest)
        md = wait_condition(cluster, ns, "tiny", "Ready", "True")

        live_md = parse_model_deployment(md)
        created = Strategy(1, 0)  # a new Deployment surges: the spec's maxUnavailable is only for full clusters
        for rendered in render_all(live_md, Settings(runtime_image="berth-runtime:test"), created):
            kind = rendered["kind"].lower()
            live = get_json(cluster, kind, "tiny", "-n", ns)
            assert not subset(rendered, live), subset(rendered, live)
            assert live["metadata"]["ownerReferences"][0]["uid"] == md["metadata"]["uid"]

        nodes = {n["metadata"]["name"]: n for n in get_json(cluster, "nodes")["items"]}
        pods = get_json(cluster, "pods", "-n", ns, "-l", "berth.dev/modeldeployment=tiny")["items"]
        assert len(pods) == 2
        for pod in pods:
            assert int(nodes[pod["spec"]["nodeName"]]["status"]["allocatable"].get("nvidia.com/gpu", 0)) >= 2

        status = md["status"]
        assert status["observedGeneration"] == md["metadata"]["generation"]
        assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (2, 2, 2)
        assert status["ready"] == "2/2" and status["servingVersion"] == "2026-11-01"
        assert status["endpoint"] == f"http://tiny.{ns}.svc:8000/v1"
        for c in status["conditions"]:
            assert c["observedGeneration"] == md["metadata"]["generation"], c
        assert condition(md, "Degraded")["status"] == "False"

        columns = cluster.kubectl("get", "md", "tiny", "-n", ns).stdout.split("\n")
        assert columns[0].split() == [
            "NAME",
            "MODEL",
            "VERSION",
            "QUANT",
            "GPUS",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
        ]
        assert columns[1].split()[:8] == [
            "tiny",
            "pvc://models/tiny-llama",
            "2026-11-01",
            "none",
            "2",
            "2/2",
            "2",
            "2",
        ]

        wait_events(cluster, ns, "ModelDeployment", "RolloutStarted", "Ready", key="reason", name="tiny")


def test_status_settles_without_a_hot_loop(cluster: Cluster, operator: OperatorProcess) -> None:
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, model_deployment("calm", replicas=1))
        wait_condition(cluster, ns, "calm", "Ready", "True")
        before = (
            get_json(cluster, "md", "calm", "-n", ns),
            get_json(cluster, "deployment", "calm", "-n", ns),
        )
        time.sleep(5)  # watching a quiet window is the point of this test
        after = (get_json(cluster, "md", "calm", "-n", ns), get_json(cluster, "deployment", "calm", "-n", ns))
        for old, new in zip(before, after, strict=True):
            assert old["metadata"]["resourceVersion"] == new["metadata"]["resourceVersion"], new["kind"]


def test_scale_and_version_change_roll_out_through_the_deployment(cluster: Cluster, operator: OperatorProcess) -> None:
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, model_deployment("tiny", replicas=1))
        wait_condition(cluster, ns, "tiny", "Ready", "True")

        cluster.kubectl("scale", "md", "tiny", "-n", ns, "--replicas=3")
        wait_status(cluster, ns, "tiny", "ready", "3/3")
        assert get_json(cluster, "deployment", "tiny", "-n", ns)["spec"]["replicas"] == 3
        assert get_json(cluster, "pdb", "tiny", "-n", ns)["spec"]["maxUnavailable"] == 1

        cluster.kubectl("patch", "md", "tiny", "-n", ns, "--type=merge", "-p", '{"spec":{"version":"2026-12-01"}}')
        md = wait_status(cluster, ns, "tiny", "servingVersion", "2026-12-01")
        assert condition(md, "Progressing")["reason"] == "RolloutComplete" and "rolloutVersion" not in md["status"]
        assert condition(md, "Ready")["status"] == "True" and md["status"]["ready"] == "3/3"
        pods = get_json(cluster, "pods", "-n", ns, "-l", "berth.dev/modeldeployment=tiny")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in live} == {"2026-12-01"}
        # kwok pods are ready at once, so the Progressing phase is seen through the Events, in order.
        said = wait_events(
            cluster, ns, "ModelDeployment", "Rolling out version 2026-12-01", "Version 2026-12-01 is serving"
        )
        assert said.index("Rolling out version 2026-12-01") < said.index("Version 2026-12-01 is serving"), said

        history = [(e["version"], e["outcome"]) for e in md["status"]["history"]]
        assert history == [("2026-11-01", "Succeeded"), ("2026-12-01", "Succeeded")]
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        shown = subprocess.run([BERTH, "history", "tiny", "-n", ns], capture_output=True, text=True, env=env)
        assert shown.returncode == 0 and "2026-12-01  Succeeded  pvc://models/tiny-llama" in shown.stdout, shown
        status = subprocess.run([BERTH, "status", "tiny", "-n", ns, "--watch", "--timeout", "30"],
                                capture_output=True, text=True, env=env)  # fmt: skip
        assert status.returncode == 0 and "rollout complete" in status.stdout, status
        undo = subprocess.run([BERTH, "rollback", "tiny", "-n", ns], capture_output=True, text=True, env=env)
        assert undo.returncode == 0 and "rolling back to version 2026-11-01" in undo.stdout, undo
        md = wait_status(cluster, ns, "tiny", "servingVersion", "2026-11-01")
        assert md["spec"]["version"] == "2026-11-01" and md["spec"]["runtime"]["image"] == "berth-runtime:test"

        cluster.kubectl("scale", "md", "tiny", "-n", ns, "--replicas=1")
        wait_status(cluster, ns, "tiny", "ready", "1/1")
        wait_for(
            lambda: cluster.kubectl("get", "pdb", "tiny", "-n", ns, check=False).returncode != 0,
            30,
            "PDB removed",
        )


def test_more_gpus_than_any_node_has_is_reported_not_ready(cluster: Cluster, operator: OperatorProcess) -> None:
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, model_deployment("huge", gpus=8, replicas=1))
        md = wait_condition(cluster, ns, "huge", "Ready", "False", "InsufficientGPU")
        message = condition(md, "Ready")["message"]
        assert "needs 8 nvidia.com/gpu" in message and "largest eligible node has 4" in message, message
        assert condition(md, "Degraded")["status"] == "True"
        pods = get_json(cluster, "pods", "-n", ns)["items"]
        assert pods and all(p["status"]["phase"] == "Pending" for p in pods)


def test_crash_looping_pods_are_reported_degraded(cluster: Cluster, operator: OperatorProcess) -> None:
    """kwok's crash-loop stage (hack/kwok/stages.yaml) stands in for a runtime that exits at start-up."""
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        sick = {"labels": {"kwok.berth.dev/behaviour": "crash-loop"}}
        apply_manifest(cluster, ns, model_deployment("sick", replicas=1, podMetadata=sick))
        md = wait_condition(cluster, ns, "sick", "Degraded", "True", "CrashLoop")
        assert condition(md, "Ready")["status"] == "False"
        assert "container runtime" in condition(md, "Degraded")["message"]


def test_missing_volume_is_reported_degraded(cluster: Cluster, operator: OperatorProcess) -> None:
    with cluster.namespace("md") as ns:
        apply_manifest(cluster, ns, model_deployment("orphan", replicas=1))
        md = wait_condition(cluster, ns, "orphan", "Degraded", "True", "ModelVolumeNotFound")
        assert "PersistentVolumeClaim models not found" in condition(md, "Degraded")["message"]


def test_missing_credentials_secret_is_reported_degraded(cluster: Cluster, operator: OperatorProcess) -> None:
    with cluster.namespace("md") as ns:
        model = {"source": "hf://org/tiny", "revision": "0123abc", "credentialsSecret": "hub-token"}
        apply_manifest(cluster, ns, model_deployment("gated", replicas=1, model=model))
        md = wait_condition(cluster, ns, "gated", "Degraded", "True", "CredentialsSecretNotFound")
        assert f"Secret hub-token not found in namespace {ns}" in condition(md, "Degraded")["message"]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hub-token"},
            "stringData": {"HF_TOKEN": "t"},
        }
        cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(secret))
        # Secrets are not watched (no list/watch on them): the next event, here a spec edit, clears it.
        cluster.kubectl("patch", "md", "gated", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":2}}')
        wait_condition(cluster, ns, "gated", "Degraded", "False")


def test_deleting_the_model_deployment_removes_its_children(cluster: Cluster, operator: OperatorProcess) -> None:
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, model_deployment("short-lived", replicas=2))
        wait_condition(cluster, ns, "short-lived", "Ready", "True")
        cluster.kubectl("delete", "md", "short-lived", "-n", ns, "--wait=true", "--timeout=30s")
        for kind in ("deployment", "service", "pdb"):
            wait_for(
                lambda kind=kind: not get_json(cluster, kind, "-n", ns)["items"],
                60,
                f"{kind} garbage-collected",
            )
        wait_for(lambda: not get_json(cluster, "pods", "-n", ns)["items"], 60, "pods gone")


def test_operator_killed_midway_converges_without_duplicates_after_restart(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        operator.kill()
        apply_manifest(cluster, ns, model_deployment("resilient", replicas=2))
        operator.start()
        # Kill again as soon as it has started acting, then let a fresh process finish the job.
        wait_for(lambda: get_json(cluster, "deployments", "-n", ns)["items"], 30, "the Deployment created")
        operator.kill()
        operator.start()
        md = wait_condition(cluster, ns, "resilient", "Ready", "True")
        assert md["status"]["ready"] == "2/2"
        for kind in ("deployments", "services", "replicasets"):
            assert len(get_json(cluster, kind, "-n", ns)["items"]) == 1, kind
        assert len(get_json(cluster, "pods", "-n", ns)["items"]) == 2


def test_operator_metrics_and_liveness(operator: OperatorProcess) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'berth_operator_reconciles_total{result="Reconciled"}' in text
    assert "berth_operator_reconcile_duration_seconds_bucket" in text
    assert 'berth_operator_managed_objects{condition="Ready",status="True"}' in text


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("list", "secrets"),
        ("delete", "deployments"),
        ("create", "pods"),
        ("update", "nodes"),
        ("delete", "modeldeployments"),
        ("*", "*"),
    ],
)
def test_operator_service_account_cannot_do_more_than_declared(
    operator: OperatorProcess, cluster: Cluster, verb: str, resource: str
) -> None:
    done = cluster.kubectl("--kubeconfig", str(operator.kubeconfig), "auth", "can-i", verb, resource, "-A", check=False)
    assert done.stdout.strip() == "no", (verb, resource, done.stdout, done.stderr)


def test_a_version_that_never_becomes_ready_is_rolled_back_automatically(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """kwok's never-ready stage stands in for a model that never loads; the deadline is the minimum, 60 s."""
    with cluster.namespace("md") as ns:
        with_claim(cluster, ns)
        apply_manifest(cluster, ns, model_deployment("tiny", replicas=2, version="v1"))
        wait_status(cluster, ns, "tiny", "servingVersion", "v1")
        bad = {"spec": {"version": "v2", "podMetadata": {"labels": {"kwok.berth.dev/behaviour": "never-ready"}},
                        "rollout": {"progressDeadlineSeconds": 60}}}  # fmt: skip
        cluster.kubectl("patch", "md", "tiny", "-n", ns, "--type=merge", "-p", json.dumps(bad))
        md = wait_condition(cluster, ns, "tiny", "Degraded", "True", "RolloutFailed", timeout=150)
        assert md["spec"]["version"] == "v2", "the user's spec is never edited"
        assert "rolled back to version v1" in condition(md, "Degraded")["message"]
        md = wait_condition(cluster, ns, "tiny", "Ready", "True", timeout=60)
        assert md["status"]["servingVersion"] == "v1"
        # kstatus (Flux) reads Failed; Argo CD's health check reads Degraded (tests/unit/test_health.py).
        md = wait_condition(cluster, ns, "tiny", "Stalled", "True", "RolloutFailed", timeout=30)
        assert condition(md, "Reconciling")["status"] == "False"
        template = get_json(cluster, "deployment", "tiny", "-n", ns)["spec"]["template"]["metadata"]["labels"]
        assert template["app.kubernetes.io/version"] == "v1" and "kwok.berth.dev/behaviour" not in template
        outcomes = [(e["version"], e["outcome"]) for e in md["status"]["history"]]
        assert outcomes[:2] == [("v1", "Succeeded"), ("v2", "RolledBack")], outcomes
        wait_events(cluster, ns, "ModelDeployment", "RolloutFailed", key="reason")

        cluster.kubectl("scale", "md", "tiny", "-n", ns, "--replicas=3")  # scaling does not retry v2
        md = wait_status(cluster, ns, "tiny", "ready", "3/3")
        assert md["status"]["servingVersion"] == "v1" and condition(md, "Degraded")["reason"] == "RolloutFailed"

        fixed = [
            {"op": "remove", "path": "/spec/podMetadata/labels/kwok.berth.dev~1behaviour"},
            {"op": "replace", "path": "/spec/version", "value": "v3"},
        ]
        cluster.kubectl("patch", "md", "tiny", "-n", ns, "--type=json", "-p", json.dumps(fixed))
        md = wait_status(cluster, ns, "tiny", "servingVersion", "v3")
        assert condition(md, "Degraded")["status"] == "False" and "failedRelease" not in md["status"]
