"""The inference container exactly as the operator renders it for examples/tiny-demo.yaml, run as a
process: its command, args and env, HOME on an empty folder standing in for the scratch volume, probed
on its probes' paths. kwok's pods run nothing, so this is where the rendered container is shown to serve."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from berth_operator.render import Settings, render_all
from berth_operator.rollout_plan import Strategy
from berth_operator.validation import parse_model_deployment
from tests.support.cluster import REPO_ROOT
from tests.support.operator import free_port
from tests.support.runtime_server import RuntimeServer

EXAMPLE = REPO_ROOT / "examples" / "tiny-demo.yaml"


def rendered_container(manifest: Path) -> dict:
    md = parse_model_deployment(yaml.safe_load(manifest.read_text()))
    objects = render_all(md, Settings(runtime_image="berth-runtime:test"), Strategy(1, 0))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "runtime")


def test_the_demo_example_s_container_loads_serves_and_drains(tmp_path: Path) -> None:
    container = rendered_container(EXAMPLE)
    port = free_port()
    args = list(container["args"])
    args[args.index("--port") + 1] = str(port)
    args[args.index("--host") + 1] = "127.0.0.1"  # loopback here; the pod listens on its own address
    scratch = tmp_path / "scratch"  # the emptyDir: nothing of this machine's caches is visible
    scratch.mkdir()
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HOME"] == next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "scratch")
    server = RuntimeServer(
        [],
        tmp_path / "pod.log",
        port=port,
        argv=[str(Path(sys.executable).parent / container["command"][0]), *args],
        env={"PATH": os.environ["PATH"], **env, "HOME": str(scratch)},
    )
    try:
        server.start(wait_ready=False)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            server.wait_until(lambda path=path: server.get(path)[0] == 200, 180, f"{probe} {path}")
        chat = {"model": "tiny-demo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        status, body, _ = server.post("/v1/chat/completions", chat)
        assert status == 200 and body["usage"]["completion_tokens"] == 4, body
        assert any(scratch.rglob("*.safetensors")), "the demo model was made under HOME"
        server.terminate()
        assert server.process is not None and server.process.wait(60) == 0
    finally:
        server.stop()
