"""Shared pytest fixtures."""
import os

import pytest

from tests.support.cloudstorage import GcsEmulator, S3Server
from tests.support.feedserver import FeedServer

# Read once, when google.auth is first imported: never wait for a GCE metadata server.
os.environ["NO_GCE_CHECK"] = "true"


@pytest.fixture
def feed_server():
    """A started FeedServer on 127.0.0.1; stopped after the test."""
    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """gcp-storage-emulator on 127.0.0.1 with an empty bucket."""
    store = GcsEmulator(tmp_path_factory.mktemp("gcs") / "emulator.log")
    yield store
    store.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 with an empty bucket."""
    store = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield store
    store.stop()


@pytest.fixture(params=["python", "hyperscan"])
def matcher_engine(request, monkeypatch):
    """The test once with each scan of the topic matcher: both must find the
    same matches. On this project's platforms hyperscan is installed, so a
    missing one fails rather than skips."""
    from transforms.topics import matcher

    monkeypatch.setattr(matcher, "DEFAULT_ENGINE", request.param)
    return request.param


def pytest_configure(config):
    # Beam's TestPipeline is a class named Test*; it is not a test.
    config.addinivalue_line("filterwarnings", "ignore::pytest.PytestCollectionWarning")
