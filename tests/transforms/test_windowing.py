"""Streaming windows: files by arrival, partitions by publication. A story
lands in the window of the poll that brought it, on time, whatever its
published_at says (TestStream on the DirectRunner)."""
import collections
import os
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pandas as pd
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from tests.support.timestamps import to_timestamp
from transforms.records import Story
from transforms.sink import STORIES, WritePartitions
from transforms.windowing import arrival_windows

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WINDOW_S = 300
# published_at relative to the poll that fetched the story; None: undated
AGES = {"min20": timedelta(minutes=-20), "hour1": timedelta(hours=-1),
        "years3": timedelta(days=-3 * 365), "ahead2y": timedelta(days=2 * 365), "undated": None}


def story(sid, published, fetched=NOW):
    return Story(story_id=sid, url=None, canonical_url=None, guid=sid, title=sid, summary="", content="",
                 published_at=published, fetched_at=fetched, feed_url="f", run_id="s")


def streaming_options():
    options = PipelineOptions(["--runner=DirectRunner"])
    options.view_as(StandardOptions).streaming = True
    return options


def polls(count):
    """A TestStream of `count` polls, WINDOW_S apart from NOW: each brings one
    story of every age in AGES, timestamped with its poll tick as the source
    does, the watermark following the ticks."""
    stream = TestStream().advance_watermark_to(to_timestamp(NOW - timedelta(seconds=1)))
    for k in range(count):
        tick = NOW + timedelta(seconds=WINDOW_S * k)
        stream = stream.add_elements([
            window.TimestampedValue(story(f"{name}-{k}", None if age is None else tick + age, tick),
                                    to_timestamp(tick))
            for name, age in AGES.items()])
        stream = stream.advance_watermark_to(to_timestamp(tick + timedelta(seconds=1)))
    return stream.advance_watermark_to_infinity()


def test_every_story_lands_in_the_window_of_its_arrival_on_time():
    def where(s, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        yield s.story_id, w.start.to_utc_datetime().replace(tzinfo=UTC), pane.timing, pane.index

    with beam.Pipeline(options=streaming_options()) as p:
        out = (p | polls(2) | arrival_windows(WINDOW_S)
               | beam.WithKeys(lambda s: "k") | beam.GroupByKey()
               | beam.FlatMap(lambda kv: kv[1]) | beam.ParDo(where))
        on_time = beam.utils.windowed_value.PaneInfoTiming.ON_TIME
        assert_that(out, equal_to([(f"{name}-{k}", NOW + timedelta(seconds=WINDOW_S * k), on_time, 0)
                                   for k in range(2) for name in AGES]))


def test_one_file_per_window_date_and_shard_each_story_once(tmp_path):
    with beam.Pipeline(options=streaming_options()) as p:
        (p | polls(3) | arrival_windows(WINDOW_S) | WritePartitions(str(tmp_path), STORIES, "stream"))
    files = sorted((os.path.basename(root), name) for root, _, names in os.walk(tmp_path / "stories")
                   for name in names)
    windows = [NOW + timedelta(seconds=WINDOW_S * k) for k in range(3)]
    tags = [f"stream-w{w:%Y%m%dT%H%M%SZ}-p0-000.parquet" for w in windows]
    # 3 windows x 3 date partitions: today (20 min, 1 h, undated), 3 years
    # back, 2 years ahead. Event time = published_at (the old windowing) gave
    # 15 files in 12 windows, 9 of them late panes of windows closed before the poll.
    dates = {"date=2026-11-26", f"date={(NOW - timedelta(days=3 * 365)):%Y-%m-%d}",
             f"date={(NOW + timedelta(days=2 * 365)):%Y-%m-%d}"}
    assert {d for d, _ in files} == dates
    per_window = collections.Counter(name for _, name in files)
    assert per_window == {tag: 3 for tag in tags}           # no late pane (-p1), one file per date
    df = pd.read_parquet(tmp_path / "stories")
    assert sorted(df["story_id"]) == sorted(f"{name}-{k}" for k in range(3) for name in AGES)
    # the partition is still the real published_at (fetched_at when undated)
    by_id = df.set_index("story_id")["date"].astype(str)
    assert by_id["years3-0"] == f"{(NOW - timedelta(days=3 * 365)):%Y-%m-%d}"
    assert by_id["ahead2y-2"] == f"{(NOW + timedelta(days=2 * 365)):%Y-%m-%d}"
    assert by_id["undated-1"] == by_id["min20-1"] == "2026-11-26"


def test_a_late_element_gets_a_pane_and_file_of_its_own_never_dropped(tmp_path):
    # Not expected with arrival times; the safety net if a runner ever delivers one.
    first = [story("a", NOW - timedelta(minutes=3)), story("b", NOW - timedelta(hours=2))]
    late = [story("late", NOW - timedelta(minutes=1)), story("late-old", datetime(2024, 5, 1, tzinfo=UTC))]
    stream = (TestStream()
              .advance_watermark_to(to_timestamp(NOW - timedelta(seconds=1)))
              .add_elements([window.TimestampedValue(s, to_timestamp(NOW)) for s in first])
              .advance_watermark_to(to_timestamp(NOW + timedelta(minutes=20)))  # window [12:00, 12:05) fired
              .add_elements([window.TimestampedValue(s, to_timestamp(NOW + timedelta(seconds=10)))
                             for s in late])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as p:
        (p | stream | arrival_windows(WINDOW_S) | WritePartitions(str(tmp_path), STORIES, "stream"))
    files = sorted((os.path.basename(root), name) for root, _, names in os.walk(tmp_path / "stories")
                   for name in names)
    # panes count per (date, shard) key: the late pane of a partition already
    # written is p1, the first (late) pane of another partition p0
    assert files == [("date=2024-05-01", "stream-w20261126T120000Z-p0-000.parquet"),
                     ("date=2026-11-26", "stream-w20261126T120000Z-p0-000.parquet"),
                     ("date=2026-11-26", "stream-w20261126T120000Z-p1-000.parquet")]
    assert sorted(pd.read_parquet(tmp_path / "stories")["story_id"]) == ["a", "b", "late", "late-old"]
