"""The topics stage on stories: tag_story, and the MatchTopics
Beam transform (counters, language detection only where rules need it), and
its two halves around dedup (TagTopics, KeepMatched)."""
import pickle
from datetime import datetime, timezone

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.language import detect_language, language_text, load_detector
from transforms.identity import content_hash
from transforms.dedup import DedupStories, dedup_stories, identity_record
from transforms.records import Match, Story
from transforms.seen import seen_records
from transforms.topics import (KeepMatched, MatchTopics, TagTopics, Topic, TopicError, TopicMatcher, tag_story,
                              without_text)

# Every test once with each scan of the matcher (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("matcher_engine")


def story(sid, title, summary="", content="", source=None, language=None):
    return Story(story_id=sid, url=f"https://example.com/{sid}", canonical_url=f"https://example.com/{sid}",
                 guid=sid, title=title, summary=summary, content=content, source=source, language=language)


TOPICS = [
    ("dprk", 'DPRK OR "North Korea" OR 북한 OR 北朝鮮'),
    ("missiles", "missile* OR 미사일 OR ミサイル"),
]


class TestTagStory:
    def test_sets_topics_terms_matches_and_version(self):
        m = TopicMatcher(TOPICS)
        tagged = tag_story(story("1", "North Korea fires missile", "북한 미사일"), m)
        assert tagged.topics == ["dprk", "missiles"]
        assert tagged.matched_terms == ["North Korea", "missile*", "미사일", "북한"]
        assert tagged.matches == [
            Match("dprk", "North Korea", "title", 0), Match("dprk", "북한", "summary", 0),
            Match("missiles", "missile*", "title", 18), Match("missiles", "미사일", "summary", 3)]
        assert tagged.topics_version == m.version
        assert tagged.story_id == "1"

    def test_unmatched_is_none(self):
        assert tag_story(story("2", "Weather"), TopicMatcher(TOPICS)) is None

    def test_source_scope_uses_the_story_site(self):
        m = TopicMatcher([("wire", "source:yna.co.kr AND 북한")])
        assert tag_story(story("1", "북한", source="en.yna.co.kr"), m).topics == ["wire"]
        assert tag_story(story("2", "북한", source="example.com"), m) is None

    def test_language_is_detected_only_when_a_rule_needs_it(self):
        calls = []

        def detect(s):
            calls.append(s.story_id)
            return "ko"

        m = TopicMatcher([("ko_dprk", "북한 AND language:ko"), ("dprk", "DPRK")])
        assert tag_story(story("1", "DPRK talks"), m, detect).topics == ["dprk"]
        assert calls == []  # no 북한: the language question never came up
        tagged = tag_story(story("2", "북한 발표"), m, detect)
        assert tagged.topics == ["ko_dprk"] and tagged.language == "ko" and calls == ["2"]
        # a language already known is used as it is
        assert tag_story(story("3", "북한 발표", language="en"), m, detect) is None
        assert calls == ["2"]


def run_match_topics(stories, topics):
    p = test_pipeline.TestPipeline(runner="DirectRunner")
    out = p | beam.Create(stories) | MatchTopics(topics)
    return p, out


def counters(result):
    # Summed by name: several steps count under one name (each dedup pass).
    totals = {}
    for r in result.metrics().query(MetricsFilter().with_namespace("newswatch"))["counters"]:
        totals[r.key.metric.name] = totals.get(r.key.metric.name, 0) + r.committed
    return totals


