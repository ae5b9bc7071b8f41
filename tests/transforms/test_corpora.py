"""Fetch + parse against third-party test corpora, over real HTTP on 127.0.0.1.

The corpora live beside the project in ../shared/corpora (see its README.md):

  feedparser/         feedparser's own 2,107 test feeds and its date-parser vectors
  realfeeds/          real news feeds described by SOURCES.tsv
  gofeed-translator/  RSS/Atom fixtures with gofeed's normalised item beside each

They are read here at run time only: publisher text is never copied into the
project. Every test skips when the folder is absent (a user's fresh clone).

What is specified:
  * every file goes through fetch_feed + parse_fetch without an exception and
    yields either stories or exactly the dead letter its body calls for;
  * the fetch log's entry_count reconciles with stories + entry dead letters;
  * stories are plain text with tz-aware UTC timestamps;
  * real feeds give the items SOURCES.tsv lists, with clean titles and dates;
  * gofeed agrees on title/link/guid/published wherever our documented policy
    agrees with it (the exceptions are listed, with reasons, below);
  * feedparser's date vectors give the expected UTC time through a whole feed.

Run with -s to see the totals of each corpus.
"""
from __future__ import annotations

import ast
import collections
import concurrent.futures
import csv
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest

from tests.support.feedserver import FeedServer
from tests.support.paths import CORPORA
from transforms.fetch import FetchSettings, fetch_feed
from transforms.parse import ParsedFeed, UnreadableFeed, parse_fetch, read_feed
from transforms.records import FeedSource, FetchResult

pytestmark = [pytest.mark.integration]

if not CORPORA.is_dir():
    pytest.skip(f"test corpora not found at {CORPORA}", allow_module_level=True)

FEEDPARSER = CORPORA / "feedparser"
REALFEEDS = CORPORA / "realfeeds"
GOFEED = CORPORA / "gofeed-translator"
FEEDPARSER_DIRS = ("encoding", "entities", "illformed", "json", "wellformed")

RUN_ID = "corpora"
# The server is on 127.0.0.1, which the address guard refuses by default.
SETTINGS = FetchSettings(connect_timeout_s=5, read_timeout_s=10, total_timeout_s=30,
                         allow_private_addresses=True)
WORKERS = 16

# Totals per corpus, filled by the tests (printed with -s).
SUMMARY: Dict[str, dict] = {}

# Checks on story text.
HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9:-]*(\s[^<>]*)?/?>")
ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]{1,31});")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MOJIBAKE = re.compile(r"[ÃÂ][\u0080-\u00bf]|\ufffd")  # UTF-8 read as Latin-1, or lost bytes


# --------------------------------------------------------------------------- #
# Serving and running
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def server():
    """One real HTTP server for the whole module."""
    with FeedServer() as srv:
        yield srv


@dataclass
class Outcome:
    name: str  # corpus-relative path
    fetched: Optional[FetchResult]
    parsed: Optional[ParsedFeed]
    crash: Optional[str]  # an exception out of fetch_feed/parse_fetch

    @property
    def categories(self) -> List[str]:
        return [d.reason.split(":", 1)[0] for d in self.parsed.dead_letters] if self.parsed else []


def _run_one(url: str, name: str) -> Outcome:
    fetched = None
    try:
        fetched = fetch_feed(FeedSource(url), SETTINGS)
        return Outcome(name, fetched, parse_fetch(fetched, RUN_ID), None)
    except Exception as e:  # reported by the tests, never raised from the pool
        return Outcome(name, fetched, None, f"{type(e).__name__}: {e}")


def serve_and_parse(server: FeedServer, prefix: str,
                    docs: List[Tuple[str, bytes, Dict[str, str]]]) -> Dict[str, Outcome]:
    """Serves every (name, body, headers) under /prefix/ and runs fetch + parse on each."""
    urls = {}
    for name, body, headers in docs:
        path = f"/{prefix}/" + quote(name)
        server.add(path, body, headers=headers)
        urls[name] = server.url(path)
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        outcomes = pool.map(lambda item: _run_one(item[1], item[0]), urls.items())
        return {o.name: o for o in outcomes}


def entry_dead_letters(parsed: ParsedFeed) -> int:
    return sum(1 for d in parsed.dead_letters if d.stage == "parse_entry")


def is_utc_or_none(value: Optional[datetime]) -> bool:
    return value is None or (value.tzinfo is not None and value.utcoffset() == timedelta(0))


