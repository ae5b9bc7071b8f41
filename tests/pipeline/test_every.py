"""Local repeated mode: `newswatch run --every SECONDS`, stopped with Ctrl-C."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.support.paths import ROOT
from tests.support.sample import ASIA, TOPICS, WIRE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_repeats_with_state_and_ctrl_c_finishes_the_current_cycle(feed_server, tmp_path):
    feed_server.add("/wire.xml", WIRE, delay_s=1.0)      # each cycle is visibly in progress
    feed_server.add("/asia.atom", ASIA, etag='"a1"', headers={"Content-Type": "application/atom+xml"})
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"{feed_server.url('/wire.xml')}\n{feed_server.url('/asia.atom')}\n")
    (tmp_path / "topics.yaml").write_text(TOPICS)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics",
         str(tmp_path / "topics.yaml"), "--output", str(out), "--every", "0.5",
         "--runner", "DirectRunner", "--allow-private-addresses"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while len(feed_server.requests_for("/wire.xml")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(feed_server.requests_for("/wire.xml")) == 2, "no second cycle started"
        os.killpg(proc.pid, signal.SIGINT)     # what Ctrl-C in a terminal does
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert "stopping after the current cycle" in stderr
    assert stdout.count("reconcile: entries ") == 4 and "stopped after 2 cycle(s)" in stdout
    assert stdout.count("reconcile: entries archived") == 2 and "MISMATCH" not in stdout
    assert len(feed_server.requests_for("/wire.xml")) == 2          # no third cycle
    # cycle 2 finished cleanly: its files and state are committed, nothing open
    stories = pd.read_parquet(out / "stories")
    assert len(stories) == 3 and stories.run_id.nunique() == 1       # cycle 2 wrote nothing new
    assert len(pd.read_parquet(out / "fetches").run_id.unique()) == 2
    assert len(list((out / "_state" / "feeds").iterdir())) == 2
    assert not list((out / "_state" / "runs").iterdir())
    assert feed_server.requests_for("/asia.atom")[1].headers["if-none-match"] == '"a1"'
    # both cycles ran one version of the rules: its file stored once, as given
    [version] = pd.read_parquet(out / "runs").topics_version.unique()
    assert [p.name for p in (out / "_rules").iterdir()] == [f"{version}.yaml"]
    assert (out / "_rules" / f"{version}.yaml").read_text() == TOPICS
    assert [p.name for p in out.rglob("*") if p.name.startswith(".") and p.is_file()] == [".lease.json.lock"]


def test_repeated_mode_options_are_checked_before_any_work(tmp_path, capsys, feed_server):
    from pipeline.cli import main

    feeds = tmp_path / "feeds.txt"
    feeds.write_text(feed_server.url("/wire.xml") + "\n")
    (tmp_path / "t.yaml").write_text(TOPICS)
    base = ["run", "--feeds", str(feeds), "--topics", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "o")]
    for extra, message in ((["--every", "0"], "--every must be a positive"),
                           (["--every", "5", "--run-id", "x"], "cannot be combined with --every"),
                           (["--lookback-days", "0"], "--lookback-days must be positive")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert feed_server.requests == [] and not (tmp_path / "o" / "_state").exists()
