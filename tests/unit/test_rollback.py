"""Automatic rollback decisions. Pure."""

from __future__ import annotations

from berth_operator.api import ModelDeploymentStatus, release_key
from berth_operator.rollback import decide_rollback
from berth_operator.validation import parse_spec
from tests.support.manifests import model_deployment


def spec(**changes):
    return parse_spec(model_deployment(**changes)["spec"])


GOOD, BAD = spec(version="v1"), spec(version="v2")


def test_a_missed_deadline_rolls_back_to_the_last_good_release() -> None:
    decision = decide_rollback(BAD, None, ModelDeploymentStatus(last_good_spec=GOOD), "ProgressDeadlineExceeded")
    assert decision.starting and decision.failed_release == release_key(BAD)
    assert decision.problem.reason == "RolloutFailed" and "rolling back to version v1" in decision.problem.message


def test_no_rollback_without_a_good_release_or_a_deadline() -> None:
    assert decide_rollback(BAD, None, ModelDeploymentStatus(), "ProgressDeadlineExceeded").problem is None
    assert decide_rollback(BAD, None, ModelDeploymentStatus(last_good_spec=GOOD), "RollingOut").problem is None
    same = ModelDeploymentStatus(last_good_spec=BAD)
    assert decide_rollback(BAD, None, same, "ProgressDeadlineExceeded").problem is None, "nothing older to go back to"


def test_while_rolled_back_the_failure_stays_reported() -> None:
    decision = decide_rollback(GOOD, BAD, ModelDeploymentStatus(last_good_spec=GOOD), "RolloutComplete")
    assert not decision.starting and decision.failed_release == release_key(BAD)
    assert (
        "rolled back to version v1" in decision.problem.message and "change it to try again" in decision.problem.message
    )


def test_scaling_is_not_a_new_release() -> None:
    assert release_key(spec(replicas=1)) == release_key(spec(replicas=5))
    assert release_key(spec(version="v1")) != release_key(spec(version="v2"))


def test_fields_left_at_their_defaults_do_not_make_a_new_release() -> None:
    """So an operator upgrade that adds defaulted API fields does not roll every ModelDeployment."""
    explicit = spec(runtime={"selfTest": {"enabled": True, "prompt": "Hello"}}, rollout={"maxUnavailable": 1})
    assert release_key(explicit) == release_key(spec())
    assert release_key(spec(runtime={"selfTest": {"enabled": False}})) != release_key(spec())
