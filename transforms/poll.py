"""Streaming source: poll the feed list on every tick, politely.

PeriodicImpulse ticks fan out to the feed list, in keys that are buckets of
hosts (transforms.hosts: every feed of a host in one key; the number of keys
grows with the list, so a runner spreads them over its workers). A stateful
DoFn keeps each feed's FeedState (transforms.feedstate: validators,
Retry-After, backoff) and each host's HostState (429/503 backoff, last
request start) in Beam keyed state, fetches the key's due feeds with the
batch fetch code, at most N in flight and starts a gap apart per host, and
emits one FetchResult per feed and tick (a skipped one when the feed is not
due or its host is backing off). Decisions use the tick's timestamp as
"now", so a run is reproducible; fetched_at stays the wall-clock time.

A bounded run on the local runner (FnApiRunner) takes its ticks from
WaitForTicksFn instead of PeriodicImpulse: see LOCAL_RUNNERS for why.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import time
from datetime import datetime
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from transforms import metrics
from transforms.feedstate import FeedState, Politeness, is_due
from transforms.fetch import FetchBatchFn, FetchSettings
from transforms.hosts import (FEEDS_PER_KEY, HostPoliteness, HostScheduler, HostState, after_answer,
                              host_of, is_open, key_count, key_of)
from transforms.records import FeedSource, FetchResult
from transforms.state.lease import LeaseHandle, RenewLeaseFn

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


# Keys on a local runner. The FnApiRunner hands a tick's keys to one worker,
# which runs them one after another (measured: 4 keys of 2,000 feeds on 50
# hosts took 4 x the time of one, multi_processing or not), so there each
# key's polite fetching (feeds on a host x --host-gap) adds up: one key
# fetches every host at once. Runners that process keys in parallel
# (Dataflow) get key_count's many keys.
LOCAL_KEYS = 1


def bucket_feeds(feeds: Sequence[FeedSource], feeds_per_key: int = FEEDS_PER_KEY,
                 keys: Optional[int] = None) -> List[Tuple[int, Tuple[FeedSource, ...]]]:
    """The feed list as (key, feeds) groups: every feed of a host in one key
    (transforms.hosts.key_of), `keys` or key_count(feeds, hosts) keys at most."""
    if keys is None:
        keys = key_count(len(feeds), len({host_of(feed.url) for feed in feeds}), feeds_per_key)
    groups: Dict[int, List[FeedSource]] = {}
    for feed in feeds:
        groups.setdefault(key_of(host_of(feed.url), keys), []).append(feed)
    return sorted((key, tuple(sorted(group))) for key, group in groups.items())


class PoliteFetchFn(FetchBatchFn):
    """(key, feeds) at a tick -> one FetchResult per feed.

    Keyed state holds the FeedState of every feed of the key and the
    HostState of every host of the key between ticks. One process() call is
    one key's tick: read the state, decide which feeds are due, fetch them
    (the batch fetch code, on this DoFn's pool) politely per host
    (transforms.hosts.HostScheduler), write the state. A host that answers
    429/503 has its remaining feeds skipped (skipped_until: the host's
    backoff) on this tick and on later ticks until the backoff passes.
    """

    STATES = ReadModifyWriteStateSpec("feed_states", PickleCoder())
    HOSTS = ReadModifyWriteStateSpec("host_states", PickleCoder())

    def __init__(self, settings: FetchSettings, politeness: Politeness,
                 initial: Tuple[Tuple[str, FeedState], ...] = (),
                 hosts: HostPoliteness = HostPoliteness()):
        super().__init__(settings, politeness)
        self.initial = initial
        self.host_politeness = hosts
        self.host_deferred = metrics.counter("fetch_host_deferred")

    def setup(self):
        super().setup()
        self._initial = dict(self.initial)

    def process(self, element, timestamp=beam.DoFn.TimestampParam,
                states=beam.DoFn.StateParam(STATES), host_states=beam.DoFn.StateParam(HOSTS)):
        _, feeds = element
        known: Optional[Dict[str, FeedState]] = states.read()
        if known is None:  # the key's first tick: what earlier runs left for its feeds
            known = {feed.url: self._initial[feed.url] for feed in feeds if feed.url in self._initial}
        hosts: Dict[str, HostState] = host_states.read() or {}
        pairs = [(feed, known.get(feed.url, FeedState())) for feed in feeds]
        for result in self.fetch_politely(pairs, hosts, timestamp.to_utc_datetime(has_tz=True)):
            known[result.feed_url] = result.feed_state
            yield result
        states.write(known)
        host_states.write(hosts)

    def fetch_politely(self, pairs: List[Tuple[FeedSource, FeedState]], hosts: Dict[str, HostState],
                       now: datetime) -> Iterator[FetchResult]:
        """fetch_due with per-host limits: skips the feeds that are not due
        at `now` or whose host is backing off, fetches the others on the
        pool as HostScheduler allows, and updates `hosts` (in place) from
        the answers. Returns once every fetch has ended."""
        by_host: Dict[str, List[Tuple[FeedSource, FeedState]]] = {}
        for source, state in pairs:
            host = host_of(source.url)
            host_state = hosts.get(host, HostState())
            if not is_due(state, now):
                yield self._skipped(source, state, now)
            elif not is_open(host_state, now):
                self.host_deferred.inc()
                yield self._skipped(source, state, now, until=host_state.backoff_until)
            else:
                by_host.setdefault(host, []).append((source, state))
        scheduler = HostScheduler(by_host, self.host_politeness,
                                  {h: s.last_start for h, s in hosts.items() if s.last_start})
        in_flight: Dict[concurrent.futures.Future, Tuple[str, FeedState]] = {}
        while scheduler.pending or in_flight:
            starts, wake = scheduler.start(time.time(), self.settings.concurrency - len(in_flight))
            for host, (source, state) in starts:
                in_flight[self._pool.submit(self._fetch, (source, state))] = (host, state)
            timeout = None if wake is None else max(0.0, wake - time.time())
            if not in_flight:
                time.sleep(timeout or 0.0)
                continue
            done, _ = concurrent.futures.wait(list(in_flight), timeout=timeout,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                host, state = in_flight.pop(future)
                scheduler.finished(host)
                result = self._finish(future.result(), state, now)
                yield result
                before = hosts.get(host, HostState())
                after = after_answer(before, result.status, result.error,
                                     result.headers.get("retry-after"), now, self.politeness)
                if after != before:
                    hosts[host] = after
                if not is_open(after, now):
                    for skipped_source, skipped_state in scheduler.drop(host):
                        self.host_deferred.inc()
                        yield self._skipped(skipped_source, skipped_state, now, until=after.backoff_until)
        for host, started in scheduler.last_start.items():
            if host:
                hosts[host] = dataclasses.replace(hosts.get(host, HostState()), last_start=started)


class PollFeeds(beam.PTransform):
    """PBegin -> PCollection[FetchResult], one per feed and tick.

    Ticks every `interval_s` from `start` (a Timestamp or seconds) until `stop`;
    each tick fans out to every key of bucket_feeds (all feeds of a host in
    one key; more keys for a longer list; LOCAL_KEYS on a local runner), and
    each key fetches its due feeds.
    """

    def __init__(self, feeds: Sequence[FeedSource], start, stop, interval_s: float,
                 settings: FetchSettings, politeness: Politeness,
                 initial: Iterable[Tuple[str, FeedState]] = (),
                 hosts: HostPoliteness = HostPoliteness(), feeds_per_key: int = FEEDS_PER_KEY,
                 lease: Optional[LeaseHandle] = None):
        super().__init__()
        self.lease = lease
        self.feeds, self.feeds_per_key = tuple(feeds), feeds_per_key
        self.start, self.stop, self.interval_s = start, stop, interval_s
        self.settings, self.politeness, self.initial = settings, politeness, tuple(initial)
        self.hosts = hosts

    def expand(self, pbegin):
        local = runs_locally(pbegin.pipeline.options)
        groups = bucket_feeds(self.feeds, self.feeds_per_key, keys=LOCAL_KEYS if local else None)
        if Timestamp.of(self.stop) < MAX_TIMESTAMP and local:
            ticks = (pbegin | "Impulse" >> beam.Impulse()
                     | "Ticks" >> beam.ParDo(WaitForTicksFn(self.start, self.stop, self.interval_s)))
        else:
            ticks = pbegin | "Ticks" >> PeriodicImpulse(
                start_timestamp=self.start, stop_timestamp=self.stop, fire_interval=self.interval_s)
        if self.lease is not None:
            # The job's heartbeat: on Dataflow no launcher process stays to renew the lease.
            _ = ticks | "KeepLease" >> beam.ParDo(RenewLeaseFn(self.lease))
        return (
            ticks
            | "FanOut" >> beam.FlatMap(lambda _tick: groups)
            .with_output_types(Tuple[int, Tuple[FeedSource, ...]])
            | "Fetch" >> beam.ParDo(PoliteFetchFn(self.settings, self.politeness, self.initial, self.hosts))
            .with_output_types(FetchResult)
        )
