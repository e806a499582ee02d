"""The ModelDeployment API (berth.dev/v1alpha1), defined once.

The CRD in crds/ is generated from these models (berth_operator.crd). Field constraints become the
OpenAPI schema; what one field cannot say is a CEL rule (`rules=`) that the API server enforces at
admission and that berth_operator.validation evaluates offline with the same messages.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "berth.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["md"]

# The runtime's embedded demo model: random weights made at start (no GPU needed, nothing downloaded).
DEMO_SOURCE = "berth://demo"
Quantization = Literal["none", "bf16", "fp16", "int8", "int4"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
# Tensor parallelism splits attention heads evenly across GPUs, so only powers of two make sense.
GPU_COUNTS = (0, 1, 2, 4, 8, 16)
# Flags the operator sets itself from the spec; a copy in runtime.args would contradict it.
RESERVED_RUNTIME_FLAGS = (
    "--model",
    "--port",
    "--tensor-parallel-size",
    "--quantization",
    "--served-model-name",
    "--self-test-",
)


class Rule(BaseModel):
    """A CEL validation rule, as in x-kubernetes-validations."""

    rule: str
    message: str
    field_path: str | None = Field(default=None, serialization_alias="fieldPath")


# Structural-schema markers for fields whose shape the schema leaves to Kubernetes itself.
PRESERVE = {"x-kubernetes-preserve-unknown-fields": True, "type": "object"}
INT_OR_STRING = {"x-kubernetes-int-or-string": True}
IntOrString = Annotated[int | str, Field(json_schema_extra=INT_OR_STRING)]
Quantity = Annotated[int | str, Field(json_schema_extra=INT_OR_STRING)]


def defaulted(model: type[BaseModel]) -> Any:
    """A nested object that always exists, with every field's default filled in (the API server
    checks a default against the object's CEL rules, so it must be complete)."""
    return Field(
        default_factory=model,
        json_schema_extra={"default": model().model_dump(by_alias=True, exclude_none=True)},
    )


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
    rules: ClassVar[tuple[Rule, ...]] = ()


class ModelCache(ApiModel):
    """Where hf:// and s3:// weights are staged by a Job before any pod of a new version starts
    (pvc:// and file:// sources are used in place and ignore it)."""

    enabled: bool = Field(
        default=True, description="false: every pod downloads the weights itself, in an init container."
    )
    claim_name: str | None = Field(
        default=None,
        max_length=253,
        description="An existing PersistentVolumeClaim to stage into (ReadWriteMany for replicas on several "
        "nodes); entries live under <ModelDeployment name>/. Unset: the operator creates <name>-model-cache.",
    )
    size: Quantity = Field(default="100Gi", description="Size of the claim the operator creates.")
    storage_class_name: str | None = Field(default=None, max_length=253, description="For the claim it creates.")


class CaBundle(ApiModel):
    """PEM certificates in a ConfigMap (in the ModelDeployment's namespace), mounted only into the containers
    that download weights: a hub mirror or S3 store behind a private CA."""

    config_map_name: str = Field(min_length=1, max_length=253, description="The ConfigMap holding the bundle.")
    key: str = Field(default="ca.crt", min_length=1, max_length=253, description="Its key with the PEM data.")


class ModelSource(ApiModel):
    """Where the weights come from."""

    source: str = Field(
        min_length=7,
        max_length=1024,
        description="hf://org/name, s3://bucket/prefix, pvc://claim/path, file:///path (inside the image), or "
        f"{DEMO_SOURCE} (the runtime's demo model: random weights, output not meaningful).",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="hf://: the pinned commit SHA or tag (required). s3://: optional; the listing digest "
        "(sha256:...) a staging reported, to insist on exactly those files.",
    )
    credentials_secret: str | None = Field(
        default=None,
        max_length=253,
        description="Secret whose keys become the fetcher's environment (HF_TOKEN, AWS_ACCESS_KEY_ID, ...). "
        "Only for hf:// and s3://; never needed for local sources.",
    )
    endpoint: str | None = Field(
        default=None,
        max_length=1024,
        description="A mirror of the hub (HF_ENDPOINT) or an S3-compatible endpoint URL (path-style requests).",
    )
    ca_bundle: CaBundle | None = Field(
        default=None, description="Trust this CA (instead of the system's) when downloading from endpoint."
    )
    cache: ModelCache = defaulted(ModelCache)

    rules = (
        Rule(
            rule=f"self.source.matches('^(hf|s3|pvc|file)://.+') || self.source == '{DEMO_SOURCE}'",
            message=f"must start with hf://, s3://, pvc:// or file:// followed by a location, or be {DEMO_SOURCE}",
            field_path=".source",
        ),
        Rule(
            rule="!self.source.startsWith('hf://') || self.source.matches('^hf://[^/@]+/[^/@]+$')",
            message="an hf:// source is hf://org/name; pin the revision in model.revision",
            field_path=".source",
        ),
        Rule(
            rule="!self.source.startsWith('pvc://') || self.source.matches('^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/.*)?$')",
            message="a pvc:// source is pvc://<claim name>[/path inside the volume]",
            field_path=".source",
        ),
        Rule(
            rule="!self.source.startsWith('file://') || self.source.startsWith('file:///')",
            message="a file:// source is an absolute path: file:///path",
            field_path=".source",
        ),
        Rule(
            rule="!self.source.startsWith('hf://') || has(self.revision)",
            message="is required for hf:// sources: pin a commit SHA or tag so every pod loads the same weights",
            field_path=".revision",
        ),
        Rule(
            rule="!has(self.credentialsSecret) || self.source.startsWith('hf://') || self.source.startsWith('s3://')",
            message="applies to hf:// and s3:// sources only; local sources need no credentials",
            field_path=".credentialsSecret",
        ),
        Rule(
            rule="!has(self.caBundle) || self.source.startsWith('hf://') || self.source.startsWith('s3://')",
            message="applies to hf:// and s3:// sources only: it is trusted when downloading from model.endpoint",
            field_path=".caBundle",
        ),
    )


