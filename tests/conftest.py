import pytest


def pytest_addoption(parser):
    parser.addoption("--regenerate", action="store_true",
                     help="rewrite golden expectations from the current output")


@pytest.fixture
def regenerate(request):
    return request.config.getoption("--regenerate")


@pytest.fixture(autouse=True)
def _no_user_profiles(tmp_path_factory, monkeypatch):
    """The user's own profile directory never leaks into a test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
