"""The bundled sample: its topic rules cover North Korea in the languages
the news is written in, and `make run` on it gives a meaningful summary."""

import contextlib
import io
import itertools

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.config import load_topics
from transforms import sketch
from transforms.cluster import assign_clusters
from transforms.fetch import fetch_feed
from transforms.parse import parse_fetch
from transforms.records import FeedSource
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


# `make run` on the sample, once per matcher engine (the tests below share it).
_RUNS = {}


@pytest.fixture
def seed_run(matcher_engine, tmp_path_factory):
    """(exit code, printed summary, stories read back) of a run on the sample."""
    if matcher_engine not in _RUNS:
        out = tmp_path_factory.mktemp(f"seeds-{matcher_engine}") / "out"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["run", "--feeds", str(SEEDS / "feeds.opml"), "--topics", str(SEEDS / "topics.yaml"),
                         "--output", str(out), "--run-id", "seeds", "--runner", "DirectRunner"])
        stories = pd.read_parquet(out / "stories") if code == 0 else None
        _RUNS[matcher_engine] = (code, printed.getvalue(), stories)
    return _RUNS[matcher_engine]


@pytest.mark.slow
def test_make_run_on_the_sample_gives_a_meaningful_summary(seed_run):
    code, summary, stories = seed_run
    assert code == 0, summary
    assert ("reconcile: entries 32 = duplicates 3 + seen before 0 + unmatched 11 + written 18 + "
            "dead-lettered 0 -> ok") in summary
    counts = {line.split()[2]: int(line.split()[-1]) for line in summary.splitlines()
              if line.startswith("topics   topic ")}
    assert counts == {"dprk": 17, "dprk_mentions": 17, "dprk_missile_tests": 12, "missile_tests": 13}
    assert sorted(stories["language"].unique()) == ["en", "fr", "ja", "ko"]
    assert stories["topics_version"].nunique() == 1
    assert all(len(m) > 0 for m in stories["matches"])


GALLO = "North Korea Dismisses US Calls for Talks"
LEDGER = "https://ledger.example.net/"
LEDGER_REPRINT = "Kim Jong Un Rebuffs Washington, Holds Door Open to Seoul"


@pytest.mark.slow
def test_the_sample_run_clusters_the_edited_reprint_with_the_voa_story(seed_run):
    code, summary, stories = seed_run
    assert code == 0, summary
    (original,) = stories[stories["title"] == GALLO].itertuples()      # VOA and GlobalSecurity: one kept
    (reprint,) = stories[stories["title"] == LEDGER_REPRINT].itertuples()
    # The earlier story is the first member: the cluster is named after it.
    assert original.published_at < reprint.published_at
    assert (original.cluster_id, original.cluster_size) == (original.story_id, 1)
    assert (reprint.cluster_id, reprint.cluster_size) == (original.story_id, 2)
    # A reprint is kept as a story of its own and matches what the original matches.
    assert reprint.story_id != original.story_id
    assert list(reprint.topics) == list(original.topics)
    # That is the sample's only cluster: other outlets' reports of the same
    # events (hypersonic test, Kim's speech, in four languages) stay apart.
    sizes = stories.groupby("cluster_id").size()
    assert sizes.to_dict() == {**{c: 1 for c in stories["cluster_id"] if c != original.story_id},
                               original.story_id: 2}
    assert stories["cluster_id"].notna().all() and stories["cluster_size"].notna().all()
    # README's recipe: stories per topic and day, each cluster counted once.
    per_topic = stories.explode("topics").groupby(["date", "topics"], observed=True)
    by_cluster, by_row = per_topic["cluster_id"].nunique(), per_topic.size()
    assert (by_cluster["2021-09-29", "dprk"], by_row["2021-09-29", "dprk"]) == (4, 5)
    assert (by_cluster.drop("2021-09-29") == by_row.drop("2021-09-29")).all()


@pytest.mark.slow
def test_the_outlets_own_stories_sharing_its_footer_stay_apart(seed_run):
    code, summary, stories = seed_run
    assert code == 0, summary
    ledger = stories[stories["url"].str.startswith(LEDGER)]
    # Of its five items, the reprint and two North Korea stories match the topics;
    # the Singapore and Australian market items do not.
    assert sorted(ledger["title"]) == [
        LEDGER_REPRINT,
        "Pyongyang\u2019s parliament meets as Kim prepares a policy speech",
        "Tokyo protests North Korea\u2019s latest launch, says missile fell outside its waters"]
    own = ledger[ledger["title"] != LEDGER_REPRINT]
    assert (own["cluster_id"] == own["story_id"]).all() and (own["cluster_size"] == 1).all()


def test_the_outlets_footer_would_link_its_stories_if_it_were_not_boilerplate():
    """What the sample's footer tests: the Pacific Ledger's four short items end
    with the same 38-word newsletter pitch, which is most of each one's lead.
    Sketched alone, every pair of them passes for a reprint; sketched as the
    feed document they came in (its boilerplate left out), none does."""
    fetched = fetch_feed(FeedSource(str(SEEDS / "pacific_ledger.xml")))
    stories = parse_fetch(fetched).stories
    assert len(stories) == 5 and stories[0].title == LEDGER_REPRINT
    own = stories[1:]
    alone = [sketch.sketch(sketch.shingles(sketch.clustering_text(s.summary, s.content))) for s in own]
    assert all(sketch.same_story(a, b) for a, b in itertools.combinations(alone, 2))
    assert not any(sketch.same_story(a.sketch, b.sketch) for a, b in itertools.combinations(own, 2))
    clustered = assign_clusters(own)
    assert [s.cluster_size for s in clustered] == [1, 1, 1, 1]
    assert len({s.cluster_id for s in clustered}) == 4
    # The reprint's own lead is untouched by the footer removal.
    assert stories[0].sketch is not None and stories[0].sketch.shingles == sketch.LEAD_SHINGLES
