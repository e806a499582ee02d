"""Renders a ModelDeployment into the objects that serve it: a Deployment, a Service and, with more than
one replica, a PodDisruptionBudget. Pure: the parsed spec in, plain dicts out (what `berth render`
prints and what the operator applies with server-side apply)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from berth_operator.api import ModelDeployment, SelfTest, release_key
from berth_operator.naming import (
    CACHE_KEY_ANNOTATION,
    RELEASE_ANNOTATION,
    child_metadata,
    endpoint_url,
    pod_labels,
    selector_labels,
)
from berth_operator.placement import placement
from berth_operator.rollout_plan import Strategy
from berth_operator.security import restricted_container_security, restricted_pod_security
from berth_operator.sources import ModelMount, downloader_container, downloader_volumes, model_mount
from berth_runtime import contract

RUNTIME_CONTAINER = "runtime"
FETCH_CONTAINER = "fetch-model"
SCRATCH_VOLUME = "scratch"
SHM_VOLUME = "dshm"
# Seconds the endpoints controller and kube-proxies get to stop routing to a stopping pod before it
# is sent SIGTERM: stop routing first, then drain.
PRE_STOP_SLEEP_SECONDS = 5
# Readiness is not probed before the startup probe passes: a short period keeps a loaded pod from waiting.
STARTUP_PROBE_PERIOD = 5


RUNTIME_REPOSITORY = "ghcr.io/berth-dev/berth-runtime"


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings (the Helm chart sets them as environment variables)."""

    runtime_image: str = f"{RUNTIME_REPOSITORY}:{version('berth')}"  # the chart sets the same by default
    # Off where the operator may not read Secrets (the chart's rbac.checkSecrets): a missing
    # credentialsSecret then shows up as the fetching pod's CreateContainerConfigError instead.
    check_secrets: bool = True

    def image_for(self, md: ModelDeployment) -> str:
        """The runtime image md's pods (and its staging Jobs) run."""
        return md.spec.runtime.image or self.runtime_image

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            runtime_image=os.environ.get("BERTH_RUNTIME_IMAGE", cls.runtime_image),
            check_secrets=os.environ.get("BERTH_CHECK_SECRETS", "true").lower() != "false",
        )


def _http_probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": contract.PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 5,
    }


def _self_test_args(test: SelfTest) -> dict[str, Any]:
    if not test.enabled:
        return {}
    return {"self_test_prompt": test.prompt, "self_test_expect": test.expect,
            "self_test_budget_ms": test.latency_budget_ms}  # fmt: skip


