"""Automatic rollback: a release that does not become available within its progress deadline is
replaced by the last release that did, without touching the user's spec. It stays rolled back until
the spec names a different release (scaling alone does not retry it). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from berth_operator.api import HistoryEntry, ModelDeploymentSpec, ModelDeploymentStatus, release_key
from berth_operator.conditions import Problem


@dataclass(frozen=True)
class Rollback:
    problem: Problem | None = None
    failed_release: str | None = None
    starting: bool = False  # decided in this reconcile: the failed release's entry is closed as RolledBack

    def mark(self, history: list[HistoryEntry], now: str) -> list[HistoryEntry]:
        if not self.starting or not history:
            return history
        return [*history[:-1], history[-1].model_copy(update={"outcome": "RolledBack", "finished": now})]


def decide_rollback(
    spec: ModelDeploymentSpec,
    rolled_back_from: ModelDeploymentSpec | None,
    previous: ModelDeploymentStatus,
    progress_reason: str,
) -> Rollback:
    """spec is what is deployed now; rolled_back_from the user's failed spec while a rollback serves."""
    if rolled_back_from is not None:
        message = (f"version {rolled_back_from.version} did not become available in time; rolled back to version "
                   f"{spec.version}. The spec is left as written: change it to try again")  # fmt: skip
        return Rollback(Problem("RolloutFailed", message), release_key(rolled_back_from))
    good = previous.last_good_spec
    if progress_reason != "ProgressDeadlineExceeded" or good is None or release_key(good) == release_key(spec):
        return Rollback()
    message = (f"version {spec.version} did not become available within {spec.rollout.progress_deadline_seconds}s; "
               f"rolling back to version {good.version}")  # fmt: skip
    return Rollback(Problem("RolloutFailed", message), release_key(spec), starting=True)