def test_match_topics_keeps_only_matching_stories_and_counts():
    stories = [
        story("1", "North Korea fires missile"),
        story("2", "Local weather", "sunny"),
        story("3", "速報", "北朝鮮は弾道ミサイルを発射した"),
        story("4", "Missiles", "no country named"),
    ]
    m = TopicMatcher(TOPICS)
    expected = [tag_story(s, m) for s in stories if tag_story(s, m)]
    p, out = run_match_topics(stories, TOPICS)
    assert_that(out, equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    c = counters(result)
    assert (c["matched"], c["unmatched"]) == (3, 1)
    assert (c["matched_topic_dprk"], c["matched_topic_missiles"]) == (2, 3)
    assert "rules_language_detections" not in c


def test_match_topics_detects_language_for_language_rules_with_the_seeded_detector():
    ko = story("ko", "북한, 동해상으로 탄도미사일 발사",
               "합동참모본부는 북한이 오늘 오전 동해상으로 탄도미사일 한 발을 발사했다고 밝혔다.")
    en = story("en", "North Korea fires missile", "Seoul said North Korea fired a ballistic missile.")
    topics = [("dprk_ko", "topic:dprk AND language:ko"), ("dprk", "북한 OR \"North Korea\"")]
    expected_ko = detect_language(language_text(ko), load_detector())
    p, out = run_match_topics([ko, en], topics)
    assert_that(out | beam.Map(lambda s: (s.story_id, s.language, tuple(s.topics))), equal_to([
        ("ko", expected_ko, ("dprk", "dprk_ko")),
        ("en", "en", ("dprk",)),
    ]))
    result = p.run()
    result.wait_until_finish()
    assert expected_ko == "ko"
    assert counters(result)["rules_language_detections"] == 2


def test_a_copy_answered_from_the_memo_counts_its_language_detection():
    # Three copies of one Korean story in one bundle: detected once, counted for each.
    copies = [story(sid, "북한, 동해상으로 탄도미사일 발사",
                    "합동참모본부는 북한이 오늘 오전 동해상으로 탄도미사일 한 발을 발사했다고 밝혔다.")
              for sid in ("a", "b", "c")]
    p, out = run_match_topics(copies, [("dprk_ko", "북한 AND language:ko")])
    assert_that(out | beam.Map(lambda s: (s.story_id, s.language)), equal_to([("a", "ko"), ("b", "ko"), ("c", "ko")]))
    result = p.run()
    result.wait_until_finish()
    assert counters(result)["rules_language_detections"] == 3


def test_match_topics_rejects_bad_rules_when_the_graph_is_built():
    with pytest.raises(TopicError, match="^topic 'bad', position 0: expected a term after NOT$"):
        MatchTopics([("bad", "NOT")])
    with pytest.raises(TopicError, match="reference cycle"):
        MatchTopics([("a", "topic:b"), ("b", "topic:a")])


def test_match_topics_is_picklable():
    # Beam pickles the transform's DoFn; the matcher is built in setup().
    transform = MatchTopics(TOPICS)
    assert pickle.loads(pickle.dumps(transform)).topics == tuple(Topic(n, q) for n, q in TOPICS)


def test_unmatched_stories_lose_their_text_but_keep_every_identity():
    for s in [story("1", "Weather", "sunny " * 100, "<p>long</p> " * 1000),
              story("2", "", "only a summary"), story("3", "", "", "only content"), story("4", "", "", "")]:
        s = s.replace(feed_title="A feed", source="A site", sketch=(1, 2, 3), feed_link=f"https://r.example/{s.story_id}",
                      content_hash=content_hash(s.title, s.summary or s.content))
        slim = without_text(s)
        assert identity_record(slim) == identity_record(s)
        assert seen_records(slim) == seen_records(s)
        assert slim.title == slim.content == "" and len(slim.summary) <= 1
        assert slim.feed_title is slim.source is slim.sketch is None
        assert len(pickle.dumps(slim)) < len(pickle.dumps(s.replace(content="", summary="")))


def test_unmatched_stories_are_cut_down_unless_told_not_to():
    # The pipeline turns unmatched stories into records right after tagging
    # (DedupStories(compact_unmatched=True)), so it skips the cut-down copy.
    stories = [story("1", "Weather", "sunny " * 10, source="A site"), story("2", "North Korea talks")]
    for cut in (True, False):
        p = test_pipeline.TestPipeline(runner="DirectRunner")
        out = p | beam.Create(stories) | TagTopics(TOPICS, cut_unmatched=cut)
        expected = [without_text(stories[0]) if cut else stories[0], tag_story(stories[1], TopicMatcher(TOPICS))]
        assert_that(out, equal_to(expected))
        p.run().wait_until_finish()


@pytest.mark.parametrize("cut_unmatched", [True, False])
def test_tagging_before_dedup_keeps_what_matching_after_dedup_would(cut_unmatched):
    # The preferred (earliest) copy of a story matches no topic and its later
    # copy does: matching after dedup writes neither, and so must this order.
    def at(s, day, url=None):
        return s.replace(published_at=datetime(2026, 11, day, tzinfo=timezone.utc),
                         canonical_url=url or s.canonical_url, content_hash=content_hash(s.title, s.summary),
                         entry_index=day)  # entries of one feed: the handle dedup names them by
    stories = [
        at(story("early", "Weather in Seoul", "sunny"), 1, "https://example.com/same"),
        at(story("late", "North Korea fires missile"), 2, "https://example.com/same"),
        at(story("alone", "DPRK talks"), 3),
        at(story("copy", "DPRK talks"), 4),                   # same text as "alone": a copy
        at(story("plain", "Local weather"), 5),
    ]
    m = TopicMatcher(TOPICS)
    kept, duplicates = dedup_stories(stories)
    expected = [t for t in (tag_story(s, m) for s in kept) if t is not None]
    assert [s.story_id for s in expected] == ["alone"] and duplicates == 2

    p = test_pipeline.TestPipeline(runner="DirectRunner")
    out = (p | beam.Create(stories) | TagTopics(TOPICS, cut_unmatched=cut_unmatched)
           | DedupStories(compact_unmatched=True) | KeepMatched(TOPICS))
    assert_that(out, equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    c = counters(result)
    assert (c["duplicates"], c["unmatched"], c["matched"]) == (2, 2, 1)
