"""The GPU-aware rollout planner, step by step, as tables."""

from __future__ import annotations

import pytest

from berth_operator.rollout_plan import Capacity, Fleet, Step, plan_step, resolve

GPU1 = 1


def step(
    desired: int, new: tuple[int, int], old: tuple[int, int], free: int, surge=1, unavailable=0, gpus=GPU1
) -> Step:
    return plan_step(desired, Fleet(*new), Fleet(*old), Capacity(gpus, free, detail="a=0, b=0"), surge, unavailable)


def simulate(desired: int, old: int, free: int, surge=1, unavailable=0, limit: int = 20) -> list[tuple[str, int, int]]:
    """Runs the planner against an ideal cluster: pods start at once and become ready one step later."""
    new_total = new_ready = 0
    old_total = old
    trace = []
    for _ in range(limit):
        decision = step(desired, (new_total, new_ready), (old_total, old_total), free, surge, unavailable)
        trace.append((decision.reason, decision.new, decision.old))
        if decision.reason in ("Complete", "InsufficientGPU"):
            break
        assert new_ready + old_total >= desired - resolve(unavailable, desired, False), trace
        free += (old_total - decision.old) - (decision.new - new_total)
        assert free >= 0, f"planned more GPUs than exist: {trace}"
        new_ready = new_total  # what started last step is ready now
        new_total, old_total = decision.new, decision.old
    return trace


def test_spare_gpus_surge_and_never_drop_below_desired_ready() -> None:
    trace = simulate(desired=2, old=2, free=4)
    assert trace[0][0] == "Surge" and trace[-1][0] == "Complete"
    assert all(reason != "Replace" for reason, _, _ in trace)


def test_full_cluster_replaces_one_at_a_time_when_allowed() -> None:
    trace = simulate(desired=2, old=2, free=0, unavailable=1)
    assert trace[0] == ("Replace", 0, 1)
    assert trace[-1][0] == "Complete"


def test_full_cluster_with_max_unavailable_zero_is_reported_not_deadlocked() -> None:
    decision = step(desired=2, new=(0, 0), old=(2, 2), free=0)
    assert decision.blocked and (decision.new, decision.old) == (0, 2), "nothing is deleted"
    assert "needs 1 nvidia.com/gpu" in decision.message and "maxUnavailable 0" in decision.message


def test_new_replicas_starting_are_waited_for() -> None:
    assert step(desired=2, new=(1, 0), old=(2, 2), free=0).reason == "Waiting"


def test_unready_old_replicas_go_first() -> None:
    decision = step(desired=2, new=(0, 0), old=(2, 1), free=0)
    assert (decision.reason, decision.new, decision.old) == ("ScaleDown", 0, 1), "its GPUs take the next new replica"


def test_cpu_replicas_are_not_limited_by_gpus() -> None:
    assert step(desired=3, new=(0, 0), old=(3, 3), free=0, gpus=0, surge="50%").new == 2


@pytest.mark.parametrize(
    ("value", "up", "expected"), [(1, True, 1), ("25%", True, 1), ("25%", False, 0), ("50%", False, 2)]
)
def test_percentages_round_like_a_deployment(value, up, expected) -> None:
    assert resolve(value, 4 if value == "50%" else 3, up) == expected
