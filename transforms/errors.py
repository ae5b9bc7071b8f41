"""Dead letters: what could not be processed, kept with enough context to look at.

Every stage that gives up on a feed or an entry turns it into a DeadLetter
instead of raising, so one bad input never stops the run and nothing is lost
without a trace.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Optional, Union

from transforms.html_text import collapse_whitespace
from transforms.records import DeadLetter

EXCERPT_CHARS = 300
# "timeout: read timed out after 20 s" -> "timeout": the stable categories of
# transforms/fetch.py, parse.UnreadableFeed and parse's `bad_entry`.
_CATEGORY = re.compile(r"([a-z][a-z0-9_]*): ")


def error_category(text: Optional[str]) -> Optional[str]:
    """The category an error or dead-letter reason starts with ("timeout",
    "http_status", "not_a_feed" ...), or None when it names none."""
    if not text:
        return None
    found = _CATEGORY.match(text)
    return found.group(1) if found else None


def excerpt(data: Union[bytes, str, None], limit: int = EXCERPT_CHARS) -> str:
    """A short, printable excerpt of the offending input."""
    if data is None:
        return ""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data[: limit * 4]).decode("utf-8", "replace")
    # Cleaned like story text: Parquet strings must be valid UTF-8 (no lone surrogates).
    return collapse_whitespace(data[: limit * 4])[:limit]


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line: for a one-line error message or a dead letter's reason."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def dead_letter(stage: str, feed_url: str, reason: str, data=None, *,
                run_id: str = "", entry_key: Optional[str] = None,
                occurred_at: Optional[datetime] = None) -> DeadLetter:
    return DeadLetter(
        stage=stage,
        feed_url=feed_url,
        reason=excerpt(reason, 500),
        excerpt=excerpt(data),
        occurred_at=occurred_at or datetime.now(timezone.utc),
        run_id=run_id,
        entry_key=entry_key,
        error_category=error_category(reason),
    )
