"""benchmarks/served_corpus.py: a corpus served from a child process, which
stops however the block that uses it ends."""
import os
import threading
import urllib.error

import psutil
import pytest

from benchmarks.served_corpus import served_elsewhere
from tests.support.feedserver import fetch_direct as fetch
from tests.support.feedserver import listening_ports

pytestmark = [pytest.mark.bench, pytest.mark.integration]


def _server_threads() -> set:
    return {t for t in threading.enumerate() if t.name == "FeedServer"}


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "a").mkdir()
    documents = {"a/one.xml": b"<rss version='2.0'><channel><title>one</title></channel></rss>",
                 "two.atom": b"<feed xmlns='http://www.w3.org/2005/Atom'><title>two</title></feed>",
                 "notes.txt": b"not a feed"}
    for name, body in documents.items():
        (tmp_path / name).write_bytes(body)
    return tmp_path, {k: v for k, v in documents.items() if not k.endswith(".txt")}


def _path(url: str) -> str:
    return url.split("/", 3)[3]


def test_the_corpus_is_served_by_a_child_process(corpus):
    folder, documents = corpus
    feeds = folder / "feeds.txt"
    threads_before = _server_threads()
    with served_elsewhere(str(folder), str(feeds)) as pid:
        urls = feeds.read_text().split()
        assert sorted(map(_path, urls)) == sorted(documents)
        for url in urls:
            assert fetch(url) == documents[_path(url)]
        port = int(urls[0].split("/")[2].rsplit(":", 1)[1])
        assert pid != os.getpid() and psutil.Process(pid).ppid() == os.getpid()
        assert port in listening_ports(pid)
        assert port not in listening_ports(os.getpid())
        assert _server_threads() == threads_before
    assert not psutil.pid_exists(pid)
    with pytest.raises(urllib.error.URLError):
        fetch(urls[0])


def test_the_child_stops_when_the_block_raises(corpus):
    folder, _ = corpus
    with pytest.raises(KeyError):
        with served_elsewhere(str(folder), str(folder / "feeds.txt")) as pid:
            assert psutil.pid_exists(pid)
            raise KeyError("the measured work failed")
    assert not psutil.pid_exists(pid)


def test_a_feed_server_that_cannot_start_is_an_error_at_once(tmp_path):
    with pytest.raises(RuntimeError, match="exited with code 1 before serving"):
        with served_elsewhere(str(tmp_path), str(tmp_path / "no such folder" / "feeds.txt"), timeout=60):
            pass
