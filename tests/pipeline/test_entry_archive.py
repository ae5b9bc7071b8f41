"""The entry archive (transforms/archive.py, OUT/entries/): every parsed
entry of every run, poll and cycle, matched or not, duplicates included,
with the counts reconciling; read back whole through pipeline/dataset.py,
on local disk and gs://, across schema versions, by fetch-day ranges."""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.dataset import read_entries, read_errors, read_runs, read_stories
from tests.support.feedserver import Scripted
from tests.support.paths import ROOT, SEEDS
from tests.support.sample import ASIA, TOPICS, WIRE, run, serve_sample
from transforms.archive import entry_row, story_from_entry_row
from transforms.schema import ENTRIES_SCHEMA
from transforms.sink import ENTRIES

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UTC = timezone.utc
# One entry whose link cannot be read (a dead letter of stage parse_entry), one fine.
BROKEN = """<?xml version="1.0"?><rss version="2.0"><channel><title>Broken desk</title>
<item><title>North Korea broken link</title><link>http://[broken/x</link><guid>g-broken</guid></item>
<item><title>North Korea fine link</title><link>https://broken.example.org/fine</link><guid>g-fine</guid>
  <pubDate>Tue, 28 Sep 2021 02:00:00 GMT</pubDate></item>
</channel></rss>"""
IDENTITY = ["story_id", "url", "canonical_url", "feed_link", "guid", "feed_url", "content_hash", "entry_index"]
TEXT = ["title", "summary", "content"]
ORDER = ["feed_url", "entry_index"]


def entries(out, **kwargs):
    return read_entries(out, **kwargs).sort_values(ORDER + ["run_id"]).reset_index(drop=True)


def only_run(out):
    (row,) = read_runs(out).to_dict("records")
    return row


@pytest.fixture
def sample(feed_server, tmp_path):
    feeds, topics = serve_sample(feed_server, tmp_path)
    return feeds, topics


def test_every_parsed_entry_is_archived_and_a_dead_letter_is_not(feed_server, sample, tmp_path, capsys):
    feeds, topics = sample
    feed_server.add("/broken.xml", BROKEN)
    with open(feeds, "a") as handle:
        handle.write(feed_server.url("/broken.xml") + "\n")
    out = tmp_path / "out"
    assert run(feeds, topics, out, "--run-id", "a") == 0
    assert "reconcile: entries archived 7 = entries 8 - dead-lettered 1 -> ok" in capsys.readouterr().out

    counts = only_run(out)
    assert counts["reconciles"] and counts["dead_letters_entries"] == 1
    archived = entries(out)
    assert len(archived) == counts["rows_written_entries"] == counts["entries"] - counts["dead_letters_entries"]
    # matched, unmatched and duplicates alike: every guid the feeds gave but the broken entry's
    assert sorted(archived.guid) == sorted(["wire-1", "wire-2", "wire-3", "urn:asia:1", "urn:asia:2",
                                            "urn:asia:3", "g-fine"])
    assert counts["duplicates"] >= 1 and counts["unmatched"] >= 1
    assert set(read_stories(out).story_id) < set(archived.story_id)
    assert "Late goal settles the derby" in set(archived.title)           # unmatched
    assert archived.story_id.duplicated().sum() >= 1                      # the tracked copy too
    assert (archived.run_id == "a").all() and archived.entry_index.notna().all()
    # the dead letter has its errors/ row, and no archive row
    (error,) = read_errors(out).query("stage == 'parse_entry'").to_dict("records")
    assert error["entry_key"] == "g-broken" and "g-broken" not in set(archived.guid)


def test_an_archived_entry_reads_back_as_the_story_parse_gave():
    from pipeline.config import load_feed_list
    from transforms.fetch import fetch_feed
    from transforms.parse import parse_fetch

    stories = [story for source in load_feed_list(str(SEEDS / "feeds.opml"))
               for story in parse_fetch(fetch_feed(source), "seed").stories]
    assert len(stories) == 32
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([entry_row(s) for s in stories], schema=ENTRIES_SCHEMA), sink,
                   compression="zstd", compression_level=ENTRIES.compression_level)
    rows = pq.read_table(pa.BufferReader(sink.getvalue())).to_pylist()
    for story, row in zip(stories, rows):
        back = story_from_entry_row(row)
        assert {n: getattr(back, n) for n in ENTRIES_SCHEMA.names} \
            == {n: getattr(story, n) for n in ENTRIES_SCHEMA.names}
        # a replay writes under its own run id, nothing else changes
        assert story_from_entry_row(row, run_id="replay") == back.replace(run_id="replay")


