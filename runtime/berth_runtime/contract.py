"""The contract between the operator and the runtime: command line, port, paths and endpoints.

The operator renders pods from these constants and the runtime's command line is parsed from them, so
the two cannot drift apart. docs/runtime-contract.md explains them for people. This module must stay
importable without torch: the operator image does not have it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMMAND = ("berth-runtime",)
SERVE = "serve"
FETCH = "fetch"
STAGE = "stage"

PORT = 8000
PORT_NAME = "http"
HEALTH_PATH = "/health"  # process and engine loop alive, also while loading (liveness)
READY_PATH = "/ready"  # model loaded, warmed up, self-test passed, not draining (startup, readiness)
METRICS_PATH = "/metrics"  # Prometheus
API_PREFIX = "/v1"  # OpenAI-compatible API

MODEL_DIR = "/models"  # where a pvc:// volume is mounted or hf:// / s3:// weights are fetched to
CACHE_DIR = "/cache"  # the model cache volume, in the staging Job's container
SCRATCH_DIR = "/tmp"  # the only writable path in the container (an emptyDir)
CA_DIR = "/etc/berth/ca"  # spec.model.caBundle's ConfigMap, in the containers that download weights
DEMO_MODEL = "demo"  # `--model demo`: the embedded demo model, made under $HOME at start, never downloaded

# Environment the operator sets on every runtime container.
ENV_HOME = "HOME"
ENV_OFFLINE = "HF_HUB_OFFLINE"  # the runtime never downloads; fetching is the init container's job
ENV_CA_BUNDLE = "BERTH_CA_BUNDLE"  # a CA bundle file the downloaders trust instead of the system's


@dataclass(frozen=True)
class ServeArgs:
    """`berth-runtime serve` options the operator passes; the runtime's parser is built from these names."""

    model: str
    served_model_name: str
    port: int = PORT
    dtype: str = "auto"
    quantization: str = "none"
    tensor_parallel_size: int = 1
    max_batch_size: int = 32
    max_model_len: int | None = None
    drain_timeout: int = 60
    self_test_prompt: str | None = None
    self_test_expect: str | None = None
    self_test_budget_ms: int | None = None
    extra: tuple[str, ...] = field(default=())

    def argv(self) -> list[str]:
        """The container args, after COMMAND: `serve --model ... [extra]`."""
        args = [
            SERVE,
            "--model", self.model,
            "--served-model-name", self.served_model_name,
            "--host", "0.0.0.0",
            "--port", str(self.port),
            "--dtype", self.dtype,
            "--quantization", self.quantization,
            "--tensor-parallel-size", str(self.tensor_parallel_size),
            "--max-batch-size", str(self.max_batch_size),
            "--drain-timeout", str(self.drain_timeout),
        ]  # fmt: skip
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        self_test = {
            "--self-test-prompt": self.self_test_prompt,
            "--self-test-expect": self.self_test_expect,
            "--self-test-budget-ms": self.self_test_budget_ms,
        }
        for flag, value in self_test.items():
            if value is not None:
                args += [flag, str(value)]
        return args + list(self.extra)


@dataclass(frozen=True)
class FetchArgs:
    """`berth-runtime fetch`: downloads a pinned model revision (safetensors only) into dest."""

    source: str
    revision: str | None
    dest: str = MODEL_DIR

    def argv(self) -> list[str]:
        args = [FETCH, self.source, "--dest", self.dest]
        if self.revision:
            args += ["--revision", self.revision]
        return args


@dataclass(frozen=True)
class StageArgs:
    """`berth-runtime stage`: stages a pinned revision into the model cache as entry `key`, keeping only
    `key` and `keep`; the outcome goes to the termination message."""

    source: str
    revision: str | None
    key: str
    keep: tuple[str, ...] = ()
    cache: str = CACHE_DIR

    def argv(self) -> list[str]:
        args = [STAGE, self.source, "--cache", self.cache, "--key", self.key]
        if self.revision:
            args += ["--revision", self.revision]
        for kept in self.keep:
            args += ["--keep", kept]
        return args
