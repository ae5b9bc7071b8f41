"""The bundled sample: its topic rules cover North Korea in the languages
the news is written in, and `make run` on it gives a meaningful summary."""

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.config import load_topics
from transforms.topics import TopicMatcher

# Every test once with each scan of the matcher (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("matcher_engine")

from tests.support.paths import SEEDS


@pytest.fixture(scope="module")
def matcher():
    return TopicMatcher(load_topics(str(SEEDS / "topics.yaml")))


def topics_of(matcher, title, summary=""):
    return [name for name, _ in matcher.match(title, summary, "")]


# Headlines written for this test, one per language the rules must cover.
MISSILE_HEADLINES = {
    "en": "North Korea test-fires ballistic missile into the sea",
    "ko": "북한, 동해상으로 탄도미사일 발사",
    "ja": "北朝鮮が弾道ミサイルを発射",
    "zh": "朝鲜向东部海域发射一枚弹道导弹",
    "zh-tw": "北韓再度試射彈道飛彈",
    "ru": "КНДР провела испытание баллистической ракеты",
    "fr": "La Corée du Nord a procédé à un tir de missile balistique",
    "de": "Nordkorea feuert erneut ballistische Rakete ab",
    "es": "Corea del Norte lanzó un misil balístico al mar",
    "pt": "Coreia do Norte dispara míssil balístico, diz Seul",
    "it": "La Corea del Nord lancia un missile balistico: test riuscito",
}


@pytest.mark.parametrize("language", sorted(MISSILE_HEADLINES))
def test_north_korean_missile_tests_in_every_language(matcher, language):
    assert topics_of(matcher, MISSILE_HEADLINES[language]) == [
        "dprk", "dprk_mentions", "dprk_missile_tests", "missile_tests"]


@pytest.mark.parametrize("title", [
    "Лидер Северной Кореи Ким Чен Ын посетил завод",  # inflected forms
    "Pjongjang meldet neue Gespräche",                  # no umlaut: accents folded
    "Coréia do Norte anuncia reunião",                   # old Brazilian spelling
    "Les forces nord-coréennes en Russie",
    "Kim Jong Un inspects a factory",
    "N. Korea's Kim Yo-jong warns Seoul",
    "평양에서 김여정 담화 발표",
])
def test_names_and_spellings(matcher, title):
    assert "dprk" in topics_of(matcher, title)


@pytest.mark.parametrize("title", [
    "South Korea and Japan hold talks on trade",
    "Koreans celebrate Chuseok",
    "Japan's Kim family restaurant opens in Seoul",
    "US deploys missile launchers to the Philippines",
    # missile and test, but far apart
    "A missile factory reopened on Monday, officials said, while in the capital thousands of "
    "students sat the national test",
])
def test_what_dprk_or_missile_tests_must_not_match(matcher, title):
    found = topics_of(matcher, title)
    assert "dprk" not in found and "missile_tests" not in found


def test_a_passing_mention_is_a_mention_not_a_story_about_north_korea(matcher):
    passing = "After striding to the rostrum flanked by North Korea's Kim Jong Un and others, Xi spoke."
    in_the_body = matcher.match("How China caught up on AI", "An essay.", passing)
    assert [name for name, _ in in_the_body] == ["dprk_mentions"]
    # in the summary it is prominent enough
    assert topics_of(matcher, "How China caught up on AI", passing) == ["dprk", "dprk_mentions"]
    # three mentions in the body make a story about North Korea
    body = " ".join([passing, "Pyongyang said nothing.", "North Korean media were silent."])
    assert [name for name, _ in matcher.match("How China caught up on AI", "", body)] == [
        "dprk", "dprk_mentions"]


@pytest.mark.slow
def test_make_run_on_the_sample_gives_a_meaningful_summary(tmp_path, capsys):
    code = main(["run", "--feeds", str(SEEDS / "feeds.opml"), "--topics", str(SEEDS / "topics.yaml"),
                 "--output", str(tmp_path / "out"), "--run-id", "seeds", "--runner", "DirectRunner"])
    summary = capsys.readouterr().out
    assert code == 0, summary
    assert ("reconcile: entries 27 = duplicates 3 + seen before 0 + unmatched 9 + written 15 + "
            "dead-lettered 0 -> ok") in summary
    counts = {line.split()[2]: int(line.split()[-1]) for line in summary.splitlines()
              if line.startswith("topics   topic ")}
    assert counts == {"dprk": 14, "dprk_mentions": 14, "dprk_missile_tests": 10, "missile_tests": 11}
    stories = pd.read_parquet(tmp_path / "out" / "stories")
    assert sorted(stories["language"].unique()) == ["en", "fr", "ja", "ko"]
    assert stories["topics_version"].nunique() == 1
    assert all(len(m) > 0 for m in stories["matches"])
