"""Windows for streaming runs: files by arrival, partitions by publication.

Every element keeps the timestamp it got from the source: the poll tick at
which its feed was fetched (transforms/poll.py; the stages in between never
change it). Output windows are FixedWindows over that ARRIVAL time, so a
window holds exactly the stories that arrived in it and closes on time, when
the watermark (which follows the ticks) passes its end: one pane, one file
per (window, date partition, shard).

published_at drives nothing here. It picks the `date=` partition in the sink
(sink.py: the UTC date of published_at, or of fetched_at without one). A feed
whose items are dated years behind or ahead therefore adds a partition to
the window it arrived in, never a window of its own, and no window or state
waits for a clock that is wrong.

Why not event time = published_at: a story published 20 minutes or a day
before the poll sits far behind a watermark that follows the ticks, so it
came out as a LATE pane: one small file per (window, date, shard) it touched,
and dropped once past the allowed lateness.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms import trigger, window

# Arrival timestamps are never behind the watermark, so no pane should ever be
# late. Should a runner still deliver an element late, it is written (a pane,
# file and commit of its own, `-p1`...) rather than dropped, up to this long.
SAFETY_LATENESS_S = 3600


def arrival_windows(window_s: float) -> beam.WindowInto:
    """FixedWindows of `window_s` over the elements' arrival timestamps. The
    window fires once, when the watermark passes its end; a late element
    (not expected: see SAFETY_LATENESS_S) fires a pane of its own holding
    only the new elements, so nothing is written twice."""
    return beam.WindowInto(
        window.FixedWindows(window_s),
        trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
        allowed_lateness=SAFETY_LATENESS_S,
    )
