import pytest

from tests.server.harness import running_server


@pytest.fixture(scope="session")
def server():
    """One real server, with the default limits, for the hostile and fuzz tests."""
    with running_server() as running:
        yield running


@pytest.fixture(scope="session")
def client(server):
    with server.client() as client:
        yield client
