"""Staging weights into the model cache: the claim, the Job, and how its outcome is read. Pure."""

from __future__ import annotations

import json
from typing import Any

from berth_operator.reconcile import staging_hold
from berth_operator.render import render_deployment
from berth_operator.sources import cache_key
from berth_operator.staging import KEY_LABEL, read_staging, render_cache_claim, render_staging_job
from tests.unit.test_render import SETTINGS, md_of

HF = {"source": "hf://org/model", "revision": "0123abc", "credentialsSecret": "hub", "endpoint": "http://mirror.local"}


def test_staged_pods_mount_their_cache_entry_read_only_and_fetch_nothing() -> None:
    md = md_of(model=HF)
    deployment = render_deployment(md, SETTINGS)
    spec = deployment["spec"]["template"]["spec"]
    key = cache_key(md.spec.model)
    assert "initContainers" not in spec
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "tiny-model-cache", "readOnly": True}} in spec[
        "volumes"
    ]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "model")
    assert mount == {"name": "model", "mountPath": "/models", "readOnly": True, "subPath": f"tiny/{key}"}
    assert deployment["metadata"]["annotations"]["berth.dev/cache-key"] == key
    assert not any("secretRef" in str(c) for c in spec["containers"]), "serving pods never see hub credentials"


def test_cache_key_follows_source_and_revision_only() -> None:
    assert cache_key(md_of(model=HF).spec.model) == cache_key(md_of(model=HF, quantization="int8").spec.model)
    assert cache_key(md_of(model=HF).spec.model) != cache_key(md_of(model={**HF, "revision": "4567def"}).spec.model)


