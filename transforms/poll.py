"""Streaming source: poll the feed list on every tick, politely.

PeriodicImpulse ticks fan out to the feed list, sharded by feed URL. A
stateful DoFn per shard keeps each feed's FeedState (transforms.feedstate:
validators, Retry-After, backoff) in Beam keyed state, fetches the feeds due
at the tick concurrently, and emits one FetchResult per feed and tick (a
skipped one when the feed is not due). Decisions use the tick's timestamp as
"now", so a run is reproducible; fetched_at stays the wall-clock time.

A bounded run on the local runner (FnApiRunner) takes its ticks from
WaitForTicksFn instead of PeriodicImpulse: see LOCAL_RUNNERS for why.
"""
from __future__ import annotations

import math
import time
import zlib
from typing import Dict, Iterable, List, Sequence, Tuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from transforms.feedstate import FeedState, Politeness
from transforms.fetch import FetchBatchFn, FetchSettings
from transforms.records import FeedSource, FetchResult

DEFAULT_SHARDS = 4

# Runners (lower case, without "runner") on which a bounded run waits for its
# ticks in one bundle. Why: the FnApiRunner does not honour the resume time of
# a deferred SDF residual. PeriodicImpulse, ahead of its next tick, calls
# defer_remainder(next tick); the runner puts the residual straight back on
# ready_inputs (fn_runner.py, _execute_bundle: `if deferred_inputs: ...
# ready_inputs.enque(...)`), so the Ticks stage re-runs every few ms for the
# whole duration: ~75-110 bundles a second, a CPU core busy. For every bundle
# run_stages wraps the monitoring infos gathered so far in one more lazy
# generator, `consolidate_monitoring_infos(itertools.chain(new, previous))`,
# for the stage and for the pipeline ('') alike (fn_runner.py, run_stages), and
# result.metrics() (FnApiMetrics.__init__) unwinds them recursively, one
# frame per bundle: after ~1000 bundles (~15 s of polling, whatever the poll
# interval) RecursionError. metrics(), monitoring_metrics() and
# monitoring_infos() all read that same nest, so no way of querying the
# counters avoids it; fewer bundles does. WaitForTicksFn runs as one bundle.
LOCAL_RUNNERS = ("direct", "switchingdirect", "fnapi")


def runs_locally(options) -> bool:
    """True when the pipeline's runner is the DirectRunner (FnApiRunner)."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    name = runner if isinstance(runner, str) else type(runner).__name__
    name = name.rsplit(".", 1)[-1].lower()
    return name.removesuffix("runner") in LOCAL_RUNNERS


class WaitForTicksFn(beam.DoFn):
    """An impulse -> the ticks of PeriodicImpulse(start, stop, interval): one
    at start + k * interval for each k with that time before stop, each
    emitted (timestamped) once its time has come, sleeping in between; late
    ticks catch up at once. For bounded runs on a local runner only (see
    LOCAL_RUNNERS): it holds one bundle open for the whole run."""

    def __init__(self, start, stop, interval_s: float):
        self.start, self.stop = Timestamp.of(start), Timestamp.of(stop)
        self.interval_s = interval_s

    def process(self, _impulse):
        ticks = math.ceil((self.stop - self.start).micros / (self.interval_s * 1e6))
        for k in range(ticks):
            at = Timestamp.of(self.start.micros / 1e6 + k * self.interval_s)
            wait = at.micros / 1e6 - time.time()
            if wait > 0:
                time.sleep(wait)
            yield TimestampedValue(at, at)


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
        if Timestamp.of(self.stop) < MAX_TIMESTAMP and runs_locally(pbegin.pipeline.options):
            ticks = (pbegin | "Impulse" >> beam.Impulse()
                     | "Ticks" >> beam.ParDo(WaitForTicksFn(self.start, self.stop, self.interval_s)))
        else:
            ticks = pbegin | "Ticks" >> PeriodicImpulse(
                start_timestamp=self.start, stop_timestamp=self.stop, fire_interval=self.interval_s)
        return (
            ticks
            | "FanOut" >> beam.FlatMap(lambda _tick: groups)
            .with_output_types(Tuple[int, Tuple[FeedSource, ...]])
            | "Fetch" >> beam.ParDo(PoliteFetchFn(self.settings, self.politeness, self.initial))
            .with_output_types(FetchResult)
        )
