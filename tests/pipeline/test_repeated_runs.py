"""Repeated runs on one OUT, as an operator schedules them: state between
runs, conditional GETs, politeness, idempotent re-runs, interrupted runs,
corrupt state, concurrent runs. Real HTTP on 127.0.0.1, real Parquet."""
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.support.paths import ROOT
from tests.support.sample import ASIA, WIRE, run, serve_sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ITEM = """<item><title>{title}</title><link>https://wire.example.org/{slug}</link><guid>{guid}</guid>
  <description>{text}</description><pubDate>Wed, 29 Sep 2021 0{hour}:00:00 GMT</pubDate></item>"""


def counter(summary, label):
    """The value printed for one counter of the run summary."""
    line = next(l for l in summary.splitlines() if l[9:].startswith(label + " "))
    return int(line.split()[-1].replace(",", ""))


def wire_with(*items):
    return WIRE.replace("</channel>", "".join(items) + "</channel>")


def stories(out):
    path = out / "stories"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["story_id", "run_id"])


def files_of(out, kind):
    return sorted(str(p.relative_to(out / kind)) for p in (out / kind).rglob("*.parquet"))


@pytest.fixture
def setup(feed_server, tmp_path):
    feeds, topics = serve_sample(feed_server, tmp_path)
    return feeds, topics, tmp_path / "out"


def test_second_run_over_unchanged_feeds_writes_nothing_and_uses_conditional_gets(setup, feed_server, capsys):
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    assert len(stories(out)) == 3
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    summary = capsys.readouterr().out
    assert len(stories(out)) == 3 and set(stories(out).run_id) == {"r1"}
    asia = feed_server.requests_for("/asia.atom")
    assert "if-none-match" not in asia[0].headers and asia[1].headers["if-none-match"] == '"asia-v1"'
    fetches = pd.read_parquet(out / "fetches")
    second = fetches[fetches.run_id == "r2"].set_index("feed_url")
    assert second.loc[feed_server.url("/asia.atom"), "status"] == 304
    assert second.loc[feed_server.url("/asia.atom"), "entry_count"] == 0
    # wire has no validators: its 3 entries are parsed again; 1 duplicate, 1 unmatched, 1 seen before
    assert counter(summary, "not modified (304)") == 1
    assert ("reconcile: entries 3 = duplicates 1 + seen before 1 + unmatched 1 + written 0 + "
            "dead-lettered 0 -> ok") in summary
    assert "state: 2 feeds remembered" in summary


def test_a_run_after_feeds_gained_items_writes_only_the_new_ones(setup, feed_server):
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    feed_server.add("/wire.xml", wire_with(ITEM.format(
        title="Pyongyang fires two missiles", slug="nk-two", guid="wire-9", hour=5,
        text="North Korea fired two short-range ballistic missiles, officials said.")))
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    df = stories(out)
    assert sorted(df[df.run_id == "r2"].title) == ["Pyongyang fires two missiles"]
    assert len(df) == 4 and df.story_id.is_unique


def test_a_story_whose_guid_or_link_changed_but_not_the_rest_is_not_written_again(setup, feed_server):
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    changed = (WIRE.replace("<guid>wire-1</guid>", "<guid>wire-1-republished</guid>")
               .replace("<guid>wire-2</guid>", "<guid>wire-2-republished</guid>")
               .replace("/world/nk-missile</link>", "/world/nk-missile-moved</link>"))
    feed_server.add("/wire.xml", changed)
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    assert set(stories(out).run_id) == {"r1"} and len(stories(out)) == 3


def test_rerunning_a_run_id_replaces_its_files_and_never_duplicates_rows(setup, feed_server):
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "daily") == 0
    first = files_of(out, "stories")
    # The retry sees different feeds: the missile story a day earlier, the Korean
    # story gone, so nothing of this run belongs in date=2021-09-28 any more.
    feed_server.add("/wire.xml", WIRE.replace("<pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate>",
                                              "<pubDate>Mon, 27 Sep 2021 01:00:00 GMT</pubDate>"))
    korean = ASIA[ASIA.index("<entry><title>북한"):ASIA.index("<entry><title>Pyongyang")]
    feed_server.add("/asia.atom", ASIA.replace(korean, ""), etag='"asia-v2"')
    assert run(feeds, topics, out, "--run-id", "daily") == 0
    df = stories(out)
    assert df.story_id.is_unique and set(df.run_id) == {"daily"} and len(df) == 2
    assert "date=2021-09-28/daily-000.parquet" in first
    assert [f for f in files_of(out, "stories") if "2021" in f] == ["date=2021-09-27/daily-000.parquet"]
    assert pd.read_parquet(out / "fetches").run_id.value_counts()["daily"] == 2
    # a run with another id afterwards knows every story the retry wrote
    assert run(feeds, topics, out, "--run-id", "next") == 0
    assert set(stories(out).run_id) == {"daily"}


