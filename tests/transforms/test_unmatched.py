"""Unmatched stories after dedup (transforms/unmatched.py): carried as their
identities only, and every stage after dedup treats them as it treats the
stories they stand for."""
import random
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pytest
from apache_beam.coders.coders import FastPrimitivesCoder
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to

from tests.transforms.test_dedup import polled, run_across_polls, story, tangled
from transforms import identity, unmatched
from transforms.dedup import KEY_KINDS, DedupStories, dedup_digest, dedup_stories, handle_digest, identity_record
from transforms.seen import REFRESH, SeenBefore, seen_keys, seen_records
from transforms.state.store import StateStore
from transforms.topics import KeepMatched, Topic, without_text

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=30)


def record_of(s):
    return unmatched.unmatched_record(s, handle_digest(s))


def varied(seed=0, n=300):
    """tangled() stories, some with a feed link apart from their URL (an
    extra remembered identity) or equal to it, fetch times in UTC, in
    another zone and none."""
    rng = random.Random(seed)
    out = []
    for s in tangled(seed, n):
        s = s.replace(feed_link=rng.choice([None, s.url, f"https://proxy.example/{rng.randrange(30)}"]))
        fetched = rng.choice([NOW, NOW.astimezone(timezone(timedelta(hours=9))), None])
        out.append(s.replace(fetched_at=fetched))
    return out


def test_a_record_holds_every_identity_of_its_story_and_nothing_else():
    stories = varied()
    assert any(len(seen_keys(s)) == 4 for s in stories)       # some have the feed link's identity too
    for s in stories:
        record = record_of(without_text(s))
        assert unmatched.is_unmatched(record) and not unmatched.is_unmatched(s)
        assert unmatched.handle(record) == handle_digest(s)
        assert [dedup_digest(record, kind) for kind in KEY_KINDS] == [dedup_digest(s, kind) for kind in KEY_KINDS]
        assert seen_keys(record) == seen_keys(s)
        assert seen_records(record) == seen_records(s)           # story id and fetch time come back exactly
        back = unmatched.fetched_at(record)
        assert (back, getattr(back, "tzinfo", None)) == (s.fetched_at, getattr(s.fetched_at, "tzinfo", None))
        assert unmatched.story_id(record) == s.story_id
        assert [value for value in record if isinstance(value, str)] == [s.story_id]   # no link, no text
        # DedupStories computes a story's keys once for both its records
        digests = unmatched.key_digests(identity.story_dedup_keys(s))
        assert unmatched.unmatched_record(s, handle_digest(s), digests) == record_of(s) == record
        assert identity_record(s, digests) == identity_record(s)


def test_a_record_encodes_in_under_half_of_the_story_cut_down_without_text():
    coder = FastPrimitivesCoder()
    link = "https://www.example-news.org/world/asia/2026/12/06/north-korea-launches-missile-toward-sea"
    s = story("https://www.example-news.org/rss/world.xml", 12, link, link, "Missile launch", "x" * 400)
    cut = without_text(s.replace(fetched_at=NOW, feed_link=link))
    record = record_of(cut)
    assert len(coder.encode(record)) < 0.5 * len(coder.encode(cut))
    assert coder.decode(coder.encode(record)) == record


def tagged(stories, seed=0):
    """A random third matched (given a topic), the rest cut down as TagTopics
    cuts an unmatched story."""
    rng = random.Random(seed)
    return [s.replace(topics=["t"]) if rng.random() < 0.33 else without_text(s) for s in stories]


@pytest.mark.slow
def test_dedup_keeps_the_same_copies_and_carries_the_unmatched_ones_as_records():
    for seed in range(2):
        stories = tagged(tangled(seed), seed)
        kept, _ = dedup_stories(stories)
        expected = sorted((handle_digest(s), bool(s.topics)) for s in kept)
        assert {matched for _, matched in expected} == {True, False}
        p = TestPipeline(runner="DirectRunner")
        items = p | beam.Create(stories) | DedupStories(compact_unmatched=True)
        out = items | beam.Map(
            lambda i: (unmatched.handle(i), False) if unmatched.is_unmatched(i) else (handle_digest(i), True))
        assert_that(out, equal_to(expected), label="kept")
        kept_matched = items | KeepMatched([Topic("t", "x")]) | beam.Map(lambda s: handle_digest(s))
        assert_that(kept_matched, equal_to([h for h, matched in expected if matched]), label="matched")
        result = p.run()
        result.wait_until_finish()
        counters = result.metrics().query(MetricsFilter().with_name("unmatched"))["counters"]
        assert sum(c.committed for c in counters) == sum(not matched for _, matched in expected)


def test_seen_before_drops_and_refreshes_a_record_as_it_does_its_story(tmp_path):
    def seen_story(i, url, title, fetched):
        return story("http://feed", i, url, f"g{i}", title, "Pyongyang said so.").replace(
            story_id=f"s{i}", fetched_at=fetched)

    store = StateStore(str(tmp_path))
    remembered = seen_story(0, "https://e.org/a", "Missile launch", NOW - timedelta(days=20))
    store.open_run("earlier", NOW)
    store.commit("earlier", NOW, seen_records(remembered), [], NOW, LOOKBACK)
    later = NOW + timedelta(hours=1)
    again = without_text(seen_story(1, "https://e.org/a", "Missile launch", later))   # same URL and text
    new = without_text(seen_story(2, "https://e.org/new", "Entirely new", later))
    with TestPipeline(runner="DirectRunner") as p:
        out = p | beam.Create([record_of(again), record_of(new)]) | SeenBefore(str(tmp_path), "now", later, LOOKBACK)
        assert_that(out.new | "Ids" >> beam.Map(unmatched.story_id), equal_to(["s2"]), label="new")
        assert_that(out[REFRESH] | "Keys" >> beam.Map(lambda r: (r.key, r.story_id, r.seen_at)),
                    equal_to([(r.key, r.story_id, r.seen_at) for r in seen_records(again)]), label="refresh")


def test_across_polls_a_record_seen_first_holds_back_a_matched_copy():
    # Streaming: an unmatched story remembered on one poll keeps a later
    # copy with its URL from being written, as the story itself would.
    first = without_text(story("feed-c", 0, "https://w.example/p", "guid-1", "Launch", "x"))
    matched_copy = story("feed-d", 4, "https://w.example/p?utm_source=rss", "guid-7", "Launch!", "x y").replace(
        topics=["t"])
    fresh = story("feed-c", 1, "https://w.example/q", "guid-9", "Another", "z").replace(topics=["t"])
    stream = (TestStream()
              .add_elements([polled(record_of(first), 0)]).advance_watermark_to(60)
              .add_elements([polled(matched_copy, 60), polled(fresh, 60)])
              .advance_watermark_to_infinity())
    p, out = run_across_polls(stream, ttl_s=3600, name=lambda i: "record" if unmatched.is_unmatched(i)
                              else (i.feed_url, i.entry_index))
    assert_that(out, equal_to(["record", ("feed-c", 1)]))
    p.run().wait_until_finish()
