"""Parse stage: fetched bytes -> normalised Story records (plus fetch-log rows
and dead letters).

feedparser only parses bytes we hand it (with the response headers, for the
charset); everything about what a story *is* lives in transforms.identity.

Hostile input is handled here, before and around feedparser:
  - a body whose entity declarations could read files or blow up memory is a
    dead letter `unsafe_xml` (transforms.entity_guard);
  - feedparser gets a file object, never bytes: given bytes it first tries
    open(body), so a body that is a local path would be read from disk;
  - feedparser raises on numeric character references to surrogates or beyond
    U+10FFFF; such a body is parsed again with those references replaced by
    U+FFFD, and anything else it raises on is a dead letter `parse_error`;
  - text fields are plain text (no markup, scripts, control characters, NUL or
    lone surrogates) and cut to FIELD_CAPS characters.
"""
from __future__ import annotations

import functools
import html
import io
import json
import re
import unicodedata
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Iterable, List, NamedTuple, Optional, Tuple
from urllib.parse import urljoin

import apache_beam as beam
import feedparser
from apache_beam.metrics import Metrics

from transforms import identity
from transforms.entity_guard import as_feedparser_reads, entity_hazard
from transforms.errors import dead_letter, excerpt
from transforms.records import DeadLetter, FetchLogRow, FetchResult, Story

FETCH_LOG = "fetch_log"
DEAD_LETTERS = "dead_letters"

# ---------------------------------------------------------------- plain text

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
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff\ud800-\udfff]")


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
    # str.split() splits on exactly what the regex \s matches; it is ~3x
    # faster than a regex substitution, and control characters are rare.
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
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


# Longest text kept per field, in characters; longer text is cut (and counted
# in `fields_truncated`). A feed may carry a 5 MB title; a story does not need it.
FIELD_CAPS = {"title": 1_000, "summary": 10_000, "content": 100_000}
NAME_CAP = 1_000  # feed title, each author and tag
# Markup is removed from at most this many times the cap: a 5 MB title of tags
# would otherwise cost seconds of HTML parsing for a 1,000-character result.
_RAW_FACTOR = 16


def capped_text(raw_values: Iterable[Optional[str]], cap: int) -> Tuple[str, bool]:
    """Plain text of HTML values (each distinct text once, joined), at most
    `cap` characters; True when something was cut."""
    raw_values = [v for v in raw_values if v]
    limit = cap * _RAW_FACTOR
    text = " ".join(_unique((html_to_text(v[:limit]) for v in raw_values), cap=limit))
    cut = len(text) > cap or any(len(v) > limit for v in raw_values)
    return (text[:cap].rstrip() if cut else text), cut


# ---------------------------------------------------------------- dates

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


# A year with no month after it ("2013-xx-27", "2004-július-13"): the ISO 8601
# handler would fill the month from today's date.
_YEAR_WITHOUT_MONTH = re.compile(r"^\d{4}(?!\d)(?!-\d)")
_COMMA_WITHOUT_SPACE = re.compile(r",(?=\S)")


def _parse_date_iso8601_with_full_date(value: str):
    from feedparser.datetimes.iso8601 import _parse_date_iso8601

    return None if _YEAR_WITHOUT_MONTH.match(value) else _parse_date_iso8601(value)


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


# ---------------------------------------------------------------- entries

def _unique(values: Iterable[Optional[str]], cap: int = NAME_CAP) -> List[str]:
    """Cleaned, non-empty values in order without repeats, each at most `cap` characters."""
    seen, out = set(), []
    for value in values:
        value = collapse_whitespace((value or "")[:cap * _RAW_FACTOR])[:cap]
        if value and value not in seen:
            seen.add(value)
            out.append(value)
    return out


def _entry_link(entry, base: Optional[str]) -> Optional[str]:
    link = entry.get("link")
    if not link:
        for candidate in entry.get("links") or []:
            if candidate.get("href") and candidate.get("rel", "alternate") == "alternate":
                link = candidate["href"]
                break
    if not link:
        return None
    link = _CONTROL.sub("", link).strip()
    return urljoin(base, link) if base else link


