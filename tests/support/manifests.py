"""ModelDeployment manifests shared by the tests: a valid base and invalid variants of it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


def model_deployment(name: str = "tiny", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"source": "pvc://models/tiny-llama"},
        "version": "2026-11-01",
        "quantization": "none",
        "gpus": 1,
        "replicas": 2,
    }
    base.update(spec)
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": base,
    }


@dataclass(frozen=True)
class Invalid:
    """A manifest that admission must reject: the error names `path` and contains every word of `says`."""

    case: str
    change: dict[str, Any]
    path: str
    says: tuple[str, ...]

    def manifest(self) -> dict[str, Any]:
        body = model_deployment()
        merge(body["spec"], copy.deepcopy(self.change))
        return body


def merge(target: dict[str, Any], change: dict[str, Any]) -> None:
    """JSON merge patch semantics: None deletes a key, dicts merge, anything else replaces."""
    for key, value in change.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


INVALID = [
    Invalid("unknown-scheme", {"model": {"source": "ftp://host/model"}}, "spec.model.source", ("hf://", "pvc://")),
    Invalid("other-berth-model", {"model": {"source": "berth://llama"}}, "spec.model.source", ("berth://demo",)),
    Invalid("hf-without-revision", {"model": {"source": "hf://org/model"}}, "spec.model.revision", ("pin",)),
    Invalid(
        "credentials-for-local-source",
        {"model": {"credentialsSecret": "hub-token"}},
        "spec.model.credentialsSecret",
        ("hf:// and s3:// sources only",),
    ),
    Invalid(
        "ca-for-local-source",
        {"model": {"caBundle": {"configMapName": "corp-ca"}}},
        "spec.model.caBundle",
        ("hf:// and s3:// sources only",),
    ),
    Invalid("bad-pvc-name", {"model": {"source": "pvc://Bad_Claim"}}, "spec.model.source", ("claim name",)),
    Invalid("unknown-quantization", {"quantization": "int3"}, "spec.quantization", ("bf16", "int4")),
    Invalid("three-gpus", {"gpus": 3}, "spec.gpus", ("1, 2, 4, 8 or 16",)),
    Invalid("int4-on-cpu", {"gpus": 0, "quantization": "int4"}, "spec.quantization", ("need a GPU",)),
    Invalid("float16-on-cpu", {"gpus": 0, "runtime": {"dtype": "float16"}}, "spec.runtime.dtype", ("needs a GPU",)),
    Invalid("negative-replicas", {"replicas": -1}, "spec.replicas", ("greater than or equal to 0",)),
    Invalid("version-with-spaces", {"version": "v 1"}, "spec.version", ("match",)),
    Invalid("missing-version", {"version": None}, "spec.version", ("equired",)),
    Invalid(
        "no-surge-no-unavailable",
        {"rollout": {"maxSurge": 0, "maxUnavailable": "0%"}},
        "spec.rollout",
        ("cannot both be 0",),
    ),
    Invalid("surge-not-a-percentage", {"rollout": {"maxSurge": "lots"}}, "spec.rollout.maxSurge", ("percentage",)),
    Invalid(
        "reserved-runtime-flag",
        {"runtime": {"args": ["--port=9000"]}},
        "spec.runtime.args",
        ("operator sets them",),
    ),
    Invalid(
        "batch-of-zero",
        {"runtime": {"maxBatchSize": 0}},
        "spec.runtime.maxBatchSize",
        ("greater than or equal to 1",),
    ),
    Invalid(
        "gpus-in-resources",
        {"resources": {"limits": {"nvidia.com/gpu": 2}}},
        "spec.resources.limits",
        ("spec.gpus",),
    ),
    Invalid("typo-in-field-name", {"gpu": 1}, "spec.gpu", ()),
]


def subset(expected: object, actual: object, where: str = "") -> list[str]:
    """Where `actual` (a live object) differs from `expected` (rendered), ignoring server-added fields."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for key, value in expected.items() for d in subset(value, actual.get(key), f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in subset(e, a, f"{where}[{i}]")]
    return [] if str(expected) == str(actual) else [f"{where}: rendered {expected!r}, live {actual!r}"]
