"""The renderer: pure spec in, objects out."""

from __future__ import annotations

from typing import Any

import pytest

from berth_operator.render import Settings, render_all, render_deployment, render_pdb
from berth_operator.validation import parse_model_deployment
from tests.support.manifests import model_deployment
from tests.support.pod_security import assert_restricted

SETTINGS = Settings(runtime_image="berth-runtime:test")


def md_of(uid: str | None = "uid-1", **spec: Any):
    body = model_deployment("tiny", **spec)
    body["metadata"].update({"namespace": "ml", **({"uid": uid} if uid else {})})
    return parse_model_deployment(body)


def pod_spec(**spec: Any) -> dict[str, Any]:
    return render_deployment(md_of(**spec), SETTINGS)["spec"]["template"]["spec"]


def runtime_args(**spec: Any) -> list[str]:
    return pod_spec(**spec)["containers"][0]["args"]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize("source", ["pvc://models/tiny", "hf://org/model", "file:///opt/model", "s3://bucket/model"])
def test_pods_meet_the_restricted_pod_security_standard(source: str) -> None:
    revision = {"revision": "abc"} if source.startswith("hf") else {}
    spec = pod_spec(model={"source": source, **revision}, gpus=2)
    assert spec["automountServiceAccountToken"] is False
    assert_restricted(spec)


def test_gpus_become_limits_and_tensor_parallel_size() -> None:
    spec = pod_spec(gpus=4)
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 4}
    assert flag(spec["containers"][0]["args"], "--tensor-parallel-size") == "4"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert any(v["name"] == "dshm" for v in spec["volumes"])


def test_cpu_replicas_ask_for_no_gpu() -> None:
    spec = pod_spec(gpus=0, resources={"requests": {"cpu": "4", "memory": "8Gi"}})
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "4", "memory": "8Gi"}}
    assert "tolerations" not in spec
    assert flag(spec["containers"][0]["args"], "--tensor-parallel-size") == "1"


def test_runtime_options_pass_through() -> None:
    args = runtime_args(
        quantization="int8",
        runtime={"maxBatchSize": 64, "maxModelLen": 4096, "dtype": "bfloat16", "args": ["--seed=1"]},
    )
    assert (flag(args, "--quantization"), flag(args, "--max-batch-size"), flag(args, "--max-model-len")) == (
        "int8",
        "64",
        "4096",
    )
    assert flag(args, "--dtype") == "bfloat16" and flag(args, "--port") == "8000" and args[-1] == "--seed=1"


def test_pvc_source_is_mounted_read_only_at_its_subpath() -> None:
    spec = pod_spec(model={"source": "pvc://weights/llama/8b"})
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}} in spec["volumes"]
    assert flag(spec["containers"][0]["args"], "--model") == "/models/llama/8b"
    assert "initContainers" not in spec


def test_hf_source_without_the_cache_is_fetched_by_an_init_container_with_mirror_and_token() -> None:
    model = {
        "source": "hf://org/model",
        "revision": "0123abc",
        "credentialsSecret": "hub",
        "endpoint": "http://mirror.local",
        "cache": {"enabled": False},
    }
    spec = pod_spec(model=model)
    (fetch,) = spec["initContainers"]
    assert fetch["args"] == ["fetch", "hf://org/model", "--dest", "/models", "--revision", "0123abc"]
    assert {"name": "HF_ENDPOINT", "value": "http://mirror.local"} in fetch["env"]
    assert fetch["envFrom"] == [{"secretRef": {"name": "hub"}}]
    runtime_env = spec["containers"][0]["env"]
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in runtime_env
    assert not any("secretRef" in str(e) for e in runtime_env), "the runtime never sees hub credentials"


@pytest.mark.parametrize(
    ("source", "model"), [("file:///opt/models/tiny", "/opt/models/tiny"), ("berth://demo", "demo")]
)
def test_local_sources_need_no_volume(source: str, model: str) -> None:
    """file:// is a path inside the image; berth://demo is the runtime's demo model, made at start under
    $HOME, which is the scratch volume."""
    spec = pod_spec(model={"source": source})
    assert [v["name"] for v in spec["volumes"]] == ["scratch"] and not spec.get("initContainers")
    container = spec["containers"][0]
    assert flag(container["args"], "--model") == model
    home = next(e["value"] for e in container["env"] if e["name"] == "HOME")
    assert any(m["mountPath"] == home and not m.get("readOnly") for m in container["volumeMounts"])


def test_probes_tolerate_long_loads_and_drain_fits_the_grace_period() -> None:
    spec = pod_spec(runtime={"startupTimeoutSeconds": 3600, "drainTimeoutSeconds": 120})
    container = spec["containers"][0]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 3600
    # Started means loaded: /health answers while loading, so on it the startup probe would bound nothing.
    assert startup["httpGet"]["path"] == container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert spec["terminationGracePeriodSeconds"] > 120 + container["lifecycle"]["preStop"]["sleep"]["seconds"]


def test_children_have_deterministic_names_owner_and_labels() -> None:
    objects = render_all(md_of(replicas=2), SETTINGS)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Service", "tiny"),
        ("Deployment", "tiny"),
        ("PodDisruptionBudget", "tiny"),
    ]
    for obj in objects:
        assert obj["metadata"]["ownerReferences"][0] == {
            "apiVersion": "berth.dev/v1alpha1", "kind": "ModelDeployment", "name": "tiny", "uid": "uid-1",
            "controller": True, "blockOwnerDeletion": True,
        }  # fmt: skip
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "berth-operator"
    assert objects[0]["spec"]["ports"][0]["name"] == "http"


def test_offline_render_has_no_owner_reference() -> None:
    assert "ownerReferences" not in render_all(md_of(uid=None), SETTINGS)[0]["metadata"]


def test_single_replica_gets_no_disruption_budget() -> None:
    assert render_pdb(md_of(replicas=1)) is None
    assert render_pdb(md_of(replicas=3))["spec"]["maxUnavailable"] == 1


def test_user_pod_labels_cannot_override_berths() -> None:
    labels = {"team": "ml", "berth.dev/modeldeployment": "other", "app.kubernetes.io/version": "x"}
    template = render_deployment(md_of(podMetadata={"labels": labels}), SETTINGS)["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "ml"
    assert template["metadata"]["labels"]["berth.dev/modeldeployment"] == "tiny"
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "2026-11-01"


def test_rollout_settings_reach_the_deployment() -> None:
    spec = render_deployment(
        md_of(rollout={"maxSurge": "25%", "maxUnavailable": 1, "progressDeadlineSeconds": 600}), SETTINGS
    )["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 1}
    assert spec["progressDeadlineSeconds"] == 600


def test_the_self_test_gates_every_new_pod_and_the_runtime_parses_the_rendered_command() -> None:
    from berth_runtime.cli import build_parser

    args = runtime_args(runtime={"selfTest": {"prompt": "2+2=", "expect": "4", "latencyBudgetMs": 5000}})
    parsed = build_parser().parse_args(args)
    assert (parsed.self_test_prompt, parsed.self_test_expect, parsed.self_test_budget_ms) == ("2+2=", "4", 5000)
    assert build_parser().parse_args(runtime_args()).self_test_prompt == "Hello", "on by default"
    assert "--self-test-prompt" not in runtime_args(runtime={"selfTest": {"enabled": False}})