def _runtime_container(md: ModelDeployment, mount: ModelMount, settings: Settings) -> dict[str, Any]:
    spec, runtime = md.spec, md.spec.runtime
    serve = contract.ServeArgs(
        model=mount.model_path,
        served_model_name=md.name,
        dtype=runtime.dtype,
        quantization=spec.quantization,
        tensor_parallel_size=max(spec.gpus, 1),
        max_batch_size=runtime.max_batch_size,
        max_model_len=runtime.max_model_len,
        drain_timeout=runtime.drain_timeout_seconds,
        **_self_test_args(runtime.self_test),
        extra=tuple(runtime.args),
    )
    limits = dict(spec.resources.limits)
    if spec.gpus:
        limits[spec.gpu_resource_name] = spec.gpus
    resources: dict[str, Any] = {}
    if spec.resources.requests:
        resources["requests"] = dict(spec.resources.requests)
    if limits:
        resources["limits"] = limits
    env = [
        {"name": contract.ENV_HOME, "value": contract.SCRATCH_DIR},
        {"name": contract.ENV_OFFLINE, "value": "1"},
        *[e.model_dump(by_alias=True, exclude_none=True) for e in runtime.env],
    ]
    mounts = [{"name": SCRATCH_VOLUME, "mountPath": contract.SCRATCH_DIR}, *mount.mounts]
    if spec.gpus > 1:
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    startup_failures = -(-runtime.startup_timeout_seconds // STARTUP_PROBE_PERIOD)  # rounded up
    container: dict[str, Any] = {
        "name": RUNTIME_CONTAINER,
        "image": settings.image_for(md),
        "command": list(contract.COMMAND),
        "args": serve.argv(),
        "env": env,
        "ports": [{"name": contract.PORT_NAME, "containerPort": contract.PORT, "protocol": "TCP"}],
        "resources": resources,
        "volumeMounts": mounts,
        # The startup probe asks /ready: it passes once the model is loaded, warmed up and self-tested, so a
        # load that hangs is restarted after startupTimeoutSeconds (on /health, which answers while loading,
        # it passed at once and bounded nothing). Liveness only starts counting after it, so a pod that is
        # still loading is never killed as dead.
        "startupProbe": _http_probe(contract.READY_PATH, STARTUP_PROBE_PERIOD, startup_failures),
        "livenessProbe": _http_probe(contract.HEALTH_PATH, 10, 3),
        "readinessProbe": _http_probe(contract.READY_PATH, 5, 2),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": restricted_container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if runtime.image_pull_policy:
        container["imagePullPolicy"] = runtime.image_pull_policy
    return container


def _fetch_container(md: ModelDeployment, mount: ModelMount, settings: Settings) -> dict[str, Any]:
    assert mount.fetch is not None
    mounts = [{"name": SCRATCH_VOLUME, "mountPath": contract.SCRATCH_DIR}, {**mount.mounts[0], "readOnly": False}]
    return downloader_container(FETCH_CONTAINER, settings.image_for(md), mount.fetch.argv(), md.spec.model, mounts)


def _gpu_tolerations(md: ModelDeployment) -> list[dict[str, Any]]:
    """GPU node pools are commonly tainted with the GPU resource name; a GPU pod tolerates that."""
    if not md.spec.gpus:
        return []
    return [{"key": md.spec.gpu_resource_name, "operator": "Exists", "effect": "NoSchedule"}]


def render_pod_template(md: ModelDeployment, settings: Settings) -> dict[str, Any]:
    spec = md.spec
    mount = model_mount(spec.model, md.name)
    volumes = [{"name": SCRATCH_VOLUME, "emptyDir": {}}, *mount.volumes]
    if mount.fetch:
        volumes += downloader_volumes(spec.model)
    if spec.gpus > 1:
        # NCCL between tensor-parallel ranks needs more shared memory than the default 64Mi.
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}})
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "terminationGracePeriodSeconds": PRE_STOP_SLEEP_SECONDS + spec.runtime.drain_timeout_seconds + 10,
        "containers": [_runtime_container(md, mount, settings)],
        "volumes": volumes,
    }
    if mount.fetch:
        pod_spec["initContainers"] = [_fetch_container(md, mount, settings)]
    pod_spec.update(placement(spec.scheduling, _gpu_tolerations(md)))
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    metadata: dict[str, Any] = {"labels": pod_labels(md)}
    if spec.pod_metadata.annotations:
        metadata["annotations"] = dict(spec.pod_metadata.annotations)
    return {"metadata": metadata, "spec": pod_spec}


def render_deployment(md: ModelDeployment, settings: Settings, strategy: Strategy | None = None) -> dict[str, Any]:
    """strategy: this rollout step's surge and unavailability (berth_operator.rollout_plan); the spec's
    own values when rendered offline."""
    rollout = md.spec.rollout
    strategy = strategy or Strategy(rollout.max_surge, rollout.max_unavailable)
    metadata = child_metadata(md)
    metadata["annotations"] = {RELEASE_ANNOTATION: release_key(md.spec)}
    key = model_mount(md.spec.model, md.name).cache_key
    if key:
        metadata["annotations"][CACHE_KEY_ANNOTATION] = key
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": md.spec.replicas,
            "selector": {"matchLabels": selector_labels(md)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": strategy.max_surge, "maxUnavailable": strategy.max_unavailable},
            },
            "progressDeadlineSeconds": rollout.progress_deadline_seconds,
            "revisionHistoryLimit": md.spec.revision_history_limit,
            "template": render_pod_template(md, settings),
        },
    }


def render_service(md: ModelDeployment) -> dict[str, Any]:
    port = {
        "name": contract.PORT_NAME,
        "port": contract.PORT,
        "targetPort": contract.PORT_NAME,
        "protocol": "TCP",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(md),
        "spec": {"type": "ClusterIP", "selector": selector_labels(md), "ports": [port]},
    }


def render_pdb(md: ModelDeployment) -> dict[str, Any] | None:
    """Voluntary disruptions (node drains) take one replica at a time; none with a single replica,
    where a PDB would block every drain."""
    if md.spec.replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(md),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(md)}},
    }


def render_all(md: ModelDeployment, settings: Settings, strategy: Strategy | None = None) -> list[dict[str, Any]]:
    """Everything the ModelDeployment should own, in apply order."""
    objects = [render_service(md), render_deployment(md, settings, strategy)]
    pdb = render_pdb(md)
    if pdb:
        objects.append(pdb)
    return objects


def endpoint(md: ModelDeployment) -> str:
    return endpoint_url(md, contract.PORT)
