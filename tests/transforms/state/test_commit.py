"""The commit stage (transforms/state/commit.py): the run's state is written
once, after every output it waits for, and the run is then closed."""
import os
import uuid
from datetime import datetime, timedelta, timezone

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.feedstate import FeedState
from transforms.state.cluster_index import ClusterRecord
from transforms.state.commit import CommitState
from transforms.state.store import SeenRecord, StateStore, key_digest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SIGNATURE = bytes(range(256))
LOOKBACK = timedelta(days=30)


def _committed_yet(path: str) -> bool:
    return os.path.exists(path)


def test_commit_state_writes_the_run_once_after_its_outputs(tmp_path):
    out = str(tmp_path)
    StateStore(out).open_run("r1", NOW)
    seen_file = os.path.join(out, "_state", "seen", "r1.parquet")
    with TestPipeline(runner="DirectRunner") as p:
        seen = p | "Seen" >> beam.Create([SeenRecord(key_digest("url:a"), "id-a", NOW)])
        feeds = p | "Feeds" >> beam.Create([("http://f", FeedState(etag='"1"', last_fetched_at=NOW))])
        # stands for the files written: the commit must wait for it
        written = p | "Files" >> beam.Create([seen_file]) | "Write" >> beam.Map(_committed_yet)
        clusters = p | "Clusters" >> beam.Create([ClusterRecord("id-a", "id-a", SIGNATURE, 12, NOW)])
        committed = (seen, feeds, clusters) | CommitState(out, "r1", NOW, LOOKBACK, after=[written])
        assert_that(written, equal_to([False]), label="before")
        assert_that(committed, equal_to(["r1"]), label="once")
    store = StateStore(out)
    assert store.open_runs() == {}
    assert store.load_seen("reader", NOW, LOOKBACK).last_seen(key_digest("url:a")) == NOW
    assert store.load_feed_states("reader").states["http://f"].etag == '"1"'
    assert len(store.load_clusters("reader", NOW, LOOKBACK)) == 1


# ---------------------------------------------------------------- streaming

def test_commit_windows_commits_each_window_once_after_its_files_as_a_readable_unit(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms import window

    from tests.support.timestamps import to_timestamp
    from transforms.state.commit import CommitWindows
    from transforms.windowing import arrival_windows

    out = str(tmp_path / "out")
    (tmp_path / "log").mkdir()
    store = StateStore(out)
    store.open_run("stream", NOW)        # an open run of the same id hides nothing of its units
    w0, w1 = NOW, NOW + timedelta(seconds=60)
    units = ["stream-w20260301T120000Z-p0", "stream-w20260301T120100Z-p0"]
    seen_files = [os.path.join(out, "_state", "seen", f"{u}.parquet") for u in units]

    def at(value, when):
        return window.TimestampedValue(value, to_timestamp(when))

    # one TestStream (the DirectRunner runs one per pipeline): (part, value) per window
    per_window = [
        [(0, SeenRecord(key_digest("url:a"), "id-a", w0)), (1, ("http://f", FeedState(etag='"1"', last_fetched_at=w0))),
         (2, seen_files[0]), (3, ClusterRecord("id-a", "id-a", SIGNATURE, 12, w0))],
        [(0, SeenRecord(key_digest("url:b"), "id-b", w1)), (1, ("http://f", FeedState(etag='"2"', last_fetched_at=w1))),
         (2, seen_files[1]), (3, ClusterRecord("id-b", "id-a", SIGNATURE, 12, w1))],
    ]
    stream = TestStream().advance_watermark_to(to_timestamp(NOW - timedelta(seconds=1)))
    for when, elements in zip((w0, w1), per_window):
        stream = stream.add_elements([at(e, when + timedelta(seconds=5)) for e in elements])
        stream = stream.advance_watermark_to(to_timestamp(when + timedelta(seconds=30)))
    stream = stream.advance_watermark_to_infinity()

    options = PipelineOptions(["--runner=DirectRunner"])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as p:
        parts = p | stream | beam.Partition(lambda e, n: e[0], 4)
        seen, feeds, files, clusters = (part | f"Values{i}" >> beam.Map(lambda e: e[1]) for i, part in enumerate(parts))
        # stands for each window's files: the window's commit must wait for them
        written = files | arrival_windows(60) | "Write" >> beam.Map(_committed_yet)
        committed = (seen, feeds, clusters) | CommitWindows(out, "stream", LOOKBACK, arrival_windows(60),
                                                  after=[written])
        # (assert_that sees an empty first pane under TestStream: record outcomes as files)
        written | "Before" >> beam.Map(lambda was: (tmp_path / "log" / f"before-{was}-{uuid.uuid4().hex}").touch())
        committed | "Once" >> beam.Map(lambda unit: (tmp_path / "log" / f"unit-{unit}-{uuid.uuid4().hex}").touch())
    log = sorted(name.rsplit("-", 1)[0] for name in os.listdir(tmp_path / "log"))
    assert log == ["before-False", "before-False"] + [f"unit-{u}" for u in units]
    assert all(os.path.exists(f) for f in seen_files)
    assert store.open_runs() == {"stream": NOW.isoformat().replace("+00:00", "Z")}
    # readable by the next run although "stream" is still open
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert index.last_seen(key_digest("url:a")) == w0 and index.last_seen(key_digest("url:b")) == w1
    assert store.load_feed_states("reader").states["http://f"].etag == '"2"'
    remembered = store.load_clusters("reader", NOW, LOOKBACK)
    assert len(remembered) == 2 and remembered.sizes.tolist() == [2]
    assert len(store.load_clusters("stream", NOW, LOOKBACK)) == 0   # the job's own units: in keyed state
