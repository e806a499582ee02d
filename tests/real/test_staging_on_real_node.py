"""Staging for real: the staging Job runs Berth's runtime image on the real node, fetches a pinned revision from a
stand-in hub (served on the node's own address, where pods reach this machine) into a real volume, and the
version's pods load the model from that volume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth_runtime.demo_model import create as create_demo_model
from tests.support.cluster import Cluster, condition, wait_for
from tests.support.operator import OperatorProcess, apply_manifest, get_json, with_claim
from tests.support.real_node import NODE_IP, NODE_NAME, demo_on_real_node, pods_of
from tests.support.stand_in_hub import StandInRepo, stand_in_hub

pytestmark = [pytest.mark.cluster, pytest.mark.real, pytest.mark.timeout(600)]
SHA = "5" * 40


def ready_or_failed(cluster: Cluster, namespace: str) -> dict | None:
    md = get_json(cluster, "md", "tiny-demo", "-n", namespace)
    settled = (
        condition(md, "Ready").get("status") == "True" or condition(md, "Degraded").get("reason") == "StagingFailed"
    )
    return md if settled else None


def test_the_staging_job_fills_a_real_volume_that_the_pods_then_load_from(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    model = create_demo_model(tmp_path / "model")
    files = {path.name: path.read_bytes() for path in model.iterdir()}
    # What a volume with fsGroup support looks like to the pods (hostPath has none, so it is done here): the pods'
    # group owns the root, group-writable and setgid, so folders made in it (the kubelet's subPath) are the group's.
    volume = tmp_path / "cache"
    volume.mkdir()
    os.chown(volume, 0, 1000)
    volume.chmod(0o2775)
    tmp_path.chmod(0o755)
    with (
        stand_in_hub({"org/demo": StandInRepo(SHA, files)}, host=NODE_IP) as hub,
        cluster.namespace("real-stage") as ns,
    ):
        with_claim(cluster, ns, claim="model-cache", access="ReadWriteMany", path=str(volume))
        source = {
            "source": "hf://org/demo",
            "revision": SHA,
            "endpoint": hub.url,
            "cache": {"claimName": "model-cache"},
        }
        manifest = demo_on_real_node(ns, replicas=1, model=source)
        apply_manifest(cluster, ns, manifest)
        md = wait_for(lambda: ready_or_failed(cluster, ns), 420, "Ready, or a staging that failed")
        assert condition(md, "Ready")["status"] == "True", md["status"]

        staging = md["status"]["staging"]
        assert staging["phase"] == "Staged" and staging["resolvedRevision"] == SHA, staging
        (job_pod,) = get_json(cluster, "pods", "-n", ns, "-l", f"job-name={staging['job']}")["items"]
        assert job_pod["spec"]["nodeName"] == NODE_NAME and job_pod["status"]["phase"] == "Succeeded"
        # The bytes are on the volume, written by the pods' user, under <ModelDeployment>/<cache key>.
        entry = volume / "tiny-demo" / staging["key"]
        staged = {p.name: p.read_bytes() for p in entry.iterdir() if p.name in files}
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(staged)
        assert all(content == files[name] for name, content in staged.items())
        assert entry.stat().st_uid == 1000  # written by the staging pod's user
        assert any(f"/api/models/org/demo/revision/{SHA}" in r for r in hub.requests)

        (pod,) = pods_of(cluster, ns, "tiny-demo")
        log = cluster.kubectl("logs", "-n", ns, pod["metadata"]["name"]).stdout
        assert "Loaded /models" in log, log
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        assert any(m["mountPath"] == "/models" and m.get("readOnly") for m in mounts), mounts
