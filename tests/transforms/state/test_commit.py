"""The commit stage (transforms/state/commit.py): the run's state is written
once, after every output it waits for, and the run is then closed."""
import os
from datetime import datetime, timedelta, timezone

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.feedstate import FeedState
from transforms.state.commit import CommitState
from transforms.state.store import SeenRecord, StateStore, key_digest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
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
        committed = (seen, feeds) | CommitState(out, "r1", NOW, LOOKBACK, after=[written])
        assert_that(written, equal_to([False]), label="before")
        assert_that(committed, equal_to(["r1"]), label="once")
    store = StateStore(out)
    assert store.open_runs() == {}
    assert store.load_seen("reader", NOW, LOOKBACK).last_seen(key_digest("url:a")) == NOW
    assert store.load_feed_states("reader").states["http://f"].etag == '"1"'
