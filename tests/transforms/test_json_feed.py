"""JSON Feed (transforms/json_feed.py): read into feedparser's shape, and
through the parse stage into stories."""
from datetime import datetime, timezone

from tests.support.fetched import fetched
from transforms.json_feed import read_json_feed
from transforms.parse import parse_fetch

JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "JSON wire",
 "home_page_url": "https://json.example.org/",
 "authors": [{"name": "Desk"}],
 "items": [{"id": "1", "url": "https://json.example.org/a?utm_source=x", "title": "Pyongyang test",
            "content_html": "<p>North Korea fired.</p>", "date_published": "2021-09-28T01:00:00Z",
            "tags": ["asia"]},
           "not an item"]}"""


def test_json_feed_is_read_in_feedparsers_shape():
    parsed = read_json_feed(JSON_FEED)
    assert parsed["feed"] == {"title": "JSON wire", "link": "https://json.example.org/"}
    (entry,) = parsed["entries"]
    assert entry["id"] == "1" and entry["content"] == [{"value": "<p>North Korea fired.</p>"}]
    assert entry["authors"] == [{"name": "Desk"}] and entry["tags"] == [{"term": "asia"}]
    assert read_json_feed(b'{"version": "1.0", "items": []}')["entries"] == []


def test_json_that_is_no_json_feed_is_none():
    assert read_json_feed(b'{"hello": "world"}') is None
    assert read_json_feed(b'{"version": "2", "items": []}') is None
    assert read_json_feed(b"\xff not json") is None


def test_json_feed_items_become_stories():
    (story,) = parse_fetch(fetched(JSON_FEED, headers={"content-type": "application/feed+json"})).stories
    assert story.title == "Pyongyang test" and story.content == "North Korea fired."
    assert story.canonical_url == "https://json.example.org/a" and story.authors == ["Desk"]
    assert story.published_at == datetime(2021, 9, 28, 1, tzinfo=timezone.utc)
    assert story.feed_title == "JSON wire" and story.tags == ["asia"]


def test_json_that_is_not_a_feed_is_a_dead_letter():
    result = parse_fetch(fetched(b'{"hello": "world"}'))
    assert not result.ok and result.dead_letters[0].reason.startswith("not_a_feed")
