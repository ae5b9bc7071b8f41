"""The benchmark's own correctness: a corpus with the asked shapes, a ground
truth the project's own functions agree with, and no figure for a wrong run.
No speed is asserted anywhere here."""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import corpus, run
from benchmarks.measure import run_measured
from benchmarks.verify import Verdict, check_archive, check_counts, check_stories, pipeline_counts
from pipeline.config import load_topic_definitions
from transforms.dedup import dedup_stories
from transforms.parse import parse_fetch, read_feed
from transforms.records import FetchResult
from transforms.topics import TopicMatcher, tag_story

pytestmark = [pytest.mark.bench]

TOPICS = load_topic_definitions(str(run.TOPICS))
SPEC = corpus.CorpusSpec(entries=3000)


@pytest.fixture(scope="module")
def small_corpus():
    return corpus.build(SPEC, TOPICS)


def parsed_stories(docs):
    now = datetime(2026, 11, 6, tzinfo=timezone.utc)
    stories = []
    for path, data in docs:
        result = parse_fetch(FetchResult(path, f"http://127.0.0.1{path}", 200, {}, data, 0.0, now))
        assert result.ok and not result.dead_letters
        stories += result.stories
    return stories


def test_items_have_real_world_sizes_languages_and_the_asked_shares(small_corpus):
    docs, truth = small_corpus
    entries = [e for _, data in docs for e in read_feed(data, {}).entries]
    assert len(entries) == truth.entries == SPEC.feeds * SPEC.polls * SPEC.items_per_feed
    stories = parsed_stories(docs)
    assert all(60 <= len(s.title) <= 120 for s in stories if not s.title.endswith(")"))
    assert all(200 <= len(s.summary) <= 800 for s in stories)
    content_html = [len(c["value"].encode()) for e in entries for c in e.get("content") or []]
    assert content_html and all(3_000 <= n <= 10_500 for n in content_html)
    assert 0.05 < truth.with_content / truth.entries < 0.15
    assert 0.27 < truth.duplicates / truth.entries < 0.33
    assert all(truth.copies[kind] > 0 for kind in corpus.COPY_KINDS)
    assert 0.03 < truth.expected_rows / truth.originals < 0.07
    assert len(set(truth.matching.values())) >= 5
    assert any(s.content for s in stories) and any(d.endswith(b"</feed>\n") for _, d in docs)


def test_same_seed_same_bytes_other_seed_other_bytes(small_corpus):
    docs, truth = small_corpus
    again, truth_again = corpus.build(SPEC, TOPICS)
    assert again == docs and truth_again.matching == truth.matching
    other, _ = corpus.build(corpus.CorpusSpec(entries=3000, seed=8), TOPICS)
    assert other != docs


def test_ground_truth_is_what_the_project_rules_give(small_corpus):
    docs, truth = small_corpus
    kept, dropped = dedup_stories(parsed_stories(docs))
    matcher = TopicMatcher(TOPICS)
    matching = {s.story_id for s in (tag_story(s, matcher) for s in kept) if s is not None}
    assert dropped == truth.duplicates
    assert len(kept) == truth.originals
    assert matching == set(truth.matching)


def write_archive_rows(folder, ids, titles):
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"story_id": ids, "title": titles}), folder / "run.parquet")


def test_an_archive_that_misses_entries_or_their_titles_is_refused(small_corpus, tmp_path):
    _, truth = small_corpus
    ids = sorted(truth.matching) + [f"other-{i}" for i in range(truth.entries - len(truth.matching))]
    write_archive_rows(tmp_path / "right" / "date=2026-11-06", ids, ["t"] * len(ids))
    write_archive_rows(tmp_path / "short" / "date=2026-11-06", ids[1:], ["t"] * (len(ids) - 1))
    write_archive_rows(tmp_path / "textless" / "date=2026-11-06", ids, [None] * len(ids))

    assert check_archive(Verdict(), str(tmp_path / "right"), truth).ok
    short = check_archive(Verdict(), str(tmp_path / "short"), truth).why()
    assert f"{truth.entries - 1:,} entries archived" in short and "1 matching stories not archived" in short
    assert f"{truth.entries:,} archived entries without their title" in \
        check_archive(Verdict(), str(tmp_path / "textless"), truth).why()
    assert "cannot read the entry archive" in check_archive(Verdict(), str(tmp_path / "none"), truth).why()


