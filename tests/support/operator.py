"""The operator as the e2e tests run it: a real `berth-operator` process acting as its ServiceAccount,
with only the RBAC in deploy/rbac.yaml, against the local control plane."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO_ROOT, Cluster, condition, wait_for

CRD_DIR = REPO_ROOT / "crds"
RBAC = REPO_ROOT / "deploy" / "rbac.yaml"
SERVICE_ACCOUNT = ("berth-system", "berth-operator")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_api_and_rbac(cluster: Cluster) -> None:
    cluster.install_crds(CRD_DIR)
    namespace = SERVICE_ACCOUNT[0]
    cluster.kubectl("create", "namespace", namespace, check=False)
    cluster.kubectl("apply", "--server-side", "-f", str(RBAC))


def service_account_kubeconfig(cluster: Cluster, target: Path, account: tuple[str, str] = SERVICE_ACCOUNT) -> Path:
    """A kubeconfig holding only a ServiceAccount token: the operator gets the RBAC it declares, no more."""
    namespace, name = account
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=4h").stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "local", "user": name}}],
        "current-context": name,
    }
    target.write_text(yaml.safe_dump(config))
    return target


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        env = {**os.environ, "BERTH_RUNTIME_IMAGE": "berth-runtime:test", **self.extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "berth_operator", "--kubeconfig", str(self.kubeconfig),
             "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        wait_for(self.healthy, 30, "the operator's liveness endpoint")

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited with {self.process.returncode}; log:\n{self.log()}")
        try:
            with socket.create_connection(("127.0.0.1", self.health_port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node dies under it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def get_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def wait_status(
    cluster: Cluster, namespace: str, name: str, field: str, value: object, timeout: float = 60
) -> dict[str, Any]:
    """Waits until status.<field> of the ModelDeployment equals value; returns the object."""

    def check() -> dict[str, Any] | None:
        md = get_json(cluster, "md", name, "-n", namespace)
        return md if (md.get("status") or {}).get(field) == value else None

    return wait_for(check, timeout, f"status.{field} == {value!r} on {namespace}/{name}")


def wait_condition(
    cluster: Cluster,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        md = get_json(cluster, "md", name, "-n", namespace)
        found = condition(md, type_)
        ok = found.get("status") == status and (reason is None or found.get("reason") == reason)
        return md if ok else None

    return wait_for(check, timeout, f"{type_}={status} ({reason or 'any reason'}) on {namespace}/{name}")


def events(cluster: Cluster, namespace: str, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The namespace's Events about objects of one kind (and name), oldest first."""
    selector = f"involvedObject.kind={kind}" + (f",involvedObject.name={name}" if name else "")
    found = get_json(cluster, "events", "-n", namespace, "--field-selector", selector)["items"]
    return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))


def wait_events(
    cluster: Cluster, namespace: str, kind: str, *needed: str, key: str = "message", name: str | None = None
) -> list[str]:
    """Waits until the Events' `key` values include every one of `needed`; returns them all, oldest first.
    Events trail the status they describe (the operator posts them after its status write, the controllers
    through an asynchronous recorder), so a test that has just seen the status polls for them."""

    def check() -> list[str] | None:
        said = [e[key] for e in events(cluster, namespace, kind, name)]
        return said if set(needed) <= set(said) else None

    return wait_for(check, 30, f"{kind} Events {needed} in {namespace}")


def apply_manifest(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))


def with_claim(
    cluster: Cluster, namespace: str, claim: str = "models", access: str = "ReadOnlyMany",
    path: str = "/var/lib/berth-test-models",
) -> None:  # fmt: skip
    """A bound PVC for pvc:// sources: a pre-bound hostPath PV, which the PV controller binds. kwok mounts
    nothing; on the real node, path is a folder of this machine that the kubelet mounts."""
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{claim}-{namespace}"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": [access],
            "storageClassName": "",
            "hostPath": {"path": path},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace},
        "spec": {
            "accessModes": [access],
            "storageClassName": "",
            "volumeName": f"{claim}-{namespace}",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    for obj in (volume, pvc):
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
    wait_for(
        lambda: get_json(cluster, "pvc", claim, "-n", namespace)["status"].get("phase") == "Bound",
        30,
        "PVC bound",
    )
