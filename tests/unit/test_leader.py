"""Who may hold the operator's Lease, and when it changes hands. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from berth_operator.leader import LEASE_SECONDS, claim, micro_time

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def lease(holder: str | None, renewed: datetime, transitions: int = 0) -> dict:
    spec = {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS, "acquireTime": micro_time(renewed),
            "renewTime": micro_time(renewed), "leaseTransitions": transitions}  # fmt: skip
    return {"metadata": {"name": "berth", "resourceVersion": "7"}, "spec": spec}


def test_a_missing_or_released_lease_is_taken() -> None:
    assert claim(None, "a", NOW)["holderIdentity"] == "a"
    assert claim(lease(None, NOW - timedelta(seconds=1)), "a", NOW)["holderIdentity"] == "a"


def test_another_holders_lease_is_respected_until_it_expires() -> None:
    fresh = lease("b", NOW - timedelta(seconds=LEASE_SECONDS - 1), transitions=3)
    assert claim(fresh, "a", NOW) is None
    stale = lease("b", NOW - timedelta(seconds=LEASE_SECONDS + 1), transitions=3)
    taken = claim(stale, "a", NOW)
    assert taken["holderIdentity"] == "a" and taken["leaseTransitions"] == 4
    assert taken["acquireTime"] == taken["renewTime"] == micro_time(NOW)


def test_the_holder_renews_without_a_transition() -> None:
    mine = lease("a", NOW - timedelta(seconds=5), transitions=2)
    renewed = claim(mine, "a", NOW)
    assert renewed["renewTime"] == micro_time(NOW) and renewed["acquireTime"] == mine["spec"]["acquireTime"]
    assert renewed["leaseTransitions"] == 2