def test_a_run_that_fails_before_its_files_are_written_commits_no_state(setup, feed_server, capsys):
    feeds, topics, out = setup
    blocker = out / "stories" / "date=2021-09-28"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the partition folder should be")
    assert run(feeds, topics, out, "--run-id", "broken") == 1
    state = out / "_state"
    assert (state / "runs" / "broken.json").exists()            # still open
    assert not (state / "seen" / "broken.parquet").exists()
    assert not (state / "feeds" / "broken.parquet").exists()
    assert [p.name for p in out.rglob("*") if p.name.startswith(".") and p.is_file()] == [".lease.json.lock"]
    blocker.unlink()
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "after") == 0
    summary = capsys.readouterr().out
    # nothing is hidden: the ETag feed is fetched in full and every story is written
    assert feed_server.requests_for("/asia.atom")[-1].headers.get("if-none-match") is None
    assert len(stories(out)[lambda d: d.run_id == "after"]) == 3
    assert "recovered interrupted run broken" in summary


def test_re_running_an_id_that_later_runs_built_on_is_refused(setup, capsys):
    """Later runs skip the stories run "a" wrote: replacing a's files after
    them could lose those stories for good."""
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "a") == 0
    assert run(feeds, topics, out, "--run-id", "a") == 0    # nothing after it yet: replaced
    assert run(feeds, topics, out, "--run-id", "b") == 0
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "a") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "runs committed after it (b)" in err
    assert len(stories(out)) == 3 and set(stories(out).run_id) == {"a"}   # nothing removed


def test_a_killed_run_leaves_no_partial_file_and_no_state(setup, feed_server):
    feeds, topics, out = setup
    feed_server.add("/wire.xml", WIRE, delay_s=30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics", str(topics),
         "--output", str(out), "--run-id", "killed", "--runner", "DirectRunner",
         "--allow-private-addresses"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not feed_server.requests_for("/wire.xml") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert feed_server.requests_for("/wire.xml"), "the run never reached the feed"
        proc.kill()
    finally:
        proc.wait(30)
    assert not (out / "_state" / "seen").exists() and not (out / "_state" / "feeds").exists()
    assert not list(out.rglob("*.parquet"))
    feed_server.add("/wire.xml", WIRE)
    assert run(feeds, topics, out, "--run-id", "killed") == 0
    assert len(stories(out)) == 3 and not (out / "_state" / "runs" / "killed.json").exists()


def test_corrupt_state_is_reported_and_the_run_treats_everything_as_new(setup, capsys):
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    (out / "_state" / "seen" / "r1.parquet").write_bytes(b"\x00garbage")
    (out / "_state" / "feeds" / "r1.parquet").write_bytes(b"PAR1")
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    summary = capsys.readouterr().out
    assert "feeds/r1.parquet is unreadable" in summary
    assert "1 seen-story state file(s) unreadable" in summary
    df = stories(out)
    assert len(df[df.run_id == "r2"]) == 3     # treated as new: written again, nothing lost
    assert len(list((out / "_state" / "corrupt").iterdir())) == 2
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "r3") == 0   # the next run is clean again
    summary = capsys.readouterr().out
    assert "WARNING" not in summary and set(stories(out).run_id) == {"r1", "r2"}


def test_missing_state_is_reported(setup, capsys):
    feeds, topics, out = setup
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    for path in sorted((out / "_state").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    assert "no state found although the output holds stories" in capsys.readouterr().out


def test_a_feed_that_asked_to_wait_is_skipped_and_logged(setup, feed_server, capsys):
    feeds, topics, out = setup
    feed_server.add("/asia.atom", "slow down", status=429, headers={"Retry-After": "3600"})
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    summary = capsys.readouterr().out
    assert len(feed_server.requests_for("/asia.atom")) == 1
    assert counter(summary, "not due, skipped") == 1 and counter(summary, "fetch attempts") == 1
    rows = pd.read_parquet(out / "fetches").set_index(["run_id", "feed_url"])
    skipped = rows.loc[("r2", feed_server.url("/asia.atom"))]
    assert pd.isna(skipped["status"]) and pd.isna(skipped["error"])
    first = rows.loc[("r1", feed_server.url("/asia.atom"))]
    assert first["status"] == 429
    assert (skipped["skipped_until"] - first["fetched_at"]).total_seconds() == pytest.approx(3600, abs=5)
    errors = pd.read_parquet(out / "errors")
    assert list(errors.run_id) == ["r1"]          # a skip is not a dead letter


def test_two_runs_started_at_once_on_the_same_output_keep_the_state_sound(setup, feed_server, capsys):
    feeds, topics, out = setup
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics", str(topics),
         "--output", str(out), "--run-id", name, "--runner", "DirectRunner",
         "--allow-private-addresses", "--wait-for-lease", "300"],   # one after the other
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("left", "right")]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
    assert len(list((out / "_state" / "seen").iterdir())) == 2
    before = len(stories(out))
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "third") == 0
    summary = capsys.readouterr().out
    assert "WARNING" not in summary and "state: 2 feeds remembered" in summary
    assert len(stories(out)) == before                       # both runs' stories are known
    assert feed_server.requests_for("/asia.atom")[-1].headers["if-none-match"] == '"asia-v1"'
