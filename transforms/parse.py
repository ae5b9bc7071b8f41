"""Parse stage: fetched bytes -> normalised Story records (plus fetch-log rows
and dead letters).

RSS/Atom/RDF is read by the fast path (transforms.fast_parse: lxml, giving
exactly feedparser's fields) and by feedparser for every document the fast
path refuses (`--parser feedparser`: by feedparser alone); feedparser only
parses bytes we hand it (with the response headers, for the charset). A JSON
Feed is read by transforms.json_feed into the same shape. The fetch log's
`parser` says which read each document.
Everything about what a story *is* lives in transforms.identity; its text
fields are made plain by transforms.html_text, its dates by transforms.dates.

Hostile input is handled here, before and around feedparser:
  - a body whose entity declarations could read files or blow up memory is a
    dead letter `unsafe_xml` (transforms.entity_guard);
  - feedparser gets a file object, never bytes: given bytes it first tries
    open(body), so a body that is a local path would be read from disk;
  - feedparser raises on numeric character references to surrogates or beyond
    U+10FFFF; such a body is parsed again with those references replaced by
    U+FFFD, and anything else it raises on is a dead letter `parse_error`;
  - text fields are plain text (no markup, scripts, control characters, NUL or
    lone surrogates) and cut to FIELD_CAPS characters (transforms.html_text).

A feed that parses but not cleanly gets a parse warning in its fetch-log row
(parse_warning, parse_warning_detail; see feed_warning): a document that is not
well-formed XML (truncated, mismatched tags: feedparser's loose parser read
what it could, often nothing), one whose declared encoding was wrong, or one
whose invalid character references were replaced.

A body of SPLIT_ABOVE bytes or more is read a few hundred items at a time
(transforms.feed_split), with the same entries as the whole document, and
stories leave SKETCH_BATCH at a time (iter_parse_fetch): a 200,000-item
feed is never held as all its entries or a list of stories.

Each story gets the sketch of its lead for the cluster stage
(transforms.cluster.DocumentSketcher), made here because only here are a feed
document's items together: what recurs across them is the outlet's
boilerplate, left out of every sketch.
"""
from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Iterator, List, NamedTuple, Optional, Union
from urllib.parse import urljoin

import apache_beam as beam
import feedparser

from transforms import identity, metrics, process_gc, publisher
from transforms.cluster import DocumentSketcher
from transforms.dates import parse_date
from transforms.entity_guard import as_feedparser_reads, entity_hazard
from transforms.errors import dead_letter, error_category, excerpt
from transforms.fast_parse import FALLBACK_REASONS, Refused, read_fast_document
from transforms.feed_split import SplitFeed, feedparser_input, split_feed
from transforms.html_text import (CONTROL_CHARACTERS, FIELD_CAPS, NAME_CAP, TextMemo, capped_text,
                                  collapse_whitespace, unique_texts)
from transforms.json_feed import read_json_feed
from transforms.records import DeadLetter, FetchLogRow, FetchResult, Story

FETCH_LOG = "fetch_log"
DEAD_LETTERS = "dead_letters"
# Bodies of this many bytes or more are read in pieces (open_feed): below it
# feedparser on the whole document costs no more than a few MB.
SPLIT_ABOVE = 8 * 1024 * 1024
# Stories are sketched this many at a time (a whole feed of the usual size,
# a huge feed in parts), each batch's boilerplate found among its own items
# and those of the batches before it.
SKETCH_BATCH = 200

# ---------------------------------------------------------------- reading a body

class InvalidReferences(ValueError):
    """Numeric character references to surrogates or past U+10FFFF, replaced by U+FFFD."""


# feedparser's bozo exceptions that say nothing is wrong with the document
# itself: the server's Content-Type is not an XML one.
_NOT_A_WARNING = frozenset({"NonXMLContentType"})
_ENCODING_WARNINGS = frozenset({"CharacterEncodingOverride", "CharacterEncodingUnknown"})
_SAX_POSITION = re.compile(r"^<unknown>:(\d+):(\d+): ")   # how expat's errors start


