"""Status derivation, preflight checks and milestones: pure tables, no cluster."""

from __future__ import annotations

from typing import Any

from berth_operator.api import ModelDeploymentStatus, release_key
from berth_operator.capacity import GpuCapacity, gpu_capacity
from berth_operator.conditions import Problem, find
from berth_operator.milestones import milestones
from berth_operator.naming import RELEASE_ANNOTATION
from berth_operator.preflight import gpu_problem, preflight
from berth_operator.render import Settings, render_pod_template
from berth_operator.status import Snapshot, compute_status
from berth_operator.validation import parse_model_deployment
from tests.support.manifests import model_deployment

T0, T1 = "2026-11-23T10:00:00Z", "2026-11-23T10:05:00Z"


def md_of(**spec: Any):
    body = model_deployment("tiny", **spec)
    body["metadata"].update({"namespace": "ml", "uid": "u", "generation": 3})
    return parse_model_deployment(body)


def deployment(desired: int, replicas: int, updated: int, ready: int, available: int, **extra: Any) -> dict[str, Any]:
    status = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
              "availableReplicas": available, **extra}  # fmt: skip
    return {"metadata": {"generation": 1}, "spec": {"replicas": desired}, "status": status}


def status_of(
    snapshot: Snapshot, previous: ModelDeploymentStatus | None = None, now: str = T0
) -> ModelDeploymentStatus:
    """Derives status as if the Deployment already runs snapshot.md's release, unless the test says otherwise."""
    if snapshot.deployment is not None:
        snapshot.deployment["metadata"].setdefault("annotations", {RELEASE_ANNOTATION: release_key(snapshot.md.spec)})
    return compute_status(snapshot, previous or ModelDeploymentStatus(), now)


def reasons(status: ModelDeploymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_before_the_deployment_exists() -> None:
    status = status_of(Snapshot(md_of(), 3, None))
    assert reasons(status) == {
        "Ready": ("False", "Creating"),
        "Progressing": ("True", "Creating"),
        "Degraded": ("False", "AsExpected"),
        "Reconciling": ("True", "Creating"),
        "Stalled": ("False", "NotStalled"),
    }
    assert status.rollout_version == "2026-11-01" and status.serving_version is None
    assert status.observed_generation == 3 and all(c.observed_generation == 3 for c in status.conditions)


def test_complete_rollout_is_ready_and_serving() -> None:
    status = status_of(Snapshot(md_of(replicas=2), 3, deployment(2, 2, 2, 2, 2), endpoint="http://x"))
    assert reasons(status)["Ready"] == ("True", "MinimumReplicasAvailable")
    assert reasons(status)["Progressing"] == ("False", "RolloutComplete")
    assert (status.ready, status.serving_version, status.rollout_version) == ("2/2", "2026-11-01", None)
    assert status.selector == "berth.dev/modeldeployment=tiny"


def test_version_change_rolls_out_while_the_old_version_serves() -> None:
    previous = status_of(Snapshot(md_of(replicas=2), 3, deployment(2, 2, 2, 2, 2)))
    rolling = status_of(Snapshot(md_of(replicas=2, version="v2"), 4, deployment(2, 3, 1, 2, 2)), previous, T1)
    assert reasons(rolling)["Progressing"] == ("True", "RollingOut")
    assert (rolling.serving_version, rolling.rollout_version) == ("2026-11-01", "v2")
    assert reasons(rolling)["Ready"] == ("True", "MinimumReplicasAvailable")
    assert find(rolling.conditions, "Ready").last_transition_time == T0, "no flip, no new transition time"
    assert find(rolling.conditions, "Progressing").last_transition_time == T1


def test_a_deployment_still_on_the_previous_template_is_not_credited_to_the_new_spec() -> None:
    """An event can be handled after the spec changed but before the new template is applied."""
    previous = status_of(Snapshot(md_of(replicas=2), 3, deployment(2, 2, 2, 2, 2)))
    stale = deployment(2, 2, 2, 2, 2)
    stale["metadata"]["annotations"] = {RELEASE_ANNOTATION: release_key(md_of(replicas=2).spec)}
    status = status_of(Snapshot(md_of(replicas=2, version="v2"), 4, stale), previous)
    assert reasons(status)["Progressing"] == ("True", "RollingOut")
    assert (status.serving_version, status.rollout_version) == ("2026-11-01", "v2")
    assert status.last_good_spec.version == "2026-11-01"


def test_scaling_the_same_version_is_not_a_rollout() -> None:
    previous = status_of(Snapshot(md_of(replicas=1), 3, deployment(1, 1, 1, 1, 1)))
    scaling = status_of(Snapshot(md_of(replicas=3), 4, deployment(3, 1, 1, 1, 1)), previous)
    assert reasons(scaling)["Progressing"] == ("True", "Scaling") and scaling.rollout_version is None
    assert milestones(previous, scaling) == [m for m in milestones(previous, scaling) if m.reason != "RolloutStarted"]


def test_progress_deadline_exceeded_is_degraded() -> None:
    stuck = {
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "RS timed out",
            }
        ]
    }
    status = status_of(Snapshot(md_of(replicas=1), 3, deployment(1, 1, 1, 0, 0, **stuck)))
    assert reasons(status)["Degraded"] == ("True", "ProgressDeadlineExceeded")
    assert reasons(status)["Ready"] == ("False", "ProgressDeadlineExceeded")


