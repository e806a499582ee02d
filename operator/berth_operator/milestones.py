"""Which Events a status change deserves: rollouts started and finished, readiness and trouble. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from berth_operator.api import Condition, ModelDeploymentStatus
from berth_operator.conditions import DEGRADED, READY, find


@dataclass(frozen=True)
class Milestone:
    type: str  # Normal | Warning
    reason: str
    message: str


def milestones(before: ModelDeploymentStatus, after: ModelDeploymentStatus) -> list[Milestone]:
    found: list[Milestone] = []
    if after.rollout_version and after.rollout_version != before.rollout_version:
        found.append(Milestone("Normal", "RolloutStarted", f"Rolling out version {after.rollout_version}"))
    if after.serving_version and after.serving_version != before.serving_version and not after.rollout_version:
        found.append(Milestone("Normal", "RolloutComplete", f"Version {after.serving_version} is serving"))
    old_ready, new_ready = find(before.conditions, READY), find(after.conditions, READY)
    if new_ready and (old_ready is None or old_ready.status != new_ready.status):
        if new_ready.status == "True":
            found.append(Milestone("Normal", "Ready", new_ready.message))
        elif old_ready is not None:
            found.append(Milestone("Warning", "NotReady", f"{new_ready.reason}: {new_ready.message}"))
    old_degraded, new_degraded = find(before.conditions, DEGRADED), find(after.conditions, DEGRADED)
    if new_degraded and new_degraded.status == "True" and not _same(old_degraded, new_degraded):
        found.append(Milestone("Warning", new_degraded.reason, new_degraded.message))
    return found


def _same(old: Condition | None, new: Condition) -> bool:
    return old is not None and (old.status, old.reason) == (new.status, new.reason)
