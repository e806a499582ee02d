"""Status conditions the Kubernetes way: keyed by type, lastTransitionTime moving only on a flip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from berth_operator.api import Condition

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
ORDER = (READY, PROGRESSING, DEGRADED)


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
