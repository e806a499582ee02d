from collections.abc import Iterator

import pytest

from tests.support.runtime_server import RuntimeServer


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeServer]:
    """One runtime serving the demo model for the session's API tests."""
    log = tmp_path_factory.mktemp("runtime") / "server.log"
    server = RuntimeServer(["--model", "demo", "--max-batch-size", "8"], log).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_model():
    """The demo model loaded in this process (float32, CPU), for engine-level tests."""
    from berth_runtime.loader import load

    return load("demo", dtype="float32")


@pytest.fixture(scope="session")
def transformers_model():
    """The demo model loaded once more and never given to a runner (the runner swaps CPU linear
    layers for oneDNN ones): the reference for greedy equality is transformers' own generate() on
    torch's default kernels."""
    from berth_runtime.loader import load

    return load("demo", dtype="float32").model
