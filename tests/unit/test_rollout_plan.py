"""The GPU-aware rollout planner and the capacity it reads, as tables, and one simulated cluster."""

from __future__ import annotations

from typing import Any

import pytest

from berth_operator.capacity import eligible, gpu_capacity, pod_request
from berth_operator.rollout_plan import RolloutStep, Strategy, plan_rollout, resolve
from tests.unit.test_status import md_of, node


def pod(node_name: str | None, gpus: int, phase: str = "Running") -> dict[str, Any]:
    container = {"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}
    return {"spec": {"nodeName": node_name, "containers": [container]}, "status": {"phase": phase}}


def capacity(free: dict[str, int], gpus: int = 1):
    nodes = [node(name, count) for name, count in free.items()]
    return gpu_capacity(nodes, [], {}, gpus, "nvidia.com/gpu")


def plan(free: dict[str, int], replicas=2, gpus=1, own_bound=2, started=False, **rollout: Any) -> RolloutStep:
    md = md_of(replicas=replicas, gpus=gpus, rollout=rollout)
    return plan_rollout(md.spec, rolling=True, started=started, own_bound=own_bound, capacity=capacity(free, gpus))


def test_a_replica_that_fits_surges_with_nothing_unavailable() -> None:
    step = plan({"a": 1, "b": 3})
    assert (step.reason, step.strategy, step.hold) == ("Surge", Strategy(1, 0), False)
    assert plan({"a": 4}, maxSurge=3).strategy == Strategy(3, 0)
    assert plan({"a": 1}, maxSurge=3).strategy == Strategy(1, 0), "surge only what the free GPUs hold"


def test_a_full_cluster_replaces_one_at_a_time() -> None:
    step = plan({"a": 0, "b": 0})
    assert (step.reason, step.strategy, step.problem) == ("Replace", Strategy(0, 1), None)


def test_gpus_split_across_nodes_do_not_make_a_slot() -> None:
    assert plan({"a": 1, "b": 1}, gpus=2).reason == "Replace"
    assert plan({"a": 2}, gpus=2).reason == "Surge"


def test_own_bound_pods_count_as_room_for_the_rollout() -> None:
    """Mid-rollout: a surge pod already bound keeps its slot even when nothing else is free."""
    assert plan({"a": 0}, own_bound=3, started=True).strategy == Strategy(1, 0)


def test_max_unavailable_zero_on_a_full_cluster_holds_and_reports_the_numbers() -> None:
    step = plan({"kwok-gpu-a": 0, "kwok-gpu-b": 0}, maxUnavailable=0)
    assert step.hold and step.strategy is None and step.problem is not None
    assert step.problem.reason == "InsufficientGPU"
    assert "needs 1 nvidia.com/gpu" in step.message and "kwok-gpu-a=0, kwok-gpu-b=0" in step.message
    assert "maxUnavailable 0" in step.message
    # Once the new template runs, holding is no longer possible: it is reported, not reverted.
    assert not plan({"a": 0}, maxUnavailable=0, started=True).hold


def test_steady_state_keeps_the_live_strategy_and_cpu_always_surges() -> None:
    md = md_of(replicas=2, gpus=0)
    assert plan_rollout(md.spec, rolling=False, started=True, own_bound=2, capacity=None).strategy is None
    assert plan_rollout(md.spec, rolling=True, started=False, own_bound=2, capacity=None).strategy == Strategy(1, 0)
    replace = md_of(replicas=2, gpus=0, rollout={"maxSurge": 0, "maxUnavailable": 1})
    assert plan_rollout(replace.spec, rolling=True, started=False, own_bound=2, capacity=None).reason == "Replace"


@pytest.mark.parametrize(("value", "up", "expected"), [(1, True, 1), ("25%", True, 1), ("25%", False, 0),
                                                      ("50%", False, 1), ("100%", True, 3)])  # fmt: skip
def test_percentages_round_like_a_deployment(value, up, expected) -> None:
    assert resolve(value, 3, up) == expected


def test_capacity_subtracts_bound_unfinished_pods_on_eligible_nodes_only() -> None:
    nodes = [
        node("a", 4),
        node("b", 2, labels={"pool": "small"}),
        node("c", 8, taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
    ]
    pods = [pod("a", 1), pod("a", 2, phase="Succeeded"), pod(None, 4), pod("b", 2)]
    found = gpu_capacity(nodes, pods, {}, 1, "nvidia.com/gpu")
    assert found.free == {"a": 3, "b": 0} and found.free_slots == 3 and found.largest == 4
    tolerating = {"tolerations": [{"key": "dedicated", "operator": "Exists"}], "nodeSelector": {"pool": "small"}}
    assert gpu_capacity(nodes, pods, tolerating, 1, "nvidia.com/gpu").free == {"b": 0}


def test_required_node_affinity_limits_the_eligible_nodes() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]},
        {"matchExpressions": [{"key": "mem", "operator": "Gt", "values": ["80"]}]},
    ]}}}  # fmt: skip
    spec = {"affinity": affinity}
    assert eligible(node("x", 1, labels={"gpu": "h100"}), spec)
    assert eligible(node("y", 1, labels={"mem": "141"}), spec)
    assert not eligible(node("z", 1, labels={"gpu": "a10", "mem": "24"}), spec)
    assert not eligible(node("u", 1, unschedulable=True), {})


