"""The Helm chart installed into the local control plane, then the operator run with the chart's
ServiceAccount token: it does its whole job with exactly the chart's RBAC, is denied the rest, and
`helm upgrade` and `helm uninstall` leave nothing behind. Namespaces enforce the PSS "restricted"
profile, so the API server itself refuses any pod of the chart or the operator that breaks it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import Cluster, cluster_script, wait_for
from tests.support.helm import CHART, find, helm, objects_of, release_objects, set_flags
from tests.support.manifests import model_deployment
from tests.support.operator import (
    OperatorProcess,
    apply_manifest,
    get_json,
    service_account_kubeconfig,
    wait_condition,
    wait_status,
)

pytestmark = pytest.mark.cluster
RELEASE = "berth-e2e"
MONITOR_KINDS = ("ServiceMonitor", "PodMonitor")
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def restricted_namespace(cluster: Cluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    labels = ",".join(f"{k}={v}" for k, v in RESTRICTED.items())
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, *labels.split(","))
    return name


def can_i(cluster: Cluster, kubeconfig: Path, *args: str) -> bool:
    done = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", *args, check=False)
    return done.stdout.strip() == "yes"


def assert_service_monitor_scrapes_the_operator(cluster: Cluster, namespace: str) -> None:
    monitor = get_json(cluster, "servicemonitor", RELEASE, "-n", namespace)["spec"]
    services = [s for s in get_json(cluster, "services", "-n", namespace)["items"]
                if monitor["selector"]["matchLabels"].items() <= s["metadata"].get("labels", {}).items()]  # fmt: skip
    assert len(services) == 1, [s["metadata"]["name"] for s in services]
    ports = {p.get("name") for p in services[0]["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= ports, ports


def assert_pod_monitor_selects_inference_pods(cluster: Cluster, namespace: str, models: str) -> None:
    monitor = get_json(cluster, "podmonitor", f"{RELEASE}-inference", "-n", namespace)["spec"]
    assert monitor["namespaceSelector"] == {"matchNames": [models]}
    pods = [p for p in get_json(cluster, "pods", "-n", models)["items"]
            if monitor["selector"]["matchLabels"].items() <= p["metadata"]["labels"].items()]  # fmt: skip
    assert pods, "the PodMonitor selects the operator's inference pods"
    for pod in pods:
        ports = {p.get("name") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert {e["port"] for e in monitor["podMetricsEndpoints"]} <= ports, ports


def run_notes_demo(cluster: Cluster, notes: str) -> subprocess.CompletedProcess[str]:
    """The commands NOTES.txt gives for the demo model, pasted into a shell as a new user would."""
    block = notes.split("Deploy the demo model", 1)[1].split("\n\n", 1)[0]
    script = "\n".join(line for line in block.splitlines() if line.startswith("  "))
    path = os.pathsep.join((str(cluster.bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]))
    env = {**os.environ, "PATH": path, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env,
                          timeout=180)  # fmt: skip


def test_helm_install_then_the_operator_as_the_charts_account_upgrade_and_uninstall(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    system, models = restricted_namespace(cluster, "berth-chart"), restricted_namespace(cluster, "models")
    values = {"rbac.namespaces": [models], "networkPolicy.enabled": True, "dashboard.enabled": True,
              "metrics.serviceMonitor.enabled": True}  # fmt: skip
    cluster.install_crds(Path(cluster_script("prometheus-crds")))  # the Prometheus Operator's, as a user has them
    operator.stop()  # the session's operator watches every namespace; the chart's account takes over here
    chart_operator = None
    try:
        helm("install", RELEASE, str(CHART), "-n", system, *set_flags(values), "--wait", "--timeout", "120s",
             kubeconfig=cluster.kubeconfig)  # fmt: skip
        deployment = get_json(cluster, "deployment", RELEASE, "-n", system)
        assert deployment["status"]["availableReplicas"] == 1, "its pod passed the restricted profile and runs"
        # The API server prunes fields a CRD does not know; a strict dry run refuses them instead.
        installed = objects_of(helm("get", "manifest", RELEASE, "-n", system, kubeconfig=cluster.kubeconfig).stdout)
        monitors = [o for kind in MONITOR_KINDS for o in find(installed, kind)]
        assert len(monitors) == 2
        cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=yaml.safe_dump_all(monitors))
        assert_service_monitor_scrapes_the_operator(cluster, system)

        kubeconfig = service_account_kubeconfig(cluster, tmp_path / "chart-sa.yaml", (system, RELEASE))
        assert can_i(cluster, kubeconfig, "create", "deployments.apps", "-n", models)
        assert can_i(cluster, kubeconfig, "list", "nodes")
        for denied in (("create", "pods", "-n", models), ("list", "secrets", "-n", models),
                       ("delete", "deployments.apps", "-n", models), ("get", "deployments.apps", "-n", "default"),
                       ("patch", "modeldeployments.berth.dev", "-n", "default"), ("update", "nodes"),
                       ("get", "leases.coordination.k8s.io", "-n", models)):  # fmt: skip
            assert not can_i(cluster, kubeconfig, *denied), denied
        forbidden = cluster.kubectl("--kubeconfig", str(kubeconfig), "get", "secrets", "-n", models, check=False)
        assert forbidden.returncode != 0 and "Forbidden" in forbidden.stderr

        # The operator process, as the chart's Deployment runs it (kwok runs no containers).
        args = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "operator")["args"]
        namespaced = tuple(a for a in args if a.startswith("--namespace="))
        assert namespaced == (f"--namespace={models}",)
        chart_operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", extra_args=namespaced,
                                         extra_env={"BERTH_CHECK_SECRETS": "true"})  # fmt: skip
        chart_operator.start()
        notes = helm("get", "notes", RELEASE, "-n", system, kubeconfig=cluster.kubeconfig).stdout
        done = run_notes_demo(cluster, notes)
        assert done.returncode == 0 and "rollout complete" in done.stdout, (done.stdout, done.stderr)
        wait_condition(cluster, models, "tiny-demo", "Ready", "True")
        cluster.kubectl("delete", "md", "tiny-demo", "-n", models, "--wait=true", "--timeout=60s")

        spec = {"model": {"source": "file:///opt/models/tiny"}, "gpus": 0, "replicas": 1, "version": "v1"}
        apply_manifest(cluster, models, model_deployment("chart", **spec))
        wait_condition(cluster, models, "chart", "Ready", "True", timeout=90)
        cluster.kubectl("scale", "md", "chart", "-n", models, "--replicas=2")
        wait_status(cluster, models, "chart", "ready", "2/2", timeout=90)
        cluster.kubectl("patch", "md", "chart", "-n", models, "--type=merge", "-p", '{"spec": {"version": "v2"}}')
        md = wait_status(cluster, models, "chart", "servingVersion", "v2", timeout=120)
        md = wait_for(lambda: (m := get_json(cluster, "md", "chart", "-n", models))["status"]["history"][-1]["outcome"]
                      == "Succeeded" and m, 30, "v2 recorded as Succeeded")  # fmt: skip
        assert [e["version"] for e in md["status"]["history"]] == ["v1", "v2"]
        assert_pod_monitor_selects_inference_pods(cluster, system, models)
        cluster.kubectl("delete", "md", "chart", "-n", models, "--wait=true", "--timeout=60s")
        wait_for(lambda: not get_json(cluster, "deployments", "-n", models)["items"], 60, "children collected")
        assert "Forbidden" not in chart_operator.log(), chart_operator.log()

        # Upgrade to cluster-wide RBAC: the per-namespace Role goes, the ClusterRole grows.
        wider = {"rbac.namespaces": [], "metrics.serviceMonitor.enabled": True}
        helm("upgrade", RELEASE, str(CHART), "-n", system, *set_flags(wider), "--wait", kubeconfig=cluster.kubeconfig)
        pod_monitor = get_json(cluster, "podmonitor", f"{RELEASE}-inference", "-n", system)
        assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
        assert not get_json(cluster, "roles", "-n", models)["items"], "no Role left behind in the old namespace"
        assert not get_json(cluster, "networkpolicies", "-n", system)["items"]
        # The API server's RBAC authorizer reads roles through an informer: the wider grant lands a moment later.
        wait_for(lambda: can_i(cluster, kubeconfig, "create", "deployments.apps", "-n", "default"), 10, "cluster-wide")

        # Uninstalled in the "wrong" order, a ModelDeployment is still deleted cleanly: no finalizer waits for
        # the operator, and the garbage collector removes what it owned.
        apply_manifest(cluster, models, model_deployment("left", **spec))
        wait_condition(cluster, models, "left", "Ready", "True", timeout=90)
        chart_operator.stop()
        helm("uninstall", RELEASE, "-n", system, "--wait", kubeconfig=cluster.kubeconfig)
        wait_for(lambda: not release_objects(cluster, RELEASE), 60, "every object of the release gone")
        assert not cluster.kubectl("get", ",".join(MONITOR_KINDS), "-n", system, "-o", "name").stdout.strip()
        cluster.kubectl("delete", "md", "left", "-n", models, "--wait=true", "--timeout=30s")
        wait_for(lambda: not get_json(cluster, "deployments,services", "-n", models)["items"], 60, "owned objects gone")
        assert get_json(cluster, "crd", "modeldeployments.berth.dev"), "Helm keeps CRDs (and so the users' objects)"
    finally:
        if chart_operator:
            chart_operator.stop()
        helm("uninstall", RELEASE, "-n", system, kubeconfig=cluster.kubeconfig, check=False)
        for namespace in (system, models):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        operator.start()


def test_plain_kubectl_install_and_delete(cluster: Cluster) -> None:
    """deploy/install.yaml, as a user without Helm applies it (the CRD is already there and stays)."""
    install = str(CHART.parents[1] / "deploy" / "install.yaml")
    try:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", install)
        cluster.kubectl("-n", "berth-system", "rollout", "status", "deployment/berth", "--timeout=90s")
        done = cluster.kubectl("auth", "can-i", "patch", "modeldeployments.berth.dev/status", "-A",
                               "--as=system:serviceaccount:berth-system:berth")  # fmt: skip
        assert done.stdout.strip() == "yes"
    finally:
        objects = [d for d in cluster.kubectl("create", "--dry-run=client", "-o", "name", "-f", install).stdout.split()
                   if not d.startswith(("namespace/", "customresourcedefinition"))]  # fmt: skip
        cluster.kubectl("delete", "--wait=true", "-n", "berth-system", *objects, check=False)
    leftovers = cluster.kubectl("get", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/instance=berth",
                                "-o", "name").stdout  # fmt: skip
    assert not leftovers.strip()
