from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, local_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The local control plane (hack/cluster.sh), shared by every test marked `cluster`."""
    with local_cluster() as running:
        yield running
