"""Memory across restarts: streaming jobs and batch runs on one OUT share the
state under _state/. A job starts from what committed runs and windows
wrote, commits every window once its files are written, and a job killed
mid-run leaves nothing half-done: over all runs, each story exactly once.

Real feeds over the test feed server; bounded `--streaming` runs on the
DirectRunner (see test_streaming.py)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPICS = "topics:\n  - name: dprk\n    query: '\"North Korea\" OR Pyongyang'\n"


def item(name, guid=None):
    return (f"<item><title>North Korea {name}</title><link>https://desk.example.org/{name}</link>"
            f"<guid>{guid or 'g-' + name}</guid><description>Report {name} from Seoul.</description>"
            f"<pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>")


def rss(*items, title="Desk"):
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
            f'{"".join(items)}</channel></rss>')


class Desk:
    """Two feeds that change between runs: /desk.xml (with an ETag) and
    /wire.xml (no validator), which re-publishes desk stories under its own guids."""

    def __init__(self, server, tmp_path):
        self.server, self.version = server, 0
        self.feeds = tmp_path / "feeds.txt"
        self.feeds.write_text(f"{server.url('/desk.xml')}\n{server.url('/wire.xml')}\n")
        self.topics = tmp_path / "topics.yaml"
        self.topics.write_text(TOPICS)
        self.out = tmp_path / "out"
        self.served = set()

    def publish(self, desk, wire=()):
        self.version += 1
        self.server.add("/desk.xml", rss(*(item(n) for n in desk)), etag=f'"v{self.version}"')
        self.server.add("/wire.xml", rss(*(item(n, guid=f"wire-{n}") for n in wire), title="Wire"))
        self.served |= set(desk) | set(wire)

    def args(self, *extra):
        return ["run", "--feeds", str(self.feeds), "--topics", str(self.topics), "--output", str(self.out),
                "--allow-private-addresses", "127.0.0.1", "--runner", "DirectRunner", *extra]

    def streaming(self, run_id, duration=2):
        return self.args("--run-id", run_id, "--streaming", "--poll-interval", "1",
                         "--duration", str(duration), "--window", "1")

    def stories(self):
        return pd.read_parquet(self.out / "stories")

    def written_by(self, run_id):
        stories = self.stories()
        return sorted(t.split()[-1] for t in stories[stories["run_id"] == run_id]["title"])

    def check_each_story_once(self):
        stories = self.stories()
        assert stories["canonical_url"].is_unique, stories.groupby("canonical_url")["run_id"].apply(list)
        assert set(stories["canonical_url"]) == {f"https://desk.example.org/{n}" for n in self.served}


@pytest.fixture
def desk(feed_server, tmp_path):
    return Desk(feed_server, tmp_path)


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:] + captured.out
    return captured.out


def state_units(out: Path, run_id: str):
    return sorted(p.stem for p in (out / "_state" / "seen").glob(f"{run_id}*.parquet"))


def window_tags(out: Path, kind: str, run_id: str):
    return sorted({name[len(run_id) + 1:].rsplit("-", 1)[0] for _, _, names in os.walk(out / kind)
                   for name in names if name.startswith(f"{run_id}-w")})


def test_a_new_streaming_job_writes_nothing_the_last_one_wrote(desk, capsys):
    desk.publish(["a1", "a2"], wire=["a1"])
    run(desk.streaming("first"), capsys)
    assert desk.written_by("first") == ["a1", "a2"]
    # a job that ended normally committed every window it wrote files for
    fetch_windows = window_tags(desk.out, "fetches", "first")
    assert fetch_windows and state_units(desk.out, "first") == [f"first-{w}" for w in fetch_windows]

    desk.publish(["a1", "a2", "a3"], wire=["a2", "a4"])
    before = len(desk.server.requests_for("/desk.xml"))
    run(desk.streaming("second"), capsys)
    assert desk.written_by("second") == ["a3", "a4"]
    desk.check_each_story_once()
    # the feed's validator survived the restart: the unchanged desk answered 304 from then on
    second = desk.server.requests_for("/desk.xml")[before:]
    assert second[0].headers.get("if-none-match") == '"v1"'          # the first job's last ETag
    assert [r.headers.get("if-none-match") for r in second[1:]] == ['"v2"'] * (len(second) - 1)


def test_a_streaming_job_after_a_batch_run_writes_nothing_the_run_wrote(desk, capsys):
    desk.publish(["b1", "b2"], wire=["b3"])
    run(desk.args("--run-id", "batch"), capsys)
    assert desk.written_by("batch") == ["b1", "b2", "b3"]

    desk.publish(["b1", "b2", "b4"], wire=["b3", "b5"])
    run(desk.streaming("stream"), capsys)
    assert desk.written_by("stream") == ["b4", "b5"]
    desk.check_each_story_once()


def test_a_batch_run_after_a_streaming_job_writes_nothing_the_job_wrote(desk, capsys):
    desk.publish(["c1", "c2"], wire=["c3"])
    run(desk.streaming("stream"), capsys)
    assert desk.written_by("stream") == ["c1", "c2", "c3"]

    desk.publish(["c1", "c2", "c4"], wire=["c3", "c5"])
    summary = run(desk.args("--run-id", "batch"), capsys)
    assert desk.written_by("batch") == ["c4", "c5"]
    desk.check_each_story_once()
    assert "has not committed" not in summary   # a streaming job leaves no open run behind


def test_a_job_killed_mid_run_leaves_nothing_half_done(desk, capsys, tmp_path):
    desk.publish(["d1", "d2"])
    run(desk.streaming("first"), capsys)
    assert desk.written_by("first") == ["d1", "d2"]

    desk.publish(["d1", "d2", "d3"], wire=["d2"])
    polled = len(desk.server.requests_for("/desk.xml"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *desk.streaming("killed", duration=120)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "killed.err", "w"))
    try:
        deadline = time.monotonic() + 60
        # killed while it polls: after its second poll of the desk, mid-window
        while len(desk.server.requests_for("/desk.xml")) < polled + 2:
            assert proc.poll() is None, (tmp_path / "killed.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the job never polled"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # it wrote neither story files nor a commit: nothing vouches for d3
    assert desk.written_by("killed") == [] and state_units(desk.out, "killed") == []

    desk.publish(["d1", "d2", "d3", "d4"], wire=["d2"])
    run(desk.streaming("next"), capsys)
    assert desk.written_by("next") == ["d3", "d4"]
    desk.check_each_story_once()
