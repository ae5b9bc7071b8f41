"""Per-feed politeness: what we remember about a feed between fetches, and
when it may be fetched again.

Pure functions only (no I/O, no Beam), so a batch run that keeps the state in
files and a streaming run that keeps it in Beam keyed state share the rules:

- ETag / Last-Modified of the last good answer are sent back (conditional GET),
  so an unchanged feed costs a 304 and no parsing.
- 429 / 503 with Retry-After (seconds or an HTTP date): not fetched again
  before that time (capped at `Politeness.max_delay_s`).
- Any other failure: exponential backoff on consecutive failures, capped, so
  a broken feed is still tried at the cap interval and recovers on its own.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Optional

RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Politeness:
    """How long to wait after failures. Defaults suit runs every few minutes."""

    base_delay_s: float = 300.0        # after the 2nd consecutive failure; doubles each time
    max_delay_s: float = 6 * 3600.0    # cap for backoff and for Retry-After


@dataclass(frozen=True)
class FeedState:
    """What we know about one feed after its last fetch attempt."""

    etag: Optional[str] = None
    last_modified: Optional[str] = None
    last_status: Optional[int] = None
    last_fetched_at: Optional[datetime] = None
    next_fetch_at: Optional[datetime] = None     # None: due whenever asked
    consecutive_failures: int = 0


def is_due(state: FeedState, now: datetime) -> bool:
    """May the feed be fetched at `now`?"""
    return state.next_fetch_at is None or as_utc(now) >= as_utc(state.next_fetch_at)


def next_state(state: FeedState, result, now: datetime,
               policy: Politeness = Politeness()) -> FeedState:
    """The state after one fetch attempt.

    `result` is anything with `status`, `headers` (lower-case names) and
    `error` (None on success), such as transforms.records.FetchResult.
    """
    now = as_utc(now)
    headers = result.headers or {}
    status = result.status
    if result.error is None:
        if status == 304:
            # A 304 may refresh the validators; otherwise the old ones still hold.
            etag = headers.get("etag") or state.etag
            last_modified = headers.get("last-modified") or state.last_modified
        else:
            # A 200 without validators means the server stopped sending them.
            etag, last_modified = headers.get("etag"), headers.get("last-modified")
        return FeedState(etag=etag, last_modified=last_modified, last_status=status,
                         last_fetched_at=now, next_fetch_at=None, consecutive_failures=0)

    failures = state.consecutive_failures + 1
    wait = None
    if status in RETRY_AFTER_STATUSES:
        wait = retry_after_seconds(headers.get("retry-after"), now)
    if wait is None:
        wait = backoff_seconds(failures, policy)
    wait = min(wait, policy.max_delay_s)
    return dataclasses.replace(
        state, last_status=status, last_fetched_at=now, consecutive_failures=failures,
        next_fetch_at=now + timedelta(seconds=wait) if wait > 0 else None)


def backoff_seconds(failures: int, policy: Politeness = Politeness()) -> float:
    """Delay after `failures` consecutive failures: 0 after the first (a
    one-off blip is retried on the next run), then base, 2 x base, ... up to the cap."""
    if failures <= 1:
        return 0.0
    return min(policy.base_delay_s * 2 ** min(failures - 2, 32), policy.max_delay_s)


def retry_after_seconds(value: Optional[str], now: datetime) -> Optional[float]:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date.
    None when absent or unreadable; 0 for a date in the past."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, (as_utc(when) - as_utc(now)).total_seconds())


def as_utc(when: datetime) -> datetime:
    """`when` as an aware UTC datetime (a naive one is taken to be UTC)."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
