"""The entry -> Story conversion as it was before it was made faster (issue
17), kept as the reference: benchmarks/convert_speed.py times the two in
turns, and tests/transforms/test_convert_parity.py checks that they give
equal stories for every entry of every corpus.

It is transforms.parse.entry_to_story with the slow parts of that time:
HTML to text by html.parser.HTMLParser alone, the hash's normalisation by
a regex substitution, links joined by urljoin, canonical URLs and hosts
by urlsplit, dates by feedparser's handlers, and nothing remembered
(hosts, an entry's summary that is its content again). Everything else is
the live code.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional
from urllib.parse import urljoin, urlsplit

from transforms import identity, parse, publisher
from transforms.dates import parse_date_reference as parse_date
from transforms.html_text import FIELD_CAPS, capped_text, html_to_text_reference, unique_texts
from transforms.identity import normalize_for_hash_reference
from transforms.parse import _other_alternates, collapse_whitespace
from transforms.records import Story

_redirector_host = publisher.redirector_host.__wrapped__


def _entry_link(entry, base: Optional[str]) -> Optional[str]:
    link = parse._entry_link(entry, None)   # the link as the entry gives it, not joined
    return urljoin(base, link) if base and link is not None else link


def _site_host(url: Optional[str]) -> Optional[str]:
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _is_redirector(url: Optional[str]) -> bool:
    if not url:
        return False
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    return _redirector_host(host)


def _publisher_link(link, origlink, alternates, guid):
    chosen = publisher.publisher_url(origlink)
    if chosen or not _is_redirector(link):
        return chosen
    chosen = publisher._redirect_target(link)
    if chosen:
        return chosen
    for alternate in alternates:
        chosen = publisher.publisher_url(alternate)
        if chosen:
            return chosen
    return publisher.publisher_url(guid)


def _source(url: Optional[str], site: Optional[str]) -> Optional[str]:
    if _is_redirector(url) and site and not _redirector_host(site):
        return site
    return _site_host(url) or site


def _content_hash(title: str, text: str) -> str:
    return identity._digest("text", normalize_for_hash_reference(title), normalize_for_hash_reference(text))


def entry_to_story(entry, *, index: int, feed_url: str, feed_title: Optional[str],
                   site: Optional[str], base: Optional[str],
                   fetched_at: datetime, run_id: str) -> Story:
    """transforms.parse.entry_to_story as it was (see the module docstring)."""
    feed_link = _entry_link(entry, base)
    guid = collapse_whitespace(entry.get("id") or "") or None
    url = _publisher_link(feed_link, dict.get(entry, "feedburner_origlink"),
                          _other_alternates(entry, feed_link), guid) or feed_link
    canonical = identity.canonical_url_reference(url)
    title, title_cut = capped_text([entry.get("title")], FIELD_CAPS["title"], html_to_text_reference)
    summary, summary_cut = capped_text([entry.get("summary")], FIELD_CAPS["summary"], html_to_text_reference)
    content, content_cut = capped_text([c.get("value") for c in entry.get("content") or []],
                                       FIELD_CAPS["content"], html_to_text_reference)
    if summary and summary == content:
        content, content_cut = "", False
    truncated = tuple(name for name, cut in (("title", title_cut), ("summary", summary_cut),
                                              ("content", content_cut)) if cut)
    authors = unique_texts([a.get("name") for a in entry.get("authors") or []] or [entry.get("author")])
    tags = unique_texts(t.get("term") or t.get("label") for t in entry.get("tags") or [])
    updated_at = parse_date(dict.get(entry, "updated"))
    published_at = parse_date(dict.get(entry, "published")) or updated_at
    text = summary or content
    digest = _content_hash(title, text)
    return Story(
        story_id=identity.story_id(canonical, feed_url, guid, digest),
        url=url, canonical_url=canonical, guid=guid, title=title, summary=summary, content=content,
        authors=authors, tags=tags, published_at=published_at, updated_at=updated_at,
        fetched_at=fetched_at, feed_url=feed_url, feed_title=feed_title, feed_link=feed_link,
        source=_source(url, site), content_hash=digest, run_id=run_id, entry_index=index,
        truncated=truncated,
    )
