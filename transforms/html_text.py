"""Plain text from feed fields: HTML removed, control characters and
whitespace cleaned, each field cut to its cap.

Every text column of a story goes through here: no markup, scripts, control
characters, NUL or lone surrogates reach the output (Parquet strings must be
valid UTF-8), and no field is longer than FIELD_CAPS (or NAME_CAP for a feed
title, an author or a tag) characters.
"""
from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser
from typing import Iterable, List, NamedTuple, Optional

# Tags whose text is not prose: dropped with their content.
_SKIP_CONTENT = frozenset({"script", "style", "noscript", "template", "iframe",
                           "object", "svg", "math", "head", "title"})
# Tags that separate words when the markup is removed.
_BLOCK = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "td", "th",
                    "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
                    "pre", "hr", "section", "article", "header", "footer",
                    "figure", "figcaption", "dd", "dt", "dl", "img", "aside",
                    "nav", "main", "caption", "address"})
# C0/C1 controls (NUL included), zero-width space, BOM, and lone surrogates
# (which feedparser can produce from "&#xD800;" and Parquet cannot store).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff\ud800-\udfff]")

# Longest text kept per field, in characters; longer text is cut (and counted
# in `fields_truncated`). A feed may carry a 5 MB title; a story does not need it.
FIELD_CAPS = {"title": 1_000, "summary": 10_000, "content": 100_000}
NAME_CAP = 1_000  # feed title, each author and tag
# Markup is removed from at most this many times the cap: a 5 MB title of tags
# would otherwise cost seconds of HTML parsing for a 1,000-character result.
_RAW_FACTOR = 16


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: List[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_CONTENT:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in _SKIP_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def collapse_whitespace(text: str) -> str:
    """Control characters blanked, then every run of whitespace one space, trimmed."""
    # str.split() splits on exactly what the regex \s matches; it is ~3x
    # faster than a regex substitution, and control characters are rare.
    if CONTROL_CHARACTERS.search(text):
        text = CONTROL_CHARACTERS.sub(" ", text)
    return " ".join(text.split())


def html_to_text(value: Optional[str]) -> str:
    """Plain text of an HTML fragment: tags removed, entities decoded,
    scripts and styles dropped, control characters removed, whitespace collapsed."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return collapse_whitespace(value)
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # HTMLParser is lenient; this is a last resort
        text = html.unescape(re.sub(r"<[^>]*>", " ", value))
    return collapse_whitespace(unicodedata.normalize("NFC", text))


class CappedText(NamedTuple):
    """A field's plain text, and whether it was cut to its cap."""

    text: str
    cut: bool


def capped_text(raw_values: Iterable[Optional[str]], cap: int) -> CappedText:
    """Plain text of HTML values (each distinct text once, joined), at most
    `cap` characters; `cut` is True when something was cut."""
    raw_values = [v for v in raw_values if v]
    limit = cap * _RAW_FACTOR
    text = " ".join(unique_texts((html_to_text(v[:limit]) for v in raw_values), cap=limit))
    cut = len(text) > cap or any(len(v) > limit for v in raw_values)
    return CappedText(text[:cap].rstrip() if cut else text, cut)


def unique_texts(values: Iterable[Optional[str]], cap: int = NAME_CAP) -> List[str]:
    """Cleaned, non-empty values in order without repeats, each at most `cap` characters."""
    seen, out = set(), []
    for value in values:
        value = collapse_whitespace((value or "")[:cap * _RAW_FACTOR])[:cap]
        if value and value not in seen:
            seen.add(value)
            out.append(value)
    return out
