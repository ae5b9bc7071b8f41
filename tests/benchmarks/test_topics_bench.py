"""The topics benchmark's harness (not its timings): the naive baseline and
the matcher must agree on every sampled story, or no figure is reported."""
import pytest

from benchmarks import topics_bench
from transforms.topics import Topic, TopicMatcher

pytestmark = [pytest.mark.bench]


def test_small_run_agrees_with_the_baseline():
    r = topics_bench.measure(topics=30, stories=300, baseline_sample=100)
    assert r["baseline_sample"] == 100 and r["stories"] == 300
    assert 0 < r["stories_matched"] < 300  # some stories match rules, not all


def test_a_disagreement_is_reported_instead_of_a_figure(monkeypatch):
    monkeypatch.setattr(TopicMatcher, "match", lambda self, *fields: [])
    with pytest.raises(SystemExit, match="disagree"):
        topics_bench.measure(topics=30, stories=300, baseline_sample=100)


def test_a_disagreement_between_the_two_scans_is_reported_instead_of_a_figure(monkeypatch):
    from transforms.topics.scan import hyperscan_scan

    if not hyperscan_scan.AVAILABLE:
        pytest.skip("hyperscan does not import here")
    # A Hyperscan scan that reads every field as empty: it finds nothing.
    real = hyperscan_scan.HyperscanIndex.field_scan
    monkeypatch.setattr(hyperscan_scan.HyperscanIndex, "field_scan", lambda self, text: real(self, ""))
    with pytest.raises(SystemExit, match="scans disagree"):
        topics_bench.measure(topics=30, stories=300, baseline_sample=100, repeat=1)


def test_the_fastest_pass_is_the_figure_and_both_scans_are_timed():
    r = topics_bench.measure(topics=30, stories=300, baseline_sample=50, repeat=2)
    assert len(r["ours_passes_s"]) == len(r["python_passes_s"]) == 2
    assert r["ours_s"] == min(r["ours_passes_s"]) and r["python_s"] == min(r["python_passes_s"])
    assert r["ours_per_s"] == r["stories"] / r["ours_s"]


def test_baseline_understands_the_query_language():
    baseline = topics_bench.RegexPerTermBaseline([
        Topic("phrase", '"north korea"'), Topic("wild", "missil*"), Topic("near", "missile NEAR/2 test"),
        Topic("title", "title:dprk"), Topic("folded", "Corée", fold_accents=True),
        Topic("korean", "북한 NOT 남한"), Topic("edges", "<北>")])
    assert baseline.match("DPRK", "North-Korea: missiles in Coree", "a missile, then a test") == [
        "folded", "near", "phrase", "title", "wild"]
    assert baseline.match("북한의", "", "dprk") == ["korean"]
    assert baseline.match("北, 발사", "", "") == ["edges"] and baseline.match("北京", "", "") == []
