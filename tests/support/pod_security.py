"""The Pod Security Standards "restricted" profile, checked on a pod spec (the API server enforces the same
in namespaces labelled pod-security.kubernetes.io/enforce=restricted, which the e2e tests also use)."""

from __future__ import annotations

from typing import Any

RESTRICTED_VOLUME_TYPES = {
    "configMap", "downwardAPI", "emptyDir", "projected", "secret", "csi", "persistentVolumeClaim", "ephemeral",
    "image",
}  # fmt: skip


def assert_restricted(spec: dict[str, Any]) -> None:
    pod = spec.get("securityContext") or {}
    assert pod.get("runAsNonRoot") and pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", pod
    for container in spec["containers"] + spec.get("initContainers", []):
        security = {**pod, **(container.get("securityContext") or {})}
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsNonRoot"] and security["runAsUser"] != 0 and security["readOnlyRootFilesystem"]
    for volume in spec.get("volumes", []):
        assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, volume