def test_unschedulable_gpu_pod_is_reported_as_insufficient_gpu() -> None:
    pod = {
        "metadata": {"name": "tiny-1"},
        "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                   "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]},
    }  # fmt: skip
    status = status_of(Snapshot(md_of(replicas=1), 3, deployment(1, 1, 1, 0, 0), pods=[pod]))
    assert reasons(status)["Ready"] == ("False", "InsufficientGPU")
    assert "Insufficient nvidia.com/gpu" in find(status.conditions, "Degraded").message


def test_crash_looping_container_is_degraded() -> None:
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}
    pod = {
        "metadata": {"name": "tiny-1"},
        "status": {"containerStatuses": [{"name": "runtime", "state": waiting}]},
    }
    status = status_of(Snapshot(md_of(replicas=1), 3, deployment(1, 1, 1, 0, 0), pods=[pod]))
    assert reasons(status)["Degraded"] == ("True", "CrashLoop")


def test_scaled_to_zero_is_ready() -> None:
    status = status_of(Snapshot(md_of(replicas=0), 3, deployment(0, 0, 0, 0, 0)))
    assert reasons(status)["Ready"] == ("True", "ScaledToZero")


def test_preflight_problems_lead_the_conditions() -> None:
    problem = Problem("ModelVolumeNotFound", "PersistentVolumeClaim models not found in namespace ml")
    status = status_of(Snapshot(md_of(), 3, deployment(2, 2, 2, 0, 0), problems=[problem]))
    assert reasons(status)["Ready"] == ("False", "ModelVolumeNotFound")
    assert reasons(status)["Degraded"] == ("True", "ModelVolumeNotFound")


def node(
    name: str,
    gpus: int,
    labels: dict[str, str] | None = None,
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    allocatable = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {"allocatable": allocatable},
    }


def capacity_for(md, nodes: list[dict[str, Any]]) -> GpuCapacity:
    pod_spec = render_pod_template(md, Settings())["spec"]
    return gpu_capacity(nodes, [], pod_spec, md.spec.gpus, md.spec.gpu_resource_name)


def test_gpu_preflight_counts_only_eligible_nodes() -> None:
    nodes = [node("a", 8, {"pool": "big"}, unschedulable=True), node("b", 4, {"pool": "big"}), node("c", 8)]
    assert gpu_problem(md_of(gpus=8), capacity_for(md_of(gpus=8), nodes)) is None
    pooled = md_of(gpus=8, scheduling={"nodeSelector": {"pool": "big"}})
    problem = gpu_problem(pooled, capacity_for(pooled, nodes))
    assert problem and problem.reason == "InsufficientGPU"
    assert "needs 8 nvidia.com/gpu" in problem.message and "has 4 allocatable (b=4)" in problem.message
    assert gpu_problem(md_of(gpus=0), None) is None


def test_preflight_reports_missing_claim_and_secret() -> None:
    md = md_of(model={"source": "pvc://models/x"})
    assert [p.reason for p in preflight(md, None, claim_exists=False, secret_exists=None)] == ["ModelVolumeNotFound"]
    hf = md_of(model={"source": "hf://o/m", "revision": "r", "credentialsSecret": "tok"})
    assert [p.reason for p in preflight(hf, None, claim_exists=None, secret_exists=False)] == [
        "CredentialsSecretNotFound"
    ]


def test_milestones_on_rollout_start_completion_and_trouble() -> None:
    creating = status_of(Snapshot(md_of(replicas=1), 3, None))
    assert [m.reason for m in milestones(ModelDeploymentStatus(), creating)] == ["RolloutStarted"]
    ready = status_of(Snapshot(md_of(replicas=1), 3, deployment(1, 1, 1, 1, 1)), creating)
    assert [m.reason for m in milestones(creating, ready)] == ["RolloutComplete", "Ready"]
    assert milestones(ready, ready) == []
    crash = {
        "metadata": {"name": "p"},
        "status": {"containerStatuses": [{"name": "runtime", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }
    broken = status_of(Snapshot(md_of(replicas=1), 3, deployment(1, 1, 1, 0, 0), pods=[crash]), ready)
    assert [(m.type, m.reason) for m in milestones(ready, broken)] == [
        ("Warning", "NotReady"),
        ("Warning", "CrashLoop"),
    ]
