"""Recovery (transforms/state/recovery.py) remembers the clusters of an
interrupted run's stories, so a later reprint still joins them."""
from datetime import datetime, timedelta, timezone

import pyarrow as pa

from transforms.cluster import assign_clusters, sketch_stories
from transforms.records import Story
from transforms.schema import STORIES_SCHEMA
from transforms.sink import partition_dir, to_row, write_parquet_atomically
from transforms.state.recovery import recover_interrupted
from transforms.state.store import StateStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=30)
LEAD = ("The harbour authority of the northern port said on Monday that a cargo ship carrying grain "
        "ran aground near the breakwater after its engine failed in a storm, and that tugs had "
        "begun to pull it free while divers checked the hull for damage before the tide turned")


def story(story_id, feed, body, when=NOW):
    return Story(story_id=story_id, url=f"https://{feed}/{story_id}", canonical_url=f"https://{feed}/{story_id}",
                 guid=story_id, title=f"Headline {story_id}", summary=body, content="",
                 published_at=when, fetched_at=when, feed_url=f"https://{feed}/rss", run_id="dead")


def test_an_interrupted_runs_clusters_are_remembered_and_a_later_reprint_joins_them(tmp_path):
    out = str(tmp_path)
    store = StateStore(out)
    store.open_run("dead", NOW)
    written = assign_clusters(sketch_stories([story("first", "wire.example", LEAD)]))
    table = pa.Table.from_pylist([to_row(s, STORIES_SCHEMA) for s in written], schema=STORIES_SCHEMA)
    write_parquet_atomically(partition_dir(out, "stories", "2026-03-01") + "/dead-000.parquet", table)
    assert len(store.load_clusters("next", NOW, LOOKBACK)) == 0   # open run: not vouched for

    recovered = recover_interrupted(store, "next", NOW, LOOKBACK)
    assert [r.run_id for r in recovered] == ["dead"]
    index = store.load_clusters("next", NOW, LOOKBACK)
    assert len(index) == 1

    reprint = story("again", "outlet.example", "PORT CITY (Wire) - " + LEAD[:200], NOW + timedelta(days=1))
    [joined] = assign_clusters(sketch_stories([reprint]), index)
    assert (joined.cluster_id, joined.cluster_size) == ("first", 2)
