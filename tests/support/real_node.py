"""The local cluster's real node (hack/node.sh) as the real tier sees it: where it is, how a ModelDeployment
asks for it, how a test reaches its pods, and what to keep when a test fails there."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

from berth_operator.naming import OWNER_LABEL
from berth_operator.render import Settings
from berth_runtime import contract
from tests.support.cluster import REPO_ROOT, Cluster, condition
from tests.support.operator import get_json


def env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of one of hack/'s settings files (versions.env, node.env), comments left out."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


NODE = env_file(REPO_ROOT / "hack" / "node.env")
NODE_NAME = NODE["NODE_NAME"]
NODE_IP = NODE["NODE_IP"]
LABEL_KEY, LABEL_VALUE = NODE["NODE_LABEL"].split("=")
TAINT_KEY, TAINT_VALUE = NODE["NODE_TAINT"].split("=")
TOLERATION = {"key": TAINT_KEY, "operator": "Equal", "value": TAINT_VALUE, "effect": "NoSchedule"}
# The image the product renders by default; hack/images.sh builds it under this name and imports it.
RUNTIME_IMAGE = Settings().runtime_image
DEMO_EXAMPLE = REPO_ROOT / "examples" / "tiny-demo.yaml"


def on_real_node(manifest: dict[str, Any]) -> dict[str, Any]:
    """The ModelDeployment with what lands its pods on the real node (its label, its taint tolerated) and the
    image built there."""
    spec = manifest["spec"]
    scheduling = spec.setdefault("scheduling", {})
    scheduling["nodeSelector"] = {**scheduling.get("nodeSelector", {}), LABEL_KEY: LABEL_VALUE}
    scheduling["tolerations"] = [*scheduling.get("tolerations", []), TOLERATION]
    spec.setdefault("runtime", {})["image"] = RUNTIME_IMAGE
    return manifest


def demo_on_real_node(namespace: str, **spec: Any) -> dict[str, Any]:
    """examples/tiny-demo.yaml in `namespace`, on the real node, with `spec` merged over its spec."""
    manifest = yaml.safe_load(DEMO_EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = namespace
    manifest["spec"].update(spec)
    return on_real_node(manifest)


def restricted_namespace(cluster: Cluster, namespace: str) -> None:
    """The API server's Pod Security admission enforces "restricted" there: a pod that breaks it is refused."""
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/enforce-version=latest")  # fmt: skip


def service_base_url(cluster: Cluster, namespace: str, name: str) -> str:
    """The OpenAI base URL at the Service's ClusterIP: kube-proxy's rules on this machine carry it to a pod on
    the node's bridge."""
    service = get_json(cluster, "service", name, "-n", namespace)
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == contract.PORT_NAME)
    return f"http://{service['spec']['clusterIP']}:{port}{contract.API_PREFIX}"


def pods_of(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The ModelDeployment's serving pods (not its staging Jobs')."""
    return get_json(cluster, "pods", "-n", namespace, "-l", f"{OWNER_LABEL}={name}")["items"]


def ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def pod_url(pod: dict[str, Any], path: str = contract.API_PREFIX) -> str:
    """A URL on the pod itself, at its address on the node's bridge (on this machine)."""
    return f"http://{pod['status']['podIP']}:{contract.PORT}{path}"


def node_logs_dir() -> Path:
    return Path(subprocess.run([str(REPO_ROOT / "hack" / "node.sh"), "logs"], check=True, capture_output=True,
                               text=True).stdout.strip())  # fmt: skip


def keep_failure_evidence(cluster: Cluster, target: Path, tail_lines: int = 40) -> str:
    """Copies the node's logs (kubelet, containerd, kube-proxy) and the cluster's view of pods and Events into
    target, and returns the tails worth printing in a red run."""
    target.mkdir(parents=True, exist_ok=True)
    report = [f"real node evidence kept in {target}"]
    for log in sorted(node_logs_dir().glob("*.log")):
        shutil.copy(log, target / log.name)
        lines = log.read_text(errors="replace").splitlines()[-tail_lines:]
        report += [f"--- {log.name} (last {len(lines)} lines)", *lines]
    for kind in ("pods", "events"):
        done = cluster.kubectl("get", kind, "-A", "-o", "wide", check=False)
        (target / f"{kind}.txt").write_text(done.stdout + done.stderr)
    pods = json.loads(cluster.kubectl("get", "pods", "-A", "-o", "json", check=False).stdout or '{"items": []}')
    for pod in pods["items"]:
        if pod["spec"].get("nodeName") != NODE_NAME:
            continue
        meta = pod["metadata"]
        done = cluster.kubectl("logs", "-n", meta["namespace"], meta["name"], "--all-containers", "--tail=200",
                               check=False)  # fmt: skip
        (target / f"pod-{meta['namespace']}-{meta['name']}.log").write_text(done.stdout + done.stderr)
    return "\n".join(report)


class PodWatch:
    """Every version of every pod in a namespace, from a watch: what each pod went through, its last state
    included (a pod that finished terminating is deleted right after the kubelet reports how it exited)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.core = client.CoreV1Api(cluster.api_client())
        self.namespace = namespace
        self.seen: dict[str, list[dict[str, Any]]] = {}
        self.watch = watch.Watch()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PodWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped = True
        self.watch.stop()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        try:
            for event in self.watch.stream(self.core.list_namespaced_pod, self.namespace, timeout_seconds=1800):
                pod = self.core.api_client.sanitize_for_serialization(event["object"])
                self.seen.setdefault(pod["metadata"]["name"], []).append({"event": event["type"], **pod})
        except Exception:  # the namespace went, or the connection with it, as the test ended
            if not self.stopped:
                raise

    def last(self, name: str) -> dict[str, Any]:
        return self.seen[name][-1]

    def exit_of(self, name: str, container: str) -> dict[str, Any] | None:
        """The container's terminated state as last reported, or None if it was never reported terminated."""
        for pod in reversed(self.seen.get(name, [])):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated")
                if status["name"] == container and terminated:
                    return terminated
        return None
