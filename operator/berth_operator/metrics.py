"""Prometheus metrics about the operator itself."""

from __future__ import annotations

import threading
from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram

from berth_operator.api import Condition

RECONCILES = Counter("berth_operator_reconciles_total", "ModelDeployment reconciles by result.", ["result"])
RECONCILE_SECONDS = Histogram(
    "berth_operator_reconcile_duration_seconds",
    "Time one reconcile of a ModelDeployment took.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MANAGED = Gauge(
    "berth_operator_managed_objects",
    "ModelDeployments managed, by condition type and status.",
    ["condition", "status"],
)
LAST_EVENT_AGE = Gauge(
    "berth_operator_seconds_since_last_watch_event", "Seconds since the operator last received a watch event."
)

_conditions: dict[tuple[str, str], list[tuple[str, str]]] = {}
_lock = threading.Lock()


def record_conditions(key: tuple[str, str], conditions: list[Condition] | None) -> None:
    """Remembers one ModelDeployment's conditions (None: it is gone) and refreshes the gauge."""
    with _lock:
        if conditions is None:
            _conditions.pop(key, None)
        else:
            _conditions[key] = [(c.type, c.status) for c in conditions]
        counts = Tally(pair for pairs in _conditions.values() for pair in pairs)
        for condition, status in {
            *counts,
            *((c, s) for c in ("Ready", "Progressing", "Degraded") for s in ("True", "False")),
        }:
            MANAGED.labels(condition, status).set(counts.get((condition, status), 0))