def feed_warning(parsed) -> Optional[str]:
    """Why a parsed feed is suspect, as `category: detail`, or None.

    category: `malformed` (not well-formed XML: truncated, mismatched tags;
    what feedparser's loose parser made of it may be partial), `encoding`
    (the declared or served charset was wrong or unknown; text may be
    garbled), `bad_references` (invalid character references replaced)."""
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    name = type(exc).__name__
    if name in _NOT_A_WARNING:
        return None
    detail = excerpt(_SAX_POSITION.sub(r"line \1, column \2: ", str(exc), 1) if exc is not None else "",
                     200) or name
    if isinstance(exc, InvalidReferences):
        return f"bad_references: {detail}"
    if name in _ENCODING_WARNINGS:
        return f"encoding: {detail}"
    return f"malformed: {detail}"


class UnreadableFeed(Exception):
    """A fetched body that yields no feed (raised by read_feed). str() is
    `category: detail`, category one of not_a_feed, unsafe_xml, parse_error:
    the dead letter's reason and the fetch log's error."""

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


_JSON_START = re.compile(rb"[\xef\xbb\xbf \t\r\n]*\{")


def read_feed(body: bytes, headers: Optional[dict] = None):
    """feedparser's result for RSS/Atom/RDF (headers give the charset), or the
    same shape for a JSON Feed. Raises UnreadableFeed: `not_a_feed`, `unsafe_xml`
    (transforms.entity_guard) or `parse_error` (feedparser itself failed)."""
    headers = dict(headers or {})
    # isspace and a match, not strip/lstrip: those copy a body with a final newline.
    if not body or body.isspace():
        raise UnreadableFeed("not_a_feed", "empty body")
    if _JSON_START.match(body):
        parsed = read_json_feed(body)
        if parsed is not None:
            return parsed
    hazard = entity_hazard(as_feedparser_reads(body, headers))
    if hazard:
        raise UnreadableFeed("unsafe_xml", hazard)
    return _whole_document(body, headers)


def _whole_document(body: bytes, headers: dict):
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
            else:
                if not parsed.get("bozo"):
                    parsed["bozo"] = 1
                    parsed["bozo_exception"] = InvalidReferences(
                        "character references to surrogates or past U+10FFFF replaced by U+FFFD")
        if parsed is None:
            raise UnreadableFeed("parse_error", f"feedparser failed: {type(first).__name__}: {first}") from first
    if not parsed.get("entries") and not parsed.get("version"):
        raise UnreadableFeed("not_a_feed", str(parsed.get("bozo_exception") or "no RSS/Atom structure found"))
    return parsed


FAST, FEEDPARSER, JSON_FEED = "fast", "feedparser", "json"   # the fetch log's `parser`


class FeedEntries(NamedTuple):
    """A feed's own fields (feedparser's `feed`) and its entries, read as
    they are consumed (open_feed); `warning` as feed_warning gives it;
    `parser` which parser read it (FAST, FEEDPARSER, JSON_FEED) and
    `fallback` why the fast path did not (transforms.fast_parse), or None."""

    feed: dict
    entries: Iterator[dict]
    warning: Optional[str] = None
    parser: Optional[str] = None
    fallback: Optional[str] = None


def open_feed(body: bytes, headers: Optional[dict] = None,
              split_above: Optional[int] = None, parser: str = "auto",
              fast_reader=read_fast_document) -> FeedEntries:
    """What read_feed gives, with the entries as an iterator. With `parser`
    "auto", RSS/Atom/RDF goes to the fast path (transforms.fast_parse) first
    and to feedparser when the fast path refuses it or fails. A document of
    `split_above` bytes or more (SPLIT_ABOVE) is read a few hundred items at a
    time (transforms.feed_split) when it is well-formed XML: the same entries,
    without holding all of them, or several copies of the body, at once.
    `fast_reader` is the fast path (transforms.fast_parse.read_fast_document).
    Raises UnreadableFeed as read_feed does, here or while iterating."""
    headers = dict(headers or {})
    limit = SPLIT_ABOVE if split_above is None else split_above
    if len(body) < limit and parser == "auto" and not (not body or body.isspace() or _JSON_START.match(body)):
        document, result = feedparser_input(body, headers)
        hazard = entity_hazard(document)
        if hazard:
            raise UnreadableFeed("unsafe_xml", hazard)
        try:
            fast = fast_reader(document, result)
        except Refused as refused:
            fallback = refused.reason
        except Exception:  # a bug of the fast path: feedparser decides, the fallback is counted
            fallback = "crash"
        else:
            return FeedEntries(fast.feed, iter(fast.entries), feed_warning(fast._asdict()), FAST)
        del document, result
        parsed = _whole_document(body, headers)
        return FeedEntries(parsed.get("feed") or {}, iter(parsed.get("entries") or []),
                           feed_warning(parsed), FEEDPARSER, fallback)
    if len(body) < limit or not body or body.isspace() or _JSON_START.match(body):
        parsed = read_feed(body, headers)
        kind = JSON_FEED if parsed.get("version", "").startswith("json") else FEEDPARSER
        return FeedEntries(parsed.get("feed") or {}, iter(parsed.get("entries") or []), feed_warning(parsed),
                           kind, "large" if parser == "auto" and kind == FEEDPARSER and len(body) >= limit
                           else None)
    document, result = feedparser_input(body, headers)
    hazard = entity_hazard(document)
    if hazard:
        raise UnreadableFeed("unsafe_xml", hazard)
    try:
        split = split_feed(document, result)
    except Exception:  # anything feedparser raises on the outline: the whole document decides
        split = None
    fallback = "large" if parser == "auto" else None
    if split is None:
        parsed = _whole_document(body, headers)
        return FeedEntries(parsed.get("feed") or {}, iter(parsed.get("entries") or []), feed_warning(parsed),
                           FEEDPARSER, fallback)
    # Split only when feedparser's strict parser reads it (well-formed): what
    # it could warn of is the charset, which feedparser_input has decided.
    return FeedEntries(split.feed, _split_entries(split, body, headers), feed_warning(result),
                       FEEDPARSER, fallback)


