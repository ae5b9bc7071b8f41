"""Streaming windows: which window and file a story lands in, late and odd
timestamps, written once (TestStream on the DirectRunner)."""
import os
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pandas as pd
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from transforms.records import Story
from transforms.sink import STORIES, WritePartitions
from transforms.windowing import AssignEventTime, event_time, fixed_windows, to_timestamp

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def story(sid, published, fetched=NOW):
    return Story(story_id=sid, url=None, canonical_url=None, guid=sid, title=sid, summary="", content="",
                 published_at=published, fetched_at=fetched, feed_url="f", run_id="s")


def test_event_time_is_published_at_clamped_to_what_windows_accept():
    day = 24 * 3600
    assert event_time(NOW - timedelta(minutes=5), NOW) == NOW - timedelta(minutes=5)
    assert event_time(None, NOW) == NOW
    assert event_time(datetime(2019, 1, 1, tzinfo=UTC), NOW, day) == NOW - timedelta(days=1)
    assert event_time(NOW + timedelta(days=400), NOW) == NOW  # a wrong clock


def streaming_options():
    options = PipelineOptions(["--runner=DirectRunner"])
    options.view_as(StandardOptions).streaming = True
    return options


def test_window_assignment_for_on_time_old_and_future_stories():
    stories = [story("on-time", NOW - timedelta(minutes=7)),
               story("ancient", datetime(2019, 3, 1, tzinfo=UTC)),
               story("future", NOW + timedelta(days=30)),
               story("undated", None)]
    stream = (TestStream().advance_watermark_to(to_timestamp(NOW - timedelta(days=2)))
              .add_elements(stories).advance_watermark_to_infinity())

    def window_of(s, w=beam.DoFn.WindowParam):
        yield s.story_id, w.start.to_utc_datetime().replace(tzinfo=UTC)

    with beam.Pipeline(options=streaming_options()) as p:
        out = (p | stream | AssignEventTime() | fixed_windows(300) | beam.ParDo(window_of))
        assert_that(out, equal_to([
            ("on-time", NOW - timedelta(minutes=10)),
            ("ancient", NOW - timedelta(days=1)),
            ("future", NOW),
            ("undated", NOW),
        ]))


def test_late_story_gets_a_file_of_its_own_and_every_story_is_written_once(tmp_path):
    first = [story("a", NOW - timedelta(minutes=3)), story("b", NOW - timedelta(minutes=2))]
    late = story("late", NOW - timedelta(minutes=4), fetched=NOW + timedelta(minutes=30))
    stream = (TestStream()
              .advance_watermark_to(to_timestamp(NOW - timedelta(minutes=5)))
              .add_elements([window.TimestampedValue(s, to_timestamp(NOW)) for s in first])
              .advance_watermark_to(to_timestamp(NOW + timedelta(minutes=20)))  # window [11:55, 12:00) fired
              .add_elements([late])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as p:
        (p | stream | AssignEventTime() | fixed_windows(300)
         | WritePartitions(str(tmp_path), STORIES, "stream"))
    files = sorted(os.listdir(tmp_path / "stories" / "date=2026-11-26"))
    # the on-time pane and the late pane of the same window are separate files
    assert files == ["stream-w20261126T115500Z-p0-000.parquet", "stream-w20261126T115500Z-p1-000.parquet"]
    df = pd.read_parquet(tmp_path / "stories")
    assert sorted(df["story_id"]) == ["a", "b", "late"]
