"""One idempotent reconcile of a ModelDeployment: read, render, apply, derive status, report.

Level-based: whatever event triggered it, it looks at the whole current state and converges to the
desired one, so it can run any number of times, in any order, after a crash or a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from berth_operator import api, metrics
from berth_operator.api import ModelDeploymentStatus, StagingStatus
from berth_operator.capacity import TERMINAL_PHASES as TERMINAL
from berth_operator.capacity import GpuCapacity, gpu_capacity
from berth_operator.conditions import Problem, now_rfc3339
from berth_operator.kube import Kube, KubeError
from berth_operator.milestones import milestones
from berth_operator.naming import CACHE_KEY_ANNOTATION, RELEASE_ANNOTATION, serving_pods_selector
from berth_operator.preflight import preflight
from berth_operator.render import Settings, endpoint, render_all, render_pod_template
from berth_operator.rollout_plan import RolloutStep, Strategy, plan_rollout
from berth_operator.sources import cache_key, model_mount, staged
from berth_operator.staging import (
    KEY_LABEL,
    job_name,
    read_staging,
    render_cache_claim,
    render_staging_job,
    staging_selector,
)
from berth_operator.status import Snapshot, compute_status, invalid_spec_status
from berth_operator.validation import SpecError, parse_model_deployment

log = logging.getLogger("berth.reconcile")
UNFINISHED = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class Outcome:
    result: str  # Gone | InvalidSpec | ApplyFailed | Reconciled
    status: ModelDeploymentStatus | None = None
    retry: bool = False  # a transient failure: try again later


@dataclass
class Reconciler:
    kube: Kube
    settings: Settings = field(default_factory=Settings)
    _locks: defaultdict[tuple[str, str], threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))

    def reconcile(self, namespace: str, name: str, apply: bool = True) -> Outcome:
        """apply=False only refreshes status (for events of pods, which need no writes)."""
        started = time.monotonic()
        with self._locks[(namespace, name)]:
            try:
                outcome = self._reconcile(namespace, name, apply)
            except KubeError as error:
                log.warning("Reconcile of ModelDeployment %s/%s failed: %s", namespace, name, error)
                outcome = Outcome("Error", retry=True)
        metrics.RECONCILES.labels(outcome.result).inc()
        if outcome.result == "Gone":
            metrics.record_conditions((namespace, name), None)
        elif outcome.status is not None:
            metrics.record_conditions((namespace, name), outcome.status.conditions)
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        return outcome

    def _reconcile(self, namespace: str, name: str, apply: bool) -> Outcome:
        body = self.kube.get(api.API_VERSION, api.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome("Gone")
        generation = body["metadata"].get("generation", 0)
        previous = _previous_status(body)
        try:
            md = parse_model_deployment(body)
        except SpecError as error:
            status = invalid_spec_status(generation, error.problems, previous, now_rfc3339())
            self._report(body, previous, status)
            return Outcome("InvalidSpec", status)

        user_spec = md.spec
        # While a failed release is rolled back, the last good spec is what gets deployed.
        rolled_back = previous.last_good_spec is not None and previous.failed_release == api.release_key(md.spec)
        if rolled_back:
            md = _deploying(md, previous.last_good_spec)
        status, problems = self._converge(md, generation, previous, apply, user_spec if rolled_back else None)
        if status is None:
            return Outcome("Gone")
        if not rolled_back and status.failed_release is not None and status.last_good_spec is not None:
            # The rollout just missed its deadline: deploy the last good release now, in this pass.
            md = _deploying(md, status.last_good_spec)
            status, problems = self._converge(md, generation, status, apply, user_spec)
            if status is None:
                return Outcome("Gone")
        self._report(body, previous, status)
        return Outcome("ApplyFailed" if problems and problems[0].reason == "ApplyFailed" else "Reconciled", status)

    def _converge(
        self,
        md: api.ModelDeployment,
        generation: int,
        previous: ModelDeploymentStatus,
        apply: bool,
        rolled_back_from: api.ModelDeploymentSpec | None,
    ) -> tuple[ModelDeploymentStatus | None, list[Problem]]:
        """Plans this rollout step and applies what md renders, then derives the status; None when the
        namespace is going. apply=False (pod events) writes only when the step's strategy changed."""
        problems: list[Problem] = []
        current = self.kube.get("apps/v1", "Deployment", md.namespace, md.name)
        pods = self.kube.list("v1", "Pod", md.namespace, serving_pods_selector(md.name))
        step, capacity = self._plan(md, current, pods)
        staging = self._stage(md, current, previous, apply) if staged(md.spec.model) else None
        if staging is not None and staging.phase != "Staged" and cache_key_of(current) != staging.key:
            step = staging_hold(staging)
        deployment = current
        if apply or (step.strategy is not None and step.strategy != live_strategy(current)):
            try:
                deployment = self._apply(md, step, current)
            except KubeError as error:
                if error.namespace_terminating:
                    return None, []  # the namespace controller is deleting the ModelDeployment too
                if not error.client_error:
                    raise
                problems.append(Problem("ApplyFailed", f"the API server refused the rendered objects: {error.message}"))
        problems += self._preflight(md, capacity)
        if step.problem:
            problems.append(step.problem)
        image = self.settings.image_for(md)
        snapshot = Snapshot(
            md, generation, deployment, pods, problems, endpoint(md), image, rolled_back_from, step, staging
        )
        return compute_status(snapshot, previous, now_rfc3339()), problems

    def _plan(
        self, md: api.ModelDeployment, current: dict[str, Any] | None, pods: list[dict[str, Any]]
    ) -> tuple[RolloutStep, GpuCapacity | None]:
        """The next rollout step, and the GPU capacity it was planned on (None for CPU replicas)."""
        started = current is not None and release_of(current) == api.release_key(md.spec)
        rolling = current is not None and (not started or has_old_pods(current))
        capacity = None
        if md.spec.gpus:
            nodes = self.kube.list("v1", "Node")
            # Every pod bound to a node holds its GPUs; the whole cluster's are read only mid-rollout.
            bound = self.kube.list("v1", "Pod", field_selector=UNFINISHED) if rolling else []
            pod_spec = render_pod_template(md, self.settings)["spec"]
            capacity = gpu_capacity(nodes, bound, pod_spec, md.spec.gpus, md.spec.gpu_resource_name)
        own_bound = sum(1 for p in pods if p["spec"].get("nodeName") and p["status"].get("phase") not in TERMINAL)
        return plan_rollout(md.spec, rolling, started, own_bound, capacity), capacity

    def _stage(
        self, md: api.ModelDeployment, current: dict[str, Any] | None, previous: ModelDeploymentStatus, apply: bool
    ) -> StagingStatus:
        """Ensures the cache claim and this release's staging Job exist (when apply), removes the Jobs of
        entries no longer kept, and reads how staging is going."""
        key = cache_key(md.spec.model)
        if previous.staging and previous.staging.key == key and previous.staging.phase == "Staged":
            return previous.staging  # staged once is staged: no need to read the Job again
        jobs = {job["metadata"]["name"]: job for job in self.kube.list("batch/v1", "Job", md.namespace,
                                                                          staging_selector(md.name))}  # fmt: skip
        good = previous.last_good_spec
        keep = {k for k in (key, cache_key_of(current), good and staged(good.model) and cache_key(good.model)) if k}
        job = jobs.get(job_name(md, key))
        if apply:
            claim = render_cache_claim(md)
            if claim:
                self.kube.apply(claim)
            if job is None:
                job = self.kube.apply(render_staging_job(md, self.settings.image_for(md), tuple(keep)))
            for name, other in jobs.items():
                if (other["metadata"].get("labels") or {}).get(KEY_LABEL) not in keep:
                    self.kube.delete("batch/v1", "Job", md.namespace, name)
        pods = self.kube.list("v1", "Pod", md.namespace, staging_selector(md.name, key)) if job else []
        return read_staging(md, job, pods)

    def _apply(self, md: api.ModelDeployment, step: RolloutStep, current: dict[str, Any] | None) -> dict[str, Any]:
        """Applies the rendered objects; a held rollout keeps the running Deployment, only rescaled."""
        deployment: dict[str, Any] = current or {}
        objects = render_all(md, self.settings, step.strategy or live_strategy(current))
        for obj in objects:
            if obj["kind"] == "Deployment" and step.hold:
                if current is not None and current["spec"].get("replicas") != md.spec.replicas:
                    patch = {"spec": {"replicas": md.spec.replicas}}
                    deployment = self.kube.patch("apps/v1", "Deployment", md.namespace, md.name, patch)
                continue
            applied = self.kube.apply(obj)
            if obj["kind"] == "Deployment":
                deployment = applied
        if not any(obj["kind"] == "PodDisruptionBudget" for obj in objects):
            self.kube.delete("policy/v1", "PodDisruptionBudget", md.namespace, md.name)
        return deployment

    def _preflight(self, md: api.ModelDeployment, capacity: GpuCapacity | None) -> list[Problem]:
        claim = model_mount(md.spec.model, md.name).claim
        secret = md.spec.model.credentials_secret
        claim_exists = (
            None if not claim else self.kube.get("v1", "PersistentVolumeClaim", md.namespace, claim) is not None
        )
        secret_exists = None
        if secret and self.settings.check_secrets:
            secret_exists = self.kube.get("v1", "Secret", md.namespace, secret) is not None
        return preflight(md, capacity, claim_exists, secret_exists)

    def _report(self, body: dict[str, Any], previous: ModelDeploymentStatus, status: ModelDeploymentStatus) -> None:
        """Writes the status only when it changed (so no write retriggers anything), then its Events."""
        new = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        if new == previous.model_dump(by_alias=True, exclude_none=True, mode="json"):
            return
        # A merge patch sets what is given; fields that became unset must be nulled explicitly.
        cleared = {k: None for k in previous.model_dump(by_alias=True, exclude_none=True) if k not in new}
        meta = body["metadata"]
        self.kube.patch_status(meta["namespace"], meta["name"], {**new, **cleared})
        for milestone in milestones(previous, status):
            log.info(
                "ModelDeployment %s/%s: %s: %s",
                meta["namespace"],
                meta["name"],
                milestone.reason,
                milestone.message,
            )
            try:
                self.kube.post_event(body, milestone.type, milestone.reason, milestone.message)
            except KubeError as error:
                # Events are for people; losing one must not fail or repeat the reconcile.
                log.warning(
                    "Event %s for %s/%s not posted: %s", milestone.reason, meta["namespace"], meta["name"], error
                )


