"""The syndication-cluster evaluation (benchmarks/cluster_set.py,
cluster_eval.py) and the cluster index benchmark (cluster_bench.py): the
set is built as described, the scoring scores right, the new clustering
meets its precision target on the set, and the harnesses refuse a wrong
answer. The set is built from ../shared/corpora (skipped without it)."""
import csv
import json
import re

import pytest

from benchmarks import cluster_bench, cluster_eval, cluster_set, docs_table, run
from tests.support.paths import CORPORA
from transforms.sketch import clustering_text
from transforms.state.cluster_index import ClusterIndex

pytestmark = [pytest.mark.bench]

needs_corpora = pytest.mark.skipif(not (CORPORA / "realfeeds").is_dir(),
                                   reason="../shared/corpora is not there (a fresh clone)")


@pytest.fixture(scope="module")
def evalset():
    if not (CORPORA / "realfeeds").is_dir():
        pytest.skip("../shared/corpora is not there (a fresh clone)")
    return cluster_set.build()


@pytest.fixture(scope="module")
def measured(evalset):
    return cluster_eval.measure(evalset=evalset)


# -- the scores themselves (no corpus needed) ---------------------------------------
def test_adjusted_rand_index_and_pairs_on_small_cases():
    # Hubert and Arabie's ARI, as in the literature's worked example
    assert cluster_eval.adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert cluster_eval.adjusted_rand_index([0, 0, 1, 1], ["b", "b", "a", "a"]) == 1.0
    s = cluster_eval.scores(cluster_eval.pair_counts(["x", "x", "x", "y"], [1, 1, 2, 2]))
    assert (s["pairs_together"], s["pairs_right"], s["gold_pairs"]) == (2, 1, 3)
    assert s["precision"] == 0.5 and s["recall"] == pytest.approx(1 / 3)


def test_false_merges_are_counted_within_a_group_only():
    gold = ["a", "b", "c", "d"]
    pred = [1, 1, 1, 2]
    assert cluster_eval.false_merges_within(["doc1", "doc1", "doc2", "doc1"], gold, pred) == 1
    assert cluster_eval.false_merges_within([None, None, None, None], gold, pred) == 0


# -- the set -------------------------------------------------------------------------
@needs_corpora
def test_the_set_holds_real_feeds_reprints_and_hard_negatives(evalset):
    d = evalset.describe()
    assert d["real_items"] > 1200 and d["real_documents"] >= 40
    assert d["synthetic_items"] > 800 and d["synthetic_documents"] == len(cluster_set.OUTLETS) + 2
    assert d["real_reprint_clusters"] == 7             # every labelled wire story has 2+ real copies
    assert d["hard_negative_events"] >= 8 and d["hard_negative_pairs"] > 50
    assert d["summary_only_items"] > 500 and d["full_text_items"] > 500
    docs = evalset.documents()
    assert all(len(items) <= cluster_set.MAX_ITEMS for items in docs.values())
    footer = [evalset.items[i] for i in docs[cluster_set.STRESS_OUTLET.name]]
    assert len(footer) == 50 and len({item.gold for item in footer}) == 50
    assert all(cluster_set.STRESS_OUTLET.footer in item.story.summary for item in footer)
    # full text where the feed carries content:encoded; a full-text outlet's
    # reprints carry the body (cut or not) and the outlet's footer
    by_doc = {item.document: item.full_text for item in evalset.items}
    assert by_doc["time__world.xml"] and not by_doc["japantoday__world.xml"]
    courier = cluster_set.OUTLETS[0]
    assert courier.full_text and by_doc[courier.name]
    edited = [evalset.items[i] for i in docs[courier.name] if evalset.items[i].origin == "reprint"]
    assert edited and all(clustering_text(item.story.summary, item.story.content).endswith(courier.footer)
                          for item in edited)


@needs_corpora
def test_a_reprint_keeps_its_originals_gold_story_and_event(evalset):
    first = {}
    for item in evalset.items:
        if item.origin == "real":
            first.setdefault(item.gold, item)
    reprints = [item for item in evalset.items if item.origin != "real"]
    assert all(item.gold in first and item.event == first[item.gold].event for item in reprints)
    trimmed = [item.edits["kept"] for item in reprints if item.edits.get("kept", 1.0) < 1.0]
    assert trimmed and 0.3 <= min(trimmed) and max(trimmed) <= 0.9


@needs_corpora
def test_the_labels_file_holds_ids_and_links_not_publisher_text(evalset):
    rows = cluster_set.read_labels()
    assert {r["feed"] for r in rows} <= {p.name for p in (CORPORA / "realfeeds").glob("*.xml")}
    texts = " ".join(f"{item.story.title} {item.story.summary} {item.story.content}".casefold()
                     for item in evalset.items if item.origin == "real")
    for row in rows:
        words = re.findall(r"\w+", row["note"].casefold())
        for i in range(len(words) - 4):
            assert " ".join(words[i:i + 5]) not in texts, row["note"]


