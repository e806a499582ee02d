"""The only module that talks to the Kubernetes API: plain dicts in and out, over the official client's
connection handling (kubeconfig, in-cluster tokens, TLS)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config

from berth_operator import api
from berth_operator.conditions import now_rfc3339
from berth_operator.naming import FIELD_MANAGER

# (apiVersion, kind) -> plural, for the kinds the operator reads or writes.
PLURALS = {
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
    ("v1", "Node"): "nodes",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "Secret"): "secrets",
    ("v1", "Event"): "events",
    ("apps/v1", "Deployment"): "deployments",
    ("batch/v1", "Job"): "jobs",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    (api.API_VERSION, api.KIND): api.PLURAL,
}


class KubeError(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None, method: str, path: str) -> None:
        self.status = status
        self.reason = (body or {}).get("reason", "")
        self.message = (body or {}).get("message", "")
        causes = ((body or {}).get("details") or {}).get("causes") or []
        self.causes = {cause.get("reason", "") for cause in causes}
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")

    @property
    def namespace_terminating(self) -> bool:
        return "NamespaceTerminating" in self.causes

    @property
    def not_found(self) -> bool:
        """The object does not exist; a 404 without a Status (reason NotFound) means the API itself is not served."""
        return self.status == 404 and self.reason == "NotFound"

    @property
    def client_error(self) -> bool:
        """The request itself was refused (invalid, forbidden): retrying the same thing will not help."""
        return self.status in (400, 403, 422)


def path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{PLURALS[(api_version, kind)]}"
    if name:
        base += f"/{name}"
    return base + (f"/{sub}" if sub else "")


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG or the path given)."""
    if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=kubeconfig or os.environ.get("KUBECONFIG"))


@dataclass
class Kube:
    api_client: client.ApiClient

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        _, full_url, headers, payload, _ = self.api_client.param_serialize(
            method=method,
            resource_path=url,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(method, full_url, header_params=headers, body=payload)
        data = response.read()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            if response.status < 400:
                raise
            # A path the API server does not serve at all (e.g. the CRD is not installed) gets plain text.
            parsed = {"message": data.decode(errors="replace").strip()}
        if response.status >= 400:
            raise KubeError(response.status, parsed if isinstance(parsed, dict) else None, method, url)
        return parsed

    def pod_log_tail(self, namespace: str, name: str, lines: int = 1) -> str:
        """The last lines a pod's container printed ('' when the kubelet has none to give)."""
        url = path("v1", "Pod", namespace, name, "log")
        _, full_url, headers, _, _ = self.api_client.param_serialize(
            method="GET", resource_path=url, query_params=[("tailLines", str(lines))],
            header_params={"Accept": "text/plain"}, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self.api_client.call_api("GET", full_url, header_params=headers)
        return response.read().decode("utf-8", "replace").strip() if response.status == 200 else ""

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path(api_version, kind, namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            query.append(("fieldSelector", field_selector))
        return self.request("GET", path(api_version, kind, namespace), query=query).get("items", [])

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as the operator's field manager, taking over conflicting fields."""
        meta = obj["metadata"]
        url = path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self.request("PATCH", url, body=obj, query=query, content_type="application/apply-patch+yaml")

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        try:
            # Background: a Job's pods (and a Deployment's ReplicaSets) go with it, never orphaned.
            query = [("propagationPolicy", "Background")]
            self.request("DELETE", path(api_version, kind, namespace, name), query=query)
            return True
        except KubeError as error:
            if error.status == 404:
                return False
            raise

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, body: dict[str, Any], sub: str = ""
    ) -> dict[str, Any]:
        """A JSON merge patch (for the few fields changed outside server-side apply)."""
        url = path(api_version, kind, namespace, name, sub=sub)
        return self.request("PATCH", url, body=body, content_type="application/merge-patch+json")

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.patch(api.API_VERSION, api.KIND, namespace, name, {"status": status}, sub="status")

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = involved["metadata"]
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.request("POST", path("v1", "Event", meta["namespace"]), body=event)
