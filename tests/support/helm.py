"""The chart as Helm renders it, with the helm binary hack/build-controlplane.sh builds (make helm)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO_ROOT, Cluster, cluster_script, run_captured

CHART = REPO_ROOT / "charts" / "berth"
# What a release may leave in the cluster, looked up by the chart's instance label.
RELEASE_KINDS = "deployments,replicasets,pods,services,serviceaccounts,configmaps,roles,rolebindings,networkpolicies"


def helm_binary() -> Path:
    binary = Path(cluster_script("helm"))
    assert binary.exists(), f"{binary} is missing: run `make helm`"
    return binary


def helm(*args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    config = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return run_captured([str(helm_binary()), *config, *args], check=check)


def set_flags(values: dict[str, Any]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]


def template(values: dict[str, Any] | None = None, *extra: str, release: str = "berth") -> list[dict[str, Any]]:
    done = helm("template", release, str(CHART), "--namespace", "berth-system", *set_flags(values or {}), *extra)
    return objects_of(done.stdout)


def objects_of(manifest: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML manifest (helm template, helm get manifest)."""
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def release_objects(cluster: Cluster, release: str) -> list[str]:
    """Every object of a release still in the cluster, namespaced and cluster-wide."""
    selector = f"app.kubernetes.io/instance={release}"
    found = cluster.kubectl("get", RELEASE_KINDS, "-A", "-l", selector, "-o", "name").stdout.split()
    found += cluster.kubectl("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name").stdout.split()
    return found
