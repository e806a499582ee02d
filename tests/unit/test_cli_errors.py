"""What `berth status` says when the cluster cannot answer the question: a stand-in API server on
loopback that serves no berth.dev API, answering as kube-apiserver does for a path it does not serve
(a plain-text 404, not a Status). The missing-object case runs against the real one
(tests/cluster/test_kubectl_plugin.py)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from berth_operator.cli import main
from tests.support.loopback import serve_on_loopback


class StandInApiServerWithoutTheCrd(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def kubeconfig_for(url: str, folder: Path) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = folder / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_status_without_the_crd_says_to_install_it(tmp_path: Path) -> None:
    with serve_on_loopback(StandInApiServerWithoutTheCrd) as url, pytest.raises(SystemExit) as stopped:
        main(["status", "tiny", "-n", "ml", "--kubeconfig", kubeconfig_for(url, tmp_path)])
    said = str(stopped.value)
    assert "does not serve berth.dev/v1alpha1 ModelDeployment (404 page not found)" in said, said
    assert "install the CRD modeldeployments.berth.dev" in said, said
