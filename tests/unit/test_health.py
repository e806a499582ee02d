"""What GitOps tools conclude from the status the operator writes: kstatus (Flux, `kubectl wait`-style
tooling) and Argo CD's health check, whose Lua runs here in a real Lua 5.1 interpreter (Argo CD's
gopher-lua speaks 5.1). The statuses come from the operator's own status derivation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from berth_operator.api import ModelDeploymentStatus
from berth_operator.rollback import decide_rollback
from berth_operator.status import Snapshot, invalid_spec_status
from tests.unit.test_status import T0, T1, deployment, md_of, status_of

HEALTH = Path(__file__).resolve().parents[2] / "examples" / "argocd" / "argocd-cm-health.yaml"
LUA = yaml.safe_load(HEALTH.read_text())["data"]["resource.customizations.health.berth.dev_ModelDeployment"]


def kstatus(obj: dict[str, Any]) -> str:
    """kstatus's rules for a resource it has no special case for (sigs.k8s.io/cli-utils, status.Compute)."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    if generation is not None and status.get("observedGeneration") != generation:
        return "InProgress"
    conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
    if conditions.get("Reconciling") == "True":
        return "InProgress"
    if conditions.get("Stalled") == "True":
        return "Failed"
    return "Current"


def argo_health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime()

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value

    lua.globals().obj = table(obj)
    result = lua.execute(LUA)
    return result["status"], result["message"]


def resource(status: ModelDeploymentStatus | None, generation: int = 3) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "tiny", "generation": generation}}
    if status is not None:
        body["status"] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return body


SERVING = status_of(Snapshot(md_of(replicas=2), 3, deployment(2, 2, 2, 2, 2)))
ROLLING = status_of(Snapshot(md_of(replicas=2, version="v2"), 3, deployment(2, 3, 1, 2, 2)), SERVING, T1)
CREATING = status_of(Snapshot(md_of(), 3, None))
STUCK = {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                         "message": "RS timed out"}]}  # fmt: skip


def rolled_back() -> ModelDeploymentStatus:
    """v2 missed its deadline; the operator put v1's template back and v1 serves again."""
    good = md_of(replicas=2)
    previous = SERVING.model_copy(update={"last_good_spec": good.spec})
    bad = md_of(replicas=2, version="v2")
    decision = decide_rollback(bad.spec, None, previous, "ProgressDeadlineExceeded")
    previous = previous.model_copy(update={"failed_release": decision.failed_release})
    return status_of(Snapshot(good, 3, deployment(2, 2, 2, 2, 2), rolled_back_from=bad.spec), previous, T1)


CASES = {
    "no status yet": (None, "InProgress", "Progressing"),
    "creating": (CREATING, "InProgress", "Progressing"),
    "serving": (SERVING, "Current", "Healthy"),
    "rolling out": (ROLLING, "InProgress", "Progressing"),
    "deadline missed": (status_of(Snapshot(md_of(), 3, deployment(1, 1, 1, 0, 0, **STUCK))), "Failed", "Degraded"),
    "invalid spec": (invalid_spec_status(3, ["spec.gpus: must be 0, 1, 2, 4"], SERVING, T0), "Failed", "Degraded"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_kstatus_and_argo_cd_read_the_status_alike(case: str) -> None:
    status, expected_kstatus, expected_argo = CASES[case]
    obj = resource(status)
    assert kstatus(obj) == expected_kstatus
    health, message = argo_health(obj)
    assert health == expected_argo, message
    if status is not None and expected_argo != "Healthy":
        assert message.split(":")[0] in {c.reason for c in status.conditions}, "the message says why"


def test_an_unobserved_generation_is_progressing_whatever_the_conditions_say() -> None:
    obj = resource(SERVING, generation=4)
    assert kstatus(obj) == "InProgress"
    assert argo_health(obj) == ("Progressing", "Waiting for the Berth operator to observe generation 4")


def test_a_rollback_is_degraded_with_its_reason() -> None:
    obj = resource(rolled_back())
    assert kstatus(obj) == "Failed"
    health, message = argo_health(obj)
    assert health == "Degraded" and message.startswith("RolloutFailed:")
