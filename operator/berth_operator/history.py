"""status.history: one entry per version deployed, oldest first, bounded by revisionHistoryLimit. Pure."""

from __future__ import annotations

from berth_operator.api import HistoryEntry, ModelDeploymentSpec

FINISHED = ("Succeeded", "Failed", "RolledBack", "Superseded")


def entry_for(spec: ModelDeploymentSpec, image: str, now: str) -> HistoryEntry:
    return HistoryEntry(
        version=spec.version,
        source=spec.model.source,
        revision=spec.model.revision,
        quantization=spec.quantization,
        gpus=spec.gpus,
        image=image,
        started=now,
    )


def _same_deployment(entry: HistoryEntry, candidate: HistoryEntry) -> bool:
    keys = ("version", "source", "revision", "quantization", "gpus", "image")
    return all(getattr(entry, k) == getattr(candidate, k) for k in keys)


def update_history(
    history: list[HistoryEntry],
    spec: ModelDeploymentSpec,
    image: str,
    rollout_reason: str,
    now: str,
    resolved_revision: str | None = None,
) -> list[HistoryEntry]:
    """Opens an entry when what is deployed changes (closing an unfinished predecessor as Superseded),
    and closes the current one when its rollout completes or exceeds its deadline."""
    current = entry_for(spec, image, now)
    entries = list(history)
    if not entries or not _same_deployment(entries[-1], current):
        if entries and entries[-1].outcome == "Progressing":
            entries[-1] = entries[-1].model_copy(update={"outcome": "Superseded", "finished": now})
        entries.append(current)
    latest = entries[-1]
    if resolved_revision and latest.resolved_revision is None:
        latest = entries[-1] = latest.model_copy(update={"resolved_revision": resolved_revision})
    if latest.outcome == "Progressing":
        if rollout_reason == "RolloutComplete":
            entries[-1] = latest.model_copy(update={"outcome": "Succeeded", "finished": now})
        elif rollout_reason == "ProgressDeadlineExceeded":
            entries[-1] = latest.model_copy(update={"outcome": "Failed", "finished": now})
    limit = max(spec.revision_history_limit, 1)
    return entries[-limit:]
