"""GPU-aware rollout planning: one step of moving replicas from the old version(s) to the new one.
Pure: counts and free capacity in, the next target counts out (issue 5 wires it into the reconcile).

The rule, per step:
- when a new replica fits on the GPUs the pods may use, surge: add new replicas (up to maxSurge above
  the desired count) and keep every old one until new ones are ready — never fewer ready replicas
  than desired;
- when none fits, replace one at a time: remove one old replica (if maxUnavailable allows going one
  below the desired count) so that its GPUs take the next new replica;
- when the settings forbid both (no spare GPU and maxUnavailable 0), say so — InsufficientGPU with
  the numbers — instead of leaving a Pending pod to speak for itself;
- old replicas leave as new ones become ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Fleet:
    """The live (not terminating) replicas of one side of a rollout."""

    total: int
    ready: int

    @property
    def starting(self) -> int:
        return self.total - self.ready


@dataclass(frozen=True)
class Capacity:
    gpus_per_replica: int
    free_slots: int  # replicas of this size that fit on eligible nodes now; ignored on CPU
    gpu_resource: str = "nvidia.com/gpu"
    detail: str = ""  # free GPUs per eligible node, for messages


@dataclass(frozen=True)
class Step:
    new: int  # target replicas of the new version
    old: int  # target replicas of the old versions, together
    reason: str  # Complete | Surge | Replace | ScaleDown | Waiting | InsufficientGPU
    message: str

    @property
    def blocked(self) -> bool:
        return self.reason == "InsufficientGPU"


def resolve(value: int | str, desired: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable as counts: a percentage of desired, rounded like a Deployment's
    (surge up, unavailable down)."""
    if isinstance(value, int):
        return value
    share = desired * int(value.rstrip("%")) / 100
    return math.ceil(share) if round_up else math.floor(share)


def plan_step(
    desired: int, new: Fleet, old: Fleet, capacity: Capacity, max_surge: int | str, max_unavailable: int | str
) -> Step:
    surge = resolve(max_surge, desired, round_up=True)
    unavailable = resolve(max_unavailable, desired, round_up=False)
    if old.total == 0:
        if new.total == desired and new.ready == desired:
            return Step(desired, 0, "Complete", f"{desired} replicas of the new version ready")
        if new.total != desired:
            return Step(desired, 0, "ScaleDown" if new.total > desired else "Surge", f"scaling to {desired} replicas")
        return Step(desired, 0, "Waiting", f"{new.ready} of {desired} replicas ready")

    # Old replicas go as new ones become ready, keeping `desired` ready; unready old ones go first.
    removable = min(old.total, max(0, new.ready + old.ready - desired) + old.starting)
    old_target = old.total - removable
    if new.total >= desired:
        if removable:
            return Step(new.total, old_target, "ScaleDown", f"{removable} old replicas replaced by ready new ones")
        return Step(new.total, old.total, "Waiting", f"{new.starting} new replicas starting")

    room = desired + surge - (new.total + old_target)
    fits = room if capacity.gpus_per_replica == 0 else min(room, capacity.free_slots)
    if fits > 0:
        add = min(fits, desired - new.total)
        return Step(new.total + add, old_target, "Surge", f"adding {add} new replicas ({new.ready} of {desired} ready)")
    if removable:
        return Step(new.total, old_target, "ScaleDown", f"{removable} old replicas replaced by ready new ones")
    if new.starting:
        return Step(new.total, old.total, "Waiting", f"{new.starting} new replicas starting")
    # Nothing fits and no new replica is on its way: free a GPU slot by replacing one at a time.
    ready_after = new.ready + old.ready - 1
    if ready_after >= desired - unavailable:
        return Step(new.total, old.total - 1, "Replace",
                    f"no free {capacity.gpu_resource} for a surge replica: replacing one old replica")  # fmt: skip
    needs = f"{capacity.gpus_per_replica} {capacity.gpu_resource}"
    return Step(
        new.total,
        old.total,
        "InsufficientGPU",
        f"a new replica needs {needs} but no eligible node has them free ({capacity.detail or 'none free'}), "
        f"and maxUnavailable {max_unavailable} forbids replacing an old replica first",
    )
