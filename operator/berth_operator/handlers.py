"""Kopf wiring: every handler hands over to the one level-based reconcile (berth_operator.reconcile)."""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from prometheus_client import start_http_server

from berth_operator import api, metrics
from berth_operator.kube import Kube, load_api_client
from berth_operator.naming import MANAGED_BY, OWNER_LABEL
from berth_operator.reconcile import Reconciler
from berth_operator.render import Settings
from berth_operator.staging import STAGING_LABEL

MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}
RETRY_SECONDS = 10
HELD_RECHECK_SECONDS = 15
HELD_REASONS = ("InsufficientGPU", "Staging")
_last_event = time.monotonic()


def _touch() -> None:
    global _last_event
    _last_event = time.monotonic()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, else the kubeconfig named by KUBECONFIG at this moment (the
    client library's default login reads KUBECONFIG once, at import, before --kubeconfig is seen)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Berth's own annotation prefix, and no finalizers: uninstalling the operator first must never
    # leave ModelDeployments stuck in deletion.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.posting.enabled = False  # Berth posts its own milestone Events
    settings.execution.max_workers = 8
    if memo.get("namespaces"):
        # Watching listed namespaces only: they are named, so nothing needs to list the cluster's namespaces
        # (RBAC limited to those namespaces grants no such right).
        settings.scanning.disabled = True
    memo.reconciler = Reconciler(Kube(load_api_client()), Settings.from_env())
    if memo.get("metrics_port"):
        start_http_server(memo.metrics_port)
        logging.getLogger("berth").info("Serving metrics on port %s", memo.metrics_port)


def _reconcile(memo: kopf.Memo, namespace: str, name: str, apply: bool = True) -> None:
    outcome = memo.reconciler.reconcile(namespace, name, apply=apply)
    if outcome.retry:
        raise kopf.TemporaryError(f"reconcile of {namespace}/{name} failed; retrying", delay=RETRY_SECONDS)


@kopf.on.resume(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.create(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.update(api.GROUP, api.VERSION, api.PLURAL, field="spec")
def model_deployment_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    _touch()
    _reconcile(memo, namespace, name)


def _reconcile_owner(body: kopf.Body, namespace: str, memo: kopf.Memo, label: str, apply: bool = True) -> None:
    _touch()
    owner = (body.metadata.labels or {}).get(label)
    if owner:
        memo.reconciler.reconcile(namespace, owner, apply=apply)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
def deployment_changed(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A Deployment's status moved, or someone changed or deleted it: converge and refresh status."""
    _reconcile_owner(body, namespace, memo, OWNER_LABEL)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
def staging_job_changed(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Weights staged (or staging failed): the held rollout can go on (or says why not)."""
    _reconcile_owner(body, namespace, memo, STAGING_LABEL)


@kopf.on.event("", "v1", "pods", labels=MANAGED)
def pod_changed(body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A pod was scheduled, became ready or got stuck: refresh status; writes only a new rollout step."""
    _reconcile_owner(body, namespace, memo, OWNER_LABEL, apply=False)


def _held(status: kopf.Status, **_: Any) -> bool:
    progressing = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    return progressing.get("reason") in HELD_REASONS


@kopf.timer(api.GROUP, api.VERSION, api.PLURAL, interval=HELD_RECHECK_SECONDS, when=_held)
def held_rollout(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A held rollout waits on something no watched object announces (GPUs freed by other workloads)."""
    _reconcile(memo, namespace, name)


@kopf.on.probe(id="secondsSinceLastEvent")
def seconds_since_last_event(**_: Any) -> float:
    age = time.monotonic() - _last_event
    metrics.LAST_EVENT_AGE.set(age)
    return round(age, 1)