def test_a_run_archive_reads_back_as_parse_stories_through_the_reader(tmp_path):
    from pipeline.config import load_feed_list
    from transforms.fetch import fetch_feed
    from transforms.parse import parse_fetch

    out = tmp_path / "out"
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "seed") == 0
    parsed = {(s.feed_url, s.entry_index): s for source in load_feed_list(str(SEEDS / "feeds.opml"))
              for s in parse_fetch(fetch_feed(source), "seed").stories}
    rows = read_entries(out).to_dict("records")
    assert len(rows) == len(parsed) == 32
    for row in rows:
        back, story = story_from_entry_row(row), parsed[(row["feed_url"], row["entry_index"])]
        assert {n: getattr(back, n) for n in ENTRIES_SCHEMA.names if n != "fetched_at"} \
            == {n: getattr(story, n) for n in ENTRIES_SCHEMA.names if n != "fetched_at"}
        assert type(back.published_at) in (datetime, type(None)) and isinstance(back.authors, list)


def test_no_archive_writes_none_and_archive_text_none_keeps_identities_only(sample, tmp_path, capsys):
    feeds, topics = sample
    full, bare, off = tmp_path / "full", tmp_path / "bare", tmp_path / "off"
    assert run(feeds, topics, full) == 0
    assert run(feeds, topics, bare, "--archive-text", "none") == 0
    assert run(feeds, topics, off, "--no-archive") == 0
    assert "reconcile: entries archived 0 = archive off 0 -> ok" in capsys.readouterr().out

    assert not (off / "entries").exists() and (off / "stories").exists()
    counts = only_run(off)
    assert counts["rows_written_entries"] == 0 and counts["reconciles"] and counts["entries"] == 6

    with_text, without = entries(full), entries(bare)
    assert len(with_text) == len(without) == 6
    assert without[TEXT].isna().all().all() and with_text[TEXT].notna().all().all()
    pd.testing.assert_frame_equal(with_text[IDENTITY], without[IDENTITY])
    assert (without.authors.map(list) == with_text.authors.map(list)).all()
    # the stories themselves keep their text
    assert read_stories(bare).title.notna().all()


def test_rerunning_a_run_id_replaces_its_archive_files(sample, tmp_path):
    feeds, topics = sample
    out = tmp_path / "out"
    assert run(feeds, topics, out, "--run-id", "x") == 0
    first = entries(out)
    # what an earlier attempt of the run left in another day (its fetch crossed midnight)
    (day,) = (out / "entries").iterdir()
    stale = out / "entries" / "date=2021-01-01"
    stale.mkdir()
    (stale / "x-000.parquet").write_bytes(next(day.glob("*.parquet")).read_bytes())
    assert len(read_entries(out)) == 2 * len(first)
    assert run(feeds, topics, out, "--run-id", "x") == 0
    again = entries(out)
    assert len(again) == len(first) == 6 and not list(stale.glob("*.parquet"))
    pd.testing.assert_frame_equal(again[IDENTITY], first[IDENTITY])


@pytest.fixture
def wide_sample(feed_server, sample):
    """The sample and one feed of 40 items: enough that every archive shard
    of two gets rows (shard_of hashes the fetch time, so it differs by run)."""
    feeds, topics = sample
    items = "".join(f"<item><title>Wide item {n}</title><link>https://wide.example/{n}</link>"
                    f"<guid>w-{n}</guid></item>" for n in range(40))
    feed_server.add("/wide.xml", f"<rss version='2.0'><channel><title>W</title>{items}</channel></rss>".encode())
    with open(feeds, "a") as handle:
        handle.write(feed_server.url("/wide.xml") + "\n")
    return feeds, topics


def test_two_workers_archive_the_same_rows_as_one_process(wide_sample, tmp_path):
    feeds, topics = wide_sample
    assert run(feeds, topics, tmp_path / "one", "--run-id", "one") == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics", str(topics),
         "--output", str(tmp_path / "two"), "--run-id", "two", "--runner", "DirectRunner",
         "--allow-private-addresses", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    same = [c for c in ENTRIES_SCHEMA.names if c not in ("fetched_at", "run_id")]
    one, two = entries(tmp_path / "one"), entries(tmp_path / "two")
    assert len(one) == 46
    pd.testing.assert_frame_equal(one[same], two[same])
    names = lambda out: sorted(p.name for p in (out / "entries").rglob("*.parquet"))
    # one archive shard per worker, so that both write it
    assert names(tmp_path / "one") == ["one-000.parquet"]
    assert names(tmp_path / "two") == ["two-000.parquet", "two-001.parquet"]