class EnvVar(ApiModel):
    name: str = Field(min_length=1, max_length=256)
    value: str | None = None
    value_from: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE)


class SelfTest(ApiModel):
    """A golden prompt each new pod must answer before it takes traffic (/ready stays false until then),
    so a version that loads but generates nothing, garbage or too slowly never replaces a good one."""

    enabled: bool = True
    prompt: str = Field(default="Hello", min_length=1, max_length=4096)
    expect: str | None = Field(
        default=None, max_length=1024, description="A regular expression the completion must match."
    )
    latency_budget_ms: int | None = Field(default=None, ge=1, le=600000, description="The longest it may take.")


class RuntimeConfig(ApiModel):
    """The bundled runtime (berth-runtime serve) the pods run."""

    image: str | None = Field(default=None, max_length=512, description="Defaults to the operator's runtime image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    max_batch_size: int = Field(default=32, ge=1, le=1024, description="Most sequences decoded together.")
    max_model_len: int | None = Field(
        default=None,
        ge=16,
        le=1048576,
        description="Prompt plus output tokens; the model's own limit if unset.",
    )
    dtype: Dtype = "auto"
    drain_timeout_seconds: int = Field(
        default=60, ge=0, le=3600, description="How long a stopping pod lets in-flight requests finish."
    )
    startup_timeout_seconds: int = Field(
        default=1800, ge=60, le=86400, description="How long a pod may take to load and warm the model."
    )
    self_test: SelfTest = defaulted(SelfTest)
    args: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=64)
    env: list[EnvVar] = Field(default_factory=list, max_length=128)

    rules = (
        Rule(
            rule="!has(self.args) || self.args.all(a, "
            + " && ".join(f"!a.startsWith('{f}')" for f in RESERVED_RUNTIME_FLAGS)
            + ")",
            message="must not set " + ", ".join(RESERVED_RUNTIME_FLAGS) + ": the operator sets them from the spec",
            field_path=".args",
        ),
    )


