"""Per-host politeness for the streaming fetch, and the keys it runs under.

Pure functions and small classes only (no I/O, no Beam, no clock of their
own), so the rules are testable as they are:

- Keys: every feed of one host goes to the same key (`key_of(host, keys)`),
  so one key's process() sees all the traffic to a host and can keep it
  polite; the number of keys grows with the feed list (`key_count`), so a
  runner can spread them over as many workers and threads as it has.
- HostScheduler: which of a key's due feeds to start now: at most
  `HostPoliteness.concurrency` requests in flight to one host and starts at
  least `HostPoliteness.gap_s` apart per host; hosts take turns, so many
  feeds on one host neither go out at once nor hold up the key's other hosts.
- HostState / after_answer: one 429 or 503 from any feed of a host (with or
  without Retry-After) defers the host's other feeds too: until Retry-After,
  or for a backoff that doubles while the host keeps refusing.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Deque, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar
from urllib.parse import urlsplit

from transforms.feedstate import RETRY_AFTER_STATUSES, Politeness, as_utc, retry_after_seconds

# Feeds per key. Each key is one unit of work per tick (read state, fetch the
# due feeds, write state); keys are what a runner spreads over its workers.
# 64 feeds over a key's pool (32 threads) is two rounds of fetches, a few
# seconds at ~1 s a feed, and 50,000 feeds give ~780 keys. Reasoned, not
# measured on Dataflow; local runs use one key (poll.LOCAL_KEYS,
# docs/performance.md "Streaming polling").
FEEDS_PER_KEY = 64
MIN_KEYS = 4
# Hosts per key at least: a key's pool (FetchSettings.concurrency, 32) over
# HostPoliteness.concurrency (2) per host needs 16 hosts to be kept busy.
HOSTS_PER_KEY = 16

T = TypeVar("T")


@dataclass(frozen=True)
class HostPoliteness:
    """Limits per host (the host name of the feed URL)."""

    concurrency: int = 2      # requests in flight to one host at most
    gap_s: float = 1.0        # seconds between the starts of two requests to one host


@dataclass(frozen=True)
class HostState:
    """What a key remembers about one host between ticks."""

    backoff_until: Optional[datetime] = None   # no request before this (after a 429/503)
    throttles: int = 0                         # consecutive 429/503 answers
    last_start: Optional[float] = None         # epoch seconds of the last request start


def host_of(url: str) -> str:
    """The host a feed is fetched from: the lower-case host name of an
    http(s) URL; "" for paths (local, gs://, s3://), which get no host limits."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return ""
    try:
        return (parts.hostname or "").lower()
    except ValueError:
        return ""


def key_count(feeds: int, hosts: Optional[int] = None, feeds_per_key: int = FEEDS_PER_KEY,
              hosts_per_key: int = HOSTS_PER_KEY, minimum: int = MIN_KEYS) -> int:
    """How many keys a feed list of `feeds` feeds on `hosts` hosts is spread
    over: one per `feeds_per_key` feeds, but no fewer than `hosts_per_key`
    hosts a key (a key of one host could keep only --host-concurrency of its
    pool's threads busy), and at least `minimum`."""
    keys = math.ceil(feeds / max(1, feeds_per_key))
    if hosts is not None:
        keys = min(keys, math.ceil(hosts / max(1, hosts_per_key)))
    return max(minimum, keys)


def key_of(host: str, keys: int) -> int:
    """The key of every feed of `host` (stable across runs and processes)."""
    return zlib.crc32(host.encode("utf-8")) % keys


def is_open(host: HostState, now: datetime) -> bool:
    """May the host be asked at `now`?"""
    return host.backoff_until is None or as_utc(now) >= as_utc(host.backoff_until)


def after_answer(host: HostState, status: Optional[int], error: Optional[str],
                 retry_after: Optional[str], answered_at: datetime,
                 policy: Politeness = Politeness()) -> HostState:
    """The host's state after one of its feeds answered.

    A 429/503 closes the host until its Retry-After (seconds or a date, from
    `answered_at`: the streaming fetch passes the tick's time, as
    feedstate.next_state does for the feed, so a run is reproducible; capped at
    `policy.max_delay_s`) or, without one, for `policy.base_delay_s`, doubled
    for every further refusal in a row. Any other answer with a status ends
    the run of refusals; a failure without one (timeout, refused connection)
    changes nothing: that is the feed's business (feedstate.next_state).
    """
    answered_at = as_utc(answered_at)
    if error is not None and status in RETRY_AFTER_STATUSES:
        throttles = host.throttles + 1
        wait = retry_after_seconds(retry_after, answered_at)
        if wait is None:
            wait = policy.base_delay_s * 2 ** min(throttles - 1, 32)
        until = answered_at + timedelta(seconds=min(wait, policy.max_delay_s))
        if host.backoff_until is not None and as_utc(host.backoff_until) > until:
            until = host.backoff_until
        return dataclasses.replace(host, backoff_until=until, throttles=throttles)
    if status is not None and host.throttles:
        return dataclasses.replace(host, throttles=0)
    return host


class HostScheduler(Generic[T]):
    """Starts a key's due feeds politely: at most `concurrency` in flight and
    starts `gap_s` apart per host, hosts in turn. The caller owns the clock
    (epoch seconds) and the threads:

        scheduler = HostScheduler(items_by_host, politeness, last_starts)
        while scheduler.pending or in_flight:
            starts, wake = scheduler.start(now, free_threads)
            ... submit starts; wait for a fetch to end or until `wake` ...
            scheduler.finished(host)      # for each fetch that ended
            scheduler.drop(host)          # a host that said 429: its other feeds wait
    Host "" (paths, not HTTP) has no limits.
    """

    def __init__(self, items_by_host: Dict[str, Sequence[T]], politeness: HostPoliteness,
                 last_starts: Optional[Dict[str, float]] = None):
        self.politeness = politeness
        self.queues: Dict[str, Deque[T]] = {h: collections.deque(items)
                                            for h, items in sorted(items_by_host.items()) if items}
        self.turns: Deque[str] = collections.deque(self.queues)
        self.in_flight: Dict[str, int] = collections.Counter()
        self.last_start: Dict[str, float] = dict(last_starts or {})

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def _ready_at(self, host: str) -> Optional[float]:
        """When the host may start its next request (None: not before one ends)."""
        if not host:
            return -math.inf
        if self.in_flight[host] >= self.politeness.concurrency:
            return None
        last = self.last_start.get(host)
        return -math.inf if last is None else last + self.politeness.gap_s

    def start(self, now: float, free: int) -> Tuple[List[Tuple[str, T]], Optional[float]]:
        """The (host, item) pairs to start at `now`, at most `free` of them,
        and the earliest time another could start without waiting for a
        fetch to end (None if none could)."""
        started: List[Tuple[str, T]] = []
        progress = True
        while progress and len(started) < free and self.turns:
            progress = False
            for _ in range(len(self.turns)):
                if len(started) >= free:
                    break
                host = self.turns[0]
                self.turns.rotate(-1)
                ready = self._ready_at(host)
                if ready is None or ready > now:
                    continue
                started.append((host, self.queues[host].popleft()))
                self.in_flight[host] += 1
                if host:
                    self.last_start[host] = now
                progress = True
                if not self.queues[host]:
                    del self.queues[host]
                    self.turns.remove(host)
        wake = None
        for host in self.turns:
            ready = self._ready_at(host)
            if ready is not None and ready > now:
                wake = ready if wake is None else min(wake, ready)
        return started, wake

    def finished(self, host: str) -> None:
        self.in_flight[host] -= 1

    def drop(self, host: str) -> List[T]:
        """Takes the host's feeds that have not started out of the schedule."""
        items = list(self.queues.pop(host, ()))
        if host in self.turns:
            self.turns.remove(host)
        return items

