import pytest


def pytest_addoption(parser):
    parser.addoption("--regenerate", action="store_true",
                     help="rewrite golden expectations from the current output")


@pytest.fixture
def regenerate(request):
    return request.config.getoption("--regenerate")
