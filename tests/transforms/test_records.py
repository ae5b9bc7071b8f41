"""Records crossing stage boundaries: a Story survives Beam's coder exactly."""
import pickle
from datetime import datetime, timedelta, timezone

from apache_beam.coders import coders

from transforms.records import Story

UTC = timezone.utc


def story(**changes):
    base = Story(story_id="s1", url="https://e.example/a", canonical_url="https://e.example/a",
                 guid="g1", title="Titre « accentué » 北朝鮮", summary="text", content="",
                 authors=["A"], tags=["world", "asia"],
                 published_at=datetime(2021, 9, 28, 1, 2, 3, 456789, tzinfo=UTC),
                 updated_at=None, fetched_at=datetime(2026, 11, 26, 21, 0, tzinfo=UTC),
                 feed_url="http://127.0.0.1/f.xml", feed_title="F", source="e.example",
                 language="fr", topics=["dprk"], matched_terms=["北朝鮮"], content_hash="h",
                 run_id="r", entry_index=7)
    return base.replace(**changes)


def test_a_story_comes_back_equal_through_beams_coder():
    coder = coders.FastPrimitivesCoder()
    for s in (story(), story(published_at=None, fetched_at=None),
              story(published_at=datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)),
              # not UTC, or naive: kept as they are, time zone included
              story(updated_at=datetime(2021, 9, 28, 10, 0, tzinfo=timezone(timedelta(hours=9)))),
              story(updated_at=datetime(2021, 9, 28, 10, 0))):
        back = coder.decode(coder.encode(s))
        assert back == s
        assert [getattr(back, f).tzinfo for f in ("published_at", "updated_at", "fetched_at")
                if getattr(back, f) is not None] == \
               [getattr(s, f).tzinfo for f in ("published_at", "updated_at", "fetched_at")
                if getattr(s, f) is not None]


def test_a_pickled_story_carries_values_not_field_names():
    data = pickle.dumps(story(), pickle.HIGHEST_PROTOCOL)
    assert b"canonical_url" not in data and b"matched_terms" not in data
    assert b"datetime" not in data


def test_equal_links_are_encoded_once_and_come_back_as_one_string():
    coder = coders.FastPrimitivesCoder()
    link = "https://e.example/2021/09/28/a-long-article-path"
    # Equal but distinct strings (the parser makes canonical_url anew).
    s = story(url=link, canonical_url="".join(link), feed_link=link[:8] + link[8:], guid="g1")
    assert s.url is not s.canonical_url
    data = coder.encode(s)
    assert data.count(link.encode()) == 1
    back = coder.decode(data)
    assert back == s
    assert back.url is back.canonical_url is back.feed_link
    # A guid that is the link is written once too.
    s = story(url=link, canonical_url=None, guid="".join(link))
    data = coder.encode(s)
    assert data.count(link.encode()) == 1 and coder.decode(data) == s
    # Links that differ stay apart.
    other = story(canonical_url="https://e.example/b")
    back = coder.decode(coder.encode(other))
    assert back == other and back.canonical_url == "https://e.example/b"


class Link(str):
    """A str subclass, as a caller's own code might hand in."""


def test_only_exact_strings_are_shared_so_every_link_keeps_its_type():
    coder = coders.FastPrimitivesCoder()
    back = coder.decode(coder.encode(story(url=Link("https://e.example/a"))))
    assert type(back.url) is Link and type(back.canonical_url) is str
