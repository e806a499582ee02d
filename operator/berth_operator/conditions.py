"""Status conditions the Kubernetes way: keyed by type, lastTransitionTime moving only on a flip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from berth_operator.api import Condition

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
# kstatus's "abnormal-true" pair, which Flux's health checks and `kubectl wait` tooling read without knowing
# the kind: Reconciling=True is InProgress, Stalled=True is Failed, neither (with a current
# observedGeneration) is Current.
RECONCILING = "Reconciling"
STALLED = "Stalled"
ORDER = (READY, PROGRESSING, DEGRADED, RECONCILING, STALLED)


@dataclass(frozen=True)
class Problem:
    """Something that keeps the deployment from serving as asked, with a CamelCase reason."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    """A condition as the reconcile computed it, before its timestamps are settled."""

    type: str
    status: bool
    reason: str
    message: str


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def settle(observed: list[Observed], previous: list[Condition], generation: int, now: str) -> list[Condition]:
    """Turns observations into conditions, keeping each lastTransitionTime unless its status flipped."""
    before = {c.type: c for c in previous}
    settled = []
    for item in sorted(observed, key=lambda o: ORDER.index(o.type) if o.type in ORDER else len(ORDER)):
        status = "True" if item.status else "False"
        old = before.get(item.type)
        since = old.last_transition_time if old and old.status == status else now
        settled.append(
            Condition(
                type=item.type,
                status=status,
                reason=item.reason,
                message=item.message,
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    return settled


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def with_kstatus(observed: list[Observed]) -> list[Observed]:
    """Adds Reconciling and Stalled, derived from Ready, Progressing and Degraded: work under way is
    Reconciling; a problem with nothing under way (rolled back, held, invalid) needs a person: Stalled."""
    by_type = {o.type: o for o in observed}
    ready, progressing, degraded = by_type[READY], by_type[PROGRESSING], by_type[DEGRADED]
    reconciling = progressing.status or (not ready.status and not degraded.status)
    source = progressing if progressing.status else ready
    stalled = degraded.status and not reconciling
    return [
        *observed,
        Observed(RECONCILING, reconciling, source.reason if reconciling else "Reconciled",
                 source.message if reconciling else "no rollout or staging in progress"),
        Observed(STALLED, stalled, degraded.reason if stalled else "NotStalled",
                 degraded.message if stalled else "nothing needs a person"),
    ]  # fmt: skip
