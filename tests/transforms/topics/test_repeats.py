"""One match for the copies of a story (transforms/topics/repeats.py): the
memo's bound, what its key holds, and StoryTagger giving every story of
the corpora what tag_story gives it alone."""
from datetime import datetime, timezone

import pytest

from benchmarks import corpus
from pipeline.config import load_topic_definitions
from tests.support.paths import CORPORA, SEEDS
from transforms.parse import iter_parse_fetch
from transforms.records import FetchResult, Story
from transforms.topics import StoryTagger, tag_story
from transforms.topics.repeats import ENTRY_CHARS, RepeatMemo

pytestmark = pytest.mark.usefixtures("matcher_engine")

TOPICS = [
    ("dprk", 'DPRK OR "North Korea" OR 북한 OR 北朝鮮'),
    ("wire", "source:yna.co.kr AND 북한"),
    ("korean_dprk", "language:ko AND (북한 OR DPRK)"),
]


KOREAN = ("북한 미사일 발사", "북한이 오늘 아침 동해상으로 탄도미사일을 발사했다고 합동참모본부가 밝혔다")


def story(sid, title, summary="", source=None, language=None, feed="https://a.example/feed"):
    return Story(story_id=sid, url=f"https://example.com/{sid}", canonical_url=f"https://example.com/{sid}",
                 guid=sid, title=title, summary=summary, content="", source=source, language=language,
                 feed_url=feed)


class TestRepeatMemo:
    def test_keeps_the_most_recently_used_within_its_characters(self):
        memo = RepeatMemo(max_chars=2 * ENTRY_CHARS + 10)
        memo.put(("aaaa",), 1)
        memo.put(("bbbb",), 2)
        assert memo.get(("aaaa",)) == 1          # now the most recently used
        memo.put(("cccc",), 3)                   # 12 characters and three entries: the oldest, bbbb, goes
        assert memo.get(("bbbb",)) is None
        assert memo.get(("aaaa",)) == 1 and memo.get(("cccc",)) == 3
        assert memo.chars == 2 * ENTRY_CHARS + 8 and len(memo) == 2 and memo.hits == 3

    def test_each_entry_counts_besides_its_text(self):
        memo = RepeatMemo(max_chars=3 * ENTRY_CHARS)
        for i in range(10):
            memo.put((str(i),), i)
        assert len(memo) == 2 and memo.chars == 2 * (ENTRY_CHARS + 1)

    def test_a_key_larger_than_the_bound_is_never_kept(self):
        memo = RepeatMemo(max_chars=ENTRY_CHARS + 10)
        memo.put(("aaaa",), 1)
        memo.put(("x" * 11,), 2)
        assert memo.get(("x" * 11,)) is None
        assert memo.get(("aaaa",)) == 1 and memo.chars == ENTRY_CHARS + 4

    def test_keys_compare_in_full(self):
        memo = RepeatMemo()
        memo.put(("North Korea fires", "", "", None, None), "first")
        assert memo.get(("North Korea fires", "", "", None, "en")) is None
        assert memo.get(("North Korea fires ", "", "", None, None)) is None


class TestStoryTagger:
    def test_a_copy_is_answered_from_the_memo_as_tag_story_answers_it(self):
        tagger = StoryTagger(TOPICS, cut_unmatched=False)
        first = tagger(story("1", *KOREAN))
        copy = tagger(story("2", *KOREAN, feed="https://b.example/feed"))
        assert tagger.repeats.hits == 1
        assert copy == tag_story(story("2", *KOREAN, feed="https://b.example/feed"), tagger.matcher, tagger._detect)
        assert (copy.story_id, copy.feed_url) == ("2", "https://b.example/feed")
        assert copy.topics == first.topics == ["dprk", "korean_dprk"]
        assert copy.language == first.language == "ko"    # detected once, for the first

    def test_the_title_summary_and_content_are_all_part_of_the_key(self):
        tagger = StoryTagger(TOPICS)
        same_title = [story("1", "Talks", "Weather"), story("2", "Talks", "North Korea"),
                      story("3", "Talks", "Weather").replace(content="DPRK")]
        assert [tagger(s).topics for s in same_title] == [[], ["dprk"], ["dprk"]]
        assert tagger.repeats.hits == 0

    def test_the_site_and_the_language_are_part_of_the_key_only_where_rules_read_them(self):
        tagger = StoryTagger([("dprk", "DPRK")])
        tagger(story("1", "DPRK", source="a.example", language="en"))
        tagger(story("2", "DPRK", source="b.example", language="ko"))
        assert tagger.repeats.hits == 1

    def test_the_site_and_the_language_are_part_of_the_key(self):
        tagger = StoryTagger(TOPICS)
        assert tagger(story("1", "북한", source="en.yna.co.kr", language="en")).topics == ["dprk", "wire"]
        assert tagger(story("2", "북한", source="example.com", language="en")).topics == ["dprk"]
        assert tagger(story("3", "북한", source="example.com", language="ko")).topics == ["dprk", "korean_dprk"]
        assert tagger.repeats.hits == 0

    def test_an_unmatched_copy_is_cut_down_as_its_first(self):
        tagger = StoryTagger(TOPICS)
        first, copy = tagger(story("1", "Weather", "Sunny")), tagger(story("2", "Weather", "Sunny"))
        assert tagger.repeats.hits == 1
        assert (first.topics, first.title, copy.topics, copy.title, copy.story_id) == ([], "", [], "", "2")


FETCHED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _stories():
    documents = []
    if CORPORA.is_dir():
        documents += [(p.as_posix(), p.read_bytes()) for p in sorted((CORPORA / "realfeeds").glob("*"))
                      if p.is_file() and p.suffix in (".xml", ".rss", ".atom")]
    documents += [(p.as_posix(), p.read_bytes()) for p in sorted(SEEDS.glob("*.xml"))]
    generated, _ = corpus.build(corpus.CorpusSpec(entries=2000),
                                load_topic_definitions(str(SEEDS / "topics.yaml")))
    documents += list(generated)
    for name, body in documents:
        fetch = FetchResult(feed_url="http://127.0.0.1/" + name, final_url="http://127.0.0.1/" + name, status=200,
                            headers={"content-type": "application/xml"}, body=body, elapsed_s=0.0,
                            fetched_at=FETCHED_AT)
        yield from (r for r in iter_parse_fetch(fetch, sketch=False) if isinstance(r, Story))


@pytest.mark.slow
def test_every_story_of_the_corpora_is_tagged_as_alone():
    topics = load_topic_definitions(str(SEEDS / "topics.yaml")) + [
        ("korean_dprk", "language:ko AND (북한 OR DPRK OR 미사일)")]
    tagger = StoryTagger(topics, cut_unmatched=False)
    alone = StoryTagger(topics, cut_unmatched=False)
    stories = matched = 0
    for s in _stories():
        stories += 1
        expected = tag_story(s, alone.matcher, alone._detect) or s
        assert tagger(s) == expected, s.story_id
        matched += bool(expected.topics)
    # The generated corpus repeats stories as feeds do, and 5 % of them match.
    assert tagger.repeats.hits > 100 and matched > 50 and stories > 2000, (tagger.repeats.hits, matched, stories)
