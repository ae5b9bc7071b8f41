"""Dedup stage: each story once, and the same copy kept whatever the order."""
import random
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import identity
from transforms.dedup import DedupStories, dedup_stories
from transforms.records import Story

T0 = datetime(2021, 9, 29, tzinfo=timezone.utc)


def story(feed, index, url=None, guid=None, title="t", summary="s", hours=0):
    canonical = identity.canonical_url(url)
    digest = identity.content_hash(title, summary)
    return Story(story_id=identity.story_id(canonical, feed, guid, digest), url=url,
                 canonical_url=canonical, guid=guid, title=title, summary=summary, content="",
                 published_at=T0 + timedelta(hours=hours), fetched_at=T0, feed_url=feed,
                 content_hash=digest, entry_index=index)


def sample():
    return [
        # the same article in two outlets: same text, other URLs; the earlier one wins
        story("feed-b", 0, "https://voa.example/a", "voa-1", "Kim dismisses talks", "Body", hours=2),
        story("feed-a", 3, "https://gs.example/a", "gs-1", "Kim dismisses talks", "Body", hours=1),
        # repeated with tracking parameters in one feed
        story("feed-c", 0, "https://w.example/p?utm_source=rss", "c-1", "Launch", "x"),
        story("feed-c", 1, "https://w.example/p?fbclid=1", "c-2", "Launch", "x"),
        # same guid twice in one feed, edited title
        story("feed-c", 2, "https://w.example/q", "c-3", "Old title", "y"),
        story("feed-c", 3, "https://w.example/q2", "c-3", "New title", "y"),
        # same guid in another feed is NOT the same story
        story("feed-d", 0, "https://d.example/1", "c-3", "Unrelated", "z"),
        # two entries with no text at all are not merged
        story("feed-e", 0, None, None, "", ""),
        story("feed-e", 1, None, None, "", ""),
    ]


def kept_ids(stories):
    return sorted((s.feed_url, s.entry_index) for s in stories)


EXPECTED = [("feed-a", 3), ("feed-c", 0), ("feed-c", 2), ("feed-d", 0), ("feed-e", 0), ("feed-e", 1)]


def test_each_story_once_and_the_preferred_copy_kept():
    kept, dropped = dedup_stories(sample())
    assert kept_ids(kept) == EXPECTED
    assert dropped == 3


def test_choice_does_not_depend_on_arrival_order():
    for seed in range(5):
        shuffled = sample()
        random.Random(seed).shuffle(shuffled)
        assert kept_ids(dedup_stories(shuffled)[0]) == EXPECTED


def test_beam_transform_agrees_with_the_in_memory_version():
    shuffled = sample()
    random.Random(1).shuffle(shuffled)
    with TestPipeline(runner="DirectRunner") as p:
        out = (p | beam.Create(shuffled) | DedupStories()
               | beam.Map(lambda s: (s.feed_url, s.entry_index)))
        assert_that(out, equal_to(EXPECTED))


def test_each_window_is_deduplicated_on_its_own():
    # As streaming runs it (a window per poll): a story in two windows is kept
    # in each, copies within one window once; a window with no entries gives nothing.
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.transforms import window

    first, second = sample(), sample()[:4]
    timed = [window.TimestampedValue(s, 5) for s in first] + [window.TimestampedValue(s, 25) for s in second]
    p = TestPipeline(runner="DirectRunner")
    out = (p | beam.Create(timed) | beam.WindowInto(window.FixedWindows(10)) | DedupStories()
           | beam.Map(lambda s, w=beam.DoFn.WindowParam: (int(w.start), s.feed_url, s.entry_index)))
    assert_that(out, equal_to([(0, *k) for k in EXPECTED] + [(20, *k) for k in kept_ids(dedup_stories(second)[0])]))
    result = p.run()
    result.wait_until_finish()
    duplicates = result.metrics().query(MetricsFilter().with_name("duplicates"))["counters"]
    assert sum(c.committed for c in duplicates) == 3 + dedup_stories(second)[1] == 5


