"""A version upgrade while clients stream through the Service, on real pods: no client sees a failed request or
a cut stream, and the old pods drain (they exit 0 on their own, after the streams they held) before they go."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from berth_operator.render import PRE_STOP_SLEEP_SECONDS, RUNTIME_CONTAINER
from tests.support.cluster import Cluster, wait_for
from tests.support.operator import OperatorProcess, apply_manifest, get_json, wait_condition, wait_status
from tests.support.real_node import PodWatch, demo_on_real_node, pods_of, service_base_url
from tests.support.stream_load import StreamingLoad, summary

pytestmark = [pytest.mark.cluster, pytest.mark.real, pytest.mark.timeout(900)]


def test_upgrade_under_streaming_load_loses_nothing_and_old_pods_drain(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    with cluster.namespace("real-rollout") as namespace, PodWatch(cluster, namespace) as pods:
        manifest = demo_on_real_node(namespace)
        apply_manifest(cluster, namespace, manifest)
        wait_condition(cluster, namespace, "tiny-demo", "Ready", "True", timeout=420)
        old_pods = {p["metadata"]["name"] for p in pods_of(cluster, namespace, "tiny-demo")}

        # Clients stream back to back, so an old pod holds streams when it is told to stop (after the pre-stop pause).
        url = service_base_url(cluster, namespace, "tiny-demo")
        with StreamingLoad(url, "tiny-demo", clients=3, max_tokens=192) as load:
            wait_for(lambda: len(load.finished()) >= 3, 180, "streams before the upgrade")
            manifest["spec"]["version"] = "2026-12-01"
            apply_manifest(cluster, namespace, manifest)
            wait_status(cluster, namespace, "tiny-demo", "servingVersion", "2026-12-01", timeout=600)
            wait_for(lambda: not old_pods & {p["metadata"]["name"] for p in pods_of(cluster, namespace, "tiny-demo")},
                     300, "the old pods gone")  # fmt: skip
            upgraded_at = time.time()
            wait_for(lambda: any(s.started > upgraded_at and s.ended for s in load.finished()), 180,
                     "a stream served by the new version")  # fmt: skip
        streams = load.streams

        assert streams and all(s.whole for s in streams), summary(streams)
        md = get_json(cluster, "md", "tiny-demo", "-n", namespace)
        assert md["status"]["readyReplicas"] == 2
        # Drained, not killed: every old pod's runtime exited 0 by itself within its grace period, and it was
        # told to stop (SIGTERM, after the pre-stop pause) while streams were running.
        for name in old_pods:
            exit_state = pods.exit_of(name, RUNTIME_CONTAINER)
            assert exit_state is not None and exit_state["exitCode"] == 0, (name, exit_state)
            deleted = datetime.fromisoformat(pods.last(name)["metadata"]["deletionTimestamp"]).timestamp()
            sigterm = deleted + PRE_STOP_SLEEP_SECONDS
            assert any(s.started < sigterm < s.ended for s in streams), (name, summary(streams))
