"""What the GitOps install tests share: the chart served as a Helm repository on loopback, and GitOps
controllers (built from their Go modules by hack/build-controlplane.sh) run as local processes against
the local control plane."""

from __future__ import annotations

import functools
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from tests.support.cluster import wait_for
from tests.support.helm import CHART, helm
from tests.support.loopback import serve_on_loopback


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def chart_repository(workdir: Path) -> Iterator[str]:
    """The chart packaged and indexed as `helm repo index` does, served over HTTP on loopback."""
    workdir.mkdir()
    helm("package", str(CHART), "-d", str(workdir))
    with serve_on_loopback(functools.partial(QuietFiles, directory=str(workdir))) as url:  # type: ignore[arg-type]
        helm("repo", "index", str(workdir), "--url", url)
        yield url


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    return check


def tcp_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False

    return check


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]


@contextmanager
def running(components: list[Component], workdir: Path, timeout: float = 60) -> Iterator[None]:
    """Starts each component in turn once the one before answers; stops them all on the way out, and shows
    the tail of each one's log with a failure."""
    with ExitStack() as stack:
        for component in components:
            log = stack.enter_context((workdir / f"{component.name}.log").open("wb"))
            process = subprocess.Popen(component.argv, stdout=log, stderr=subprocess.STDOUT, env=component.env)
            stack.callback(stop, process)
            wait_for(functools.partial(answers, process, component), timeout, f"{component.name} answering")
        try:
            yield
        except BaseException:
            for component in components:
                log_text = (workdir / f"{component.name}.log").read_text(errors="replace")
                print(f"--- {component.name} ---\n{log_text[-4000:]}")
            raise


def answers(process: subprocess.Popen[bytes], component: Component) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"{component.name} exited with {process.returncode}")
    return component.ready()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
