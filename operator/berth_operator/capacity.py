"""Which nodes a pod may use and how many GPUs are free on them, as the scheduler would count them:
allocatable minus the requests of the pods bound there. Pure: nodes and pods in, numbers out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TERMINAL_PHASES = ("Succeeded", "Failed")


def _quantity(value: Any) -> int:
    """Whole-device extended resources (GPUs) are plain integers."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def pod_request(pod_spec: dict[str, Any], resource: str) -> int:
    """A pod's request of an extended resource: its containers' sum, or its largest init container's
    if that is more (requests of extended resources equal their limits when only limits are set)."""

    def of(container: dict[str, Any]) -> int:
        resources = container.get("resources") or {}
        value = (resources.get("requests") or {}).get(resource, (resources.get("limits") or {}).get(resource, 0))
        return _quantity(value)

    main = sum(of(c) for c in pod_spec.get("containers") or [])
    init = max((of(c) for c in pod_spec.get("initContainers") or []), default=0)
    return max(main, init)


def _tolerates(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint.get("key"):
                return True
        elif toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expression_matches(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
    value = labels.get(key)
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            number, bound = int(value), int(values[0])
        except ValueError:
            return False
        return number > bound if op == "Gt" else number < bound
    return False


def _required_affinity_matches(pod_spec: dict[str, Any], labels: dict[str, str]) -> bool:
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {})  # fmt: skip
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    # Terms are ORed, a term's expressions ANDed.
    return any(all(_expression_matches(e, labels) for e in term.get("matchExpressions") or []) for term in terms)


def eligible(node: dict[str, Any], pod_spec: dict[str, Any]) -> bool:
    """The pod's nodeSelector, required node affinity and tolerations allow this schedulable node."""
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    if not _required_affinity_matches(pod_spec, labels):
        return False
    hard = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
    return all(_tolerates(taint, pod_spec.get("tolerations") or []) for taint in hard)


@dataclass(frozen=True)
class GpuCapacity:
    per_replica: int
    resource: str
    free: dict[str, int]  # free GPUs per eligible node
    allocatable: dict[str, int]  # allocatable GPUs per eligible node

    @property
    def free_slots(self) -> int:
        """Replicas of this size that would fit now (a replica's GPUs must all be on one node)."""
        return sum(count // self.per_replica for count in self.free.values()) if self.per_replica else 0

    @property
    def largest(self) -> int:
        return max(self.allocatable.values(), default=0)

    def describe(self, counts: dict[str, int] | None = None) -> str:
        shown = self.free if counts is None else counts
        return ", ".join(f"{name}={count}" for name, count in sorted(shown.items())) or "no eligible nodes"


def gpu_capacity(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], pod_spec: dict[str, Any], gpus: int, resource: str
) -> GpuCapacity:
    """pods: every pod in the cluster that may hold GPUs (terminal and unbound ones are ignored)."""
    allocatable = {
        node["metadata"]["name"]: _quantity(((node.get("status") or {}).get("allocatable") or {}).get(resource, 0))
        for node in nodes
        if eligible(node, pod_spec)
    }
    used = dict.fromkeys(allocatable, 0)
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name in used and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            used[node_name] += pod_request(pod["spec"], resource)
    free = {name: max(0, allocatable[name] - used[name]) for name in allocatable}
    return GpuCapacity(gpus, resource, free, allocatable)