def entry_to_story(entry, *, index: int, feed_url: str, feed_title: Optional[str],
                   site: Optional[str], base: Optional[str],
                   fetched_at: datetime, run_id: str) -> Story:
    """One feedparser entry -> one Story (pure; raises only on broken input)."""
    url = _entry_link(entry, base)
    canonical = identity.canonical_url(url)
    guid = collapse_whitespace(entry.get("id") or "") or None
    title, title_cut = capped_text([entry.get("title")], FIELD_CAPS["title"])
    summary, summary_cut = capped_text([entry.get("summary")], FIELD_CAPS["summary"])
    content, content_cut = capped_text([c.get("value") for c in entry.get("content") or []],
                                       FIELD_CAPS["content"])
    if summary and summary == content:
        content, content_cut = "", False  # feedparser copies content into summary for some feeds
    truncated = tuple(name for name, cut in (("title", title_cut), ("summary", summary_cut),
                                              ("content", content_cut)) if cut)
    authors = _unique([a.get("name") for a in entry.get("authors") or []] or [entry.get("author")])
    tags = _unique(t.get("term") or t.get("label") for t in entry.get("tags") or [])
    # A feed that only says when an entry was updated (common in Atom) gives
    # that time as the publication time; gofeed and most readers do the same.
    # dict.get: FeedParserDict.get would silently map updated -> published.
    updated_at = parse_date(dict.get(entry, "updated"))
    published_at = parse_date(dict.get(entry, "published")) or updated_at
    text = summary or content
    digest = identity.content_hash(title, text)
    return Story(
        story_id=identity.story_id(canonical, feed_url, guid, digest),
        url=url,
        canonical_url=canonical,
        guid=guid,
        title=title,
        summary=summary,
        content=content,
        authors=authors,
        tags=tags,
        published_at=published_at,
        updated_at=updated_at,
        fetched_at=fetched_at,
        feed_url=feed_url,
        feed_title=feed_title,
        source=identity.site_host(url) or site,
        content_hash=digest,
        run_id=run_id,
        entry_index=index,
        truncated=truncated,
    )


def read_json_feed(body: bytes) -> Optional[dict]:
    """A JSON Feed (jsonfeed.org 1.0/1.1) in feedparser's shape; None when the
    body is not one (feedparser 6.0.14 does not read JSON Feed)."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return None
    version = str(doc.get("version", ""))
    # The spec's version is a URL; some generators write a bare "1.0".
    if not (version.startswith("https://jsonfeed.org/version/") or re.fullmatch(r"1(\.\d)?", version)):
        return None
    feed_authors = _json_authors(doc)
    entries = []
    for item in doc.get("items") or []:
        if not isinstance(item, dict):
            continue
        content = item.get("content_html") or item.get("content_text")
        entries.append({
            "id": _json_str(item.get("id")),
            "link": _json_str(item.get("url") or item.get("external_url")),
            "title": _json_str(item.get("title")),
            "summary": _json_str(item.get("summary")),
            "content": [{"value": content}] if isinstance(content, str) else [],
            "authors": _json_authors(item) or feed_authors,
            "tags": [{"term": t} for t in item.get("tags") or [] if isinstance(t, str)],
            "published": _json_str(item.get("date_published")),
            "updated": _json_str(item.get("date_modified")),
        })
    return {"version": "json1", "entries": entries,
            "feed": {"title": _json_str(doc.get("title")), "link": _json_str(doc.get("home_page_url"))}}


def _json_str(value) -> Optional[str]:
    return value if isinstance(value, str) else (str(value) if isinstance(value, (int, float)) else None)


def _json_authors(obj: dict) -> list:
    authors = obj.get("authors") or ([obj["author"]] if isinstance(obj.get("author"), dict) else [])
    return [{"name": a.get("name")} for a in authors if isinstance(a, dict)]


class ParsedFeed(NamedTuple):
    stories: List[Story]
    dead_letters: List[DeadLetter]
    log: FetchLogRow
    ok: bool


class Unreadable(Exception):
    """A fetched body that yields no feed; str() is `category: detail`."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")


_NUMERIC_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def _replace_invalid_references(body: bytes) -> bytes:
    """"&#xD800;", "&#x110000;" ... (which make feedparser raise) -> U+FFFD."""
    def replace(ref):
        digits = ref.group(1) or ref.group(2)
        code = int(digits, 16 if ref.group(1) else 10) if len(digits) <= 8 else -1
        return ref.group() if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else b"&#xFFFD;"
    return _NUMERIC_REF.sub(replace, body)


def _feedparser(body: bytes, headers: dict):
    # A file object, not bytes: feedparser.parse(bytes) first tries open(bytes).
    return feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        # We turn HTML into text ourselves; feedparser's sanitiser and
        # URI resolution would only cost time.
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def read_feed(body: bytes, headers: Optional[dict] = None):
    """feedparser's result for RSS/Atom/RDF (headers give the charset), or the
    same shape for a JSON Feed. Raises Unreadable: `not_a_feed`, `unsafe_xml`
    (transforms.entity_guard) or `parse_error` (feedparser itself failed)."""
    headers = dict(headers or {})
    if not body.strip():
        raise Unreadable("not_a_feed", "empty body")
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        parsed = read_json_feed(body)
        if parsed is not None:
            return parsed
    hazard = entity_hazard(as_feedparser_reads(body, headers))
    if hazard:
        raise Unreadable("unsafe_xml", hazard)
    try:
        parsed = _feedparser(body, headers)
    except Exception as first:
        # feedparser raises on references to surrogates or past U+10FFFF:
        # one more try with those replaced, then give up on the feed.
        repaired = _replace_invalid_references(body)
        parsed = None
        if repaired != body:
            try:
                parsed = _feedparser(repaired, headers)
            except Exception:
                pass
        if parsed is None:
            raise Unreadable("parse_error", f"feedparser failed: {type(first).__name__}: {first}") from first
    if not parsed.get("entries") and not parsed.get("version"):
        raise Unreadable("not_a_feed", str(parsed.get("bozo_exception") or "no RSS/Atom structure found"))
    return parsed


