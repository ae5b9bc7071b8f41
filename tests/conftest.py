"""Shared pytest fixtures, and the markers that sort the suite.

Markers (`make test` runs them all; `make test-fast` leaves out all three):
  integration  a real server, emulator or subprocess: every test that uses the
               feed_server, gcs or s3 fixture is marked here, and modules that
               start processes or servers of their own mark themselves
  slow         seconds or more of work even alone (whole runs, large corpora)
  bench        tests of the benchmark harness (benchmarks/)
"""
import os

import pytest

from tests.support.cloudstorage import FakeGcsServer, GcsEmulator, S3Server
from tests.support.feedserver import FeedServer

# Read once, when google.auth is first imported: never wait for a GCE metadata server.
os.environ["NO_GCE_CHECK"] = "true"
# Fixtures and tests call the command line's main() in this process: it must
# not freeze pytest's heap for the session (transforms/process_gc.py). Set
# before any fixture runs; tests/transforms/test_process_gc.py runs fresh
# interpreters without it.
os.environ["NEWSWATCH_GC"] = "default"


@pytest.fixture
def copy_of(tmp_path):
    """copy_of(folder): a copy of an output a module fixture made, as
    tmp_path/out, for one test to change."""
    def copy(folder):
        import shutil

        return shutil.copytree(folder, tmp_path / "out")
    return copy


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


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory):
    """fake-gcs-server on 127.0.0.1: it honours ifGenerationMatch, so the
    lease's conditional writes are tested on it (whole runs keep `gcs`)."""
    store = FakeGcsServer(tmp_path_factory.mktemp("fake-gcs") / "server.log")
    yield store
    store.stop()


@pytest.fixture(scope="session")
def serial_s3(tmp_path_factory):
    """moto's S3 serving one request at a time, so its condition checks are atomic."""
    store = S3Server(tmp_path_factory.mktemp("s3-serial") / "moto.log", serial=True)
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


MARKERS = {
    "integration": "talks to a real server, emulator or subprocess on 127.0.0.1",
    "slow": "takes seconds or more even alone",
    "bench": "tests the benchmark harness",
}
# Fixtures that start a real server or emulator: their tests are integration tests.
SERVER_FIXTURES = {"feed_server", "gcs", "s3", "fake_gcs", "serial_s3", "fault_server"}


def pytest_configure(config):
    # Beam's TestPipeline is a class named Test*; it is not a test.
    config.addinivalue_line("filterwarnings", "ignore::pytest.PytestCollectionWarning")
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
