"""JSON Feed (jsonfeed.org 1.0/1.1) read into feedparser's shape.

feedparser 6.0.14 does not read JSON Feed; this small reader gives the parse
stage the same dict feedparser would (`version`, `feed`, `entries` with
feedparser's key names), so every feed format goes through one entry -> Story
conversion.
"""
from __future__ import annotations

import json
import re
from typing import Optional


def read_json_feed(body: bytes) -> Optional[dict]:
    """A JSON Feed in feedparser's shape; None when the body is not one."""
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