def parse_fetch(fetched: FetchResult, run_id: str = "") -> ParsedFeed:
    """Everything one fetch attempt yields: stories, dead letters, its log row."""
    dead: List[DeadLetter] = []
    stories: List[Story] = []
    ok = fetched.ok
    error = fetched.error
    # 304 (not modified) and a feed that was not due carry no body to parse.
    if fetched.ok and fetched.status != 304 and fetched.skipped_until is None:
        try:
            parsed = read_feed(fetched.body, fetched.headers)
        except Unreadable as exc:
            ok, error = False, str(exc)
            dead.append(dead_letter("parse", fetched.feed_url, error, fetched.body,
                                    run_id=run_id, occurred_at=fetched.fetched_at))
        else:
            feed = parsed.get("feed") or {}
            feed_link = feed.get("link")
            http_url = fetched.final_url if fetched.final_url.startswith(("http://", "https://")) else None
            base = feed_link or http_url
            site = identity.site_host(feed_link) or identity.site_host(http_url)
            feed_title = capped_text([feed.get("title")], NAME_CAP)[0] or None
            for index, entry in enumerate(parsed.get("entries") or []):
                try:
                    stories.append(entry_to_story(
                        entry, index=index, feed_url=fetched.feed_url,
                        feed_title=feed_title, site=site, base=base,
                        fetched_at=fetched.fetched_at, run_id=run_id))
                except Exception as exc:  # one broken entry must not lose the feed
                    dead.append(dead_letter(
                        "parse_entry", fetched.feed_url, f"bad_entry: {type(exc).__name__}: {exc}",
                        repr(dict(entry))[:2000], run_id=run_id,
                        entry_key=excerpt(str(entry.get("id") or entry.get("link") or index), 200),
                        occurred_at=fetched.fetched_at))
    elif not fetched.ok:
        dead.append(dead_letter("fetch", fetched.feed_url, fetched.error or "fetch failed",
                                fetched.body, run_id=run_id, occurred_at=fetched.fetched_at))
    log = FetchLogRow(
        feed_url=fetched.feed_url,
        final_url=fetched.final_url,
        status=fetched.status,
        bytes=len(fetched.body or b""),
        elapsed_s=fetched.elapsed_s,
        entry_count=len(stories) + sum(1 for d in dead if d.stage == "parse_entry"),
        error=error,
        fetched_at=fetched.fetched_at,
        run_id=run_id,
        skipped_until=fetched.skipped_until,
    )
    return ParsedFeed(stories, dead, log, ok)


# ---------------------------------------------------------------- Beam

class _ParseFeedDoFn(beam.DoFn):
    def __init__(self, run_id: str):
        self.run_id = run_id
        self.feeds_ok = Metrics.counter("newswatch", "feeds_ok")
        self.feeds_failed = Metrics.counter("newswatch", "feeds_failed")
        self.entries = Metrics.counter("newswatch", "entries")
        self.bad_entries = Metrics.counter("newswatch", "dead_letters_entries")
        self.truncated = Metrics.counter("newswatch", "fields_truncated")

    def process(self, fetched: FetchResult):
        result = parse_fetch(fetched, self.run_id)
        if fetched.skipped_until is None:
            (self.feeds_ok if result.ok else self.feeds_failed).inc()
        self.entries.inc(result.log.entry_count)
        for letter in result.dead_letters:
            if letter.stage == "parse_entry":
                self.bad_entries.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, letter)
        yield beam.pvalue.TaggedOutput(FETCH_LOG, result.log)
        for story in result.stories:
            if story.truncated:
                self.truncated.inc(len(story.truncated))
            yield story


class ParseFeeds(beam.PTransform):
    """PCollection[FetchResult] -> DoOutputsTuple with

    - main output: PCollection[Story], one per entry
    - `fetch_log`: PCollection[FetchLogRow], one per fetch attempt
    - `dead_letters`: PCollection[DeadLetter] for failed fetches, bodies that
      are not feeds and entries that could not be converted.
    """

    def __init__(self, run_id: str = ""):
        super().__init__()
        self.run_id = run_id

    def expand(self, fetched):
        return fetched | "Parse" >> beam.ParDo(_ParseFeedDoFn(self.run_id)).with_outputs(
            FETCH_LOG, DEAD_LETTERS, main="stories")
