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
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional

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
    # Printable text (most of it) holds no control character and no
    # whitespace but the ASCII space (str.isprintable: Unicode's "Other" and
    # "Separator" characters are not printable): then without two spaces in
    # a row or at an end, it is already collapsed.
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    # str.split() splits on exactly what the regex \s matches, ~3x faster
    # than a substitution. Control characters are rare and none is
    # printable, so a printable result has none left to blank (a scan
    # with isprintable costs a tenth of the regex search's).
    collapsed = " ".join(text.split())
    if not collapsed.isprintable() and CONTROL_CHARACTERS.search(collapsed):
        collapsed = " ".join(CONTROL_CHARACTERS.sub(" ", collapsed).split())
    return collapsed


# The markup of most feed HTML: tags of a plain shape and nothing else that
# starts with "<". For these, html.parser.HTMLParser (the reference,
# _TextExtractor) reads each tag whole as a start, end or self-closing tag
# of that name, and unescapes the text between tags piece by piece;
# _simple_html_text does the same with one regex split instead of a Python
# callback per token; a script or style element is cut out whole, as
# HTMLParser reads its content raw up to its end tag and it adds no text.
# Anything else goes to HTMLParser: comments, declarations, a stray "<",
# attributes of another shape, an unclosed script or style. Whitespace
# in a tag is only ASCII whitespace, as HTMLParser's tag names end only
# there. tests/transforms/test_html_text.py compares the two on generated
# markup and on every text field of the corpora.
_SPACE = r"[ \t\n\r\f]"
_ATTRIBUTE = (rf"{_SPACE}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
              rf"""(?:{_SPACE}*={_SPACE}*(?:"[^"<>]*"|'[^'<>]*'|[^\s"'=<>`/]+(?!/)))?""")
# Groups: start tag name, "/" when self-closing, end tag name. An unquoted
# value does not end at "/" (HTMLParser reads `<a href=x/>` as a start tag
# whose href is "x/").
_SIMPLE_TAG = re.compile(rf"<(?:([a-zA-Z][a-zA-Z0-9]*)(?:{_ATTRIBUTE})*{_SPACE}*(/?)"
                         rf"|/([a-zA-Z][a-zA-Z0-9]*){_SPACE}*)>")
_RAW_CONTENT = frozenset({"script", "style"})
# The fast reading copies CPython 3.11's HTMLParser (set_cdata_mode); a
# parser with other raw or escapable-raw elements reads everything itself.
_FAST_PATH_AGREES = (frozenset(HTMLParser.CDATA_CONTENT_ELEMENTS) == _RAW_CONTENT
                     and not getattr(HTMLParser, "RCDATA_CONTENT_ELEMENTS", ()))
_unescape = html.unescape


_RAW_START = re.compile(r"<(?:script|style)", re.IGNORECASE)
_RAW_END = {name: re.compile(r"</\s*%s\s*>" % name, re.IGNORECASE) for name in _RAW_CONTENT}  # HTMLParser's


def _split_raw_content(value: str) -> Optional[List[Optional[str]]]:
    """_SIMPLE_TAG.split(value) for markup with script or style elements:
    each, with its content (which HTMLParser reads raw up to the end tag and
    _TextExtractor drops), given as one tag that adds nothing. None when one
    is not closed."""
    pieces: List[Optional[str]] = []
    position = 0
    while True:
        tag = _SIMPLE_TAG.search(value, position)
        if tag is None:
            pieces.append(value[position:])
            return pieces
        pieces.append(value[position:tag.start()])
        start, closing, end = tag.groups()
        position = tag.end()
        raw = start.lower() if start and not closing else None
        if raw in _RAW_CONTENT:
            close = _RAW_END[raw].search(value, position)
            if close is None:
                return None
            position = close.end()
            pieces.extend(("span", "", None))
        else:
            pieces.extend((start, closing, end))


class _Separators(dict):
    """Tag name as written -> what _TextExtractor adds for it: " " for a
    block tag, "" for another, None for one whose content is dropped."""

    def __missing__(self, name: str) -> Optional[str]:
        lower = name.lower()
        value = None if lower in _SKIP_CONTENT else " " if lower in _BLOCK else ""
        if len(name) <= 16 and len(self) < 1024:  # hostile markup invents names without end
            self[name] = value
        return value


