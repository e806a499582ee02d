"""How each kind of model source reaches the runtime container: volumes, mounts, a fetching init container."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from berth_operator.api import ModelSource
from berth_runtime import contract

MODEL_VOLUME = "model"


@dataclass(frozen=True)
class ModelMount:
    model_path: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    fetch: contract.FetchArgs | None = None  # run in an init container when set
    claim: str | None = None  # a PVC that must exist


def split_source(source: str) -> tuple[str, str]:
    scheme, _, rest = source.partition("://")
    return scheme, rest


def model_mount(model: ModelSource) -> ModelMount:
    scheme, rest = split_source(model.source)
    if scheme == "pvc":
        claim, _, subpath = rest.partition("/")
        return ModelMount(
            model_path=f"{contract.MODEL_DIR}/{subpath}".rstrip("/"),
            volumes=[{"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            mounts=[{"name": MODEL_VOLUME, "mountPath": contract.MODEL_DIR, "readOnly": True}],
            claim=claim,
        )
    if scheme == "file":
        # A path inside the runtime image (a model baked into a derived image); no volume needed.
        return ModelMount(model_path="/" + rest.lstrip("/"))
    if scheme in ("hf", "s3"):
        return ModelMount(
            model_path=contract.MODEL_DIR,
            volumes=[{"name": MODEL_VOLUME, "emptyDir": {}}],
            mounts=[{"name": MODEL_VOLUME, "mountPath": contract.MODEL_DIR, "readOnly": True}],
            fetch=contract.FetchArgs(source=model.source, revision=model.revision),
        )
    raise ValueError(f"model.source: unsupported scheme {scheme}://")


def fetch_env(model: ModelSource) -> list[dict[str, Any]]:
    scheme, _ = split_source(model.source)
    if not model.endpoint:
        return []
    name = "HF_ENDPOINT" if scheme == "hf" else "AWS_ENDPOINT_URL"
    return [{"name": name, "value": model.endpoint}]
