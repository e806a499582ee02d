"""Flux installs the chart the way docs/install.md tells a new user to. Flux's own source-controller and
helm-controller (built from their Go modules by hack/build-controlplane.sh) run against the local
control plane; examples/flux/helmrelease.yaml is applied as written except where this machine differs:
its HelmRepository points at a chart repository served on loopback (no registry is reachable here) and
the ServiceMonitor is off (no Prometheus Operator CRDs). The HelmRelease becomes Ready with the operator
and the CRD installed; deleting it uninstalls the release and keeps the CRD."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import REPO_ROOT, Cluster, cluster_script, wait_for
from tests.support.gitops import Component, chart_repository, http_ok, running
from tests.support.helm import CHART, release_objects
from tests.support.operator import free_port, get_json

pytestmark = pytest.mark.cluster
EXAMPLE = REPO_ROOT / "examples" / "flux" / "helmrelease.yaml"


@contextmanager
def flux_controllers(cluster: Cluster, workdir: Path) -> Iterator[None]:
    flux = Path(cluster_script("flux"))
    cluster.install_crds(flux / "crds")
    cluster.kubectl("create", "namespace", "flux-system", check=False)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "RUNTIME_NAMESPACE": "flux-system"}
    storage = f"127.0.0.1:{free_port()}"
    (workdir / "artifacts").mkdir()
    artifacts = f"--storage-path={workdir / 'artifacts'}"
    commands = {
        "source-controller": [artifacts, f"--storage-addr={storage}", f"--storage-adv-addr={storage}"],
        "helm-controller": [],
    }
    components = []
    for name, args in commands.items():
        health = free_port()
        argv = [str(flux / "bin" / name), *args, "--enable-leader-election=false", "--watch-all-namespaces=true",
                f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-addr=127.0.0.1:{health}"]  # fmt: skip
        components.append(Component(name, argv, env, http_ok(f"http://127.0.0.1:{health}/healthz")))
    with running(components, workdir):
        yield


def example_for_this_machine(repository_url: str, namespace: str) -> list[dict]:
    docs = {d["kind"]: d for d in yaml.safe_load_all(EXAMPLE.read_text())}
    repository, release = docs["HelmRepository"], docs["HelmRelease"]
    repository["spec"] = {"url": repository_url, "interval": repository["spec"]["interval"]}  # HTTP, not OCI
    release["spec"]["values"]["rbac"]["namespaces"] = [namespace]
    release["spec"]["values"]["metrics"]["serviceMonitor"]["enabled"] = False
    return [repository, release]


def ready(cluster: Cluster) -> dict | None:
    release = get_json(cluster, "helmrelease", "berth", "-n", "flux-system")
    status = release.get("status", {})
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    # Flux writes the conditions and the rest of the status in two patches, conditions first.
    return release if conditions.get("Ready", {}).get("status") == "True" and status.get("history") else None


def test_flux_installs_the_chart_from_the_example_and_uninstalls_it(cluster: Cluster, tmp_path: Path) -> None:
    with (
        cluster.namespace("flux-models") as models,
        chart_repository(tmp_path / "charts") as url,
        flux_controllers(cluster, tmp_path),
    ):
        manifests = example_for_this_machine(url, models)
        try:
            cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
            release = wait_for(lambda: ready(cluster), 240, "the HelmRelease Ready")
            assert (
                release["status"]["history"][0]["chartVersion"]
                == yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
            )
            deployment = get_json(cluster, "deployment", "berth", "-n", "berth-system")
            assert deployment["status"]["availableReplicas"] == 1
            assert get_json(cluster, "crd", "modeldeployments.berth.dev")
            assert get_json(cluster, "roles", "-n", models)["items"], "RBAC limited to the listed namespace"

            cluster.kubectl("delete", "helmrelease", "berth", "-n", "flux-system", "--wait=true", "--timeout=120s")
            wait_for(lambda: not release_objects(cluster, "berth"), 60, "every object of the release gone")
            assert get_json(cluster, "crd", "modeldeployments.berth.dev"), "Helm keeps CRDs"
        finally:
            # berth-system stays: the session's operator runs as a ServiceAccount there (tests/support/operator.py).
            cluster.kubectl("delete", "helmrelease,helmrepository", "--all", "-n", "flux-system", "--wait=true",
                            "--timeout=60s", check=False)  # fmt: skip
