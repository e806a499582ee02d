"""The operator image, as built by make images, runs on the real node under Pod Security "restricted": its
console scripts start from the image's venv as uid 1000 with a read-only root. (The operator itself runs beside
the cluster in the tests: the API server listens on loopback only, which no pod reaches.)"""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from berth_operator.security import restricted_container_security, restricted_pod_security
from tests.support.cluster import Cluster, wait_for
from tests.support.operator import get_json
from tests.support.real_node import LABEL_KEY, LABEL_VALUE, TOLERATION, restricted_namespace

pytestmark = [pytest.mark.cluster, pytest.mark.real, pytest.mark.timeout(300)]
OPERATOR_IMAGE = f"ghcr.io/berth-dev/berth-operator:{version('berth')}"  # the chart's default


def test_the_operator_image_runs_its_commands_on_the_real_node(cluster: Cluster) -> None:
    with cluster.namespace("real-operator-image") as namespace:
        restricted_namespace(cluster, namespace)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "operator-image", "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {LABEL_KEY: LABEL_VALUE},
                "tolerations": [TOLERATION],
                "securityContext": restricted_pod_security(),
                "containers": [{
                    "name": "operator", "image": OPERATOR_IMAGE, "command": ["sh", "-c"],
                    "args": ["berth-operator --help && berth --help && id && python -c 'import torch'; echo torch=$?"],
                    "securityContext": restricted_container_security(),
                }],
            },
        }  # fmt: skip
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        wait_for(lambda: get_json(cluster, "pod", "operator-image", "-n", namespace)["status"].get("phase")
                 in ("Succeeded", "Failed"), 120, "the pod to finish")  # fmt: skip
        log = cluster.kubectl("logs", "-n", namespace, "operator-image").stdout
        assert get_json(cluster, "pod", "operator-image", "-n", namespace)["status"]["phase"] == "Succeeded", log
        assert "--leader-elect" in log and "rollback" in log and "uid=1000 gid=1000" in log
        assert "torch=1" in log, "the operator image leaves the runtime's torch out"