def story_problems(story) -> List[str]:
    """Generic story invariants: plain-text fields, UTC timestamps, absolute URL."""
    problems = []
    for field in ("title", "summary", "content"):
        if CONTROL.search(getattr(story, field)):
            problems.append(f"control character in {field}: {getattr(story, field)[:60]!r}")
    if ENTITY.search(story.title):
        problems.append(f"undecoded entity in title: {story.title[:80]!r}")
    for field in ("published_at", "updated_at", "fetched_at"):
        if not is_utc_or_none(getattr(story, field)):
            problems.append(f"{field} not tz-aware UTC: {getattr(story, field)!r}")
    if story.url is not None and not story.url.startswith(("http://", "https://")):
        problems.append(f"url not absolute http(s): {story.url[:80]!r}")
    return problems


def check_reconciles(outcomes: Dict[str, Outcome]) -> List[str]:
    failures = []
    for name, o in outcomes.items():
        if o.parsed is None:
            continue
        log = o.parsed.log
        if log.entry_count != len(o.parsed.stories) + entry_dead_letters(o.parsed):
            failures.append(f"{name}: entry_count {log.entry_count} != {len(o.parsed.stories)} "
                            f"stories + {entry_dead_letters(o.parsed)} entry dead letters")
        if log.bytes != len(o.fetched.body) or log.run_id != RUN_ID or log.feed_url != o.fetched.feed_url:
            failures.append(f"{name}: fetch log row does not describe the fetch: {log}")
    return failures


def fail_if(failures: List[str], what: str, limit: int = 25) -> None:
    if failures:
        shown = "\n  ".join(failures[:limit])
        more = f"\n  ... and {len(failures) - limit} more" if len(failures) > limit else ""
        pytest.fail(f"{len(failures)} {what}:\n  {shown}{more}")


def summarise(corpus: str, outcomes: Dict[str, Outcome], **extra) -> dict:
    reasons = collections.Counter(c for o in outcomes.values() for c in o.categories)
    summary = {
        "files": len(outcomes),
        "files with stories": sum(1 for o in outcomes.values() if o.parsed and o.parsed.stories),
        "feeds without entries": sum(1 for o in outcomes.values()
                                     if o.parsed and o.parsed.ok and not o.parsed.stories),
        "stories": sum(len(o.parsed.stories) for o in outcomes.values() if o.parsed),
        "dead letters": sum(reasons.values()),
        "dead letters by reason": dict(sorted(reasons.items())),
        **extra,
    }
    SUMMARY[corpus] = summary
    print(f"\n[{corpus}] " + "; ".join(f"{k}: {v}" for k, v in summary.items()))
    return summary


# --------------------------------------------------------------------------- #
# 1. feedparser's test feeds
# --------------------------------------------------------------------------- #

# Text encodings told by the first bytes (upstream tests/helpers.py does the same).
_SIGNATURES = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00\x3c", "utf-32-be"), (b"\x3c\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
    (b"\x00\x3c\x00\x3f", "utf-16-be"), (b"\x3c\x00\x3f\x00", "utf-16-le"),
)
_HEADER = re.compile(r"^Header:\s+([^:]+):(.*)$", re.MULTILINE)
_COMMENT_OR_DECL = re.compile(r"<!--.*?-->|<\?.*?\?>", re.DOTALL)


def decode_for_search(data: bytes) -> Tuple[str, Optional[str]]:
    """Text to regex-search a test file (its comment, its elements), and the
    UTF-16/32 codec if the first bytes name one; Latin-1 otherwise (the
    searched markup is ASCII)."""
    for signature, codec in _SIGNATURES:
        if data.startswith(signature):
            return data.decode(codec, "replace").lstrip("\ufeff"), codec
    return data.decode("latin-1"), None


def response_headers(name: str, text: str) -> Dict[str, str]:
    """The `Header:` lines for http* cases; else a Content-Type that lets the
    document's own encoding declaration decide (RFC 7303)."""
    if "http" in name:
        headers = {m.group(1).strip(): m.group(2).strip() for m in _HEADER.finditer(text)}
        if headers:
            return headers
    return {"Content-Type": "application/json" if name.endswith(".json") else "application/xml"}


