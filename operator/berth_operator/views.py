"""What `berth status` and `berth history` print, and the rollout verdict behind status's exit code.
Pure: a ModelDeployment object in, text out."""

from __future__ import annotations

from typing import Any

COMPLETE, IN_PROGRESS, FAILED = "complete", "in progress", "failed"
FAILED_REASONS = ("ProgressDeadlineExceeded", "RolloutFailed")


def _conditions(md: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (md.get("status") or {}).get("conditions", [])}


def verdict(md: dict[str, Any]) -> str:
    """Like `kubectl rollout status`: complete once the operator has seen the latest spec and the
    rollout finished with every replica available; failed when it gave up."""
    status = md.get("status") or {}
    conditions = _conditions(md)
    if status.get("observedGeneration") != md["metadata"].get("generation"):
        return IN_PROGRESS
    if conditions.get("Degraded", {}).get("reason") in FAILED_REASONS:
        return FAILED
    ready = conditions.get("Ready", {}).get("status") == "True"
    progressing = conditions.get("Progressing", {}).get("status") == "True"
    return COMPLETE if ready and not progressing else IN_PROGRESS


def pod_phase(pod: dict[str, Any]) -> str:
    """Where one serving pod is on its way to serving, from what the API shows (no exec, no proxy)."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "draining"
    if not (pod.get("spec") or {}).get("nodeName"):
        unschedulable = next((c for c in status.get("conditions") or [] if c.get("reason") == "Unschedulable"), None)
        return f"pending: {unschedulable['message']}" if unschedulable else "pending"
    for container in status.get("initContainerStatuses") or []:
        if "running" in (container.get("state") or {}):
            return "fetching weights"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            return f"{waiting['reason']} (restarts: {container.get('restartCount', 0)})"
        if container.get("ready"):
            return "ready"
        if "running" in (container.get("state") or {}):
            return "loading the model" if not container.get("started") else "loading / warming up"
    return "starting"


def pods_text(pods: list[dict[str, Any]]) -> list[str]:
    rows = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        version = (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/version", "-")
        node = (pod.get("spec") or {}).get("nodeName") or "-"
        rows.append(f"    {pod['metadata']['name']}  {version}  {node}  {pod_phase(pod)}")
    return ["  pods:", *rows] if rows else []


def status_text(
    md: dict[str, Any], pods: list[dict[str, Any]] | None = None, staging_progress: str | None = None
) -> str:
    meta, status = md["metadata"], md.get("status") or {}
    lines = [f"{meta['name']} ({meta.get('namespace', 'default')}): rollout {verdict(md)}"]
    for type_ in ("Ready", "Progressing", "Degraded"):
        condition = _conditions(md).get(type_)
        if condition:
            lines.append(f"  {type_}={condition['status']} {condition['reason']}: {condition.get('message', '')}")
    lines.append(f"  replicas: {status.get('ready', '0/0')} ready, {status.get('updatedReplicas', 0)} up to date, "
                 f"{status.get('availableReplicas', 0)} available")  # fmt: skip
    lines.append(
        f"  serving: {status.get('servingVersion') or '-'}; rolling out: {status.get('rolloutVersion') or '-'}"
    )
    staging = status.get("staging")
    if staging:
        lines.append(f"  staging: version {staging['version']} {staging['phase']}: {staging.get('message', '')}")
        if staging_progress:
            lines.append(f"    latest: {staging_progress}")
    if status.get("endpoint"):
        lines.append(f"  endpoint: {status['endpoint']}")
    return "\n".join(lines + pods_text(pods or []))


def history_table(md: dict[str, Any]) -> str:
    header = ("VERSION", "OUTCOME", "SOURCE", "REVISION", "RESOLVED", "QUANT", "GPUS", "STARTED", "FINISHED")
    rows = [header]
    for entry in (md.get("status") or {}).get("history", []):
        revision, finished = entry.get("revision") or "-", entry.get("finished") or "-"
        rows.append((entry["version"], entry.get("outcome", ""), entry["source"], revision,
                     entry.get("resolvedRevision") or "-", entry["quantization"], str(entry["gpus"]),
                     entry["started"], finished))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def rollback_target(md: dict[str, Any], version: str | None) -> dict[str, Any] | None:
    """The history entry to go back to: the named version's latest entry, else the latest succeeded
    entry of a different version than the spec's."""
    entries = list(reversed((md.get("status") or {}).get("history", [])))
    if version:
        return next((e for e in entries if e["version"] == version), None)
    current = md["spec"]["version"]
    return next((e for e in entries if e.get("outcome") == "Succeeded" and e["version"] != current), None)


def rollback_patch(entry: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that deploys the entry's release again: version, weights, quantization, GPUs and
    the runtime image it ran with."""
    return {
        "spec": {
            "version": entry["version"],
            "model": {"source": entry["source"], "revision": entry.get("revision")},
            "quantization": entry["quantization"],
            "gpus": entry["gpus"],
            "runtime": {"image": entry["image"]},
        }
    }
