"""The real tier: Berth's images running on the local cluster's real node. Every module here is marked `cluster`
and `real`; a failing test keeps the node's logs and prints their tails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.real_node import keep_failure_evidence


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.failed and item.get_closest_marker("real") and "cluster" in getattr(item, "funcargs", {}):
        cluster: Cluster = item.funcargs["cluster"]
        folder = Path(item.config.cache.mkdir("real-node-failures")) / item.name
        report.sections.append(("real node", keep_failure_evidence(cluster, folder)))
    return report
