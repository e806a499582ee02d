"""What the schema cannot catch, checked against the cluster's state before pods are waited on:
a missing volume or secret, more GPUs per replica than any eligible node has. Pure."""

from __future__ import annotations

from typing import Any

from berth_operator.api import ModelDeployment
from berth_operator.conditions import Problem
from berth_operator.sources import model_mount


def _eligible(node: dict[str, Any], node_selector: dict[str, str]) -> bool:
    labels = node["metadata"].get("labels") or {}
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    return all(labels.get(key) == value for key, value in node_selector.items())


def gpu_problem(md: ModelDeployment, nodes: list[dict[str, Any]]) -> Problem | None:
    """A replica needing more GPUs than the largest eligible node has can never be scheduled."""
    gpus, resource = md.spec.gpus, md.spec.gpu_resource_name
    if gpus == 0:
        return None
    eligible = [n for n in nodes if _eligible(n, md.spec.scheduling.node_selector)]
    offers = {
        n["metadata"]["name"]: int((n.get("status") or {}).get("allocatable", {}).get(resource, 0)) for n in eligible
    }
    largest = max(offers.values(), default=0)
    if largest >= gpus:
        return None
    where = ", ".join(f"{name}={count}" for name, count in sorted(offers.items())) or "no eligible nodes"
    return Problem(
        "InsufficientGPU",
        f"each replica needs {gpus} {resource} but the largest eligible node has {largest} allocatable ({where})",
    )


def preflight(
    md: ModelDeployment, nodes: list[dict[str, Any]], claim_exists: bool | None, secret_exists: bool | None
) -> list[Problem]:
    """claim_exists / secret_exists are None when the spec names no claim / secret."""
    problems = []
    claim = model_mount(md.spec.model).claim
    if claim and claim_exists is False:
        problems.append(
            Problem("ModelVolumeNotFound", f"PersistentVolumeClaim {claim} not found in namespace {md.namespace}")
        )
    secret = md.spec.model.credentials_secret
    if secret and secret_exists is False:
        problems.append(Problem("CredentialsSecretNotFound", f"Secret {secret} not found in namespace {md.namespace}"))
    gpu = gpu_problem(md, nodes)
    if gpu:
        problems.append(gpu)
    return problems
