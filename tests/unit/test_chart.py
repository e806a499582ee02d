"""The Helm chart, rendered by helm itself: lint-clean, valid against the Kubernetes 1.36 schemas, RBAC exactly
the generated rules (cluster-wide or per namespace), PSS-restricted, images and versions from one place."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from berth_operator import rbac
from berth_operator.render import Settings, render_deployment
from tests.support.helm import CHART, find, helm, template
from tests.support.pod_security import assert_restricted
from tests.unit.test_render import SETTINGS, md_of

EVERYTHING = {
    "replicas": 2, "rbac.namespaces": ["ml", "team-a"], "metrics.serviceMonitor.enabled": True,
    "networkPolicy.enabled": True, "dashboard.enabled": True, "rbac.checkSecrets": False,
}  # fmt: skip
PROMETHEUS_OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor"}  # CRDs of their own, not in the Kubernetes schemas


def rules_of(role: dict[str, Any]) -> list[dict[str, Any]]:
    return role["rules"]


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything"])
def test_lint_is_clean(values: dict[str, Any]) -> None:
    from tests.support.helm import set_flags

    done = helm("lint", "--strict", str(CHART), *set_flags(values))
    assert "0 chart(s) failed" in done.stdout and "[WARNING]" not in done.stdout, done.stdout


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything"])
def test_every_object_is_valid_for_kubernetes_1_36(values: dict[str, Any]) -> None:
    objects = template(values, "--include-crds")
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "ServiceAccount"} <= {o["kind"] for o in objects}
    for obj in objects:
        if obj["kind"] in PROMETHEUS_OPERATOR_KINDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["spec"]["selector"]["matchLabels"]
            continue
        kubernetes_validate.validate(obj, "1.36.0", strict=True)


def test_values_are_checked_against_the_schema() -> None:
    done = helm("template", "b", str(CHART), "--set", "replicas=0", "--set", "logLevel=trace", check=False)
    assert done.returncode != 0 and "/replicas" in done.stderr and "/logLevel" in done.stderr


def test_cluster_wide_rbac_is_exactly_the_generated_rules() -> None:
    objects = template()
    (role,) = find(objects, "ClusterRole")
    expected = rbac.rules("cluster") + rbac.rules("namespace") + rbac.rules("secrets")
    assert rules_of(role) == expected
    (lease_role,) = find(objects, "Role")
    assert lease_role["metadata"]["namespace"] == "berth-system" and rules_of(lease_role) == rbac.rules("operator")
    (binding,) = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "berth", "namespace": "berth-system"}]
    assert not any("*" in str(r) for o in objects if "rules" in o for r in o["rules"])


def test_namespaced_rbac_gives_each_namespace_a_role_and_the_cluster_only_what_must_be_cluster_wide() -> None:
    objects = template({"rbac.namespaces": ["ml", "team-a"], "rbac.checkSecrets": False})
    (cluster_role,) = find(objects, "ClusterRole")
    assert rules_of(cluster_role) == rbac.rules("cluster")
    roles = {o["metadata"]["namespace"]: o for o in find(objects, "Role", "berth")}
    assert set(roles) == {"ml", "team-a"} and all(rules_of(r) == rbac.rules("namespace") for r in roles.values())
    assert "secrets" not in json.dumps(objects)
    (deployment,) = find(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml" in args and "--namespace=team-a" in args
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BERTH_CHECK_SECRETS"] == "false"


def test_one_replica_recreates_more_elect_a_leader() -> None:
    (single,) = find(template(), "Deployment")
    assert single["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(a.startswith("--leader-elect") for a in single["spec"]["template"]["spec"]["containers"][0]["args"])
    (several,) = find(template({"replicas": 3}), "Deployment")
    assert "strategy" not in several["spec"]
    assert "--leader-elect" in several["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_operator_pod_is_restricted() -> None:
    (deployment,) = find(template(), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert_restricted(spec)
    assert spec["containers"][0]["resources"]["limits"]["memory"]


def test_images_and_versions_come_from_one_place() -> None:
    version = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == version
    (deployment,) = find(template(), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    runtime_image = next(e["value"] for e in container["env"] if e["name"] == "BERTH_RUNTIME_IMAGE")
    assert container["image"] == f"ghcr.io/berth-dev/berth-operator:{version}"
    assert runtime_image == Settings().runtime_image == f"ghcr.io/berth-dev/berth-runtime:{version}"
    (pinned,) = find(template({"image.runtime.tag": "0.2.0-rc1"}), "Deployment")
    assert "berth-runtime:0.2.0-rc1" in json.dumps(pinned)


def test_the_pod_monitor_selects_the_inference_pods_the_operator_renders() -> None:
    (monitor,) = find(template({"metrics.serviceMonitor.enabled": True}), "PodMonitor")
    pod = render_deployment(md_of(), SETTINGS)["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = [p["name"] for p in pod["spec"]["containers"][0]["ports"]]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports


def test_the_dashboard_charts_only_metrics_that_exist() -> None:
    from prometheus_client import REGISTRY as OPERATOR_REGISTRY

    import berth_operator.metrics  # noqa: F401  (registers the operator's metrics)
    from berth_runtime.metrics import REGISTRY as RUNTIME_REGISTRY

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exposed = {
        family.name + suffix
        for registry in (OPERATOR_REGISTRY, RUNTIME_REGISTRY)
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    (config_map,) = find(template({"dashboard.enabled": True}), "ConfigMap")
    dashboard = json.loads(config_map["data"]["berth.json"])
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(?:vllm:|berth_)[a-z0-9_:]+", expr)}
    assert used and used <= exposed, used - exposed
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_plain_kubectl_install_is_the_chart_rendered_with_defaults() -> None:
    import runpy

    from tests.support.helm import helm_binary

    generator = runpy.run_path(str(CHART.parents[1] / "hack" / "gen-install.py"))
    committed = (CHART.parents[1] / "deploy" / "install.yaml").read_text()
    assert committed == generator["render"](str(helm_binary())), "stale deploy/install.yaml: run `make generate`"
