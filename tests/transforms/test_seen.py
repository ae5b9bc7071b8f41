"""Seen-before stage (transforms/seen.py): stories an earlier run wrote are
dropped; old records of stories still in their feeds are refreshed."""
from datetime import datetime, timedelta, timezone

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import identity
from transforms.records import Story
from transforms.seen import REFRESH, SeenBefore, seen_keys, seen_records
from transforms.state.store import StateStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=30)


def story(i, guid, url, title, fetched=NOW):
    summary = "Pyongyang said so on Tuesday."
    return Story(story_id=f"s{i}", url=url, canonical_url=url, guid=guid, title=title,
                 summary=summary, content="", fetched_at=fetched, feed_url="http://feed",
                 entry_index=i, content_hash=identity.content_hash(title, summary))


def test_seen_before_drops_any_shared_identity_and_refreshes_old_records(tmp_path):
    store = StateStore(str(tmp_path))
    old = story(0, "g1", "https://e.org/a", "Missile launch")
    fading = story(1, "g2", "https://e.org/b", "Hotline talks")
    store.open_run("earlier", NOW)
    store.commit("earlier", NOW, seen_records(old), [], NOW, LOOKBACK)
    store.open_run("earliest", NOW)
    store.commit("earliest", NOW, seen_records(fading.replace(fetched_at=NOW - timedelta(days=20))),
                 [], NOW, LOOKBACK)
    later = NOW + timedelta(hours=1)
    incoming = [
        story(2, "g1-new-guid", "https://e.org/a", "Missile launch", later),        # same URL and text
        story(3, "g9", "https://e.org/moved", "Missile launch", later),             # same text
        story(4, "g2", "https://e.org/b", "Hotline talks", later),                  # seen 20 days ago
        story(5, "g5", "https://e.org/new", "Entirely new", later),
    ]
    with TestPipeline(runner="DirectRunner") as p:
        out = p | beam.Create(incoming) | SeenBefore(str(tmp_path), "now", later, LOOKBACK)
        assert_that(out.new | "Ids" >> beam.Map(lambda s: s.story_id), equal_to(["s5"]), label="new")
        assert_that(out[REFRESH] | "Keys" >> beam.Map(lambda r: (r.key, r.story_id)),
                    equal_to([(k, "s4") for k in seen_keys(incoming[2])]), label="refresh")


PROXY = "http://feedproxy.google.com/~r/desk/~3/AbC/"
ARTICLE = "https://desk.example.org/2021/talks"


def test_a_story_stored_under_its_redirector_link_is_seen_after_the_publishers_link_is_read(tmp_path):
    """A story an earlier version stored with the redirector's link as its URL
    (no feed_link then), read again with its publisher's link and, here, a new
    guid and a revised text: only the feed link's URL identity ties the two."""
    store = StateStore(str(tmp_path))
    stored = story(0, "g1", PROXY, "Talks resume")
    store.open_run("earlier", NOW)
    store.commit("earlier", NOW, seen_records(stored), [], NOW, LOOKBACK)
    later = NOW + timedelta(hours=1)
    upgraded = story(1, "g1-reissued", ARTICLE, "Talks resume, officials say", later).replace(feed_link=PROXY)
    unrelated = story(2, "g2", ARTICLE + "-2", "Other talks", later).replace(
        feed_link="http://feedproxy.google.com/~r/desk/~3/XyZ/")
    assert set(seen_keys(stored)).isdisjoint(seen_keys(upgraded.replace(feed_link=None)))  # nothing else matches
    with TestPipeline(runner="DirectRunner") as p:
        out = p | beam.Create([upgraded, unrelated]) | SeenBefore(str(tmp_path), "now", later, LOOKBACK)
        assert_that(out.new | "Ids" >> beam.Map(lambda s: s.story_id), equal_to(["s2"]), label="new")


def test_recovered_rows_are_remembered_under_the_keys_a_story_is():
    """transforms/state/recovery.py reads written rows back: the same keys as
    seen_keys, the feed link's URL included."""
    from transforms.schema import STORIES_SCHEMA
    from transforms.sink import to_row
    from transforms.state.recovery import story_seen_records

    stories = [story(0, "g1", ARTICLE, "Talks resume").replace(feed_link=PROXY),
               story(1, None, "https://e.org/a", "Plain").replace(feed_link="https://e.org/a?utm_source=x")]
    for s in stories:
        assert [r.key for r in story_seen_records([to_row(s, STORIES_SCHEMA)])] == seen_keys(s)
    assert len(seen_keys(stories[0])) == 4 and len(seen_keys(stories[1])) == 2
