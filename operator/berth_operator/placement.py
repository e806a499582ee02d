"""Where a ModelDeployment's pods run: spec.scheduling as pod spec fields, for its serving pods and for its
staging Jobs alike (a Job that ignored it could land on a node the model's pods may not use: another network
zone, a pool that cannot mount the cache). Pure."""

from __future__ import annotations

from typing import Any

from berth_operator.api import Scheduling


def placement(scheduling: Scheduling, extra_tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """nodeSelector, tolerations (the spec's, then extra_tolerations), affinity and priorityClassName, each only
    when set."""
    fields: dict[str, Any] = {}
    if scheduling.node_selector:
        fields["nodeSelector"] = dict(scheduling.node_selector)
    tolerations = [*scheduling.tolerations, *(extra_tolerations or [])]
    if tolerations:
        fields["tolerations"] = tolerations
    if scheduling.affinity:
        fields["affinity"] = scheduling.affinity
    if scheduling.priority_class_name:
        fields["priorityClassName"] = scheduling.priority_class_name
    return fields