def test_the_operator_creates_a_claim_only_when_none_is_named() -> None:
    claim = render_cache_claim(md_of(model={**HF, "cache": {"size": "40Gi", "storageClassName": "nfs"}}))
    assert claim["metadata"]["name"] == "tiny-model-cache" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "40Gi" and claim["spec"]["storageClassName"] == "nfs"
    assert claim["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert render_cache_claim(md_of(model={**HF, "cache": {"claimName": "shared"}})) is None


def test_the_staging_job_stages_with_the_fetchers_credentials_and_keeps_the_rollback_entry() -> None:
    md = md_of(model=HF)
    key = cache_key(md.spec.model)
    job = render_staging_job(md, "berth-runtime:test", keep=("prev0123", key))
    assert job["metadata"]["name"] == f"tiny-stage-{key[:12]}" and job["metadata"]["labels"][KEY_LABEL] == key
    assert "berth.dev/modeldeployment" not in job["spec"]["template"]["metadata"]["labels"], "never selected as serving"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["stage", "hf://org/model", "--cache", "/cache", "--key", key,
                                 "--revision", "0123abc", "--keep", "prev0123"]  # fmt: skip
    assert container["envFrom"] == [{"secretRef": {"name": "hub"}}]
    assert {"name": "HF_ENDPOINT", "value": "http://mirror.local"} in container["env"]
    assert {"name": "cache", "mountPath": "/cache", "subPath": "tiny"} in container["volumeMounts"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and "nvidia.com/gpu" not in str(container)


def test_an_s3_source_with_a_private_ca_is_staged_trusting_only_that_ca() -> None:
    model = {"source": "s3://weights/mistral/", "endpoint": "https://minio.storage:9000", "credentialsSecret": "s3",
             "caBundle": {"configMapName": "corp-ca", "key": "bundle.pem"}}  # fmt: skip
    md = md_of(model=model)
    pod = render_staging_job(md, "berth-runtime:test", keep=())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["stage", "s3://weights/mistral/"] and "--revision" not in container["args"]
    assert {"name": "AWS_ENDPOINT_URL", "value": "https://minio.storage:9000"} in container["env"]
    assert {"name": "BERTH_CA_BUNDLE", "value": "/etc/berth/ca/ca.crt"} in container["env"]
    assert {"name": "ca-bundle", "mountPath": "/etc/berth/ca", "readOnly": True} in container["volumeMounts"]
    ca = {"name": "corp-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}]}
    assert {"name": "ca-bundle", "configMap": ca} in pod["volumes"]
    serving = render_deployment(md, SETTINGS)["spec"]["template"]["spec"]
    assert "ca-bundle" not in str(serving), "only the downloader needs the CA"

    fetching = render_deployment(md_of(model={**model, "cache": {"enabled": False}}), SETTINGS)["spec"]["template"]
    (init,) = fetching["spec"]["initContainers"]
    assert {"name": "BERTH_CA_BUNDLE", "value": "/etc/berth/ca/ca.crt"} in init["env"]
    assert {"name": "ca-bundle", "configMap": ca} in fetching["spec"]["volumes"]
    assert "ca-bundle" not in str(fetching["spec"]["containers"])


def job_with(condition: str | None = None, failed: int = 0) -> dict[str, Any]:
    status: dict[str, Any] = {"failed": failed}
    if condition:
        status["conditions"] = [{"type": condition, "status": "True"}]
    return {"metadata": {"name": "tiny-stage-abc", "labels": {KEY_LABEL: "abc"}}, "status": status}


def pod_with(message: str | None = None, unschedulable: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"containerStatuses": [{"state": {"terminated": {"message": message}}}] if message else []}
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "reason": "Unschedulable", "message": unschedulable}]
    return {"metadata": {"name": "tiny-stage-abc-x", "creationTimestamp": "2026-11-23T10:00:00Z"}, "status": status}


def test_staging_is_read_from_the_job_and_the_stagers_termination_message() -> None:
    md = md_of(model=HF)
    report = json.dumps({"key": "abc", "sha": "f" * 40, "files": 5, "bytes": 1234})
    staged = read_staging(md, job_with("Complete"), [pod_with(report)])
    assert (staged.phase, staged.resolved_revision, staged.bytes) == ("Staged", "f" * 40, 1234)
    assert staged.message == "weights staged (5 files, 1234 bytes)"
    waiting = read_staging(md, job_with(failed=1), [pod_with(unschedulable="0/3 nodes: unbound PVC")])
    assert waiting.phase == "Staging" and "1 failed attempt" in waiting.message and "unbound PVC" in waiting.message
    hold = staging_hold(waiting)
    assert hold.hold and hold.progressing and hold.reason == "Staging" and hold.problem is None
    failed = read_staging(md, job_with("Failed"), [pod_with(json.dumps({"error": "HTTP 404: no such revision"}))])
    assert failed.phase == "Failed" and failed.message.startswith("HTTP 404: no such revision")
    assert "delete Job tiny-stage-abc" in failed.message
    hold = staging_hold(failed)
    assert hold.problem.reason == "StagingFailed" and not hold.progressing


def test_a_release_whose_job_is_not_created_yet_is_held_as_staging() -> None:
    """A pod event handled between the spec change and the Job's creation must not start the new release."""
    md = md_of(model=HF, version="v2")
    staging = read_staging(md, None, [])
    assert (staging.phase, staging.key, staging.job) == (
        "Staging",
        cache_key(md.spec.model),
        f"tiny-stage-{staging.key[:12]}",
    )
    step = staging_hold(staging)
    assert step.hold and step.strategy is None and step.reason == "Staging"


def test_the_staging_job_runs_where_the_model_s_pods_may_run_without_a_gpu_toleration() -> None:
    scheduling = {"nodeSelector": {"zone": "a"}, "priorityClassName": "models",
                  "tolerations": [{"key": "pool", "operator": "Exists", "effect": "NoSchedule"}],
                  "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}}  # fmt: skip
    md = md_of(model=HF, gpus=1, scheduling=scheduling)
    job_pod = render_staging_job(md, "berth-runtime:test", keep=())["spec"]["template"]["spec"]
    serving = render_deployment(md, SETTINGS)["spec"]["template"]["spec"]
    for key in ("nodeSelector", "affinity", "priorityClassName"):
        assert job_pod[key] == serving[key] == scheduling[key]
    assert job_pod["tolerations"] == scheduling["tolerations"]
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert serving["tolerations"] == [*scheduling["tolerations"], gpu]