@pytest.mark.integration
def test_the_plain_loop_archives_the_entries_the_pipeline_archives(tmp_path):
    from benchmarks import baseline, local
    from benchmarks.served_corpus import served_elsewhere
    from pipeline.cli import main as newswatch
    from transforms.sink import ENTRIES

    truth = corpus.write(corpus.CorpusSpec(entries=1000), TOPICS, str(tmp_path / "corpus"))
    feeds = str(tmp_path / "feeds.txt")
    with served_elsewhere(str(tmp_path / "corpus"), feeds):
        report = baseline.run(feeds, str(run.TOPICS), str(tmp_path / "loop"), parser="auto")
        assert newswatch(["run", "--feeds", feeds, "--topics", str(run.TOPICS), "--output", str(tmp_path / "pipe"),
                          "--runner", "DirectRunner", *local.cli_flags()]) == 0
    columns = ["feed_url", "entry_index", "story_id", "title", "summary", "content", "content_hash"]

    def archived(out):
        table = pq.read_table(str(out / "entries"), columns=columns)
        return sorted(zip(*(table.column(c).to_pylist() for c in columns)))

    loop = archived(tmp_path / "loop")
    assert report["archived"] == len(loop) == truth.entries
    assert loop == archived(tmp_path / "pipe")
    for path in (tmp_path / "loop" / "entries").rglob("*.parquet"):
        assert pq.read_schema(path).remove_metadata() == ENTRIES.schema.remove_metadata()
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert check_archive(Verdict(), str(tmp_path / "loop" / "entries"), truth).ok


def write_stories(path, ids, language="en"):
    table = pa.table({"story_id": ids, "language": [language] * len(ids)})
    pq.write_table(table, path)


def test_a_wrong_output_is_refused_with_the_reason(small_corpus, tmp_path):
    _, truth = small_corpus
    expected = sorted(truth.matching)
    right, short, doubled = tmp_path / "right.parquet", tmp_path / "short.parquet", tmp_path / "dup.parquet"
    write_stories(right, expected)
    write_stories(short, expected[1:])
    write_stories(doubled, expected + expected[:1])

    assert check_stories(Verdict(), str(right), truth).ok
    missing = check_stories(Verdict(), str(short), truth)
    assert not missing.ok and f"{len(expected) - 1:,} rows, expected {len(expected):,}" in missing.why()
    assert "1 expected stories missing" in missing.why()
    assert "written twice" in check_stories(Verdict(), str(doubled), truth).why()
    assert "cannot read stories" in check_stories(Verdict(), str(tmp_path / "none"), truth).why()
    assert "saw 10 entries" in check_counts(Verdict(), truth, 10).why()
    assert "copies" in check_counts(Verdict(), truth, truth.entries, truth.duplicates - 1).why()

    good = run.Result(size=3000, contestant="pipeline", entries=truth.entries, rows=len(expected),
                      wall_s=10.0, cpu_s=9.0, peak_rss=2**28)
    bad = run.Result(size=3000, contestant="baseline", entries=truth.entries, wall_s=1.0, cpu_s=1.0,
                     problems=missing.problems)
    context = {"date": "d", "command": "c", "machine": "m", "load_before": "0", "load_after": "0",
               "corpus": "x", "repeat": 1, "elapsed_s": 60}
    table = run.render([bad, good], None, None, context)
    refused = next(line for line in table.splitlines() if "baseline" in line)
    assert "REFUSED" in refused and "expected" in refused
    assert "1.0" not in refused.split("REFUSED")[1].split(":")[0]  # no figure printed
    assert "300" in next(line for line in table.splitlines() if "in-process" in line)  # 3000/10 s