def tangled(seed, n=300):
    """Stories whose identities overlap in every way: shared guids within and
    across feeds, shared URLs (some with tracking parameters), shared texts,
    missing dates and empty texts, so groups chain across the three kinds."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        feed = f"feed-{rng.randrange(5)}"
        url = rng.choice([None, f"https://n.example/{rng.randrange(60)}",
                          f"https://n.example/{rng.randrange(60)}?utm_source=x"])
        guid = rng.choice([None, f"g{rng.randrange(40)}"])
        text = rng.choice(["", f"text {rng.randrange(50)}"])
        s = story(feed, i, url, guid, title=text, summary=text, hours=rng.randrange(48))
        if rng.random() < 0.2:
            s = s.replace(published_at=None)
        out.append(s)
    return out


def assert_agrees_with_the_in_memory_version(p, stories, *steps):
    """DedupStories in `p` (after `steps`) keeps and counts what dedup_stories does."""
    from apache_beam.metrics.metric import MetricsFilter

    kept, dropped = dedup_stories(stories)
    out = p | beam.Create(stories)
    for step in steps:
        out = out | step
    out = out | DedupStories() | beam.Map(lambda s: (s.feed_url, s.entry_index))
    assert_that(out, equal_to(kept_ids(kept)))
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("duplicates"))["counters"]
    assert sum(c.committed for c in counters) == dropped
    assert 0 < dropped < len(stories)


@pytest.mark.slow
def test_beam_transform_agrees_with_the_in_memory_version_on_tangled_input():
    for seed in range(3):
        assert_agrees_with_the_in_memory_version(TestPipeline(runner="DirectRunner"), tangled(seed))


def test_the_winners_are_the_same_whatever_the_parts_and_their_merge_order():
    # The combine drops guid copies within each part as it reads it and
    # runs the other passes on the merged whole: any split of the records,
    # merged in any order, keeps what the in-memory passes keep.
    from transforms.dedup import _Winners, handle_digest, identity_record

    combine = _Winners()
    for seed in range(6):
        stories = tangled(seed)
        kept, dropped = dedup_stories(stories)
        rng = random.Random(seed)
        records = [identity_record(s) for s in stories]
        rng.shuffle(records)
        cuts = sorted(rng.sample(range(1, len(records)), rng.randrange(1, 8)))
        parts = []
        for lo, hi in zip([0, *cuts], [*cuts, len(records)]):
            acc = combine.create_accumulator()
            for record in records[lo:hi]:
                acc = combine.add_input(acc, record)
            parts.append(acc)
        rng.shuffle(parts)
        winners, copies = combine.extract_output(combine.merge_accumulators(parts))
        assert winners == {handle_digest(s) for s in kept}
        assert copies == dropped > 0
    assert combine.extract_output(combine.merge_accumulators([])) == (set(), 0)


def _adversarial_stories(seed, n=400):
    """Stories whose preferences tie, or nearly, field by field: dates
    before 1970, equal and missing; feed URLs, ids, links and guids that are
    prefixes of each other, empty, or hold NUL, non-ASCII characters or a
    lone surrogate; positions 0 and large."""
    rng = random.Random(seed)
    texts = ["", "a", "a\x00", "a\x00b", "a\x01", "ab", "b", "\x00", "\x00\x00", "\xff", "é", "é\x00",
             "\u4e2d", "\ud800", "\ud800x", "\ue000", "\U0001f600", "z" * 40]
    dates = [None, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
             datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(1970, 1, 1, tzinfo=timezone.utc), T0,
             T0 + timedelta(microseconds=1), datetime(9999, 12, 31, tzinfo=timezone.utc)]
    out = []
    for _ in range(n):
        s = story(rng.choice(texts), rng.choice([0, 1, 2, 49, 2**40]), "https://x.example/1", "g")
        out.append(s.replace(published_at=rng.choice(dates), story_id=rng.choice(texts),
                             url=rng.choice([None, *texts]), guid=rng.choice([None, *texts])))
    return out


def test_the_preference_key_sorts_as_the_preference_does():
    # Dedup's records carry the preference as bytes (preference_key): any
    # pair of stories must compare the same way both ways, ties included.
    from transforms.dedup import preference, preference_key

    def sign(a, b):
        return (a > b) - (a < b)

    for seed in range(4):
        stories = _adversarial_stories(seed)
        keys = [preference_key(s) for s in stories]
        prefs = [preference(s) for s in stories]
        for i in range(len(stories)):
            for j in range(0, len(stories), 7):
                assert sign(keys[i], keys[j]) == sign(prefs[i], prefs[j]), (prefs[i], prefs[j])
        assert sorted(range(len(stories)), key=keys.__getitem__) == sorted(range(len(stories)), key=prefs.__getitem__)


def test_an_identity_record_takes_under_half_a_kilobyte():
    # The combine holds one record per guid in one process until it has a
    # run's whole (docs/performance.md#two-workers): the handle and keys as
    # one bytes object and the preference as another (preference_key).
    import sys

    from transforms.dedup import identity_record

    stories = [story(f"https://feeds.example/{i % 40}/rss.xml", i % 50, f"https://news.example/2021/09/28/story-{i}",
                     f"https://news.example/?p={i}", f"Title {i}", "Body") for i in range(200)]

    def deep_size(value):
        if isinstance(value, tuple):
            return sys.getsizeof(value) + sum(deep_size(item) for item in value)
        return sys.getsizeof(value)

    guid_key = sys.getsizeof(bytes(16))   # the key the combine's dict holds beside each record
    sizes = [deep_size(identity_record(s)) + guid_key for s in stories]
    assert max(sizes) < 500, max(sizes)


def test_an_entry_fetched_at_one_instant_in_two_zones_has_two_handles():
    """entry_handle names the fetch time as it prints; it formats each time
    once (a cache), and equal instants in two zones stay apart."""
    from transforms.dedup import entry_handle
    utc = story("f", 0).replace(fetched_at=datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc))
    seoul = utc.replace(fetched_at=datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=9))))
    assert utc.fetched_at == seoul.fetched_at
    handles = [entry_handle(s) for s in (utc, seoul, utc, seoul)]
    assert handles == [f"{s.feed_url}\x1f0\x1f{s.fetched_at}" for s in (utc, seoul, utc, seoul)]
    assert handles[0] != handles[1]


def test_dedup_groups_its_records_once():
    # One grouping for the three kinds, not one shuffle per kind.
    p = beam.Pipeline(runner="DirectRunner")
    _ = p | beam.Create(sample()) | "Dedup" >> DedupStories()
    groupings = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.GroupByKey) and node.full_label.startswith("Dedup/"):
                groupings.append(node.full_label)

    p.visit(Visitor())
    assert groupings == ["Dedup/Winners/GroupByKey"]


@pytest.mark.slow
def test_dedup_across_two_worker_processes_agrees_with_the_in_memory_version():
    # The combine's parts cross from the workers to the runner encoded.
    from apache_beam.options.pipeline_options import PipelineOptions

    p = beam.Pipeline(options=PipelineOptions([
        "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]))
    assert_agrees_with_the_in_memory_version(p, tangled(7, n=600), beam.Reshuffle())


# ---------------------------------------------------------------- across polls (streaming)

def polled(story_, at_s):
    from apache_beam.transforms import window
    return window.TimestampedValue(story_, at_s)


def run_across_polls(stream, ttl_s, name=lambda s: (s.feed_url, s.entry_index)):
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from transforms.dedup import DedupAcrossPolls

    options = PipelineOptions(["--runner=DirectRunner"])
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    out = p | stream | DedupAcrossPolls(ttl_s) | beam.Map(name)
    return p, out


def test_a_story_re_served_on_every_poll_or_with_a_new_guid_is_written_once():
    from apache_beam.testing.test_stream import TestStream

    item = story("feed-c", 0, "https://w.example/p", "guid-1", "Launch", "x")
    new_guid = story("feed-c", 5, "https://w.example/p?utm_source=rss", "guid-2", "Launch", "x")
    reworded_same_url = story("feed-c", 6, "https://w.example/p", "guid-3", "Launch (update)", "x y")
    fresh = story("feed-c", 1, "https://w.example/q", "guid-9", "Another", "z")
    stream = (TestStream()
              .add_elements([polled(item, 0)]).advance_watermark_to(60)
              .add_elements([polled(item, 60), polled(new_guid, 60)]).advance_watermark_to(120)
              .add_elements([polled(reworded_same_url, 120), polled(fresh, 120)])
              .advance_watermark_to_infinity())
    p, out = run_across_polls(stream, ttl_s=3600)
    assert_that(out, equal_to([("feed-c", 0), ("feed-c", 1)]))
    p.run().wait_until_finish()


@pytest.mark.slow
def test_dedup_state_expires_after_the_ttl_and_is_released():
    from apache_beam.testing.test_stream import TestStream

    item = story("feed-c", 0, "https://w.example/p", "guid-1", "Launch", "x")
    again = story("feed-c", 1, "https://w.example/p", "guid-1", "Launch", "x")
    stream = (TestStream()
              .add_elements([polled(item, 0)])
              .advance_watermark_to(50).add_elements([polled(item, 50)])       # within TTL: dropped
              .advance_watermark_to(50 + 100 + 1)                              # TTL after last sighting passed
              .add_elements([polled(again, 200)])                              # forgotten: written again
              .advance_watermark_to_infinity())
    p, out = run_across_polls(stream, ttl_s=100)
    # The second copy is written only because the timer cleared the state of
    # all three identities. (TestStream runs on the BundleBasedDirectRunner,
    # which does not report counters of stateful DoFns; the streaming
    # end-to-end test checks `dedup_keys_forgotten` on the FnApiRunner.)
    assert_that(out, equal_to([("feed-c", 0), ("feed-c", 1)]))
    p.run().wait_until_finish()

