"""Deterministic names and the labels every object Berth creates carries."""

from __future__ import annotations

from typing import Any

from berth_operator import api
from berth_operator.api import ModelDeployment

FIELD_MANAGER = "berth-operator"
MANAGED_BY = "berth-operator"
# The selector label: stable across versions (a Deployment's selector is immutable).
OWNER_LABEL = "berth.dev/modeldeployment"
VERSION_LABEL = "app.kubernetes.io/version"
# On the Deployment: the release its pod template renders, so status never credits a new spec with
# the rollout of an older template (an event can be handled before the new template is applied).
RELEASE_ANNOTATION = "berth.dev/release"
COMPONENT = "inference"
# On the Deployment, for staged sources: the model cache entry its pods mount (kept by garbage collection).
CACHE_KEY_ANNOTATION = "berth.dev/cache-key"


def serving_pods_selector(name: str) -> str:
    return f"{OWNER_LABEL}={name},app.kubernetes.io/component={COMPONENT}"


def selector_labels(md: ModelDeployment) -> dict[str, str]:
    return {OWNER_LABEL: md.name}


def recommended_labels(md: ModelDeployment, component: str) -> dict[str, str]:
    """The app.kubernetes.io labels every object Berth creates carries."""
    return {
        "app.kubernetes.io/name": md.name,
        "app.kubernetes.io/instance": md.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "berth",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def object_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels for the Deployment, Service and PDB (no version: they outlive every version)."""
    return {**recommended_labels(md, COMPONENT), **selector_labels(md)}


def pod_labels(md: ModelDeployment) -> dict[str, str]:
    """The user's pod labels first, so Berth's own can never be overridden by them."""
    return {**md.spec.pod_metadata.labels, **object_labels(md), VERSION_LABEL: md.spec.version}


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": md.name,
        "uid": md.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(
    md: ModelDeployment, name: str | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """Metadata of an object the ModelDeployment owns: by default the serving objects' name and labels."""
    metadata: dict[str, Any] = {
        "name": name or md.name,
        "namespace": md.namespace,
        "labels": object_labels(md) if labels is None else labels,
    }
    # Offline (`berth render` of a file) there is no uid yet; the operator always has one.
    if md.metadata.get("uid"):
        metadata["ownerReferences"] = [owner_reference(md)]
    return metadata


def endpoint_url(md: ModelDeployment, port: int) -> str:
    return f"http://{md.name}.{md.namespace}.svc:{port}/v1"
