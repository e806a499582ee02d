"""status.history and what `berth status` / `berth history` make of a ModelDeployment. Pure."""

from __future__ import annotations

from berth_operator import views
from berth_operator.history import update_history
from berth_operator.validation import parse_spec
from tests.support.manifests import model_deployment


def spec(**changes):
    return parse_spec(model_deployment(**changes)["spec"])


def test_a_new_version_opens_an_entry_and_completion_closes_it() -> None:
    history = update_history([], spec(), "img:1", "Creating", "t0")
    assert [(e.version, e.outcome, e.started) for e in history] == [("2026-11-01", "Progressing", "t0")]
    history = update_history(history, spec(), "img:1", "RolloutComplete", "t1")
    assert (history[-1].outcome, history[-1].finished) == ("Succeeded", "t1")
    history = update_history(history, spec(), "img:1", "Scaling", "t2")
    assert len(history) == 1 and history[-1].finished == "t1", "scaling is not a new deployment"


def test_an_unfinished_version_replaced_by_another_is_superseded() -> None:
    history = update_history([], spec(), "img:1", "RollingOut", "t0")
    history = update_history(history, spec(version="v2"), "img:1", "RollingOut", "t1")
    assert [(e.version, e.outcome) for e in history] == [("2026-11-01", "Superseded"), ("v2", "Progressing")]


def test_deadline_exceeded_fails_the_version_and_the_history_is_bounded() -> None:
    history = update_history([], spec(), "img:1", "ProgressDeadlineExceeded", "t0")
    assert history[-1].outcome == "Failed"
    for n in range(5):
        history = update_history(
            history, spec(version=f"v{n}", revisionHistoryLimit=3), "img:1", "RolloutComplete", "t"
        )
    assert [e.version for e in history] == ["v2", "v3", "v4"]


def test_image_or_quantization_change_is_a_new_entry_of_the_same_version() -> None:
    history = update_history([], spec(), "img:1", "RolloutComplete", "t0")
    history = update_history(history, spec(quantization="int8"), "img:1", "RollingOut", "t1")
    assert [(e.quantization, e.outcome) for e in history] == [("none", "Succeeded"), ("int8", "Progressing")]


def md(generation: int, observed: int, ready: str, progressing: str, degraded_reason: str = "AsExpected") -> dict:
    conditions = [
        {"type": "Ready", "status": ready, "reason": "R", "message": ""},
        {"type": "Progressing", "status": progressing, "reason": "P", "message": ""},
        {
            "type": "Degraded",
            "status": "True" if degraded_reason != "AsExpected" else "False",
            "reason": degraded_reason,
        },
    ]
    return {
        "metadata": {"name": "m", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": conditions},
    }


def test_rollout_verdict_like_kubectl_rollout_status() -> None:
    assert views.verdict(md(2, 2, "True", "False")) == views.COMPLETE
    assert views.verdict(md(3, 2, "True", "False")) == views.IN_PROGRESS, "the operator has not seen the spec yet"
    assert views.verdict(md(2, 2, "True", "True")) == views.IN_PROGRESS
    assert views.verdict(md(2, 2, "False", "False", "ProgressDeadlineExceeded")) == views.FAILED


def test_history_table_lists_revisions() -> None:
    entry = {"version": "v1", "outcome": "Succeeded", "source": "hf://o/m", "revision": "v1.0",
             "resolvedRevision": "f00d", "quantization": "int8", "gpus": 1,
             "started": "t0", "finished": "t1"}  # fmt: skip
    body = {"status": {"history": [entry]}}
    lines = views.history_table(body).splitlines()
    assert lines[0].split() == ["VERSION", "OUTCOME", "SOURCE", "REVISION", "RESOLVED", "QUANT", "GPUS", "STARTED",
                                "FINISHED"]  # fmt: skip
    assert lines[1].split() == ["v1", "Succeeded", "hf://o/m", "v1.0", "f00d", "int8", "1", "t0", "t1"]


def test_staging_records_the_resolved_revision_in_the_history() -> None:
    spec = parse_spec(model_deployment(model={"source": "hf://o/m", "revision": "v1.0"})["spec"])
    entries = update_history([], spec, "img", "Staging", "t0")
    assert entries[-1].resolved_revision is None
    entries = update_history(entries, spec, "img", "RolloutComplete", "t1", resolved_revision="f00d")
    assert (entries[-1].resolved_revision, entries[-1].outcome) == ("f00d", "Succeeded")


def test_pod_phases_for_berth_status() -> None:
    def pod(name: str, **status) -> dict:
        return {"metadata": {"name": name, "labels": {"app.kubernetes.io/version": "v2"}},
                "spec": {"nodeName": "n1"}, "status": status}  # fmt: skip

    assert views.pod_phase({**pod("a"), "spec": {}}) == "pending"
    assert views.pod_phase(pod("b", initContainerStatuses=[{"state": {"running": {}}}])) == "fetching weights"
    assert views.pod_phase(pod("c", containerStatuses=[{"state": {"running": {}}, "started": False}])) == (
        "loading the model"
    )
    assert views.pod_phase(pod("d", containerStatuses=[{"state": {"running": {}}, "ready": True}])) == "ready"
    crash = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 4}
    assert views.pod_phase(pod("e", containerStatuses=[crash])) == "CrashLoopBackOff (restarts: 4)"
    assert views.pods_text([pod("d", containerStatuses=[{"ready": True}])]) == ["  pods:", "    d  v2  n1  ready"]


def test_rollback_goes_to_the_last_succeeded_other_version_or_the_named_one() -> None:
    history = [
        {"version": "v1", "outcome": "Succeeded", "source": "hf://o/m", "revision": "a", "quantization": "none",
         "gpus": 1, "image": "img:1", "started": "t0"},
        {"version": "v2", "outcome": "Failed", "source": "hf://o/m", "revision": "b", "quantization": "none",
         "gpus": 1, "image": "img:1", "started": "t1"},
        {"version": "v3", "outcome": "Succeeded", "source": "hf://o/m", "revision": "c", "quantization": "int8",
         "gpus": 2, "image": "img:2", "started": "t2"},
    ]  # fmt: skip
    md = {"spec": {"version": "v3"}, "status": {"history": history}}
    assert views.rollback_target(md, None)["version"] == "v1"
    assert views.rollback_target(md, "v2")["revision"] == "b"
    assert views.rollback_target(md, "v9") is None
    patch = views.rollback_patch(views.rollback_target(md, None))
    assert patch == {"spec": {"version": "v1", "model": {"source": "hf://o/m", "revision": "a"}, "quantization": "none",
                              "gpus": 1, "runtime": {"image": "img:1"}}}  # fmt: skip


def test_berth_status_shows_the_stagers_latest_progress() -> None:
    staging = {"version": "v2", "phase": "Staging", "message": "staging weights with Job m-stage-1"}
    md = {"metadata": {"name": "m", "namespace": "ml"}, "status": {"staging": staging}}
    text = views.status_text(md, [], "[2/5] model-00001-of-00004.safetensors: 1.2 GiB of 4.9 GiB (24%)")
    assert "  staging: version v2 Staging: staging weights with Job m-stage-1\n    latest: [2/5] model-00001" in text
    assert "latest" not in views.status_text(md, [])
