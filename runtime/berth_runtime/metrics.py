"""The runtime's Prometheus metrics. Shared concepts use vLLM's names, so routers (the Gateway API
inference extension), KEDA/HPA recipes and dashboards work unchanged; Berth's own are berth_runtime_*."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RUNNING = Gauge("vllm:num_requests_running", "Requests in the running batch.", registry=REGISTRY)
WAITING = Gauge("vllm:num_requests_waiting", "Requests waiting to join the batch.", registry=REGISTRY)
KV_USAGE = Gauge("vllm:kv_cache_usage_perc", "Fraction of the KV cache in use (0-1).", registry=REGISTRY)
PROMPT_TOKENS = Counter("vllm:prompt_tokens", "Prompt tokens processed.", registry=REGISTRY)
GENERATION_TOKENS = Counter("vllm:generation_tokens", "Tokens generated.", registry=REGISTRY)
SUCCESS = Counter("vllm:request_success", "Finished requests by finish reason.", ["finished_reason"], registry=REGISTRY)
TTFT = Histogram("vllm:time_to_first_token_seconds", "Time to first token.", buckets=LATENCY, registry=REGISTRY)
ITL = Histogram("vllm:inter_token_latency_seconds", "Time between tokens.", buckets=LATENCY, registry=REGISTRY)
E2E = Histogram("vllm:e2e_request_latency_seconds", "Request latency.", buckets=LATENCY, registry=REGISTRY)
QUEUE_TIME = Histogram("vllm:request_queue_time_seconds", "Time waiting.", buckets=LATENCY, registry=REGISTRY)

PHASES = ("starting", "loading", "quantizing", "warming", "self-test", "ready", "failed", "draining")
LOAD_PHASE = Gauge("berth_runtime_load_phase", "1 for the phase the runtime is in.", ["phase"], registry=REGISTRY)
SHARDS_LOADED = Gauge("berth_runtime_model_shards_loaded", "Weight shards loaded so far.", registry=REGISTRY)
SHARDS_TOTAL = Gauge("berth_runtime_model_shards_total", "Weight shards to load.", registry=REGISTRY)
WEIGHT_BYTES = Gauge("berth_runtime_model_weight_bytes", "Bytes the loaded weights occupy.", registry=REGISTRY)
REJECTED = Counter(
    "berth_runtime_requests_rejected", "Requests refused, by HTTP status.", ["status"], registry=REGISTRY
)


def publish_phase(phase: str, shards_loaded: int, shards_total: int) -> None:
    for name in PHASES:
        LOAD_PHASE.labels(name).set(1 if name == phase else 0)
    SHARDS_LOADED.set(shards_loaded)
    SHARDS_TOTAL.set(shards_total)
