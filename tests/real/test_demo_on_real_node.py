"""The demo ModelDeployment served by real pods: Berth's runtime image on the real node's kubelet, in a namespace
where the API server enforces Pod Security "restricted", answering the official openai client through its
Service (kube-proxy's ClusterIP rules, a pod on the node's bridge)."""

from __future__ import annotations

import openai
import pytest

from berth_operator.render import RUNTIME_CONTAINER, Settings, render_pod_template
from berth_operator.security import UID
from berth_operator.validation import parse_model_deployment
from tests.support.cluster import Cluster
from tests.support.manifests import subset
from tests.support.operator import OperatorProcess, apply_manifest, wait_condition
from tests.support.pod_security import assert_restricted
from tests.support.real_node import (
    NODE_NAME,
    demo_on_real_node,
    pods_of,
    restricted_namespace,
    service_base_url,
)

pytestmark = [pytest.mark.cluster, pytest.mark.real, pytest.mark.timeout(600)]


def exec_in(cluster: Cluster, namespace: str, pod: str, *command: str, check: bool = True) -> str:
    done = cluster.kubectl("exec", "-n", namespace, pod, "-c", RUNTIME_CONTAINER, "--", *command, check=check)
    return done.stdout + done.stderr


def test_demo_is_ready_on_the_real_node_runs_as_rendered_and_answers_through_its_service(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    with cluster.namespace("real-demo") as namespace:
        restricted_namespace(cluster, namespace)
        manifest = demo_on_real_node(namespace)
        apply_manifest(cluster, namespace, manifest)
        wait_condition(cluster, namespace, "tiny-demo", "Ready", "True", timeout=420)

        pods = pods_of(cluster, namespace, "tiny-demo")
        assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}
        rendered = render_pod_template(parse_model_deployment(manifest), Settings())["spec"]
        for pod in pods:
            assert_restricted(pod["spec"])
            # As rendered, fields the API server adds aside (default tolerations among them).
            for key in ("securityContext", "containers", "volumes", "automountServiceAccountToken", "nodeSelector"):
                assert not subset(rendered[key], pod["spec"][key]), key
            name = pod["metadata"]["name"]
            # What the process really is, not what the spec says: user and group (the image's USER would give
            # gid 0 without runAsGroup), a root filesystem it cannot write, a scratch folder it can.
            ids = exec_in(cluster, namespace, name, "id")
            assert f"uid={UID}" in ids and f"gid={UID}" in ids, ids
            refused = exec_in(cluster, namespace, name, "touch", "/opt/berth/written", check=False)
            assert "Read-only file system" in refused, refused
            exec_in(cluster, namespace, name, "touch", "/tmp/written")
            status = exec_in(cluster, namespace, name, "cat", "/proc/1/status")
            assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status

        client = openai.OpenAI(base_url=service_base_url(cluster, namespace, "tiny-demo"), api_key="unused",
                               max_retries=0, timeout=60)  # fmt: skip
        assert [m.id for m in client.models.list().data] == ["tiny-demo"]
        reply = client.chat.completions.create(
            model="tiny-demo", messages=[{"role": "user", "content": "Say hello to Berth."}], max_tokens=8, seed=7
        )
        assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.completion_tokens > 0