def _split_entries(split: SplitFeed, body: bytes, headers: dict) -> Iterator[dict]:
    handed_on = 0
    try:
        for piece in split.pieces:
            for entry in piece:
                handed_on += 1
                yield entry
    except Exception:
        # A piece feedparser did not read as it reads the whole document
        # (not seen on any corpus): the rest comes from the whole document.
        entries = _whole_document(body, headers).get("entries") or []
        yield from entries[handed_on:]


# ---------------------------------------------------------------- entries

def _entry_link(entry, base: Optional[str]) -> Optional[str]:
    link = entry.get("link")
    if not link:
        for candidate in entry.get("links") or []:
            if candidate.get("href") and candidate.get("rel", "alternate") == "alternate":
                link = candidate["href"]
                break
    if not link:
        return None
    link = CONTROL_CHARACTERS.sub("", link).strip()
    return join_link(base, link) if base else link


def join_link(base: str, link: str) -> str:
    """urljoin(base, link), without urljoin's work for the usual link: an
    absolute http(s) URL with a host, of the base's scheme, which urljoin
    takes apart and puts back together unchanged. It is kept as it is when
    nothing urlsplit strips, splits off or refuses can change it: printable
    ASCII, no ";" (path parameters), "[" or "]" (IPv6 hosts), no empty query
    or fragment; and a base urlsplit cannot refuse (ASCII, no brackets).
    tests/transforms/test_parse.py compares it with urljoin."""
    scheme = "https:" if link.startswith("https://") else "http:" if link.startswith("http://") else None
    if (scheme and base.startswith(scheme) and link[len(scheme) + 2:][:1] not in ("", "/", "?", "#")
            and link.isascii() and link.isprintable() and base.isascii()
            and ";" not in link and "[" not in link and "]" not in link and "[" not in base and "]" not in base
            and not link.endswith(("?", "#")) and "?#" not in link):
        return link
    return urljoin(base, link)


def _other_alternates(entry, link: Optional[str]) -> List[str]:
    return [c["href"] for c in entry.get("links") or []
            if c.get("href") and c.get("href") != link and c.get("rel", "alternate") == "alternate"]


def _source(url: Optional[str], site: Optional[str]) -> Optional[str]:
    # A link still on a redirector names the feed's site instead, which for
    # such feeds is the publisher's home page (transforms.publisher).
    if publisher.is_redirector(url) and site and not publisher.redirector_host(site):
        return site
    return identity.site_host(url) or site


