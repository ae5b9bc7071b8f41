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
from datetime import datetime, timezone
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


# Not memoized: feedparser's ISO 8601 handler fills missing parts from
# today's date, so a cached answer would go stale in a long-lived worker.
def parse_date(raw: Optional[str]) -> Optional[datetime]:
    """A feed's date string as an aware UTC datetime, or None.

    feedparser's handlers (RFC 822, W3DTF, asctime, Korean, Greek, Hungarian
    ...) in a safer order; "Fri,24 Nov 2023" (no space) is accepted."""
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
