"""A real pod killed mid-stream (kubectl delete --grace-period=0 --force): the Deployment replaces it, the
ModelDeployment's status says a replica went missing and came back, and the other replica never stops serving."""

from __future__ import annotations

import openai
import pytest

from tests.support.cluster import Cluster, condition, wait_for
from tests.support.operator import OperatorProcess, apply_manifest, get_json, wait_condition
from tests.support.real_node import demo_on_real_node, pod_url, pods_of, ready, service_base_url
from tests.support.stream_load import StreamingLoad, summary

pytestmark = [pytest.mark.cluster, pytest.mark.real, pytest.mark.timeout(600)]


def test_a_pod_killed_mid_stream_is_replaced_and_reported_while_the_other_keeps_serving(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    with cluster.namespace("real-kill") as namespace:
        apply_manifest(cluster, namespace, demo_on_real_node(namespace))
        wait_condition(cluster, namespace, "tiny-demo", "Ready", "True", timeout=420)
        victim, survivor = pods_of(cluster, namespace, "tiny-demo")
        seen_ready: list[dict] = []

        def replaced() -> bool:
            md = get_json(cluster, "md", "tiny-demo", "-n", namespace)
            seen_ready.append(condition(md, "Ready"))
            pods = pods_of(cluster, namespace, "tiny-demo")
            names = {p["metadata"]["name"] for p in pods if ready(p) and not p["metadata"].get("deletionTimestamp")}
            return len(names) == 2 and victim["metadata"]["name"] not in names and seen_ready[-1]["status"] == "True"

        with StreamingLoad(pod_url(survivor), "tiny-demo", clients=2, max_tokens=128) as to_survivor:
            with StreamingLoad(pod_url(victim), "tiny-demo", clients=1, max_tokens=2000, max_streams=1) as cut:
                wait_for(lambda: cut.streams and cut.streams[0].chunks > 5, 120, "a stream running on the victim")
                cluster.kubectl("delete", "pod", "-n", namespace, victim["metadata"]["name"], "--grace-period=0",
                                "--force")  # fmt: skip
            wait_for(replaced, 300, "the killed pod replaced by a Ready one", interval=1)
            # Through the Service too, once the replacement is in.
            client = openai.OpenAI(base_url=service_base_url(cluster, namespace, "tiny-demo"), api_key="unused",
                                   max_retries=0, timeout=60)  # fmt: skip
            for _ in range(4):
                reply = client.completions.create(model="tiny-demo", prompt="Hello", max_tokens=4)
                assert reply.choices[0].finish_reason in ("stop", "length")

        assert not cut.streams[0].whole, "the stream on the killed pod was expected to be cut"
        survived = to_survivor.streams
        assert survived and all(s.whole for s in survived), summary(survived)
        # What the status said in between: a replica missing, by number, then all of them back.
        missing = [c for c in seen_ready if c.get("status") == "False"]
        assert missing and missing[0]["reason"] == "ReplicasNotReady" and "1/2 replicas" in missing[0]["message"]
        assert seen_ready[-1]["status"] == "True" and "2/2 replicas" in seen_ready[-1]["message"]