class Resources(ApiModel):
    """CPU, memory and other requests and limits; GPUs come from spec.gpus."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class Scheduling(ApiModel):
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list, json_schema_extra={"items": PRESERVE})
    affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE)
    priority_class_name: str | None = Field(default=None, max_length=253)


PERCENT_OR_COUNT = "type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')"


class Rollout(ApiModel):
    """How a new version replaces the old one."""

    max_surge: IntOrString = Field(
        default=1,
        description="Extra replicas a rollout may add (count or %), used only while free GPUs can hold them.",
    )
    max_unavailable: IntOrString = Field(
        default=1,
        description="Replicas a rollout may take down first when no GPU is free for a surge replica (count or %); "
        "0 holds the rollout instead (reported as InsufficientGPU). With room to surge, none is taken down.",
    )
    progress_deadline_seconds: int = Field(
        default=1800, ge=60, le=86400, description="How long a rollout may go without progress."
    )

    rules = (
        Rule(
            rule=PERCENT_OR_COUNT.replace("self", "self.maxSurge"),
            message="must be a count >= 0 or a percentage like 25%",
            field_path=".maxSurge",
        ),
        Rule(
            rule=PERCENT_OR_COUNT.replace("self", "self.maxUnavailable"),
            message="must be a count >= 0 or a percentage like 25%",
            field_path=".maxUnavailable",
        ),
        Rule(
            rule="!((self.maxSurge == 0 || self.maxSurge == '0%') "
            "&& (self.maxUnavailable == 0 || self.maxUnavailable == '0%'))",
            message="maxSurge and maxUnavailable cannot both be 0: a rollout could never replace a pod",
        ),
    )


class PodMetadata(ApiModel):
    """Extra labels and annotations for the inference pods."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ModelDeploymentSpec(ApiModel):
    model: ModelSource
    version: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="The release a team ships (e.g. 2026-11-01); changing it rolls out a new version.",
    )
    quantization: Quantization = "none"
    gpus: int = Field(default=1, ge=0, le=16, description="GPUs per replica, used tensor-parallel; 0 runs on CPU.")
    replicas: int = Field(default=1, ge=0, le=1000)
    gpu_resource_name: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$",
    )
    runtime: RuntimeConfig = defaulted(RuntimeConfig)
    resources: Resources = defaulted(Resources)
    scheduling: Scheduling = defaulted(Scheduling)
    rollout: Rollout = defaulted(Rollout)
    revision_history_limit: int = Field(default=10, ge=0, le=100)
    pod_metadata: PodMetadata = defaulted(PodMetadata)
    service_account_name: str | None = Field(default=None, max_length=253)

    rules = (
        Rule(
            rule="self.gpus in " + str(list(GPU_COUNTS)),
            message="must be 0 (CPU) or 1, 2, 4, 8 or 16: tensor parallelism splits attention heads evenly",
            field_path=".gpus",
        ),
        Rule(
            rule="self.gpus > 0 || !(self.quantization in ['fp16', 'int4'])",
            message="fp16 and int4 need a GPU (gpus >= 1); on CPU use none, bf16 or int8",
            field_path=".quantization",
        ),
        Rule(
            rule="self.gpus > 0 || self.runtime.dtype != 'float16'",
            message="float16 needs a GPU (gpus >= 1); on CPU use auto, float32 or bfloat16",
            field_path=".runtime.dtype",
        ),
        Rule(
            rule="!has(self.resources.limits) || !(self.gpuResourceName in self.resources.limits)",
            message="GPUs are set by spec.gpus, not by resources.limits",
            field_path=".resources.limits",
        ),
    )


class Condition(ApiModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


def release_key(spec: ModelDeploymentSpec) -> str:
    """Identifies what a spec deploys, whatever its replica count (scaling is not a new release)."""
    import hashlib
    import json

    # Fields at their defaults are left out, so a newer operator adding defaulted fields to the API does not
    # turn every existing object into a new release (and roll it) when it is upgraded.
    release = spec.model_dump(by_alias=True, mode="json", exclude={"replicas"}, exclude_defaults=True)
    return hashlib.sha256(json.dumps(release, sort_keys=True).encode()).hexdigest()[:16]


Outcome = Literal["Progressing", "Succeeded", "Failed", "RolledBack", "Superseded"]


class HistoryEntry(ApiModel):
    """One version as deployed: what ran, when, and how its rollout ended."""

    version: str
    source: str
    revision: str | None = Field(default=None, description="The pinned revision the version was deployed with.")
    resolved_revision: str | None = Field(
        default=None, description="What staging resolved it to: the commit SHA (hf://) or listing digest (s3://)."
    )
    quantization: str
    gpus: int
    image: str
    started: str
    finished: str | None = None
    outcome: Outcome = "Progressing"


class StagingStatus(ApiModel):
    """The latest staging of weights into the model cache."""

    version: str
    key: str = Field(description="The cache entry: derived from model source and revision.")
    job: str
    phase: Literal["Staging", "Staged", "Failed"]
    message: str = ""
    resolved_revision: str | None = None
    bytes: int | None = None


class ModelDeploymentStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    ready: str = Field(default="0/0", description="Ready replicas of desired, for kubectl get.")
    selector: str = ""
    serving_version: str | None = Field(default=None, description="The version the ready replicas run.")
    rollout_version: str | None = Field(default=None, description="The version being rolled out, if any.")
    endpoint: str | None = Field(default=None, description="The in-cluster OpenAI-compatible base URL.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Versions deployed, oldest first.")
    staging: StagingStatus | None = None
    last_good_spec: ModelDeploymentSpec | None = Field(
        default=None, description="The spec whose rollout last completed: what an automatic rollback restores."
    )
    failed_release: str | None = Field(
        default=None, description="Release key of a spec whose rollout failed and was rolled back."
    )


class ModelDeployment(ApiModel):
    """A model served by Berth's runtime: the pods, Service and disruption budget around them."""

    api_version: Literal["berth.dev/v1alpha1"] = API_VERSION
    kind: Literal["ModelDeployment"] = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def namespace(self) -> str:
        return self.metadata.get("namespace", "default")