def test_a_label_that_matches_no_item_is_an_error(tmp_path):
    if not (CORPORA / "realfeeds").is_dir():
        pytest.skip("../shared/corpora is not there (a fresh clone)")
    feeds = tmp_path / "realfeeds"
    feeds.mkdir()
    (feeds / "npr__world.xml").write_bytes((CORPORA / "realfeeds" / "npr__world.xml").read_bytes())
    labels = tmp_path / "labels.tsv"
    with open(labels, "w", newline="") as handle:
        out = csv.writer(handle, delimiter="\t")
        out.writerow(["feed", "key", "cluster", "event", "note"])
        out.writerow(["npr__world.xml", "https://www.npr.org/no-such-story", "x:y", "y", "stale"])
    with pytest.raises(ValueError, match="no item for 1 rows"):
        cluster_set.build(realfeeds=feeds, labels=labels)


# -- scoring the set -------------------------------------------------------------------
@needs_corpora
def test_a_perfect_clustering_scores_one_and_splitting_everything_finds_no_pair(evalset):
    gold = [item.gold for item in evalset.items]
    perfect = cluster_eval.evaluate(evalset, gold)
    assert perfect["all"]["ari"] == 1.0 and perfect["all"]["precision"] == perfect["all"]["recall"] == 1.0
    assert perfect["boilerplate_merges"] == perfect["same_event_merges"] == 0
    assert perfect["real_reprint_pairs"]["found"] == perfect["real_reprint_pairs"]["of"] > 0
    alone = cluster_eval.evaluate(evalset, list(range(len(gold))))
    assert alone["all"]["recall"] == 0.0 and alone["all"]["ari"] == 0.0
    assert alone["mixed_pairs"]["recall"] == 0.0
    one = cluster_eval.evaluate(evalset, [0] * len(gold))
    assert one["all"]["recall"] == 1.0 and one["all"]["precision"] < 0.01
    assert one["boilerplate_merges"] > 1000 and one["same_event_merges"] == \
        evalset.describe()["hard_negative_pairs"]


@needs_corpora
def test_the_new_clustering_meets_its_precision_target_on_the_set(measured):
    new, base = measured["methods"]["new"], measured["methods"]["minhash"]
    assert new["all"]["precision"] >= cluster_eval.TARGET_PRECISION
    assert new["summary_only"]["precision"] >= cluster_eval.TARGET_PRECISION
    assert new["full_text"]["precision"] >= cluster_eval.TARGET_PRECISION
    assert new["footer_outlet_merges"] == 0 and new["same_event_merges"] == 0
    # the footer outlet is a real test: plain MinHash-LSH links its stories
    assert base["footer_outlet_merges"] > 50
    # and the new clustering finds what exact dedup does not
    assert new["all"]["recall"] > 2 * measured["methods"]["dedup"]["all"]["recall"]
    assert new["real_reprint_pairs"]["found"] > measured["methods"]["dedup"]["real_reprint_pairs"]["found"]
    assert {t["label"] for t in measured["targets"]} == {
        "ARI gain over plain MinHash-LSH", "pairwise precision", "boilerplate merges"}
    # the figures written for the docs hold no publisher text: only numbers and our labels
    text = json.dumps(measured)
    assert "japantoday.com" not in text and "Hezbollah" not in text


@needs_corpora
def test_two_runs_that_disagree_with_one_are_refused(evalset, monkeypatch):
    # An index that finds nothing: the second run's reprints of the first's
    # stories start clusters of their own, and the harness says so.
    monkeypatch.setattr(ClusterIndex, "candidates", lambda self, keys, values: [])
    with pytest.raises(SystemExit, match="two-run clustering differs"):
        cluster_eval.measure(evalset=evalset)


def test_the_baseline_is_plain_minhash_lsh_on_whole_texts():
    from transforms.records import Story

    def story(title, summary):
        return Story(story_id=title, url=None, canonical_url=None, guid=None, title=title,
                     summary=summary, content="")

    text = ("The harbour authority said the cargo ship ran aground on a sandbank two miles off the "
            "coast after losing power during a gale on Monday night, and all crew were rescued.")
    # 33 words with the title's two: 29 word 5-shingles
    assert len(cluster_eval.baseline_shingles(story("Ship aground", text))) == 29
    items = [cluster_set.Item(story(t, s), g, "d", False, "real") for t, s, g in (
        ("Ship aground", text, "a"), ("Freighter stranded", text + " Read more.", "a"),
        ("Museum theft", "Thieves broke into the museum and took three paintings on Sunday night.", "b"))]
    labels = cluster_eval.minhash_lsh(cluster_set.EvalSet(items, 0, 0))
    assert labels[0] == labels[1] != labels[2]


