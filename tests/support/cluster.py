"""The local control plane as the tests see it: start or reuse it, talk to it, wait on it."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO_ROOT / "hack" / "cluster.sh"

T = TypeVar("T")


def cluster_script(*args: str) -> str:
    """Runs hack/cluster.sh and returns its stdout (its progress log goes to stderr, shown live)."""
    done = subprocess.run([str(CLUSTER_SCRIPT), *args], check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout.strip()


def cluster_running() -> bool:
    return subprocess.run([str(CLUSTER_SCRIPT), "status"], check=False).returncode == 0


class CommandFailed(subprocess.CalledProcessError):
    """A failed command whose message carries what it wrote to stderr (CalledProcessError's leaves it out)."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def run_captured(command: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs a command (kubectl, helm, git) with its output captured as text."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if check and done.returncode:
        raise CommandFailed(done.returncode, command, done.stdout, done.stderr)
    return done


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    """An object's status condition of that type, or {} (also while status.conditions is still null)."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    bin_dir: Path

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return run_captured([str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args], stdin, check)

    def install_crds(self, directory: Path) -> None:
        """Applies CRDs and waits until the API server serves them: objects of those kinds applied right
        after a fresh install are otherwise refused ("ensure CRDs are installed first")."""
        names = self.kubectl("apply", "--server-side", "-f", str(directory), "-o", "name").stdout.split()

        def established() -> bool:
            # Polled here: `kubectl wait -f` fails outright while a new CRD has no conditions at all yet.
            found = json.loads(self.kubectl("get", *names, "-o", "json").stdout)
            crds = found.get("items", [found])  # one name gets the object itself, not a List
            return all(condition(crd, "Established").get("status") == "True" for crd in crds)

        wait_for(established, 60, f"{directory.name}: CRDs established", interval=0.2)

    @contextmanager
    def namespace(self, prefix: str = "test") -> Iterator[str]:
        """A fresh namespace, deleted afterwards (the namespace controller removes what is in it)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        core = client.CoreV1Api(self.api_client())
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        try:
            yield name
        finally:
            core.delete_namespace(name)


@contextmanager
def local_cluster() -> Iterator[Cluster]:
    """Brings the local cluster up, or reuses a running one; stops it afterwards only if it started it
    (set BERTH_KEEP_CLUSTER=1 to keep it for the next run)."""
    started_here = not cluster_running()
    # Everything the cluster tier runs (helm, Flux, Argo CD too); `up` builds only the cluster's binaries.
    subprocess.run([str(CLUSTER_SCRIPT.with_name("build-controlplane.sh"))], check=True, stdout=subprocess.DEVNULL)
    cluster_script("up")
    try:
        yield Cluster(kubeconfig=Path(cluster_script("kubeconfig")), bin_dir=Path(cluster_script("bin")))
    finally:
        if started_here and os.environ.get("BERTH_KEEP_CLUSTER") != "1":
            cluster_script("down")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Polls check() until it returns something truthy; fails with `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
