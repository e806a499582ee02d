"""Derives a ModelDeployment's status from what exists, the way `kubectl rollout status` reads a
Deployment. Pure: a snapshot in, the full status out (conditions settled against the previous ones)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from berth_operator.api import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus, StagingStatus, release_key
from berth_operator.conditions import DEGRADED, PROGRESSING, READY, Observed, Problem, settle, with_kstatus
from berth_operator.history import update_history
from berth_operator.naming import OWNER_LABEL, RELEASE_ANNOTATION
from berth_operator.rollback import decide_rollback
from berth_operator.rollout_plan import RolloutStep

# Container waiting reasons that mean the pod will not come up by itself.
STUCK_WAITING = {
    "CrashLoopBackOff": "CrashLoop",
    "ImagePullBackOff": "ImagePullFailed",
    "ErrImagePull": "ImagePullFailed",
    "InvalidImageName": "ImagePullFailed",
    "CreateContainerConfigError": "ContainerConfigError",
    "CreateContainerError": "ContainerConfigError",
}
# Progressing reasons under which spec.version is the version being rolled out.
ROLLING = ("Creating", "RollingOut", "ProgressDeadlineExceeded", "InsufficientGPU", "Staging", "StagingFailed")


@dataclass(frozen=True)
class Snapshot:
    md: ModelDeployment
    generation: int
    deployment: dict[str, Any] | None
    pods: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # found before looking at pods (preflight)
    endpoint: str | None = None
    image: str = ""  # the runtime image the pods run, for the history
    rolled_back_from: ModelDeploymentSpec | None = None  # the user's failed spec, while its rollback serves md
    step: RolloutStep | None = None  # the rollout step planned for md (berth_operator.rollout_plan)
    staging: StagingStatus | None = None  # the latest staging of md's weights, for staged sources


def pod_problems(pods: list[dict[str, Any]], gpu_resource: str) -> list[Problem]:
    """Pods that cannot be scheduled or whose containers are stuck, newest reasons first."""
    found: list[Problem] = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                message = condition.get("message", "")
                reason = "InsufficientGPU" if f"Insufficient {gpu_resource}" in message else "Unschedulable"
                found.append(Problem(reason, f"pod {pod['metadata']['name']} cannot be scheduled: {message}"))
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_WAITING:
                detail = waiting.get("message") or waiting["reason"]
                found.append(
                    Problem(
                        STUCK_WAITING[waiting["reason"]],
                        f"pod {pod['metadata']['name']} container {container['name']}: {detail}",
                    )
                )
    return found


def _deployment_condition(deployment: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def _rollout(snapshot: Snapshot) -> tuple[bool, str, str]:
    """(progressing, reason, message) as `kubectl rollout status` would judge the Deployment."""
    md, deployment = snapshot.md, snapshot.deployment
    version, desired = md.spec.version, md.spec.replicas
    if snapshot.step is not None and snapshot.step.hold:
        step = snapshot.step
        return (
            step.progressing,
            step.reason,
            step.message if step.progressing else f"version {version} is held: {step.message}",
        )
    if deployment is None:
        return True, "Creating", "creating the Deployment"
    status = deployment.get("status") or {}
    progress = _deployment_condition(deployment, "Progressing")
    if progress and progress.get("reason") == "ProgressDeadlineExceeded":
        return (
            False,
            "ProgressDeadlineExceeded",
            f"version {version} made no progress: {progress.get('message', '')}",
        )
    applied = (deployment["metadata"].get("annotations") or {}).get(RELEASE_ANNOTATION)
    if applied != release_key(md.spec) or status.get("observedGeneration", 0) < deployment["metadata"].get(
        "generation", 0
    ):
        return True, "RollingOut", f"rolling out version {version}"
    updated, total = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < desired:
        return True, "RollingOut", f"{updated} of {desired} replicas updated to version {version}"
    if total > updated:
        return True, "RollingOut", f"{total - updated} old replicas are terminating"
    if available < updated:
        return True, "RollingOut", f"{available} of {updated} updated replicas available"
    return False, "RolloutComplete", f"version {version} is serving on {desired} replicas"


def _scaling_only(snapshot: Snapshot, previous: ModelDeploymentStatus) -> bool:
    """The same version on every pod, only more or fewer of them: a scale, not a rollout."""
    dep_status = (snapshot.deployment or {}).get("status") or {}
    no_old_pods = dep_status.get("replicas", 0) <= dep_status.get("updatedReplicas", 0)
    return previous.serving_version == snapshot.md.spec.version and no_old_pods


def resolved_revision(staging: StagingStatus | None) -> str | None:
    return staging.resolved_revision if staging is not None and staging.phase == "Staged" else None


def compute_status(snapshot: Snapshot, previous: ModelDeploymentStatus, now: str) -> ModelDeploymentStatus:
    md = snapshot.md
    desired = md.spec.replicas
    dep_status = (snapshot.deployment or {}).get("status") or {}
    ready = dep_status.get("readyReplicas", 0)
    available = dep_status.get("availableReplicas", 0)
    progressing, progress_reason, progress_message = _rollout(snapshot)
    if progress_reason == "RollingOut" and _scaling_only(snapshot, previous):
        progress_reason, progress_message = "Scaling", f"scaling to {desired} replicas, {available} available"
    complete = progress_reason == "RolloutComplete"
    rollback = decide_rollback(md.spec, snapshot.rolled_back_from, previous, progress_reason)
    if rollback.problem:
        problems = [rollback.problem]
    elif progress_reason == "ProgressDeadlineExceeded":
        problems = [Problem(progress_reason, progress_message)]
    else:
        problems = snapshot.problems + pod_problems(snapshot.pods, md.spec.gpu_resource_name)
    serving = md.spec.version if complete else previous.serving_version
    if desired == 0:
        is_ready, ready_reason, ready_message = True, "ScaledToZero", "0 replicas requested"
    elif snapshot.deployment is not None and available >= desired:
        is_ready, ready_reason = True, "MinimumReplicasAvailable"
        ready_message = f"{available}/{desired} replicas available, serving version {serving or md.spec.version}"
    else:
        is_ready = False
        waiting = progress_reason if progress_reason in ("Creating", "Staging") else "ReplicasNotReady"
        ready_reason = problems[0].reason if problems else waiting
        ready_message = problems[0].message if problems else f"{available}/{desired} replicas available"
    resolved = resolved_revision(snapshot.staging)
    history = update_history(previous.history, md.spec, snapshot.image, progress_reason, now, resolved)
    observed = [
        Observed(READY, is_ready, ready_reason, ready_message),
        Observed(PROGRESSING, progressing, progress_reason, progress_message),
        Observed(DEGRADED, bool(problems), problems[0].reason if problems else "AsExpected",
                 "; ".join(p.message for p in problems[:3]) if problems else "no problems found"),
    ]  # fmt: skip
    return ModelDeploymentStatus(
        observed_generation=snapshot.generation,
        conditions=settle(with_kstatus(observed), previous.conditions, snapshot.generation, now),
        replicas=dep_status.get("replicas", 0),
        ready_replicas=ready,
        updated_replicas=dep_status.get("updatedReplicas", 0),
        available_replicas=available,
        ready=f"{ready}/{desired}",
        selector=f"{OWNER_LABEL}={md.name}",
        serving_version=serving if (available or complete) else None,
        rollout_version=md.spec.version if progress_reason in ROLLING else None,
        endpoint=snapshot.endpoint,
        history=rollback.mark(history, now),
        staging=snapshot.staging,
        last_good_spec=md.spec if complete and not rollback.starting else previous.last_good_spec,
        failed_release=rollback.failed_release,
    )


def invalid_spec_status(
    generation: int, problems: list[str], previous: ModelDeploymentStatus, now: str
) -> ModelDeploymentStatus:
    """A spec that cannot be served (admission should have caught it): say so, change nothing else."""
    message = "; ".join(problems)
    observed = [
        Observed(READY, False, "InvalidSpec", message),
        Observed(PROGRESSING, False, "InvalidSpec", "nothing is rolled out until the spec is fixed"),
        Observed(DEGRADED, True, "InvalidSpec", message),
    ]
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "conditions": settle(with_kstatus(observed), previous.conditions, generation, now),
        }
    )
