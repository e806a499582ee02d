from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, local_cluster
from tests.support.operator import OperatorProcess, install_api_and_rbac, service_account_kubeconfig


def _tier(item: pytest.Item) -> int:
    return 2 if item.get_closest_marker("real") else 1 if item.get_closest_marker("cluster") else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first, then the kwok tier, then the real node's: a broken unit shows up before the cluster
    tier has even started, and the quick cluster tests before the slow real ones."""
    items.sort(key=_tier)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The local control plane (hack/cluster.sh), shared by every test marked `cluster`."""
    with local_cluster() as running:
        yield running


@pytest.fixture(scope="session")
def api_installed(cluster: Cluster) -> Cluster:
    """The CRD and the operator's RBAC applied to the local cluster."""
    install_api_and_rbac(cluster)
    return cluster


@pytest.fixture(scope="session")
def operator(api_installed: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One berth-operator process for the session, acting as its ServiceAccount."""
    folder = tmp_path_factory.mktemp("operator")
    kubeconfig = service_account_kubeconfig(api_installed, folder / "kubeconfig.yaml")
    process = OperatorProcess(kubeconfig=kubeconfig, log_path=folder / "operator.log")
    process.start()
    yield process
    process.stop()
    print(f"operator log: {process.log_path}")