def test_init_containers_request_their_largest() -> None:
    spec = {"containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}],
            "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}]}  # fmt: skip
    assert pod_request(spec, "nvidia.com/gpu") == 2


def simulate(replicas: int, free: int, **rollout: Any) -> tuple[list[str], int]:
    """The planner driving an idealised Deployment controller on one node: a pod binds when its GPU is
    free and is ready one tick later; a removed pod frees its GPU one tick later. Returns the reasons
    planned and the fewest ready replicas seen."""
    md = md_of(replicas=replicas, gpus=1, rollout=rollout)
    old_ready, new_bound, new_ready, new_pending, freeing, gpus_free = replicas, 0, 0, 0, 0, free
    reasons, fewest = [], replicas
    for _ in range(50):
        if new_ready == replicas and old_ready == 0:
            return reasons, fewest
        own = old_ready + new_bound + new_ready
        step = plan_rollout(md.spec, True, True, own, capacity({"n": gpus_free}))
        reasons.append(step.reason)
        if step.hold or step.strategy is None:
            return reasons, fewest
        surge, unavailable = (resolve(v, replicas, up) for v, up in
                              ((step.strategy.max_surge, True), (step.strategy.max_unavailable, False)))  # fmt: skip
        gpus_free += freeing
        freeing = 0
        new_ready += new_bound  # bound last tick: ready now
        new_bound = 0
        new_total = new_ready + new_pending
        scale_up = max(0, min(replicas, replicas + surge - old_ready) - new_total)
        new_pending += scale_up
        removable = max(0, min(old_ready, old_ready + new_ready - (replicas - unavailable)))
        old_ready -= removable
        freeing += removable
        binding = min(new_pending, gpus_free)
        new_pending -= binding
        new_bound += binding
        gpus_free -= binding
        fewest = min(fewest, old_ready + new_ready)
    raise AssertionError(f"no convergence: {reasons}")


def test_simulated_rollouts_converge_without_deadlock() -> None:
    reasons, fewest = simulate(replicas=3, free=2)
    assert set(reasons) == {"Surge"} and fewest == 3, "spare GPUs: surge and never fewer ready than desired"
    reasons, fewest = simulate(replicas=3, free=0)
    assert reasons[0] == "Replace" and fewest == 2, "full cluster: one at a time"
    reasons, _ = simulate(replicas=3, free=0, maxUnavailable=0)
    assert reasons == ["InsufficientGPU"]
