from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, local_cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first: a broken unit shows up before the cluster tier has even started."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The local control plane (hack/cluster.sh), shared by every test marked `cluster`."""
    with local_cluster() as running:
        yield running
