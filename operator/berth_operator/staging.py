"""Weights are staged before pods move: a Job per model cache entry fills the cache volume while the
running version keeps serving, and no pod of the new version is created until it has succeeded.
Pure: the spec in, the claim and Job out; the Job and its pod in, the staging status out."""

from __future__ import annotations

import json
from typing import Any

from berth_operator.api import ModelDeployment, StagingStatus
from berth_operator.naming import child_metadata, recommended_labels
from berth_operator.placement import placement
from berth_operator.security import restricted_pod_security
from berth_operator.sources import cache_claim, cache_key, downloader_container, downloader_volumes
from berth_operator.status import pod_problems
from berth_runtime import contract

COMPONENT = "model-cache"
# Not the owner label: that one selects serving pods (Service, Deployment, scale), which these are not.
STAGING_LABEL = "berth.dev/staging-for"
KEY_LABEL = "berth.dev/cache-key"
CACHE_VOLUME = "cache"
SCRATCH_VOLUME = "scratch"
BACKOFF_LIMIT = 3


def staging_labels(md: ModelDeployment, key: str | None = None) -> dict[str, str]:
    labels = {**recommended_labels(md, COMPONENT), STAGING_LABEL: md.name}
    return {**labels, KEY_LABEL: key} if key else labels


def staging_selector(name: str, key: str | None = None) -> str:
    """The staging Jobs (and their pods) of the ModelDeployment `name`, or of one cache entry."""
    return f"{STAGING_LABEL}={name}" + (f",{KEY_LABEL}={key}" if key else "")


def job_name(md: ModelDeployment, key: str) -> str:
    # Job names end up in a pod label (job-name), which allows 63 characters.
    return f"{md.name[:40].rstrip('-.')}-stage-{key[:12]}"


def render_cache_claim(md: ModelDeployment) -> dict[str, Any] | None:
    """The claim the operator creates when the spec names none. It outlives versions (one per
    ModelDeployment) and goes with the ModelDeployment."""
    cache = md.spec.model.cache
    if cache.claim_name:
        return None
    spec: dict[str, Any] = {
        # Replicas on several nodes mount it at once, read-only; the staging Job writes.
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": str(cache.size)}},
    }
    if cache.storage_class_name:
        spec["storageClassName"] = cache.storage_class_name
    name = cache_claim(md.spec.model, md.name)
    metadata = child_metadata(md, name, staging_labels(md))
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def render_staging_job(md: ModelDeployment, image: str, keep: tuple[str, ...]) -> dict[str, Any]:
    """keep: other cache entries still needed (the running and the last good version's), so that the
    Job's garbage collection leaves a fast rollback in place."""
    model = md.spec.model
    key = cache_key(model)
    stage = contract.StageArgs(model.source, model.revision, key, tuple(sorted(set(keep) - {key})))
    mounts = [
        {"name": CACHE_VOLUME, "mountPath": contract.CACHE_DIR, "subPath": md.name},
        {"name": SCRATCH_VOLUME, "mountPath": contract.SCRATCH_DIR},
    ]
    container = downloader_container("stage", image, stage.argv(), model, mounts)
    container["resources"] = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
    labels = staging_labels(md, key)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": [
            {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache_claim(model, md.name)}},
            {"name": SCRATCH_VOLUME, "emptyDir": {}},
            *downloader_volumes(model),
        ],
        **placement(md.spec.scheduling),  # where the model's pods may run; it needs no GPU, so no GPU toleration
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_metadata(md, job_name(md, key), labels),
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _job_condition(job: dict[str, Any], type_: str) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _termination_report(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The stager's outcome, from the newest terminated container's termination message."""
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((container.get("state") or {}).get("terminated") or {}).get("message")
            if message:
                try:
                    report = json.loads(message)
                except ValueError:
                    return {"error": message.strip()[-500:]}
                return report if isinstance(report, dict) else {}
    return {}


def read_staging(md: ModelDeployment, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> StagingStatus:
    """How staging md's release goes. No Job yet (a pod event can be handled before the spec change that
    creates it) is staging too: nothing of the new release may start before its weights are in."""
    if job is None:
        key = cache_key(md.spec.model)
        message = f"the staging Job for version {md.spec.version} is being created"
        return StagingStatus(version=md.spec.version, key=key, job=job_name(md, key), phase="Staging", message=message)
    key = (job["metadata"].get("labels") or {}).get(KEY_LABEL, "")
    report = _termination_report(pods)
    base = {"version": md.spec.version, "key": key, "job": job["metadata"]["name"]}
    if _job_condition(job, "Complete"):
        size = report.get("bytes") if isinstance(report.get("bytes"), int) else None
        detail = f" ({report.get('files')} files, {size} bytes)" if size is not None else ""
        message = f"weights staged{detail}"
        return StagingStatus(**base, phase="Staged", message=message, resolved_revision=report.get("sha"), bytes=size)
    if _job_condition(job, "Failed"):
        why = report.get("error") or "the staging Job failed"
        message = f"{why}; fix the spec, or delete Job {job['metadata']['name']} to try the same revision again"
        return StagingStatus(**base, phase="Failed", message=message)
    failures = (job.get("status") or {}).get("failed", 0)
    retrying = f", {failures} failed attempt(s) so far" if failures else ""
    message = f"staging weights for version {md.spec.version} with Job {job['metadata']['name']}{retrying}"
    stuck = pod_problems(pods, md.spec.gpu_resource_name)  # unschedulable, image pull failing, ...
    return StagingStatus(**base, phase="Staging", message=message + (f": {stuck[0].message}" if stuck else ""))
