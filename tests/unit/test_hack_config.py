"""Cluster-free checks of the control-plane tooling's committed configuration."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import yaml

from tests.support.real_node import NODE, env_file

HACK = Path(__file__).resolve().parents[2] / "hack"
GPU = "nvidia.com/gpu"


def pinned_versions() -> dict[str, str]:
    return env_file(HACK / "versions.env")


def required_version(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", go_mod.read_text(), re.MULTILINE)
    assert match, f"{go_mod} does not require {module}"
    return match.group(1)


def test_wrapper_modules_match_the_pinned_versions() -> None:
    """A pin changed without rerunning hack/controlplane/gen-modules.sh would build the old version."""
    pins = pinned_versions()
    kubernetes = HACK / "controlplane" / "kubernetes" / "go.mod"
    etcd = HACK / "controlplane" / "etcd" / "go.mod"
    assert required_version(kubernetes, "k8s.io/kubernetes") == pins["KUBERNETES_VERSION"]
    assert required_version(etcd, "go.etcd.io/etcd/server/v3") == pins["ETCD_VERSION"]
    assert required_version(etcd, "go.etcd.io/etcd/etcdctl/v3") == pins["ETCD_VERSION"]


def test_every_staging_module_is_replaced_with_its_published_version() -> None:
    pins = pinned_versions()
    staging = "v0." + pins["KUBERNETES_VERSION"].removeprefix("v1.")
    go_mod = (HACK / "controlplane" / "kubernetes" / "go.mod").read_text()
    replaces = re.findall(r"^replace (k8s\.io/\S+) => (k8s\.io/\S+) (v\S+)$", go_mod, re.MULTILINE)
    assert len(replaces) >= 30
    for source, target, version in replaces:
        assert (source, version) == (target, staging)


def test_nodes_offer_two_gpu_nodes_and_one_cpu_node() -> None:
    nodes = list(yaml.safe_load_all((HACK / "kwok" / "nodes.yaml").read_text()))
    gpus = sorted(int(n["status"]["allocatable"].get(GPU, 0)) for n in nodes)
    assert gpus == [0, 2, 4]
    for node in nodes:
        assert node["status"]["capacity"] == node["status"]["allocatable"]
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_failure_stages_win_over_kwoks_default_only_for_labelled_pods() -> None:
    stages = list(yaml.safe_load_all((HACK / "kwok" / "stages.yaml").read_text()))
    behaviours = set()
    for stage in stages:
        assert stage["kind"] == "Stage"
        assert stage["spec"]["weight"] > 0, "kwok's default pod-ready has no weight; ours must have one"
        behaviours.add(stage["spec"]["selector"]["matchLabels"]["kwok.berth.dev/behaviour"])
    assert behaviours == {"never-ready", "crash-loop", "fail"}


def test_the_real_node_s_addresses_are_private_and_apart_from_kwok_s_and_the_services() -> None:
    """Every address the real node uses is one hack/node.sh makes on this machine and routes to its bridge:
    private, and no range overlapping another (a Service IP inside the pods' range would route to a pod)."""
    settings = NODE
    pods, services, kwok = (
        ipaddress.ip_network(settings[k]) for k in ("NODE_POD_CIDR", "SERVICE_CIDR", "KWOK_POD_CIDR")
    )
    assert ipaddress.ip_address(settings["NODE_IP"]) == next(pods.hosts()), "the node's address is the pods' gateway"
    for a, b in ((pods, services), (pods, kwok), (services, kwok)):
        assert a.is_private and b.is_private and not a.overlaps(b), (a, b)


def test_kwok_leaves_the_real_node_to_its_kubelet_and_only_the_fake_nodes_are_annotated() -> None:
    config = subprocess.run([str(HACK / "cluster.sh"), "config"], capture_output=True, text=True, check=True).stdout
    options = next(d for d in yaml.safe_load_all(config) if d.get("kind") == "KwokctlConfiguration")
    patches = {p["name"]: {a["key"]: a for a in p["extraArgs"]} for p in options["componentsPatches"]}
    kwok = patches["kwok-controller"]
    assert kwok["manage-all-nodes"] == {"key": "manage-all-nodes", "value": "false", "override": True}
    key, value = kwok["manage-nodes-with-annotation-selector"]["value"].split("=")
    nodes = list(yaml.safe_load_all((HACK / "kwok" / "nodes.yaml").read_text()))
    assert all(node["metadata"]["annotations"][key] == value for node in nodes)
    apiserver = patches["kube-apiserver"]
    assert apiserver["service-cluster-ip-range"]["value"] == NODE["SERVICE_CIDR"]
    assert apiserver["kubelet-preferred-address-types"]["value"].startswith("InternalIP")