def entry_to_story(entry, *, index: int, feed_url: str, feed_title: Optional[str],
                   site: Optional[str], base: Optional[str],
                   fetched_at: datetime, run_id: str) -> Story:
    """One feedparser entry -> one Story (pure; raises only on broken input).

    `url` is the publisher's link when the entry carries one beside a
    redirector's (transforms.publisher), else the entry's link; `feed_link`
    is the entry's link as the feed gave it."""
    feed_link = _entry_link(entry, base)
    guid = collapse_whitespace(entry.get("id") or "") or None
    url = publisher.publisher_link(feed_link, dict.get(entry, "feedburner_origlink"),
                                   _other_alternates(entry, feed_link), guid) or feed_link
    canonical = identity.canonical_url(url)
    title, title_cut = capped_text([entry.get("title")], FIELD_CAPS["title"])
    memo = TextMemo()
    summary, summary_cut = capped_text([entry.get("summary")], FIELD_CAPS["summary"], memo)
    content, content_cut = capped_text([c.get("value") for c in entry.get("content") or []],
                                       FIELD_CAPS["content"], memo)
    if summary and summary == content:
        content, content_cut = "", False  # feedparser copies content into summary for some feeds
    truncated = tuple(name for name, cut in (("title", title_cut), ("summary", summary_cut),
                                              ("content", content_cut)) if cut)
    authors = unique_texts([a.get("name") for a in entry.get("authors") or []] or [entry.get("author")])
    tags = unique_texts(t.get("term") or t.get("label") for t in entry.get("tags") or [])
    # A feed that only says when an entry was updated (common in Atom) gives
    # that time as the publication time; gofeed and most readers do the same.
    # dict.get: FeedParserDict.get would silently map updated -> published.
    updated = dict.get(entry, "updated")
    published = dict.get(entry, "published")
    updated_at = parse_date(updated)
    # (Often the same string: read once.)
    published_at = (updated_at if published == updated else parse_date(published)) or updated_at
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
        feed_link=feed_link,
        source=_source(url, site),
        content_hash=digest,
        run_id=run_id,
        entry_index=index,
        truncated=truncated,
    )


# ---------------------------------------------------------------- one fetch

class ParsedFeed(NamedTuple):
    """Everything one fetch attempt yields (parse_fetch)."""

    stories: List[Story]
    dead_letters: List[DeadLetter]
    log: FetchLogRow
    ok: bool


def parse_fetch(fetched: FetchResult, run_id: str = "", parser: str = "auto") -> ParsedFeed:
    """Everything one fetch attempt yields: stories, dead letters, its log row."""
    stories: List[Story] = []
    dead: List[DeadLetter] = []
    for record in iter_parse_fetch(fetched, run_id, parser=parser):
        if isinstance(record, Story):
            stories.append(record)
        elif isinstance(record, DeadLetter):
            dead.append(record)
        else:
            log = record
    return ParsedFeed(stories, dead, log, log.error is None)


def iter_parse_fetch(fetched: FetchResult, run_id: str = "", split_above: Optional[int] = None,
                     sketch: bool = True, parser: str = "auto",
                     fallbacks: Optional[list] = None) -> Iterator[Union[Story, DeadLetter, FetchLogRow]]:
    """parse_fetch's records, stories SKETCH_BATCH at a time (a 200,000-item
    feed is never a list of stories): stories in feed order, each dead letter
    as its entry is read, then the fetch-log row, last. `split_above` and
    `parser`: see open_feed; the fast path's refusal reason, if any, is
    appended to `fallbacks`.
    `sketch` False (clusters off): no sketches, each story as its entry is read."""
    batch_size = SKETCH_BATCH if sketch else 1
    sketcher = DocumentSketcher() if sketch else list
    error = fetched.error
    entries = 0
    feed_title = warning = used = None
    parsed_ok = False
    batch: List[Story] = []
    # 304 (not modified) and a feed that was not due carry no body to parse.
    if fetched.ok and fetched.status != 304 and fetched.skipped_until is None:
        try:
            opened = open_feed(fetched.body, fetched.headers, split_above, parser)
            used = opened.parser
            if opened.fallback and fallbacks is not None:
                fallbacks.append(opened.fallback)
            feed = opened.feed
            feed_link = feed.get("link")
            http_url = fetched.final_url if fetched.final_url.startswith(("http://", "https://")) else None
            base = feed_link or http_url
            site = identity.site_host(feed_link) or identity.site_host(http_url)
            feed_title = capped_text([feed.get("title")], NAME_CAP).text or None
            warning = opened.warning
            for index, entry in enumerate(opened.entries):
                entries += 1
                try:
                    story = entry_to_story(
                        entry, index=index, feed_url=fetched.feed_url,
                        feed_title=feed_title, site=site, base=base,
                        fetched_at=fetched.fetched_at, run_id=run_id)
                except Exception as exc:  # one broken entry must not lose the feed
                    yield dead_letter(
                        "parse_entry", fetched.feed_url, f"bad_entry: {type(exc).__name__}: {exc}",
                        repr(dict(entry))[:2000], run_id=run_id,
                        entry_key=excerpt(str(entry.get("id") or entry.get("link") or index), 200),
                        occurred_at=fetched.fetched_at)
                else:
                    batch.append(story)
                    if len(batch) == batch_size:
                        yield from sketcher(batch)
                        batch = []
            parsed_ok = True
        except UnreadableFeed as exc:
            error = str(exc)
            yield dead_letter("parse", fetched.feed_url, error, fetched.body,
                              run_id=run_id, occurred_at=fetched.fetched_at)
    elif not fetched.ok:
        yield dead_letter("fetch", fetched.feed_url, fetched.error or "fetch failed",
                          fetched.body, run_id=run_id, occurred_at=fetched.fetched_at)
    yield from sketcher(batch)
    yield FetchLogRow(
        feed_url=fetched.feed_url,
        final_url=fetched.final_url,
        status=fetched.status,
        bytes=len(fetched.body or b""),
        elapsed_s=fetched.elapsed_s,
        entry_count=entries,
        error=error,
        fetched_at=fetched.fetched_at,
        run_id=run_id,
        skipped_until=fetched.skipped_until,
        error_category=error_category(error),
        feed_title=feed_title,
        parse_warning=(warning is not None) if parsed_ok else None,
        parse_warning_detail=warning if parsed_ok else None,
        parser=used if parsed_ok else None,
    )