_SEPARATORS = _Separators()


def _simple_html_text(value: str) -> Optional[str]:
    """What _TextExtractor joins for `value`, or None when its markup is not
    of the plain shape read here exactly (see _SIMPLE_TAG)."""
    if not _FAST_PATH_AGREES:
        return None
    if _RAW_START.search(value):
        pieces = _split_raw_content(value)
        if pieces is None:
            return None
        texts = pieces[0::4]
        if "<" in "".join(texts):
            return None
    else:
        pieces = _SIMPLE_TAG.split(value)
        texts = pieces[0::4]
        # Each tag read holds exactly one "<": any other is HTMLParser's to read.
        if value.count("<") != len(pieces) // 4:
            return None
    # text, (start name, "/" or "", end name), text, (...), ..., text
    tags = len(pieces) // 4
    if "&" in value:
        texts = [_unescape(text) if "&" in text else text for text in texts]
    names = [start or end for start, end in zip(pieces[1::4], pieces[3::4])]
    separators = list(map(_SEPARATORS.__getitem__, names))
    if None not in separators:
        joined = [""] * (2 * tags + 1)
        joined[0::2] = texts
        joined[1::2] = separators
        return "".join(joined)
    # Tags whose content is dropped: counted as _TextExtractor counts them.
    parts = [texts[0]]
    skip = 0
    for i, name in enumerate(names):
        lower = name.lower()
        if lower in _SKIP_CONTENT:
            # (a script or style start tag came as a whole element, above)
            if pieces[4 * i + 3]:                # an end tag
                skip = max(0, skip - 1)
            elif not pieces[4 * i + 2]:          # not self-closing
                skip += 1
        elif lower in _BLOCK:
            parts.append(" ")
        if not skip:
            parts.append(texts[i + 1])
    return "".join(parts)


def html_to_text(value: Optional[str]) -> str:
    """Plain text of an HTML fragment: tags removed, entities decoded,
    scripts and styles dropped, control characters removed, whitespace collapsed."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return collapse_whitespace(value)
    text = _simple_html_text(value)
    if text is None:
        text = _reference_text(value)
    return collapse_whitespace(unicodedata.normalize("NFC", text))


def html_to_text_reference(value: Optional[str]) -> str:
    """html_to_text by HTMLParser alone: the reference the fast reading is tested against."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return collapse_whitespace(value)
    return collapse_whitespace(unicodedata.normalize("NFC", _reference_text(value)))


def _reference_text(value: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
        return "".join(parser.parts)
    except Exception:  # HTMLParser is lenient; this is a last resort
        return html.unescape(re.sub(r"<[^>]*>", " ", value))


class CappedText(NamedTuple):
    """A field's plain text, and whether it was cut to its cap."""

    text: str
    cut: bool


def capped_text(raw_values: Iterable[Optional[str]], cap: int,
                text_of: Callable[[str], str] = html_to_text) -> CappedText:
    """Plain text of HTML values (each distinct text once, joined), at most
    `cap` characters; `cut` is True when something was cut. `text_of` is
    html_to_text, or the same function remembering its answers."""
    raw_values = [v for v in raw_values if v]
    limit = cap * _RAW_FACTOR
    # unique_texts without its cleaning: html_to_text's text is clean already,
    # and no longer than the `limit` characters it was made of.
    texts: List[str] = []
    for value in raw_values:
        value = text_of(value[:limit])
        if value and value not in texts:
            texts.append(value)
    text = " ".join(texts)
    cut = len(text) > cap or max(map(len, raw_values), default=0) > limit
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


class TextMemo(Dict[str, str]):
    """html_to_text remembering its answers: one entry's summary is often
    its content again (feedparser copies one into the other). Made per
    entry, so it holds no more than that entry's fields."""

    def __missing__(self, value: str) -> str:
        text = self[value] = html_to_text(value)
        return text

    __call__ = dict.__getitem__
