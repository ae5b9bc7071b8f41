"""The matcher's two scans, Hyperscan and pure Python, find the same matches
(topic, term, field, offset) on texts built to catch them apart: words of the
rules glued to punctuation, to non-ASCII separators and to Korean, inside
longer words, with accents, ligatures, combining marks, full-width letters
and characters beyond U+FFFF, and the guards of issue 18 (word edges, EXCEPT)."""
import random
from tests.support.paths import CORPORA, SEEDS

import pytest

from benchmarks.topics_bench import Corpus
from transforms.topics import Topic, TopicMatcher
from transforms.topics.query import Key
from transforms.topics.scan import hyperscan_scan

pytestmark = pytest.mark.skipif(not hyperscan_scan.AVAILABLE, reason="hyperscan does not import here")

RULES = [
    Topic("dprk", '"North Korea" OR DPRK OR Pyongyang OR "Kim Jong-un" OR 북한 OR 北朝鮮 OR 朝鲜 '
                  'OR "Северная Корея" OR КНДР OR "Corée du Nord" OR Nordkorea*', fold_accents=True),
    Topic("missiles", '(missil* OR ракет* OR 미사일 OR ミサイル) AND (test* OR launch* OR 발사)'),
    Topic("near", "missile NEAR/3 launch"),
    Topic("phrases", '"kim* jong" OR "g7 정상" OR "김정은 위원장" OR "state media*" OR "ab cd ef"'),
    Topic("folded", "coree OR pjongjang OR œuvre OR straße OR ærø OR élysée", fold_accents=True),
    Topic("scoped", "title:kcna OR summary:yonhap"),
    Topic("count", "ATLEAST/2 (korea OR dprk)"),
    Topic("cyrillic", "ким OR ракета"),
    # where an occurrence ends matters to NEAR and to ATLEAST's overlaps
    Topic("ends", '("kim jong*" NEAR/1 ракета) OR ATLEAST/3 ("kim jong*" OR jongun OR un)'),
    # the guards (test_guards.py): word edges of unspaced words, settled by
    # each scan on its own, and EXCEPT, which compares places of one scan
    Topic("guards", '<북> OR <北> OR 평양 EXCEPT 태평양 OR korea EXCEPT "south korea" '
                    'OR ((평양 EXCEPT 태평양) OR <北>) NEAR/2 미사일', fold_accents=True),
]

WORDS = ["north", "korea", "dprk", "pyongyang", "kim", "jong", "un", "jongun", "missile", "missiles",
         "launch", "launched", "test", "tests", "state", "media", "kcna", "yonhap", "coree", "corée",
         "Corée", "pjöngjang", "œuvre", "oeuvre", "straße", "strasse", "ærø", "aero", "élysée", "elysee",
         "北朝鮮", "朝鲜", "北韓", "북한", "북한은", "북한의", "김정은", "위원장", "위원장은", "g7", "정상",
         "미사일", "발사", "ミサイル", "Северная", "Корея", "КНДР", "ракета", "ракеты", "ким",
         "ab", "cd", "ef", "abcd", "kimchi", "unkorea", "nordkorea", "Nordkoreas", "KOREA", "Korea's",
         "ＤＰＲＫ", "ﬁ", "ǅ", "e\u0301", "\u0301", "K\u0327", "½", "𝐀", "😀", "Ø", "ø", "ł", "ő",
         "북", "北", "北京", "평양", "태평양", "노트북", "south", "、"]
JOINS = [" ", " ", " ", "  ", ", ", ". ", "-", "’", "'", " — ", "«", "»", "\u00a0", "_", "\n", "",
         "\u3000", "/", "(", ")"]


def random_text(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(rng.choice(WORDS))
        out.append(rng.choice(JOINS))
    return "".join(out)


def stories(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield (random_text(rng, rng.randint(0, 8)), random_text(rng, rng.randint(0, 25)),
               random_text(rng, rng.randint(0, 60)) if rng.random() < 0.6 else "")


def both(rules):
    return TopicMatcher(rules, engine="hyperscan"), TopicMatcher(rules, engine="python")


@pytest.mark.slow
def test_both_scans_agree_on_texts_built_to_catch_them_apart():
    fast, python = both(RULES)
    assert fast.engine == "hyperscan" and python.engine == "python"
    matched = 0
    for i, story in enumerate(stories(3000, seed=5)):
        expected = python.match(*story)
        assert fast.match(*story) == expected, (i, story)
        matched += bool(expected)
    assert matched > 1000  # the texts do hit the rules


@pytest.mark.slow
def test_both_scans_agree_on_the_benchmark_corpus():
    corpus = Corpus(3)
    rules, about = corpus.topics(60)
    fast, python = both(rules)
    texts = corpus.stories(1500, about)
    assert [fast.match(*s) for s in texts] == [python.match(*s) for s in texts]


REALFEEDS = CORPORA / "realfeeds"


@pytest.mark.skipif(not REALFEEDS.is_dir(), reason="../shared/corpora/realfeeds is absent")
def test_both_scans_agree_on_real_feeds_with_the_seed_rules():
    from pipeline.config import load_topics
    from transforms.fetch import fetch_feed
    from transforms.parse import parse_fetch
    from transforms.records import FeedSource

    seeds = load_topics(str(SEEDS / "topics.yaml"))
    fast, python = both(seeds)
    count = 0
    for path in sorted(REALFEEDS.glob("*.xml")):
        for st in parse_fetch(fetch_feed(FeedSource(str(path)))).stories:
            fields = (st.title, st.summary, st.content)
            kwargs = dict(source=st.source, language=st.language)
            assert fast.match(*fields, **kwargs) == python.match(*fields, **kwargs), (path.name, st.link)
            count += 1
    assert count > 1000


def test_a_field_the_fast_scan_cannot_read_goes_to_the_python_scan():
    # "æ" folds to two letters, "😀" is beyond U+FFFF: both fields are read
    # by the pure-Python scan, with the same offsets.
    fast, python = both(RULES)
    for fields in (("Ærø and Corée", "", ""), ("😀 North Korea 😀 missile launch", "", "")):
        assert fast.match(*fields) == python.match(*fields) != []


def test_unknown_or_missing_engine_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown matcher engine"):
        TopicMatcher(RULES, engine="regex")
    monkeypatch.setattr(hyperscan_scan, "AVAILABLE", False)
    with pytest.raises(RuntimeError, match="hyperscan"):
        TopicMatcher(RULES, engine="hyperscan")
    assert TopicMatcher(RULES).engine == "python"  # auto falls back


def test_a_trailing_wildcard_occurrence_runs_to_the_end_of_its_word():
    # NEAR measures from where an occurrence ends: as the pure-Python scan
    # has it, at the end of the wildcard's word, in UTF-8 and Latin-1 text.
    index = hyperscan_scan.HyperscanIndex([Key(False, ("kim", "jong*"))])
    scan = index.field_scan("Ким: kim jongun и")  # UTF-8: places are characters
    assert scan.occurrences(Key(False, ("kim", "jong*"))) == [(5, 15)]
    scan = index.field_scan("kim jongun et")      # Latin-1: places in the collapsed form
    [(start, end)] = scan.occurrences(Key(False, ("kim", "jong*")))
    assert scan.original_offset(start) == 0 and end - start == len("kim jongun")
