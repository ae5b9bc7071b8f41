"""Feed dates as aware UTC datetimes.

Feeds write dates in many forms (RFC 822, W3DTF/ISO 8601, asctime, and the
Korean, Greek and Hungarian forms some publishers use). feedparser knows them
all, but only offers them through `entry.published_parsed`, filled by its own
handler chain, in which the lenient ISO 8601 handler runs third: it reads
"2004년 05월 28일" or "2013-xx-27" as a date in the current month, an answer
that depends on the clock. Its public hook, registerDateHandler, can only add
a handler in front of that chain, for every user of feedparser in the process.

So we call feedparser's date handlers (its private `_parse_date_*` functions)
ourselves, in our own order, with the ISO 8601 one last and refusing a year
with no month. They are private names: setup.py pins feedparser's version,
and tests/transforms/test_corpora.py runs feedparser's own date vectors
through the parse stage, so a feedparser upgrade that changes them fails there.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from typing import Optional

# A year with no month after it ("2013-xx-27", "2004-július-13"): the ISO 8601
# handler would fill the month from today's date.
_YEAR_WITHOUT_MONTH = re.compile(r"^\d{4}(?!\d)(?!-\d)")
_COMMA_WITHOUT_SPACE = re.compile(r",(?=\S)")


@functools.lru_cache(maxsize=None)  # built once, not for every date of every entry
def _date_handlers():
    """feedparser's date handlers, in feedparser's order except that the
    lenient ISO 8601 one comes last: tried early, it reads "2004년 05월 28일"
    or "2013-xx-27" as a date in the current month (a clock-dependent answer)."""
    from feedparser.datetimes import asctime, greek, hungarian, korean, perforce, rfc822, w3dtf

    return (w3dtf._parse_date_w3dtf, rfc822._parse_date_rfc822, asctime._parse_date_asctime,
            perforce._parse_date_perforce, hungarian._parse_date_hungarian,
            greek._parse_date_greek, korean._parse_date_nate, korean._parse_date_onblog,
            _parse_date_iso8601_with_full_date)


def _parse_date_iso8601_with_full_date(value: str):
    from feedparser.datetimes.iso8601 import _parse_date_iso8601

    return None if _YEAR_WITHOUT_MONTH.match(value) else _parse_date_iso8601(value)


# The two shapes most feed dates have, read here as the handler that would
# accept them reads them, without its splitting and lower-casing:
# "Fri, 24 Nov 2023 10:00:00 +0000" (RFC 822 with a four-digit year; the
# W3DTF handler, tried first, refuses it: it finds no four-digit year before
# a "-") and "2023-11-24T10:00:00.5+01:00" (W3DTF). Anything else, and a
# shape whose fields make no valid date, goes through the handlers.
_RFC822_SHAPE = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun), )?([0-9]{1,2}) "
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4}|[a-z]{1,4})", re.ASCII | re.IGNORECASE)
_W3DTF_SHAPE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[tT]([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)"
    r"(?:[zZ]|([+-][0-9]{2}:?[0-9]{2}))?", re.ASCII)
_MONTHS = {name: number for number, name in
           enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


@functools.lru_cache(maxsize=None)  # a constant table, loaded once
def _rfc822_zones():
    from feedparser.datetimes.rfc822 import timezone_names

    return timezone_names


def _common_shape(value: str) -> Optional[datetime]:
    """What the handler chain gives for a date of one of the two common
    shapes, or None when `value` is not of them (or is no valid date)."""
    rfc822 = _RFC822_SHAPE.fullmatch(value)
    if rfc822:
        day, month, year, hour, minute, second, zone = rfc822.groups()
        zone = zone.lower()
        if zone[0] in "+-":   # as feedparser's RFC 822 handler reads an offset
            minutes = int(zone[1:3]) * 60 + int(zone[3:])
        elif zone.startswith("gmt") and zone != "gmt":   # "GMT+1": the handler's own reading
            return None
        else:                 # a zone name; the handler takes one it does not know as UTC
            minutes = _rfc822_zones().get(zone, 0) * 60
        fields = (int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), int(second))
    else:
        w3dtf = _W3DTF_SHAPE.fullmatch(value)
        if not w3dtf:
            return None
        year, month, day, hour, minute, second, zone = w3dtf.groups()
        # As feedparser's W3DTF handler reads them: seconds through float
        # (fractions dropped), minutes of the offset from its fifth character
        # on ("+0530" is read as +05:00).
        fields = (int(year), int(month), int(day), int(hour), int(minute), int(float(second)))
        minutes = int(zone[1:3]) * 60 + int(zone[4:]) if zone else 0
    if zone and zone[0] == "-":
        minutes = -minutes
    try:
        if not minutes:
            return datetime(*fields, tzinfo=timezone.utc)
        return (datetime(*fields) - timedelta(minutes=minutes)).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):   # the handlers decide (the next one may read it)
        return None


# Not memoized: feedparser's ISO 8601 handler fills missing parts from
# today's date, so a cached answer would go stale in a long-lived worker.
def parse_date(raw: Optional[str]) -> Optional[datetime]:
    """A feed's date string as an aware UTC datetime, or None.

    feedparser's handlers (RFC 822, W3DTF, asctime, Korean, Greek, Hungarian
    ...) in a safer order; "Fri,24 Nov 2023" (no space) is accepted. The two
    common shapes are read directly (same answer, tests/transforms/test_dates.py)."""
    if not raw:
        return None
    value = raw.strip()
    return _common_shape(value) or parse_date_reference(value)


def parse_date_reference(raw: Optional[str]) -> Optional[datetime]:
    """parse_date by feedparser's handlers alone: the reference its reading
    of the common shapes is tested against."""
    if not raw or not raw.strip():
        return None
    value = _COMMA_WITHOUT_SPACE.sub(", ", raw.strip())
    for handler in _date_handlers():
        try:
            parsed = handler(value)
        except (KeyError, OverflowError, ValueError, AttributeError, TypeError, IndexError):
            continue
        if parsed and len(parsed) == 9:
            return struct_to_utc(parsed)
    return None


def struct_to_utc(value) -> Optional[datetime]:
    """A UTC time.struct_time (feedparser's *_parsed) as an aware datetime;
    None when absent or out of datetime's range."""
    if not value:
        return None
    try:
        return datetime(*tuple(value)[:6], tzinfo=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