def cache_key_of(deployment: dict[str, Any] | None) -> str | None:
    return ((deployment or {}).get("metadata", {}).get("annotations") or {}).get(CACHE_KEY_ANNOTATION)


def staging_hold(staging: StagingStatus) -> RolloutStep:
    """No pod of the new version until its weights are in the cache; a failed staging is reported."""
    if staging.phase == "Failed":
        problem = Problem("StagingFailed", staging.message)
        return RolloutStep(None, hold=True, problem=problem, reason="StagingFailed", message=staging.message)
    return RolloutStep(None, hold=True, progressing=True, reason="Staging", message=staging.message)


def release_of(deployment: dict[str, Any]) -> str | None:
    return (deployment["metadata"].get("annotations") or {}).get(RELEASE_ANNOTATION)


def has_old_pods(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    return status.get("replicas", 0) > status.get("updatedReplicas", 0)


def live_strategy(deployment: dict[str, Any] | None) -> Strategy | None:
    rolling = (((deployment or {}).get("spec") or {}).get("strategy") or {}).get("rollingUpdate")
    return Strategy(rolling["maxSurge"], rolling["maxUnavailable"]) if rolling else None


def _previous_status(body: dict[str, Any]) -> ModelDeploymentStatus:
    aliases = {f.alias for f in ModelDeploymentStatus.model_fields.values()}
    known = {k: v for k, v in (body.get("status") or {}).items() if k in aliases}
    try:
        return ModelDeploymentStatus.model_validate(known)
    except ValueError:
        # A status written by another version of the operator: start afresh rather than fail forever.
        return ModelDeploymentStatus()


def _deploying(md: api.ModelDeployment, spec: api.ModelDeploymentSpec) -> api.ModelDeployment:
    """md with another release's spec, at the user's replica count (scaling always applies)."""
    return md.model_copy(update={"spec": spec.model_copy(update={"replicas": md.spec.replicas})})
