"""Event time and windows for streaming runs.

A story's event time is its published_at, clamped into
[fetched_at - max_lateness, fetched_at]: an item published long ago (or dated
in the future by a wrong clock) gets the nearest time the windows still
accept, so it is neither dropped as too late nor holds a window open. The
`date` partition still comes from the real published_at (sink.py); windows
only decide which file a story lands in and when.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Timestamp


DEFAULT_MAX_LATENESS_S = 24 * 3600


def event_time(published_at: Optional[datetime], fetched_at: datetime,
               max_lateness_s: float = DEFAULT_MAX_LATENESS_S) -> datetime:
    """published_at clamped into [fetched_at - max_lateness, fetched_at]."""
    if published_at is None:
        return fetched_at
    earliest = fetched_at - timedelta(seconds=max_lateness_s)
    return min(max(published_at, earliest), fetched_at)


def to_timestamp(when: datetime) -> Timestamp:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return Timestamp.from_utc_datetime(when.astimezone(timezone.utc))


class AssignEventTime(beam.PTransform):
    """PCollection[Story] -> the same stories timestamped with their event time."""

    def __init__(self, max_lateness_s: float = DEFAULT_MAX_LATENESS_S):
        super().__init__()
        self.max_lateness_s = max_lateness_s

    def expand(self, stories):
        lateness = self.max_lateness_s
        return stories | "Timestamp" >> beam.Map(
            lambda s: window.TimestampedValue(
                s, to_timestamp(event_time(s.published_at, s.fetched_at, lateness))))


def fixed_windows(window_s: float, allowed_lateness_s: float = DEFAULT_MAX_LATENESS_S) -> beam.WindowInto:
    """FixedWindows that fire when the watermark passes the window's end and
    again for each late element (within the allowed lateness), each pane
    holding only new elements: a pane is a file, so nothing is written twice."""
    return beam.WindowInto(
        window.FixedWindows(window_s),
        trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
        allowed_lateness=allowed_lateness_s,
    )
