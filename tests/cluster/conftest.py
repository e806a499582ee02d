from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess, install_api_and_rbac, service_account_kubeconfig


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