def test_archive_shards_are_set_apart_from_the_story_shards(wide_sample, tmp_path):
    feeds, topics = wide_sample
    out = tmp_path / "out"
    assert run(feeds, topics, out, "--run-id", "s", "--archive-shards", "2") == 0
    assert sorted(p.name for p in (out / "entries").rglob("*.parquet")) == ["s-000.parquet", "s-001.parquet"]
    assert {p.name for p in (out / "stories").rglob("*.parquet")} == {"s-000.parquet"}   # one a date
    assert len(entries(out)) == 46


def test_archive_shards_below_one_stop_the_run(sample, tmp_path, capsys):
    feeds, topics = sample
    assert run(feeds, topics, tmp_path / "out", "--archive-shards", "0") == 2
    err = capsys.readouterr().err.strip()
    assert err == "newswatch: error: --archive-shards must be at least 1"
    assert not (tmp_path / "out" / "entries").exists()


def test_a_gs_output_gets_its_archive(gcs, feed_server, tmp_path):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    beam_args = gcs.use_from_beam()
    FileSystems.set_options(PipelineOptions(beam_args))
    feeds, topics = serve_sample(feed_server, tmp_path)
    root = f"gs://{gcs.bucket}/entry-archive/out"
    assert main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", root, "--run-id", "g",
                 "--runner", "DirectRunner", "--allow-private-addresses", *beam_args]) == 0
    archived = entries(root)
    assert len(archived) == 6 and set(archived.run_id) == {"g"}
    assert archived.title.notna().all() and str(archived.fetched_at.dtype) == "datetime64[us, UTC]"
    assert len(read_entries(root, since=archived.fetched_at.min())) == 6


def _older_file(path, table):
    """`table` as a version-4 writer would have archived it: no feed_link,
    no entry_index, schema_version "4"."""
    schema = pa.schema([f for f in ENTRIES_SCHEMA if f.name not in ("feed_link", "entry_index")],
                       metadata={**ENTRIES_SCHEMA.metadata, b"newswatch.schema_version": b"4"})
    pq.write_table(table.select(schema.names).cast(schema), path)


def test_an_archive_with_partitions_of_several_schema_versions_reads_whole(sample, tmp_path):
    feeds, topics = sample
    out = tmp_path / "out"
    assert run(feeds, topics, out, "--run-id", "new") == 0
    current = pq.read_table(next((out / "entries").rglob("*.parquet")))
    older = current.set_column(current.schema.get_field_index("run_id"), ENTRIES_SCHEMA.field("run_id"),
                               pa.array(["old"] * current.num_rows, pa.string()))
    (day,) = (out / "entries").iterdir()
    _older_file(day / "old-000.parquet", older)                                   # beside the new file
    fetched = ENTRIES_SCHEMA.field("fetched_at")
    older = older.set_column(older.schema.get_field_index("fetched_at"), fetched,
                             pa.array([datetime(2021, 9, 28, 12, tzinfo=UTC)] * older.num_rows, fetched.type))
    (out / "entries" / "date=2021-09-28").mkdir()
    _older_file(out / "entries" / "date=2021-09-28" / "old-000.parquet", older)   # a partition of its own

    whole = read_entries(out)
    assert len(whole) == 3 * current.num_rows and list(whole.columns) == ENTRIES_SCHEMA.names + ["date"]
    old, new = whole[whole.run_id == "old"], whole[whole.run_id == "new"]
    assert old.feed_link.isna().all() and old.entry_index.isna().all() and old.title.notna().all()
    assert new.feed_link.notna().all() and new.entry_index.notna().all()
    assert len(read_entries(out, since="2021-09-28", until="2021-09-28")) == current.num_rows
    # a row of the older file still makes a Story (the retag reader's way in)
    story = story_from_entry_row(old.iloc[0].to_dict())
    assert story.feed_link is None and story.entry_index == 0 and story.title


