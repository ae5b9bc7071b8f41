"""Streaming source: poll the feed list on every tick, politely.

PeriodicImpulse ticks fan out to the feed list, sharded by feed URL. A
stateful DoFn per shard keeps each feed's FeedState (transforms.feedstate:
validators, Retry-After, backoff) in Beam keyed state, fetches the feeds due
at the tick concurrently, and emits one FetchResult per feed and tick (a
skipped one when the feed is not due). Decisions use the tick's timestamp as
"now", so a run is reproducible; fetched_at stays the wall-clock time.
"""
from __future__ import annotations

import zlib
from typing import Dict, Iterable, List, Sequence, Tuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from transforms.feedstate import FeedState, Politeness
from transforms.fetch import FetchBatchFn, FetchSettings
from transforms.records import FeedSource, FetchResult

DEFAULT_SHARDS = 4


def shard_feeds(feeds: Sequence[FeedSource], shards: int) -> List[Tuple[int, Tuple[FeedSource, ...]]]:
    """The feed list split into `shards` stable groups (by a hash of the URL)."""
    groups: Dict[int, List[FeedSource]] = {}
    for feed in feeds:
        groups.setdefault(zlib.crc32(feed.url.encode()) % shards, []).append(feed)
    return sorted((shard, tuple(sorted(group))) for shard, group in groups.items())


class PoliteFetchFn(FetchBatchFn):
    """(shard, feeds) at a tick -> one FetchResult per feed, with keyed state
    holding every feed's FeedState between ticks."""

    STATES = ReadModifyWriteStateSpec("feed_states", PickleCoder())

    def __init__(self, settings: FetchSettings, politeness: Politeness,
                 initial: Tuple[Tuple[str, FeedState], ...] = ()):
        super().__init__(settings, politeness)
        self.initial = initial

    def process(self, element, timestamp=beam.DoFn.TimestampParam,
                states=beam.DoFn.StateParam(STATES)):
        _, feeds = element
        known: Dict[str, FeedState] = states.read() or dict(self.initial)
        pairs = [(feed, known.get(feed.url, FeedState())) for feed in feeds]
        for result in self.fetch_due(pairs, timestamp.to_utc_datetime(has_tz=True)):
            known[result.feed_url] = result.feed_state
            yield result
        states.write(known)


class PollFeeds(beam.PTransform):
    """PBegin -> PCollection[FetchResult], one per feed and tick.

    Ticks every `interval_s` from `start` (a Timestamp or seconds) until `stop`.
    """

    def __init__(self, feeds: Sequence[FeedSource], start, stop, interval_s: float,
                 settings: FetchSettings, politeness: Politeness,
                 initial: Iterable[Tuple[str, FeedState]] = (), shards: int = DEFAULT_SHARDS):
        super().__init__()
        self.groups = shard_feeds(feeds, shards)
        self.start, self.stop, self.interval_s = start, stop, interval_s
        self.settings, self.politeness, self.initial = settings, politeness, tuple(initial)

    def expand(self, pbegin):
        groups = self.groups
        return (
            pbegin
            | "Ticks" >> PeriodicImpulse(start_timestamp=self.start, stop_timestamp=self.stop,
                                         fire_interval=self.interval_s)
            | "FanOut" >> beam.FlatMap(lambda _tick: groups)
            .with_output_types(Tuple[int, Tuple[FeedSource, ...]])
            | "Fetch" >> beam.ParDo(PoliteFetchFn(self.settings, self.politeness, self.initial))
            .with_output_types(FetchResult)
        )
