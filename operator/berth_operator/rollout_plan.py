"""GPU-aware rollouts: before each step of a rollout, the Deployment's surge and unavailability are set
from the GPUs actually free on the nodes its pods may use. Pure: counts and capacity in, a step out.

The rule:
- a new replica fits (the free GPUs plus those this ModelDeployment's own pods hold cover one more
  replica): surge, with nothing unavailable — never fewer ready replicas than desired;
- none fits: replace one at a time (maxSurge 0, maxUnavailable as allowed), so an old replica's GPUs
  take the next new one instead of a surge pod waiting forever;
- the settings forbid both (no spare GPU and maxUnavailable 0): hold the running version — nothing is
  deleted, no Pending pod is created — and report InsufficientGPU with the numbers.
The Deployment controller then does each step; every pod event re-plans with fresh numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from berth_operator.api import ModelDeploymentSpec
from berth_operator.capacity import GpuCapacity
from berth_operator.conditions import Problem


@dataclass(frozen=True)
class Strategy:
    max_surge: int | str
    max_unavailable: int | str


@dataclass(frozen=True)
class RolloutStep:
    strategy: Strategy | None  # None: keep the Deployment's current one
    hold: bool = False  # keep the running release: do not apply the new pod template yet
    progressing: bool = False  # while held: whether it is moving by itself (staging) or stuck
    problem: Problem | None = None
    reason: str = "Steady"  # Steady | Surge | Replace | InsufficientGPU | Staging | StagingFailed
    message: str = ""


def resolve(value: int | str, desired: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable as counts: a percentage of desired, rounded like a Deployment's
    (surge up, unavailable down)."""
    if isinstance(value, int):
        return value
    share = desired * int(value.rstrip("%")) / 100
    return math.ceil(share) if round_up else math.floor(share)


def plan_rollout(
    spec: ModelDeploymentSpec,
    rolling: bool,
    started: bool,
    own_bound: int,
    capacity: GpuCapacity | None,
) -> RolloutStep:
    """rolling: old pods exist or the Deployment runs another release; started: it already runs this
    one; own_bound: this ModelDeployment's pods bound to nodes (their GPUs come back to it)."""
    desired = spec.replicas
    surge = resolve(spec.rollout.max_surge, desired, round_up=True)
    unavailable = resolve(spec.rollout.max_unavailable, desired, round_up=False)
    if not rolling:
        return RolloutStep(None if started else Strategy(max(surge, 1), 0))
    # What this ModelDeployment could hold: the GPUs its own bound pods have plus the free ones.
    room = surge if spec.gpus == 0 or capacity is None else max(0, own_bound + capacity.free_slots - desired)
    if min(surge, room) >= 1:
        step = min(surge, room)
        return RolloutStep(Strategy(step, 0), reason="Surge", message=f"surging {step} replica(s) on free GPUs")
    if unavailable >= 1:
        why = "no free GPUs for a surge replica" if surge else "maxSurge is 0"
        return RolloutStep(Strategy(0, unavailable), reason="Replace", message=f"{why}: replacing one at a time")
    assert capacity is not None  # CPU rollouts always surge: the API forbids maxSurge 0 with maxUnavailable 0
    message = (
        f"a new replica needs {spec.gpus} {capacity.resource} on one node but none is free on the eligible nodes "
        f"(free: {capacity.describe()}), and rollout.maxUnavailable {spec.rollout.max_unavailable} forbids "
        "replacing a running replica first; the running version keeps serving"
    )
    return RolloutStep(None, hold=not started, problem=Problem("InsufficientGPU", message), reason="InsufficientGPU",
                       message=message)  # fmt: skip
