"""How each kind of model source reaches the runtime container: volumes, mounts, a fetching init container,
or the model cache a staging Job fills (berth_operator.staging)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from berth_operator.api import ModelSource
from berth_operator.security import restricted_container_security
from berth_runtime import contract

MODEL_VOLUME = "model"
CA_VOLUME = "ca-bundle"
CA_FILE = "ca.crt"
READ_ONLY_MOUNT = {"name": MODEL_VOLUME, "mountPath": contract.MODEL_DIR, "readOnly": True}


@dataclass(frozen=True)
class ModelMount:
    model_path: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    fetch: contract.FetchArgs | None = None  # run in an init container when set
    claim: str | None = None  # a PVC that must exist (the user's)
    cache_key: str | None = None  # the model cache entry a staging Job fills before pods start


def staged(model: ModelSource) -> bool:
    """Remote weights go through the model cache unless the spec turns it off."""
    return split_source(model.source)[0] in ("hf", "s3") and model.cache.enabled


def cache_key(model: ModelSource) -> str:
    """One cache entry per (source, revision); staging records the commit SHA the revision resolved to."""
    return hashlib.sha256(f"{model.source}@{model.revision or ''}".encode()).hexdigest()[:16]


def cache_claim(model: ModelSource, owner: str) -> str:
    return model.cache.claim_name or f"{owner}-model-cache"


def split_source(source: str) -> tuple[str, str]:
    scheme, _, rest = source.partition("://")
    return scheme, rest


def model_mount(model: ModelSource, owner: str) -> ModelMount:
    """owner: the ModelDeployment's name (its folder in a model cache)."""
    scheme, rest = split_source(model.source)
    if staged(model):
        key = cache_key(model)
        claim = cache_claim(model, owner)
        return ModelMount(
            model_path=contract.MODEL_DIR,
            volumes=[{"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            mounts=[{**READ_ONLY_MOUNT, "subPath": f"{owner}/{key}"}],
            claim=model.cache.claim_name,
            cache_key=key,
        )
    if scheme == "pvc":
        claim, _, subpath = rest.partition("/")
        return ModelMount(
            model_path=f"{contract.MODEL_DIR}/{subpath}".rstrip("/"),
            volumes=[{"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            mounts=[READ_ONLY_MOUNT],
            claim=claim,
        )
    if scheme == "berth":  # the demo model (the API admits only berth://demo)
        return ModelMount(model_path=contract.DEMO_MODEL)
    if scheme == "file":
        # A path inside the runtime image (a model baked into a derived image); no volume needed.
        return ModelMount(model_path="/" + rest.lstrip("/"))
    if scheme in ("hf", "s3"):
        return ModelMount(
            model_path=contract.MODEL_DIR,
            volumes=[{"name": MODEL_VOLUME, "emptyDir": {}}],
            mounts=[READ_ONLY_MOUNT],
            fetch=contract.FetchArgs(source=model.source, revision=model.revision),
        )
    raise ValueError(f"model.source: unsupported scheme {scheme}://")


def fetch_env(model: ModelSource) -> list[dict[str, Any]]:
    scheme, _ = split_source(model.source)
    if not model.endpoint:
        return []
    name = "HF_ENDPOINT" if scheme == "hf" else "AWS_ENDPOINT_URL"
    return [{"name": name, "value": model.endpoint}]


def downloader_volumes(model: ModelSource) -> list[dict[str, Any]]:
    """The pod volumes a downloader container needs besides its mounts: the CA bundle, when set."""
    if not model.ca_bundle:
        return []
    items = [{"key": model.ca_bundle.key, "path": CA_FILE}]
    return [{"name": CA_VOLUME, "configMap": {"name": model.ca_bundle.config_map_name, "items": items}}]


def downloader_container(
    name: str, image: str, args: list[str], model: ModelSource, mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A container that downloads weights (`berth-runtime fetch` or `stage`): the only one that sees the
    model's credentials, the hub or S3 endpoint and its CA. Its pod needs downloader_volumes(model)."""
    env = [{"name": contract.ENV_HOME, "value": contract.SCRATCH_DIR}, *fetch_env(model)]
    if model.ca_bundle:
        env.append({"name": contract.ENV_CA_BUNDLE, "value": f"{contract.CA_DIR}/{CA_FILE}"})
        mounts = [*mounts, {"name": CA_VOLUME, "mountPath": contract.CA_DIR, "readOnly": True}]
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": list(contract.COMMAND),
        "args": args,
        "env": env,
        "volumeMounts": mounts,
        "securityContext": restricted_container_security(),
    }
    if model.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": model.credentials_secret}}]
    return container