def test_a_day_range_opens_only_its_partitions(sample, tmp_path):
    feeds, topics = sample
    out = tmp_path / "out"
    assert run(feeds, topics, out) == 0
    garbage = out / "entries" / "date=2020-02-02"
    garbage.mkdir()
    (garbage / "unreadable-000.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(Exception):
        read_entries(out)                               # the garbage is read when in range
    today = datetime.now(UTC).date()
    assert len(read_entries(out, since=today.isoformat())) == 6
    assert len(read_entries(out, since=today - timedelta(days=30), until=today)) == 6
    assert read_entries(out, until="2020-02-01").empty


# --------------------------------------------------------------------------- streaming and --every


def _rss(*names):
    items = "".join(f"<item><title>North Korea {n}</title><link>https://desk.example.org/{n}</link>"
                    f"<guid>g-{n}</guid><pubDate>Tue, 28 Sep 2021 0{i}:00:00 GMT</pubDate></item>"
                    for i, n in enumerate(names))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>{items}</channel></rss>'


def test_a_streaming_job_archives_every_entry_of_every_poll_with_its_window_commit(feed_server, tmp_path, capsys):
    from transforms.state.recovery import unit_of

    feed_server.script("/desk.xml", [Scripted(_rss("a1", "a2")), Scripted(_rss("a1", "a2", "a3")),
                                     Scripted(_rss("a2", "a3", "a4", "off topic"))])
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(feed_server.url("/desk.xml") + "\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  - name: dprk\n    query: '\"North Korea\"'\n")
    out = tmp_path / "out"
    assert main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--allow-private-addresses", "--runner", "DirectRunner", "--streaming",
                 "--poll-interval", "1", "--duration", "3", "--window", "1", "--host-gap", "0.02"]) == 0
    summary = capsys.readouterr().out
    assert "MISMATCH" not in summary and "reconcile: entries archived" in summary

    counts = only_run(out)
    polls = len(feed_server.requests_for("/desk.xml"))
    assert counts["mode"] == "streaming" and counts["reconciles"] and polls >= 3
    archived = read_entries(out)
    # every poll's entries, re-served ones again: 2 + 3 + 4 from the script, 4 for each later poll
    assert len(archived) == counts["rows_written_entries"] == counts["entries"] == 2 + 3 + 4 * (polls - 2)
    assert (archived.guid == "g-a2").sum() == polls
    files = sorted((out / "entries").rglob("*.parquet"))
    assert files and all("-w" in p.name for p in files)                     # window-tagged
    assert len({unit_of(str(p)) for p in files}) >= 3                       # one per poll window
    committed = {p.stem for p in (out / "_state" / "seen").glob("*.parquet")}
    assert {unit_of(str(p)) for p in files} <= committed                    # each with its window's commit
    assert len(read_stories(out)) == 5


def test_every_cycle_archives_its_entries(feed_server, tmp_path):
    feed_server.add("/wire.xml", WIRE, delay_s=0.5)
    feed_server.add("/asia.atom", ASIA, headers={"Content-Type": "application/atom+xml"})
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
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    runs = read_runs(out).set_index("run_id")
    assert len(runs) == 2 and runs.reconciles.all()
    archived = read_entries(out).groupby("run_id").size()
    # each cycle archives all 6 entries again, though the second writes no story
    assert archived.to_dict() == runs.rows_written_entries.to_dict() == runs.entries.to_dict() \
        == {run_id: 6 for run_id in runs.index}
    assert runs.rows_written_stories.sort_values().tolist() == [0, 3]


@pytest.mark.parametrize("mode, expected", [
    ([], 1),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 2),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=3", "--shards", "5"], 5),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2", "--streaming"], 1),
    (["--direct_running_mode=multi_threading", "--direct_num_workers=3"], 1),   # threads share one process's writes
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2", "--archive-shards", "3"], 3),
])
def test_the_archive_has_a_shard_a_local_worker_in_a_batch_run(tmp_path, mode, expected):
    # The streaming DirectRunner has no multi_processing mode: its archive keeps --shards.
    from pipeline.cli import build_parser, prepare

    feeds = tmp_path / "feeds.txt"
    feeds.write_text("https://feeds.example/a.xml\n")
    args, beam_args = build_parser().parse_known_args(
        ["run", "--feeds", str(feeds), "--topics", str(SEEDS / "topics.yaml"), "--output", str(tmp_path / "out"),
         *mode])
    assert prepare(args, beam_args).archive_shards == expected
