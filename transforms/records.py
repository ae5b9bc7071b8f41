"""Typed records passed between the pipeline stages.

Each stage takes and returns these plain dataclasses, so the pure functions can
be tested without Beam and the Beam wrappers stay thin.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Optional

from transforms.feedstate import FeedState


@dataclass(frozen=True, order=True)
class FeedSource:
    """One line of the feed list: an http(s) URL or an absolute local path."""

    url: str
    title: Optional[str] = None

    @property
    def is_http(self) -> bool:
        return self.url.startswith(("http://", "https://"))


@dataclass
class FetchResult:
    """What one fetch attempt of one feed produced.

    `error` is None when the body is usable. `status` is the final HTTP status,
    200 for a local file, None when no response arrived (timeout, refused...)
    or when the feed was not due (`skipped_until` set: no request was made).
    `feed_state` is what to remember about the feed after this attempt.
    """

    feed_url: str
    final_url: str
    status: Optional[int]
    headers: dict
    body: bytes
    elapsed_s: float
    fetched_at: datetime
    error: Optional[str] = None
    redirects: int = 0
    feed_state: Optional[FeedState] = None
    skipped_until: Optional[datetime] = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Match(NamedTuple):
    """Why a story matched a topic: one found term (as written in the rule),
    the field it was found in, and its character offset in that field's text
    (for `source`, in the site name; 0 for `language`)."""

    topic: str
    term: str
    field: str
    offset: int


@dataclass
class Story:
    """One feed entry, normalised; the fields mirror schema.STORIES_SCHEMA."""

    story_id: str
    url: Optional[str]
    canonical_url: Optional[str]
    guid: Optional[str]
    title: str
    summary: str
    content: str
    authors: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    published_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    fetched_at: Optional[datetime] = None
    feed_url: str = ""
    feed_title: Optional[str] = None
    # The entry's link as the feed gave it; `url` is the publisher's link
    # when the feed links through a redirector (transforms.publisher).
    feed_link: Optional[str] = None
    source: Optional[str] = None
    language: Optional[str] = None
    topics: list = field(default_factory=list)
    matched_terms: list = field(default_factory=list)
    matches: list = field(default_factory=list)       # of Match
    topics_version: Optional[str] = None
    content_hash: str = ""
    run_id: str = ""
    cluster_id: Optional[str] = None     # transforms/cluster.py
    cluster_size: Optional[int] = None
    # Position of the entry in its feed: a tie-breaker for deterministic dedup.
    # Not written to Parquet.
    entry_index: int = 0
    # Names of the text fields cut to their cap (transforms.html_text.FIELD_CAPS),
    # for the `fields_truncated` counter. Not written to Parquet.
    truncated: tuple = ()
    # The sketch of its lead (transforms.sketch.Sketch, or None when too
    # short), made at parse time for the cluster stage. Not written to Parquet.
    sketch: Optional[tuple] = None

    def replace(self, **changes) -> "Story":
        return dataclasses.replace(self, **changes)

    def __reduce__(self):
        # Stories are pickled at every stage boundary (Beam's fallback coder).
        # A plain tuple with UTC times as integers pickles ~15% smaller and
        # faster than the default, which repeats every field name and
        # rebuilds datetime objects.
        values = [getattr(self, name) for name in _STORY_FIELDS]
        for i in _STORY_TIMES:
            values[i] = utc_micros(values[i])
        # Equal links (url, canonical_url, feed_link; sometimes guid, feed_url)
        # go to pickle as one str, so its memo writes them once and they decode
        # as one object: stories cut down by topics.without_text encode ~15%
        # smaller. Only exact str is shared, so every value keeps its type.
        links = {}
        for i in _STORY_LINKS:
            value = values[i]
            if type(value) is str:
                values[i] = links.setdefault(value, value)
        return (_story_from_values, (tuple(values),))


_STORY_FIELDS = tuple(f.name for f in dataclasses.fields(Story))
_STORY_TIMES = tuple(i for i, name in enumerate(_STORY_FIELDS) if name.endswith("_at"))
_STORY_LINKS = tuple(_STORY_FIELDS.index(name)
                     for name in ("url", "canonical_url", "feed_link", "guid", "feed_url"))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def utc_micros(value):
    """A UTC time as integer microseconds since 1970 (Beam encodes an int
    without pickle); any other value as it is. from_utc_micros undoes it."""
    # Only UTC times become integers, so the round trip is exact.
    if isinstance(value, datetime) and value.tzinfo is timezone.utc:
        return (value - _EPOCH) // _MICROSECOND
    return value


def from_utc_micros(value):
    """utc_micros undone: an int as the UTC time it stands for."""
    return _EPOCH + value * _MICROSECOND if type(value) is int else value


def _story_from_values(values: tuple) -> Story:
    values = list(values)
    for i in _STORY_TIMES:
        values[i] = from_utc_micros(values[i])
    return Story(*values)


@dataclass
class DeadLetter:
    """Something that could not be processed, kept for inspection."""

    stage: str
    feed_url: str
    reason: str
    excerpt: str
    occurred_at: datetime
    run_id: str = ""
    entry_key: Optional[str] = None
    error_category: Optional[str] = None   # the category in front of ": " in `reason`


@dataclass
class FetchLogRow:
    """One row of OUT/fetches: one fetch attempt of one feed."""

    feed_url: str
    final_url: str
    status: Optional[int]
    bytes: int
    elapsed_s: float
    entry_count: int
    error: Optional[str]
    fetched_at: datetime
    run_id: str = ""
    skipped_until: Optional[datetime] = None
    error_category: Optional[str] = None   # the category in front of ": " in `error`
    feed_title: Optional[str] = None
    # The feed parsed but not cleanly (transforms.parse.ParseWarning): False
    # when it parsed cleanly, None when nothing was parsed (failed, 304, not due).
    parse_warning: Optional[bool] = None
    parse_warning_detail: Optional[str] = None
    # Which parser read the body: "fast" (transforms.fast_parse), "feedparser"
    # or "json" (a JSON Feed); None when nothing was parsed.
    parser: Optional[str] = None
