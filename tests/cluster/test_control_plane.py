"""Proves the local control plane is the real thing: the Deployment controller, the scheduler's GPU
accounting, the garbage collector and kwok's pod lifecycle all act as they would in a real cluster."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.support.cluster import Cluster, wait_for
from tests.support.real_node import NODE_NAME, TAINT_KEY

pytestmark = pytest.mark.cluster

GPU = "nvidia.com/gpu"


def gpu_deployment(
    name: str, gpus: int, replicas: int = 1, labels: dict[str, str] | None = None
) -> client.V1Deployment:
    pod_labels = {"app": name, **(labels or {})}
    container = client.V1Container(
        name="server",
        image="registry.invalid/berth/never-pulled:0",
        resources=client.V1ResourceRequirements(limits={GPU: str(gpus)} if gpus else None, requests={"cpu": "100m"}),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=pod_labels), spec=client.V1PodSpec(containers=[container])
            ),
        ),
    )


def pods_of(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def is_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_version_is_the_pinned_kubernetes(cluster: Cluster) -> None:
    version = client.VersionApi(cluster.api_client()).get_code()
    assert version.git_version.startswith("v1.36."), version.git_version
    assert version.git_tree_state == "clean"


def test_nodes_are_ready_and_advertise_gpus(cluster: Cluster) -> None:
    nodes = client.CoreV1Api(cluster.api_client()).list_node().items
    ready = {
        n.metadata.name for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    }
    assert ready == {n.metadata.name for n in nodes}
    gpus = {n.metadata.name: int(n.status.allocatable.get(GPU, "0")) for n in nodes}
    # The three kwok nodes, and the real node (hack/node.sh), which has no GPU and sits behind its taint.
    assert gpus == {"kwok-gpu-a": 2, "kwok-gpu-b": 4, "kwok-cpu": 0, NODE_NAME: 0}, gpus
    real = next(n for n in nodes if n.metadata.name == NODE_NAME)
    assert [(t.key, t.effect) for t in real.spec.taints] == [(TAINT_KEY, "NoSchedule")]
    assert real.status.node_info.container_runtime_version.startswith("containerd://2.")
    for node in nodes:
        assert node.status.capacity.get(GPU) == node.status.allocatable.get(GPU)


def test_gpu_deployment_becomes_ready_through_controller_scheduler_and_kwok(cluster: Cluster) -> None:
    api = cluster.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with cluster.namespace() as ns:
        apps.create_namespaced_deployment(ns, gpu_deployment("one-gpu", gpus=1, replicas=2))
        wait_for(
            lambda: (apps.read_namespaced_deployment_status("one-gpu", ns).status.ready_replicas or 0) == 2,
            60,
            "2 ready replicas",
        )
        nodes = {n.metadata.name: n for n in core.list_node().items}
        for pod in pods_of(core, ns, "one-gpu"):
            assert is_ready(pod) and pod.status.phase == "Running"
            assert int(nodes[pod.spec.node_name].status.allocatable.get(GPU, "0")) >= 1, pod.spec.node_name


def test_pod_asking_for_more_gpus_than_any_node_stays_pending_with_the_schedulers_reason(
    cluster: Cluster,
) -> None:
    api = cluster.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with cluster.namespace() as ns:
        apps.create_namespaced_deployment(ns, gpu_deployment("eight-gpus", gpus=8))
        pod = wait_for(lambda: pods_of(core, ns, "eight-gpus"), 30, "the ReplicaSet's pod")[0]

        def scheduling_failure() -> str | None:
            events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod.metadata.name}")
            return next((e.message for e in events.items if e.reason == "FailedScheduling"), None)

        message = wait_for(scheduling_failure, 60, "a FailedScheduling event")
        assert f"Insufficient {GPU}" in message, message
        pod = core.read_namespaced_pod(pod.metadata.name, ns)
        assert pod.status.phase == "Pending" and not pod.spec.node_name
        scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
        assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")


def test_scheduler_counts_allocated_gpus(cluster: Cluster) -> None:
    """Six GPUs in the cluster (2 + 4): three pods of two GPUs fit, a fourth does not."""
    api = cluster.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with cluster.namespace() as ns:
        apps.create_namespaced_deployment(ns, gpu_deployment("two-gpus", gpus=2, replicas=4))

        def settled() -> tuple[int, int] | None:
            pods = pods_of(core, ns, "two-gpus")
            running = sum(1 for p in pods if p.status.phase == "Running")
            pending = sum(1 for p in pods if p.status.phase == "Pending" and not p.spec.node_name)
            return (running, pending) if running + pending == 4 and running == 3 else None

        assert wait_for(settled, 60, "3 running and 1 pending pod") == (3, 1)


def test_deleting_the_owner_garbage_collects_its_children(cluster: Cluster) -> None:
    api = cluster.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with cluster.namespace() as ns:
        apps.create_namespaced_deployment(ns, gpu_deployment("owned", gpus=1))
        wait_for(
            lambda: (apps.read_namespaced_deployment_status("owned", ns).status.ready_replicas or 0) == 1,
            60,
            "the pod ready",
        )
        assert apps.list_namespaced_replica_set(ns, label_selector="app=owned").items
        apps.delete_namespaced_deployment("owned", ns, propagation_policy="Background")
        wait_for(
            lambda: not apps.list_namespaced_replica_set(ns, label_selector="app=owned").items,
            60,
            "the ReplicaSet collected",
        )
        wait_for(lambda: not pods_of(core, ns, "owned"), 60, "the pods collected")


@pytest.mark.parametrize(("behaviour", "waiting_reason"), [("never-ready", None), ("crash-loop", "CrashLoopBackOff")])
def test_kwok_stages_keep_labelled_pods_from_becoming_ready(
    cluster: Cluster, behaviour: str, waiting_reason: str | None
) -> None:
    """Pods labelled kwok.berth.dev/behaviour run but never become Ready (hack/kwok/stages.yaml)."""
    api = cluster.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with cluster.namespace() as ns:
        labels = {"kwok.berth.dev/behaviour": behaviour}
        apps.create_namespaced_deployment(ns, gpu_deployment("sick", gpus=1, labels=labels))
        pod = wait_for(
            lambda: next((p for p in pods_of(core, ns, "sick") if p.status.phase == "Running"), None),
            60,
            "a Running pod",
        )
        assert not is_ready(pod)
        status = pod.status.container_statuses[0]
        assert status.ready is False
        if waiting_reason:
            assert status.state.waiting.reason == waiting_reason
        assert not apps.read_namespaced_deployment_status("sick", ns).status.ready_replicas


def test_kwok_stage_fails_labelled_job_pods(cluster: Cluster) -> None:
    """A Job's pod labelled kwok.berth.dev/behaviour=fail exits 1, and the Job controller marks it Failed."""
    batch = client.BatchV1Api(cluster.api_client())
    pod_template = gpu_deployment("job", gpus=0, labels={"kwok.berth.dev/behaviour": "fail"}).spec.template
    pod_template.spec.restart_policy = "Never"
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="doomed"),
        spec=client.V1JobSpec(backoff_limit=0, template=pod_template),
    )
    with cluster.namespace() as ns:
        batch.create_namespaced_job(ns, job)

        def failed() -> str | None:
            conditions = batch.read_namespaced_job_status("doomed", ns).status.conditions or []
            return next((c.reason for c in conditions if c.type == "Failed" and c.status == "True"), None)

        assert wait_for(failed, 60, "the Job Failed") == "BackoffLimitExceeded"