def test_run_summary_counts_are_read_back():
    summary = ("reconcile: entries 27 = duplicates 3 + unmatched 9 + written 15 + dead-lettered 0 -> ok")
    assert pipeline_counts(summary) == (27, 3, True)
    assert pipeline_counts(summary.replace("-> ok", "-> MISMATCH"))[2] is False
    assert pipeline_counts("nothing") == (None, None, False)


def test_measurement_covers_the_whole_process_tree(tmp_path):
    # A parent that starts a child holding 300 MB: the tree's peak includes it.
    script = ("import subprocess, sys\n"
              "subprocess.run([sys.executable, '-c', "
              "'b = bytearray(300 * 2**20); import time; time.sleep(1.0)'], check=True)\n")
    m = run_measured([sys.executable, "-c", script])
    assert m.returncode == 0
    assert m.peak_rss >= 300 * 2**20
    assert m.peak_processes >= 2
    assert m.cpu_s > 0


def test_bench_end_to_end_on_a_small_corpus(tmp_path, capsys):
    # --compare-with this very checkout: the "other" pipeline row is measured
    # and checked like the others.
    # Two rounds at its one size, the target size (the order of rounds:
    # test_at_the_target_size_the_ratio_contestants_run_in_alternating_rounds).
    code = run.main(["--sizes", "1000", "--skip-fetch", "--results", str(tmp_path), "--components", "parse",
                     "--contestants", "floor,baseline,baseline-fast,pipeline,pipeline-mp", "--compare-with", str(run.ROOT),
                     "--target-repeat", "2"])
    table = capsys.readouterr().out
    assert code == 0, table
    saved = {r["contestant"]: r for r in json.loads((tmp_path / "latest.json").read_text())["results"]}
    assert saved["pipeline"]["runs"] == saved["pipeline-mp"]["runs"] == 2 and saved["floor"]["runs"] == 1
    # this process's CPU (the feed server all fetch from, the sampling) while each contestant runs
    assert all(r["harness_cpu_s"] > 0 for r in saved.values())
    assert "the benchmark's own process (feed server, sampling) took" in table
    for name, label in run.CONTESTANTS.items():
        # --no-clusters runs at the target size (100,000) only, not at 1,000
        assert (label in table) is (name not in run.AT_TARGET_SIZE_ONLY), name
    assert f"other checkout: {run.ROOT}" in table
    assert "REFUSED" not in table and "seed run wall" in table
    assert (tmp_path / "latest.txt").read_text().strip() == table.strip()


def test_compare_with_refuses_a_folder_that_is_not_a_checkout(tmp_path):
    with pytest.raises(SystemExit) as stop:
        run.main(["--sizes", "1000", "--compare-with", str(tmp_path)])
    assert stop.value.code == 2


def test_the_other_checkouts_pipeline_runs_once_whether_or_not_it_is_named():
    assert run.contestant_names("baseline-fast,pipeline", compare=True) == ["baseline-fast", "pipeline", "pipeline-other"]
    assert run.contestant_names("pipeline,pipeline-other", compare=True) == ["pipeline", "pipeline-other"]
    assert run.contestant_names("pipeline,pipeline", compare=False) == ["pipeline"]
    assert run.contestant_names("baseline", compare=True) == ["baseline", "pipeline-other"]


def test_pipeline_other_needs_a_checkout():
    with pytest.raises(SystemExit) as stop:
        run.main(["--sizes", "1000", "--contestants", "pipeline-other"])
    assert stop.value.code == 2


def test_bench_refuses_contestants_that_get_the_answer_wrong(tmp_path, monkeypatch):
    # The corpus is generated for the seed topics; the contestants are given
    # narrower topics, so they write fewer stories than the truth says.
    narrower = tmp_path / "topics.yaml"
    narrower.write_text("topics:\n  - name: dprk\n    query: Pyongyang\n")
    monkeypatch.setattr(run, "TOPICS", narrower)
    results = run.measure_size(1000, ["baseline", "pipeline"], 1, 0.0, str(tmp_path), TOPICS,
                               log=lambda message: None)
    assert [r.ok for r in results] == [False, False]
    assert all("rows, expected" in " ".join(r.problems) for r in results)


