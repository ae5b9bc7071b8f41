"""Measured quality of the bundled `dprk` rule: precision and recall against
hand labels of the real feeds in ../shared/corpora/realfeeds.

The labels (tests/support/dprk_labels.tsv) name entries by feed file and the
link as the feed gives it (`feed_link`; `url` may be the publisher's link);
the publishers' text is read from ../shared at test time. The README reports
the figures this test checks.
"""
import csv

import pytest

from pipeline.config import load_topics
from transforms.fetch import fetch_feed
from transforms.parse import parse_fetch
from transforms.records import FeedSource
from transforms.topics import TopicMatcher, tag_story

from tests.support.paths import CORPORA, ROOT
REALFEEDS = CORPORA / "realfeeds"
LABELS = ROOT / "tests" / "support" / "dprk_labels.tsv"
MIN_PRECISION = MIN_RECALL = 0.95

pytestmark = [pytest.mark.skipif(not REALFEEDS.is_dir(), reason="../shared/corpora/realfeeds is absent"),
              pytest.mark.usefixtures("matcher_engine")]  # each scan of the matcher


def read_labels():
    with open(LABELS, encoding="utf-8") as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        return {(row["file"], row["link"]): row["about_dprk"] == "yes" for row in rows}


@pytest.fixture(scope="module")
def topics_by_entry():
    """(file, link) -> topics of the bundled rules, for every real entry."""
    matcher = TopicMatcher(load_topics(str(ROOT / "seeds" / "topics.yaml")))
    out = {}
    for path in sorted(REALFEEDS.glob("*.xml")):
        for story in parse_fetch(fetch_feed(FeedSource(str(path)))).stories:
            tagged = tag_story(story, matcher)
            out[(path.name, story.feed_link)] = set(tagged.topics) if tagged else set()
    return out


def test_every_entry_is_labelled_and_every_label_is_an_entry(topics_by_entry):
    labels = read_labels()
    assert set(labels) == set(topics_by_entry)
    assert sum(labels.values()) == 7


def test_dprk_precision_and_recall(topics_by_entry):
    labels = read_labels()
    predicted = {key for key, topics in topics_by_entry.items() if "dprk" in topics}
    actual = {key for key, about in labels.items() if about}
    true_positives = len(predicted & actual)
    precision = true_positives / len(predicted)
    recall = true_positives / len(actual)
    assert precision >= MIN_PRECISION, f"false positives: {sorted(predicted - actual)}"
    assert recall >= MIN_RECALL, f"missed: {sorted(actual - predicted)}"


def test_dprk_mentions_is_the_broad_net(topics_by_entry):
    # Every story about North Korea also mentions it; the one that names it
    # only in passing is a mention, not a story about it.
    labels = read_labels()
    mentions = {key for key, topics in topics_by_entry.items() if "dprk_mentions" in topics}
    about = {key for key, is_about in labels.items() if is_about}
    assert about <= mentions
    assert [link for _, link in mentions - about] == ["https://time.com/7358175/china-us-ai-race/"]