# An external parameter entity: the entity guard sets such a feed aside
# (transforms/entity_guard.py says why).
_EXTERNAL_PARAMETER_ENTITY = re.compile(r"<!ENTITY\s+%[^>]*\b(SYSTEM|PUBLIC)\b")


def expected_dead_letter(name: str, text: str) -> Optional[Tuple[str, str]]:
    """(category, why) of the one dead letter this body should become, or
    None when it should parse as a feed (with or without entries)."""
    if not _COMMENT_OR_DECL.sub("", text).strip():
        return "not_a_feed", "empty document (no root element)"
    if name.startswith("wellformed/cdf/") and "<item" not in text.lower():
        # feedparser 6.0.14 gives CDF no version; with no <ITEM> there is
        # nothing to call it a feed by.
        return "not_a_feed", "CDF channel without items"
    if _EXTERNAL_PARAMETER_ENTITY.search(text):
        return "unsafe_xml", "declares an external parameter entity"
    return None


def feedparser_files() -> List[Path]:
    return sorted(p for d in FEEDPARSER_DIRS for p in (FEEDPARSER / d).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def feedparser_corpus(server):
    if not FEEDPARSER.is_dir():
        pytest.skip(f"{FEEDPARSER} not found")
    docs, texts, wide = [], {}, 0
    for path in feedparser_files():
        name = path.relative_to(FEEDPARSER).as_posix()
        data = path.read_bytes()
        text, codec = decode_for_search(data)
        wide += codec is not None
        texts[name] = text
        docs.append((name, data, response_headers(name, text)))
    outcomes = serve_and_parse(server, "feedparser", docs)
    return outcomes, texts, wide


def test_feedparser_corpus_is_complete(feedparser_corpus):
    outcomes, texts, wide = feedparser_corpus
    assert len(outcomes) == 2107
    assert wide == 16  # UTF-16/32 files, decoded by their first bytes
    # http* cases are served with their own Header: lines.
    with_headers = [n for n, t in texts.items() if "http" in n and _HEADER.search(t)]
    assert len(with_headers) > 100


def test_feedparser_every_file_fetches_and_parses_without_exception(feedparser_corpus):
    outcomes, _, _ = feedparser_corpus
    failures = [f"{n}: {o.crash}" for n, o in outcomes.items() if o.crash]
    failures += [f"{n}: fetch failed: {o.fetched.error}" for n, o in outcomes.items()
                 if o.fetched is not None and not o.fetched.ok]
    fail_if(failures, "files crashed or could not be fetched")


def test_feedparser_each_file_gives_stories_or_exactly_the_expected_dead_letter(feedparser_corpus):
    outcomes, texts, _ = feedparser_corpus
    failures = []
    for name, o in outcomes.items():
        if o.parsed is None:
            continue  # reported by the test above
        parsed, expected = o.parsed, expected_dead_letter(name, texts[name])
        if expected:
            category, why = expected
            if (parsed.ok or parsed.stories or o.categories != [category]
                    or parsed.dead_letters[0].stage != "parse"
                    or not (parsed.log.error or "").startswith(f"{category}: ")):
                failures.append(f"{name}: expected one {category} dead letter ({why}), got "
                                f"ok={parsed.ok} stories={len(parsed.stories)} dead={o.categories}")
        elif not parsed.ok or parsed.dead_letters or parsed.log.error:
            failures.append(f"{name}: expected a feed, got ok={parsed.ok} "
                            f"dead={[d.reason[:80] for d in parsed.dead_letters]}")
    fail_if(failures, "files with unexpected outcomes")


def test_feedparser_fetch_log_counts_reconcile(feedparser_corpus):
    outcomes = feedparser_corpus[0]
    failures = check_reconciles(outcomes)
    # No entry is lost silently: every entry feedparser finds in the served
    # bytes is a story or an entry dead letter.
    for name, o in outcomes.items():
        if o.parsed is not None and o.fetched.ok:
            # read_feed: feedparser, or our JSON Feed reader for JSON Feed
            try:
                found = len(read_feed(o.fetched.body, o.fetched.headers)["entries"])
            except UnreadableFeed:  # not a feed, or set aside: no entries
                found = 0
            if found != o.parsed.log.entry_count:
                failures.append(f"{name}: feedparser finds {found} entries, log says "
                                f"{o.parsed.log.entry_count}")
    fail_if(failures, "fetch log rows do not reconcile")


def test_feedparser_stories_are_plain_text_with_utc_times(feedparser_corpus):
    outcomes, _, _ = feedparser_corpus
    failures = [f"{n}#{s.entry_index}: {p}" for n, o in outcomes.items() if o.parsed
                for s in o.parsed.stories for p in story_problems(s)]
    fail_if(failures, "story invariants broken")


def test_feedparser_corpus_summary(feedparser_corpus):
    outcomes, texts, _ = feedparser_corpus
    why = collections.Counter(f"{expected[0]}: {expected[1]}" for expected in
                              filter(None, (expected_dead_letter(n, t) for n, t in texts.items())))
    summary = summarise("feedparser", outcomes, **{"dead letters because": dict(why)})
    assert summary["files with stories"] + summary["feeds without entries"] + sum(why.values()) \
        == summary["files"]
    assert summary["stories"] >= summary["files with stories"] > 1000


# --------------------------------------------------------------------------- #
# 2. Real news feeds
# --------------------------------------------------------------------------- #

_MEDIA_TYPES = {"RSS 2.0": "application/rss+xml", "Atom 1.0": "application/atom+xml",
                "RSS 1.0 (RDF)": "application/rdf+xml"}


def realfeed_sources() -> List[dict]:
    with open(REALFEEDS / "SOURCES.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def well_formed_with_items(row: dict) -> bool:
    return (int(row["item_count"]) > 0 and "bozo" not in row["quirks"]
            and "invalid" not in row["file"])


@pytest.fixture(scope="module")
def realfeeds(server):
    if not (REALFEEDS / "SOURCES.tsv").is_file():
        pytest.skip(f"{REALFEEDS} not found")
    rows = {row["file"]: row for row in realfeed_sources()}
    docs = [(name, (REALFEEDS / name).read_bytes(),
             {"Content-Type": _MEDIA_TYPES.get(row["format"], "application/xml")})
            for name, row in rows.items()]
    # The same bytes as bare text/xml: a common server default that, read by
    # RFC 7303 alone, would mean US-ASCII.
    as_text_xml = [(name, body, {"Content-Type": "text/xml"}) for name, body, _ in docs]
    return (rows, serve_and_parse(server, "realfeeds", docs),
            serve_and_parse(server, "realfeeds-text-xml", as_text_xml))


def test_realfeeds_sources_list_every_file(realfeeds):
    rows, _, _ = realfeeds
    on_disk = {p.name for p in REALFEEDS.iterdir() if p.suffix == ".xml"}
    assert set(rows) == on_disk
    assert len(rows) >= 45


def test_realfeeds_fetch_and_parse_as_feeds(realfeeds):
    rows, outcomes, _ = realfeeds
    failures = [f"{n}: {o.crash}" for n, o in outcomes.items() if o.crash]
    failures += [f"{n}: ok={o.parsed.ok} dead={[d.reason[:80] for d in o.parsed.dead_letters]}"
                 for n, o in outcomes.items()
                 if o.parsed and (not o.parsed.ok or o.parsed.dead_letters)]
    fail_if(failures, "real feeds failed")
    fail_if(check_reconciles(outcomes), "fetch log rows do not reconcile")


def test_realfeeds_give_the_items_their_sources_list(realfeeds):
    rows, outcomes, _ = realfeeds
    failures = []
    for name, row in rows.items():
        stories = outcomes[name].parsed.stories if outcomes[name].parsed else []
        if well_formed_with_items(row) and not stories:
            failures.append(f"{name}: no stories, SOURCES.tsv says {row['item_count']} items")
        elif len(stories) != int(row["item_count"]):
            failures.append(f"{name}: {len(stories)} stories, SOURCES.tsv says {row['item_count']}")
        elif stories and stories[0].feed_title != row["feed_title"]:
            failures.append(f"{name}: feed_title {stories[0].feed_title!r} != {row['feed_title']!r}")
    fail_if(failures, "real feeds with the wrong stories")


def test_realfeeds_titles_are_clean_plain_text(realfeeds):
    rows, outcomes, _ = realfeeds
    failures = []
    for name, o in outcomes.items():
        for s in o.parsed.stories if o.parsed else []:
            where = f"{name}#{s.entry_index}"
            if not s.title:
                failures.append(f"{where}: empty title")
            if HTML_TAG.search(s.title):
                failures.append(f"{where}: HTML tag in title {s.title[:80]!r}")
            if s.title != s.title.strip() or "  " in s.title:
                failures.append(f"{where}: whitespace not collapsed in {s.title[:80]!r}")
            # The file marked as mojibake carries it in its source text.
            if "mojibake" not in name and MOJIBAKE.search(s.title + " " + s.summary):
                failures.append(f"{where}: mis-decoded text {s.title[:80]!r}")
            failures += [f"{where}: {p}" for p in story_problems(s)]
    fail_if(failures, "title/text problems")


def test_realfeeds_dates_are_utc_and_match_the_newest_item(realfeeds):
    rows, outcomes, _ = realfeeds
    failures = []
    for name, row in rows.items():
        stories = outcomes[name].parsed.stories if outcomes[name].parsed else []
        dates = [s.published_at for s in stories if s.published_at is not None]
        if stories and not dates:
            failures.append(f"{name}: no story has a date")
        elif dates and max(dates).date().isoformat() != row["latest_item_date"]:
            failures.append(f"{name}: newest story {max(dates).isoformat()}, "
                            f"SOURCES.tsv says {row['latest_item_date']}")
    fail_if(failures, "real feeds with unexpected dates")


def test_realfeeds_read_the_same_when_served_as_bare_text_xml(realfeeds):
    rows, outcomes, as_text_xml = realfeeds
    failures = []
    for name in rows:
        a, b = outcomes[name].parsed, as_text_xml[name].parsed
        if b is None or [s.title for s in a.stories] != [s.title for s in b.stories]:
            failures.append(f"{name}: titles differ when served as text/xml")
    fail_if(failures, "feeds read differently as text/xml")


def test_realfeeds_summary(realfeeds):
    rows, outcomes, _ = realfeeds
    undated = sum(1 for o in outcomes.values() for s in o.parsed.stories if s.published_at is None)
    summary = summarise("realfeeds", outcomes, **{"stories without date": undated})
    assert summary["stories"] == sum(int(r["item_count"]) for r in rows.values())


# --------------------------------------------------------------------------- #
# 3. gofeed's translator fixtures as an oracle
# --------------------------------------------------------------------------- #

# Where our documented policy differs from gofeed: fixture -> {field: reason}.
# Only the named field is skipped; every other field of the fixture is compared.
# Not needed here although the corpus README warns of them: gofeed's Atom 0.3
# <modified> and dc:date fallbacks agree with our "published, else updated"
# policy; atom:link as the RSS feed link only matters for relative item links
# (no fixture has one); no fixture has markup in an item title.
GOFEED_POLICY_DIFFERS = {
    # An Atom entry with an http(s) <id> and no <link>: feedparser (and so we)
    # use the id as the entry link, as for an RSS permalink <guid>; gofeed leaves
    # the link empty. A URL-shaped id is the best link such an entry has.
    "atom/feed_item_guid_-_atom03_feed_entry_id": {"link": "Atom id promoted to link"},
    "atom/feed_item_guid_-_atom10_feed_entry_id": {"link": "Atom id promoted to link"},
    # RSS 1.0 <item rdf:about="..."> is the item's identifier; feedparser gives
    # it as entry id (our guid); gofeed ignores rdf:about.
    "rss/feed_item_description_-_rdf_item_description": {"guid": "rdf:about is the RSS 1.0 guid"},
    "rss/feed_item_link_-_rdf_item_link": {"guid": "rdf:about is the RSS 1.0 guid"},
    "rss/feed_item_title_-_rdf_item_title": {"guid": "rdf:about is the RSS 1.0 guid"},
    # Our policy: published_at = published date, else updated date, for every
    # format. gofeed falls back to updated for Atom and dc:date but not for an
    # atom:updated inside an RSS item.
    "rss/feed_item_updated_-_rss_channel_item_updated_atom": {
        "published": "updated date stands in for a missing published date"},
}
GOFEED_FIELDS = ("title", "link", "guid", "published")


def _gofeed_expected(item: dict, field: str):
    if field == "published":
        value = item.get("publishedParsed")
        # Our policy keeps whole seconds (feedparser's date handlers do).
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc) \
            .replace(microsecond=0) if value else None
    return item.get(field) or None


def _ours(story, field: str):
    return {"title": story.title or None, "link": story.feed_link, "guid": story.guid,
            "published": story.published_at}[field]


@pytest.fixture(scope="module")
def gofeed(server):
    if not GOFEED.is_dir():
        pytest.skip(f"{GOFEED} not found")
    xml = {p.relative_to(GOFEED).with_suffix("").as_posix(): p for p in sorted(GOFEED.glob("*/*.xml"))}
    json_inputs = {p.relative_to(GOFEED).with_suffix("").as_posix(): p
                   for p in sorted(GOFEED.glob("json/*.json")) if not p.stem.endswith("_expected")}
    docs = [(name, p.read_bytes(), {"Content-Type": "application/xml"}) for name, p in xml.items()]
    docs += [(name, p.read_bytes(), {"Content-Type": "application/feed+json"})
             for name, p in json_inputs.items()]
    outcomes = serve_and_parse(server, "gofeed", docs)
    expected = {name: json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
                for name, p in xml.items()}
    expected.update({name: json.loads(p.with_name(p.stem + "_expected.json").read_text(encoding="utf-8"))
                     for name, p in json_inputs.items()})
    return outcomes, expected, sorted(json_inputs)


def _gofeed_compare(outcomes, expected):
    """(agreements, policy differences, disagreements, fixtures with items)."""
    agree, differ, disagree, with_items = [], [], [], 0
    for name, exp in expected.items():
        o = outcomes[name]
        items = exp.get("items") or []
        stories = o.parsed.stories if o.parsed else []
        with_items += bool(items)
        if o.parsed is None or o.parsed.dead_letters or len(items) != len(stories):
            disagree.append(f"{name}: {len(items)} gofeed items, {len(stories)} stories, "
                            f"{o.crash or [d.reason[:60] for d in o.parsed.dead_letters]}")
            continue
        for i, (item, story) in enumerate(zip(items, stories)):
            for field in GOFEED_FIELDS:
                theirs, ours = _gofeed_expected(item, field), _ours(story, field)
                if theirs is None and ours is None:
                    continue  # nothing to compare
                key = (name, field)
                if theirs == ours:
                    agree.append(key)
                elif field in GOFEED_POLICY_DIFFERS.get(name, {}):
                    differ.append(key)
                else:
                    disagree.append(f"{name} item {i} {field}: gofeed {theirs!r}, ours {ours!r}")
    return agree, differ, disagree, with_items


def test_gofeed_fixtures_agree_where_our_policy_does(gofeed):
    outcomes, expected, json_inputs = gofeed
    agree, differ, disagree, with_items = _gofeed_compare(outcomes, expected)
    excluded = {name for name, _ in differ}
    summary = {
        "xml fixtures": len(expected),
        "with items": with_items,
        "with items, agreeing on every compared field": with_items - len(excluded) - len(
            {d.split(" ")[0].rstrip(":") for d in disagree}),
        "with a policy exclusion": len(excluded),
        "field values compared": len(agree) + len(differ),
        "agree": len(agree),
        "excluded (policy)": len(differ),
        "excluded by reason": dict(collections.Counter(
            r for fields in GOFEED_POLICY_DIFFERS.values() for r in fields.values())),
        "of which JSON Feed": len(json_inputs),
    }
    SUMMARY["gofeed"] = summary
    print("\n[gofeed] " + "; ".join(f"{k}: {v}" for k, v in summary.items()))
    fail_if(disagree, "disagreements with gofeed outside the documented exclusions")
    # Every exclusion must still be needed: a fixed difference should leave the list.
    stale = [f"{n}:{f}" for n, fields in GOFEED_POLICY_DIFFERS.items() for f in fields
             if (n, f) not in set(differ)]
    fail_if(stale, "exclusions that no longer differ (remove them)")
    assert len(agree) >= 20


def test_gofeed_json_feeds_give_stories(gofeed):
    outcomes, expected, json_inputs = gofeed
    assert json_inputs
    failures = [f"{n}: {outcomes[n].categories or outcomes[n].crash}" for n in json_inputs
                if outcomes[n].parsed is None or not outcomes[n].parsed.ok
                or len(outcomes[n].parsed.stories) != len(expected[n].get("items") or [])]
    fail_if(failures, "JSON Feed inputs did not give one story per item")


def test_gofeed_fetch_log_counts_reconcile(gofeed):
    fail_if(check_reconciles(gofeed[0]), "fetch log rows do not reconcile")


# --------------------------------------------------------------------------- #
# 4. feedparser's date-parser vectors, through a whole feed
# --------------------------------------------------------------------------- #

# feedparser tries every date handler in turn; the vectors test one handler
# alone. Where the chain turns a string a single handler rejects into a date,
# that is what the pipeline sees. Input -> reason.
DATE_CHAIN_ACCEPTS = {
    "2003-12-31T25:14:55Z": "iso8601 handler normalises hour 25 to the next day",
    "2003-12-31T10:61:55Z": "iso8601 handler normalises minute 61",
    "2003-12-31T10:14:61Z": "iso8601 handler normalises second 61",
    "22013": "iso8601 handler reads YYDDD (2022, day 13)",
    "2013-01-27-01": "iso8601 handler keeps the date, ignores the suffix",
    "2013-01-28T11:30:00-06:00Textra": "iso8601 handler ignores trailing text",
    "2013-01-28T09:xx:00Z": "iso8601 handler keeps the date, drops the broken time",
    "2013-01-28T09:00:00+00:xx": "iso8601 handler ignores the broken offset",
}
def date_vectors() -> List[Tuple[str, str, Optional[datetime]]]:
    path = FEEDPARSER / "date_parser_vectors.tsv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    vectors = []
    for row in rows:
        expected = ast.literal_eval(row["expected_time_struct_tuple_utc_or_None"])
        vectors.append((row["parser"].removeprefix("_parse_date_"), row["input"],
                        datetime(*expected[:6], tzinfo=timezone.utc) if expected else None))
    return vectors


def date_feeds(value: str) -> Dict[str, bytes]:
    text = escape(value)
    head = '<?xml version="1.0" encoding="utf-8"?>'
    return {
        "rss": (f'{head}<rss version="2.0"><channel><title>t</title><link>http://example.org/</link>'
                f"<item><title>x</title><link>http://example.org/x</link>"
                f"<pubDate>{text}</pubDate></item></channel></rss>").encode("utf-8"),
        "atom": (f'{head}<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
                 f"<entry><title>x</title><id>urn:x</id><published>{text}</published></entry>"
                 f"</feed>").encode("utf-8"),
    }


@pytest.fixture(scope="module")
def dates(server):
    vectors = date_vectors()
    if not vectors:
        pytest.skip("date_parser_vectors.tsv not found")
    docs = [(f"{i:02d}-{kind}.xml", body, {"Content-Type": "application/xml"})
            for i, (_, value, _) in enumerate(vectors) for kind, body in date_feeds(value).items()]
    outcomes = serve_and_parse(server, "dates", docs)
    results = {}
    for i, (parser, value, expected) in enumerate(vectors):
        got = {}
        for kind in ("rss", "atom"):
            o = outcomes[f"{i:02d}-{kind}.xml"]
            got[kind] = o.parsed.stories[0].published_at if o.parsed and o.parsed.stories else "no story"
        results[(parser, value)] = (expected, got)
    return results


def test_date_vectors_give_the_expected_utc_time(dates):
    failures, checked = [], collections.Counter()
    for (parser, value), (expected, got) in dates.items():
        if value in DATE_CHAIN_ACCEPTS:
            continue
        checked[parser] += 1
        for kind, published in got.items():
            if published != expected or not is_utc_or_none(published):
                failures.append(f"{parser} {value!r} in {kind}: expected {expected}, got {published}")
    SUMMARY["date vectors"] = {"vectors": len(dates), "checked": dict(checked),
                               "excluded (handler chain)": len(DATE_CHAIN_ACCEPTS)}
    print(f"\n[date vectors] {SUMMARY['date vectors']}")
    fail_if(failures, "date vectors disagree")
    inputs = {value for _, value in dates}
    stale = [v for v in DATE_CHAIN_ACCEPTS if v not in inputs]
    fail_if(stale, "date exclusions name no vector")
    assert sum(checked.values()) + len(DATE_CHAIN_ACCEPTS) == len(dates)


def test_date_vectors_rejected_alone_are_accepted_by_the_handler_chain(dates):
    """Documents the exclusions: each gives a date although its vector says None."""
    by_input = {value: result for (_, value), result in dates.items()}
    wrong = [f"{v!r}: {by_input[v][1]}" for v in DATE_CHAIN_ACCEPTS if v in by_input and (
             by_input[v][0] is not None
             or any(g is None or g == "no story" for g in by_input[v][1].values()))]
    fail_if(wrong, "handler-chain exclusions no longer behave as documented")
