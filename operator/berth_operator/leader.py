"""Lease-based leader election, for more than one operator replica: only the Lease's holder reconciles.

The same protocol as client-go's leaderelection: a coordination.k8s.io Lease names its holder and when it
last renewed; another replica takes it over only once a whole lease duration has passed without a
renewal, and every write is conditional on the resourceVersion read, so two candidates cannot both win.
A leader that cannot renew in time exits at once (its pod restarts as a candidate) rather than risk
acting beside a new leader. Deciding is pure (`claim`); `LeaderElector` does the I/O.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from berth_operator.kube import Kube, KubeError, path

LEASE_SECONDS = 15  # how long a silent holder keeps the lease
RENEW_DEADLINE_SECONDS = 10  # a leader that has not renewed for this long gives up
RETRY_SECONDS = 2  # how often candidates look and leaders renew
LEASE = ("coordination.k8s.io/v1", "Lease")
log = logging.getLogger("berth.leader")


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def claim(lease: dict[str, Any] | None, me: str, now: datetime) -> dict[str, Any] | None:
    """The Lease spec to write to hold or take the lease now, or None while another holder's is valid."""
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity")
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or LEASE_SECONDS
    if holder and holder != me and renewed and now < renewed + timedelta(seconds=duration):
        return None
    taking_over = holder != me
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": LEASE_SECONDS,
        "acquireTime": micro_time(now) if taking_over else spec.get("acquireTime", micro_time(now)),
        "renewTime": micro_time(now),
        "leaseTransitions": (spec.get("leaseTransitions") or 0) + (1 if taking_over and holder else 0),
    }


def identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class LeaderElector:
    kube: Kube
    namespace: str
    name: str
    me: str
    on_lost: Callable[[], None] = lambda: os._exit(1)
    stopping: threading.Event = field(default_factory=threading.Event)

    def _try(self) -> bool:
        url = path(*LEASE, self.namespace, self.name)
        try:
            lease = self.kube.request("GET", url)
        except KubeError as error:
            if error.status != 404:
                raise
            lease = None
        spec = claim(lease, self.me, datetime.now(UTC))
        if spec is None:
            return False
        try:
            if lease is None:
                body = {"apiVersion": LEASE[0], "kind": LEASE[1], "metadata": {"name": self.name}, "spec": spec}
                self.kube.request("POST", path(*LEASE, self.namespace), body)
            else:
                metadata = {"name": self.name, "resourceVersion": lease["metadata"]["resourceVersion"]}
                self.kube.request("PUT", url, {"apiVersion": LEASE[0], "kind": LEASE[1], "metadata": metadata,
                                               "spec": spec})  # fmt: skip
        except KubeError as error:
            if error.status in (409, 404):  # another candidate wrote first
                return False
            raise
        return True

    def acquire(self) -> None:
        """Blocks until this process holds the lease, then keeps renewing it in a daemon thread."""
        log.info("Waiting to lead: Lease %s/%s, identity %s", self.namespace, self.name, self.me)
        while True:
            try:
                if self._try():
                    break
            except (KubeError, OSError) as error:
                log.warning("Leader election: %s", error)
            time.sleep(RETRY_SECONDS)
        log.info("Leading as %s", self.me)
        threading.Thread(target=self._renew, name="lease-renewal", daemon=True).start()

    def _renew(self) -> None:
        last = time.monotonic()
        while not self.stopping.wait(RETRY_SECONDS):
            try:
                if self._try():
                    last = time.monotonic()
                    continue
                log.error("Lease %s/%s was taken over; stopping", self.namespace, self.name)
            except (KubeError, OSError) as error:
                if time.monotonic() - last < RENEW_DEADLINE_SECONDS:
                    log.warning("Lease renewal failed, retrying: %s", error)
                    continue
                log.error("Could not renew Lease %s/%s for %ss; stopping", self.namespace, self.name,
                          RENEW_DEADLINE_SECONDS)  # fmt: skip
            self.on_lost()
            return

    def release(self) -> None:
        """On a graceful stop: hand the lease over at once instead of after its duration."""
        self.stopping.set()
        url = path(*LEASE, self.namespace, self.name)
        try:
            lease = self.kube.request("GET", url)
            if (lease.get("spec") or {}).get("holderIdentity") != self.me:
                return
            spec = {**lease["spec"], "holderIdentity": None, "renewTime": None}
            self.kube.request("PUT", url, {**lease, "spec": {k: v for k, v in spec.items() if v is not None}})
        except (KubeError, OSError) as error:
            log.warning("Could not release the lease: %s", error)
