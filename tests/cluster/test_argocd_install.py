"""Argo CD installs the chart and a model the way docs/install.md tells a new user to. Argo CD's own
repo-server and application-controller (its one binary, built from its Go modules by
hack/build-controlplane.sh, with miniredis as its Redis and the helm 3 its images bundle) run against the
local control plane, with the session's operator reconciling. examples/argocd/argocd-cm-health.yaml is
patched into argocd-cm as written; examples/argocd/application.yaml is applied as written except where this
machine differs: the chart comes from a chart repository served on loopback (no registry is reachable
here), the models from a git repository on disk holding examples/tiny-demo.yaml, and the ServiceMonitor is
off (no Prometheus Operator CRDs). Both Applications turn Synced and Healthy, the ModelDeployment's health
being the custom check's; a change of values upgrades the release (Argo CD prunes what it no longer
renders); deleting them in the documented order removes the model, then every object of the
release, and keeps the CRD."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import REPO_ROOT, Cluster, cluster_script, run_captured, wait_for
from tests.support.gitops import Component, chart_repository, http_ok, running, tcp_open
from tests.support.helm import release_objects
from tests.support.operator import OperatorProcess, condition, free_port, get_json

pytestmark = pytest.mark.cluster
EXAMPLES = REPO_ROOT / "examples" / "argocd"
TINY_DEMO = REPO_ROOT / "examples" / "tiny-demo.yaml"
ARGOCD = "argocd"
PART_OF_ARGOCD = {"app.kubernetes.io/part-of": "argocd"}  # the label Argo CD's settings informers select on
# What an Argo CD install holds besides its controllers: its settings, and the default project (which
# argocd-server creates; the test runs no API server).
INSTALL = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "labels": PART_OF_ARGOCD}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "argocd-secret", "labels": PART_OF_ARGOCD}},
    {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default"},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"namespace": "*", "server": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    },
]


@contextmanager
def argocd_controllers(cluster: Cluster, workdir: Path) -> Iterator[None]:
    argocd = Path(cluster_script("argocd"))
    cluster.install_crds(argocd / "crds")
    cluster.kubectl("create", "namespace", ARGOCD, check=False)
    cluster.kubectl("apply", "-n", ARGOCD, "-f", "-", stdin=yaml.safe_dump_all(INSTALL))
    health = EXAMPLES / "argocd-cm-health.yaml"  # step 1 of docs/install.md's Argo CD section, as written
    cluster.kubectl("-n", ARGOCD, "patch", "configmap", "argocd-cm", "--type", "merge", "--patch-file", str(health))
    (workdir / "home").mkdir()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "HOME": str(workdir / "home"),
        "PATH": f"{argocd / 'bin'}{os.pathsep}{os.environ['PATH']}",  # the repo-server runs `helm`
        "ARGOCD_GPG_ENABLED": "false",
        "ARGOCD_FAKE_IN_CLUSTER": "true",  # https://kubernetes.default.svc is the kubeconfig's cluster
    }
    redis, repo_server, repo_metrics, controller_metrics = (free_port() for _ in range(4))
    argocd_binary = str(argocd / "bin" / "argocd")
    common = [f"--redis=127.0.0.1:{redis}", "--logformat=text"]
    repo_server_args = [argocd_binary, *common, "--address=127.0.0.1", f"--port={repo_server}",
                        "--metrics-address=127.0.0.1", f"--metrics-port={repo_metrics}", "--disable-tls"]  # fmt: skip
    # Resource health kept in the Application's status (Argo CD 2's default), so the test can read it there.
    controller_args = [argocd_binary, *common, f"--repo-server=127.0.0.1:{repo_server}", "--repo-server-plaintext",
                       f"--metrics-port={controller_metrics}", f"--namespace={ARGOCD}",
                       "--persist-resource-health"]  # fmt: skip
    components = [
        Component("redis", [str(argocd / "bin" / "redis"), f"127.0.0.1:{redis}"], env, tcp_open(redis)),
        Component(
            "repo-server",
            repo_server_args,
            {**env, "ARGOCD_BINARY_NAME": "argocd-repo-server"},
            http_ok(f"http://127.0.0.1:{repo_metrics}/healthz"),
        ),
        Component(
            "application-controller",
            controller_args,
            {**env, "ARGOCD_BINARY_NAME": "argocd-application-controller"},
            http_ok(f"http://127.0.0.1:{controller_metrics}/healthz"),
        ),
    ]
    with running(components, workdir):
        yield


def models_repository(workdir: Path, namespace: str) -> str:
    """A git repository holding the demo ModelDeployment in ml/, as a platform team's models repository."""
    repository = workdir / "models.git"
    (repository / "ml").mkdir(parents=True)
    model = yaml.safe_load(TINY_DEMO.read_text())
    model["metadata"]["namespace"] = namespace
    (repository / "ml" / "tiny-demo.yaml").write_text(yaml.safe_dump(model))
    git = ["git", "-C", str(repository), "-c", "user.name=berth-test", "-c", "user.email=test@berth.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "models"]):
        run_captured([*git, *args])
    return repository.as_uri()


def example_for_this_machine(chart_url: str, models_url: str, namespace: str) -> list[dict]:
    berth, models = yaml.safe_load_all((EXAMPLES / "application.yaml").read_text())
    berth["spec"]["source"]["repoURL"] = chart_url  # an HTTP chart repository, not OCI
    values = berth["spec"]["source"]["helm"]["valuesObject"]
    values["rbac"]["namespaces"] = [namespace]
    values["metrics"]["serviceMonitor"]["enabled"] = False
    models["spec"]["source"]["repoURL"] = models_url
    models["spec"]["destination"]["namespace"] = namespace
    return [berth, models]


def synced_and_healthy(cluster: Cluster, name: str) -> dict | None:
    app = get_json(cluster, "application", name, "-n", ARGOCD)
    status = app.get("status", {})
    done = status.get("sync", {}).get("status") == "Synced" and status.get("health", {}).get("status") == "Healthy"
    return app if done else None


def test_argocd_installs_the_chart_and_a_model_from_the_examples_and_uninstalls_them(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    with (
        cluster.namespace("argo-models") as models,
        chart_repository(tmp_path / "charts") as chart_url,
        argocd_controllers(cluster, tmp_path),
    ):
        applications = example_for_this_machine(chart_url, models_repository(tmp_path, models), models)
        try:
            cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(applications))
            wait_for(lambda: synced_and_healthy(cluster, "berth"), 240, "the berth Application Synced and Healthy")
            assert get_json(cluster, "deployment", "berth", "-n", "berth-system")["status"]["availableReplicas"] == 1
            assert get_json(cluster, "roles", "-n", models)["items"], "RBAC limited to the listed namespace"

            app = wait_for(lambda: synced_and_healthy(cluster, "models"), 240, "the models Application Healthy")
            [resource] = app["status"]["resources"]
            assert (resource["kind"], resource["name"]) == ("ModelDeployment", "tiny-demo")
            ready = condition(get_json(cluster, "modeldeployment", "tiny-demo", "-n", models), "Ready")
            assert ready["status"] == "True"
            # The custom check's verdict and message: without it Argo CD gives a CRD's objects no health at all.
            assert resource["health"]["status"] == "Healthy"
            assert resource["health"]["message"].startswith(f"{ready['reason']}: "), resource["health"]

            # An upgrade as a commit to the values would make it: per-namespace RBAC to cluster-wide.
            cluster_wide = {"spec": {"source": {"helm": {"valuesObject": {"rbac": {"namespaces": []}}}}}}
            patch = json.dumps(cluster_wide)
            cluster.kubectl("patch", "application", "berth", "-n", ARGOCD, "--type", "merge", "-p", patch)
            wait_for(lambda: not get_json(cluster, "roles", "-n", models)["items"], 120, "the Role pruned")
            wait_for(lambda: synced_and_healthy(cluster, "berth"), 120, "the upgraded berth Application Healthy")

            # The documented order: the models first (their Application cascades to them), then the operator.
            cluster.kubectl("delete", "application", "models", "-n", ARGOCD, "--wait=true", "--timeout=120s")
            assert not cluster.kubectl("get", "modeldeployments", "-n", models, "-o", "name").stdout.strip()
            cluster.kubectl("delete", "application", "berth", "-n", ARGOCD, "--wait=true", "--timeout=120s")
            wait_for(lambda: not release_objects(cluster, "berth"), 60, "every object of the release gone")
            assert get_json(cluster, "crd", "modeldeployments.berth.dev"), "Argo CD never deletes CRDs"
        finally:
            # berth-system stays: the session's operator runs as a ServiceAccount there (tests/support/operator.py).
            done = cluster.kubectl("delete", "applications", "--all", "-n", ARGOCD, "--wait=true", "--timeout=60s",
                                   check=False)  # fmt: skip
            if done.returncode != 0:  # a failed controller leaves its finalizers: the namespace must not hang
                for name in cluster.kubectl("get", "applications", "-n", ARGOCD, "-o", "name").stdout.split():
                    cluster.kubectl("patch", name, "-n", ARGOCD, "--type", "merge",
                                    "-p", '{"metadata": {"finalizers": null}}', check=False)  # fmt: skip
