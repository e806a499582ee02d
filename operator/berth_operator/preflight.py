"""What the schema cannot catch, checked against the cluster's state before pods are waited on:
a missing volume or secret, more GPUs per replica than any eligible node has. Pure."""

from __future__ import annotations

from berth_operator.api import ModelDeployment
from berth_operator.capacity import GpuCapacity
from berth_operator.conditions import Problem
from berth_operator.sources import model_mount


def gpu_problem(md: ModelDeployment, capacity: GpuCapacity | None) -> Problem | None:
    """A replica needing more GPUs than the largest eligible node has can never be scheduled."""
    if capacity is None or md.spec.gpus == 0 or capacity.largest >= md.spec.gpus:
        return None
    return Problem(
        "InsufficientGPU",
        f"each replica needs {md.spec.gpus} {capacity.resource} but the largest eligible node has "
        f"{capacity.largest} allocatable ({capacity.describe(capacity.allocatable)})",
    )


def preflight(
    md: ModelDeployment, capacity: GpuCapacity | None, claim_exists: bool | None, secret_exists: bool | None
) -> list[Problem]:
    """claim_exists / secret_exists are None when the spec names no claim / secret."""
    problems = []
    claim = model_mount(md.spec.model, md.name).claim
    if claim and claim_exists is False:
        problems.append(
            Problem("ModelVolumeNotFound", f"PersistentVolumeClaim {claim} not found in namespace {md.namespace}")
        )
    secret = md.spec.model.credentials_secret
    if secret and secret_exists is False:
        problems.append(Problem("CredentialsSecretNotFound", f"Secret {secret} not found in namespace {md.namespace}"))
    gpu = gpu_problem(md, capacity)
    if gpu:
        problems.append(gpu)
    return problems