def test_at_the_target_size_the_ratio_contestants_run_in_alternating_rounds(tmp_path):
    def order(target: int) -> tuple:
        lines = []
        results = run.measure_size(1000, ["floor", "baseline", "pipeline"], 1, 0.0, str(tmp_path), TOPICS,
                                   log=lines.append, target=target, target_repeat=2)
        ran = [name for line in lines for name, label in run.CONTESTANTS.items()
               if line.startswith(f"{1000:>9,} {label:<32} wall")]
        return ran, [(r.contestant, r.runs, r.ok) for r in results]

    ran, results = order(target=1000)
    assert ran == ["floor", "baseline", "pipeline", "baseline", "pipeline"]   # floor is no ratio's contestant
    assert results == [("floor", 1, True), ("baseline", 2, True), ("pipeline", 2, True)]
    ran, results = order(target=100_000)   # below the target size: once each
    assert ran == ["floor", "baseline", "pipeline"] and [r[1] for r in results] == [1, 1, 1]


def test_a_run_that_would_starve_the_machine_of_memory_is_stopped():
    # Ask for more free memory than the machine has: the first sample stops it.
    m = run_measured([sys.executable, "-c", "import time; time.sleep(30)"],
                     min_free_bytes=10 * 2**50)
    assert m.stopped.startswith("stopped with") and m.returncode == -9  # killed, not finished


@pytest.mark.parametrize("scale, expected", [(["--scale", "large"], "large"), ([], "default")])
def test_scale_sets_the_components_sizes_also_beside_explicit_sizes(tmp_path, monkeypatch, scale, expected):
    # make bench-large: 1,000,000 entries (--sizes) and the seen index at the large scale's size.
    sizes, scales = [], []
    monkeypatch.setattr(run, "measure_size", lambda size, *a, **k: sizes.append(size) or [])
    monkeypatch.setattr(run, "measure_component", lambda name, log, scale: scales.append((name, scale)) or {"error": "not run"})
    run.main([*scale, "--sizes", "1000", "--contestants", "", "--skip-fetch", "--skip-seed", "--huge-items", "0",
              "--components", "seen", "--results", str(tmp_path)])
    assert sizes == [1000] and scales == [("seen", expected)]
    assert run.COMPONENT_SCALES["large"]["seen"]["stories"] == run.SEEN_TARGET_STORIES


def test_a_run_records_the_commit_it_measures(tmp_path, monkeypatch):
    # No user or system git settings (hooks, signing), no checkout above tmp_path.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       check=True, capture_output=True)

    assert run.measured_code(tmp_path) == {}                  # not a checkout
    git("init", "-q")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("# old\n")
    (tmp_path / "benchmarks" / "results" / "latest.json").write_text("{}\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert run.measured_code(tmp_path) == {"commit": head, "uncommitted": False}
    # The results a run writes, the docs made from them, and files git does
    # not track are not the code measured.
    (tmp_path / "benchmarks" / "results" / "latest.json").write_text('{"new": 1}\n')
    (tmp_path / "README.md").write_text("# new\n")
    (tmp_path / "scratch.py").write_text("y = 2\n")
    assert run.measured_code(tmp_path) == {"commit": head, "uncommitted": False}
    (tmp_path / "code.py").write_text("x = 2\n")
    assert run.measured_code(tmp_path) == {"commit": head, "uncommitted": True}


def test_the_table_names_the_code_it_measured():
    from benchmarks import docs_table

    context = {"date": "d", "command": "python -m benchmarks.run", "machine": "m", "load_before": "0",
               "load_after": "0", "corpus": "x", "repeat": 1, "elapsed_s": 60}
    assert "code:" not in run.render([], None, None, context)  # a run that did not record it
    data = {"context": dict(context, code={"commit": "abc1234", "uncommitted": False}), "results": []}
    assert "\ncode: commit abc1234\n" in run.render([], None, None, data["context"])
    assert docs_table.render_table(data).startswith(
        "Measured d with `make bench` (`python -m benchmarks.run`) of commit abc1234, on m.")
    data["context"]["code"]["uncommitted"] = True
    assert "of commit abc1234 with uncommitted changes, on m." in docs_table.render_table(data)