# -- the cluster index benchmark (make bench's "clusters" row) ---------------------------
def test_the_cluster_bench_loads_the_index_in_a_fresh_process_and_checks_its_answers():
    r = cluster_bench.measure(stories=3000, new=40, runs=3)
    assert r["remembered"] == r["stories"] == 3000 and 0 < r["clustered_stories"] < 3000
    assert r["joined"] == r["new_reprints"] == 12 and r["alone"] == 28
    assert r["index_mb"] > 0 and r["load_peak_rss_mb"] >= r["rss_loaded_mb"] > 0 and r["lookup_us"] > 0
    line = run._component_lines({"clusters": r})[0]
    assert "cluster index, 3,000 stories" in line and "us a new story" in line


def test_the_cluster_bench_refuses_a_wrong_answer(monkeypatch):
    real = cluster_bench.new_stories

    def misled(rng, written, count):
        probes = real(rng, written, count)
        probes["expected"] = ["no-such-cluster" if e else e for e in probes["expected"]]
        return probes

    monkeypatch.setattr(cluster_bench, "new_stories", misled)
    with pytest.raises(SystemExit, match="no figure reported"):
        cluster_bench.measure(stories=1000, new=20, runs=2)


def test_clustering_cost_is_a_target_of_make_bench():
    on = run.Result(size=100_000, contestant="pipeline", entries=100_000, cpu_s=110.0)
    off = run.Result(size=100_000, contestant="pipeline-no-clusters", entries=100_000, cpu_s=100.0)
    rows = {label: (value, met) for label, value, _, met in run.targets([on, off], None, None)}
    assert rows["pipeline CPU per entry, clustering on / off"] == ("1.10x", "met")
    off.cpu_s = 80.0
    rows = {label: (value, met) for label, value, _, met in run.targets([on, off], None, None)}
    assert rows["pipeline CPU per entry, clustering on / off"] == ("1.38x", "NOT MET")
    assert run.clusters_cpu_ratio([on]) is None
    assert "pipeline-no-clusters" in run.CONTESTANTS and "clusters" in run.COMPONENTS


def test_the_docs_section_of_the_evaluation_is_rewritten_where_its_markers_are(tmp_path, monkeypatch):
    result = {"date": "2000-01-01 00:00 UTC",
              "set": dict.fromkeys(["items", "gold_stories", "gold_stories_with_copies", "gold_pairs", "seed",
                                    "real_items", "real_documents", "real_reprint_clusters",
                                    "hard_negative_events", "hard_negative_pairs", "synthetic_items",
                                    "base_stories", "synthetic_documents", "verbatim_copies",
                                    "summary_only_items", "full_text_items"], 1),
              "sketch": {"SHINGLE": 5, "MAX_TOKENS": 160, "BOILERPLATE_MIN_ITEMS": 2, "BOILERPLATE_SHARE": 0.01,
                         "LEAD_SHINGLES": 40, "NUM_PERM": 64, "BANDS": 32, "ROWS": 2,
                         "MIN_CONTAINMENT": 0.5, "MIN_SHARED": 6.0},
              "baseline": {"shingle": 5, "num_perm": 128, "threshold": 0.5},
              "methods": {}, "reprint_recall": {}, "targets": []}
    part = {"ari": 0.5, "precision": 1.0, "recall": 0.5}
    for name in cluster_eval.METHODS:
        result["methods"][name] = {"all": part, "summary_only": part, "full_text": part, "real_feeds": part,
                                   "mixed_pairs": {"precision": 1.0, "recall": 0.5},
                                   "boilerplate_merges": 0, "same_event_merges": 0, "footer_outlet_merges": 0,
                                   "real_reprint_pairs": {"found": 1, "of": 2}}
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps(result))
    monkeypatch.setitem(docs_table.OPTIONAL_SECTIONS, "cluster-eval",
                        (lambda data: docs_table.render_cluster_eval(data, path), path))
    data = {"context": {"date": "2000-01-01 00:00 UTC", "command": "python -m benchmarks.run",
                        "machine": "m", "load_before": "0", "load_after": "0", "corpus": "c", "repeat": 1,
                        "other": "", "elapsed_s": 1.0}, "results": [], "components": {}}
    required = ("<!-- bench-table:begin -->\n<!-- bench-table:end -->\n"
                "<!-- bench-targets:begin -->\n<!-- bench-targets:end -->\n")
    page = required + "<!-- cluster-eval:begin -->\nOLD TABLE\n<!-- cluster-eval:end -->\n"
    updated = docs_table.rewrite(page, data)
    assert "OLD TABLE" not in updated and "plain MinHash-LSH (baseline)" in updated
    assert "benchmarks/results/clusters.json" in updated and docs_table.rewrite(updated, data) == updated
    assert "cluster-eval" not in docs_table.rewrite(required, data)     # no markers: left alone
