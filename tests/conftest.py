"""Shared pytest fixtures."""
import pytest

from tests.feedserver import FeedServer


@pytest.fixture
def feed_server():
    """A started FeedServer on 127.0.0.1; stopped after the test."""
    with FeedServer() as server:
        yield server


def pytest_configure(config):
    # Beam's TestPipeline is a class named Test*; it is not a test.
    config.addinivalue_line("filterwarnings", "ignore::pytest.PytestCollectionWarning")