# ---------------------------------------------------------------- Beam

class _ParseFeedFn(beam.DoFn):
    def __init__(self, run_id: str, sketch: bool, parser: str = "auto"):
        self.run_id, self.sketch, self.parser = run_id, sketch, parser
        # Documents per parser (parsed_fast, parsed_feedparser, parsed_json)
        # and why the fast path passed one on (parse_fallback_<reason>).
        self.parsed = {name: metrics.counter(f"parsed_{name}") for name in (FAST, FEEDPARSER, JSON_FEED)}
        self.fallbacks = {reason: metrics.counter(f"parse_fallback_{reason}") for reason in FALLBACK_REASONS}
        self.feeds_ok = metrics.counter("feeds_ok")
        self.feeds_failed = metrics.counter("feeds_failed")
        self.entries = metrics.counter("entries")
        self.bad_entries = metrics.counter("dead_letters_entries")
        self.truncated = metrics.counter("fields_truncated")

    def setup(self):
        process_gc.in_worker()   # the first stage with work in a worker process

    def process(self, fetched: FetchResult):
        # Stories leave as their entries are read, before the feed's end.
        fallbacks: list = []
        for record in iter_parse_fetch(fetched, self.run_id, sketch=self.sketch, parser=self.parser,
                                       fallbacks=fallbacks):
            if isinstance(record, Story):
                if record.truncated:
                    self.truncated.inc(len(record.truncated))
                yield record
            elif isinstance(record, DeadLetter):
                if record.stage == "parse_entry":
                    self.bad_entries.inc()
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, record)
            else:
                if fetched.skipped_until is None:
                    (self.feeds_ok if record.error is None else self.feeds_failed).inc()
                self.entries.inc(record.entry_count)
                if record.parser:
                    self.parsed[record.parser].inc()
                for reason in fallbacks:
                    self.fallbacks[reason].inc()
                yield beam.pvalue.TaggedOutput(FETCH_LOG, record)


class ParseFeeds(beam.PTransform):
    """PCollection[FetchResult] -> DoOutputsTuple with

    - main output: PCollection[Story], one per entry, with the sketch of its
      lead (transforms.cluster.DocumentSketcher) unless `sketch` is False
    - `fetch_log`: PCollection[FetchLogRow], one per fetch attempt
    - `dead_letters`: PCollection[DeadLetter] for failed fetches, bodies that
      are not feeds and entries that could not be converted.

    `parser` (PARSERS): "auto" reads RSS/Atom/RDF with the fast path
    (transforms.fast_parse) and passes every document it refuses to
    feedparser; "feedparser" uses feedparser alone.
    """

    def __init__(self, run_id: str = "", sketch: bool = True, parser: str = "auto"):
        super().__init__()
        self.run_id, self.sketch, self.parser = run_id, sketch, parser

    def expand(self, fetched):
        return fetched | "Parse" >> beam.ParDo(_ParseFeedFn(self.run_id, self.sketch, self.parser)).with_outputs(
            FETCH_LOG, DEAD_LETTERS, main="stories")
