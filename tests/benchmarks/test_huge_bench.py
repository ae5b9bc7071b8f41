"""The huge-feed row of `make bench` (benchmarks/huge_feed.py, huge_bench.py,
and its row and targets in run.py and docs_table.py). No speed is asserted."""
import copy
import json

import pytest

from benchmarks import docs_table, huge_bench, huge_feed, run
from transforms.parse import parse_fetch
from tests.support.fetched import fetched

pytestmark = [pytest.mark.bench]

CONTEXT = {"date": "d", "command": "c", "machine": "m", "load_before": "0", "load_after": "0",
           "corpus": "x", "repeat": 1, "elapsed_s": 60}
HUGE = {"items": 200_000, "bytes": 120_000_000, "wall_s": 250.0, "cpu_s": 240.0,
        "peak_rss": 600 * 2**20, "rows": 200, "error": ""}
SEED = {"wall_s": 5.0, "cpu_s": 5.0, "peak_rss": 300 * 2**20, "entries": 27, "ok": True, "error": ""}


def test_the_feed_has_the_asked_items_size_and_matching_share(tmp_path):
    feed = huge_feed.write(str(tmp_path / "f.xml"), items=3000)
    body = (tmp_path / "f.xml").read_bytes()
    assert feed.bytes == len(body) and feed.items == 3000 and feed.matching == 3
    result = parse_fetch(fetched(body))
    assert result.ok and len(result.stories) == 3000
    assert all(100 <= len(s.summary) <= 600 and s.published_at and s.guid for s in result.stories)
    assert 500 <= feed.bytes / feed.items <= 700       # 200,000 items: about 120 MB
    again = huge_feed.write(str(tmp_path / "g.xml"), items=3000)
    assert (tmp_path / "g.xml").read_bytes() == body and again.bytes == feed.bytes


def test_the_row_shows_time_memory_and_ratios():
    table = run.render([], None, SEED, CONTEXT, {}, HUGE)
    line = next(l for l in table.splitlines() if l.strip().startswith("huge"))
    assert "200,000-item feed, 120 MB" in line and "250.0" in line and "600 MB" in line
    assert "5.2x the feed" in line and "seed run's + 300 MB" in line
    labels = {label: (value, met) for label, value, _, met in run.targets([], None, SEED, HUGE)}
    assert labels["200,000-item feed (120 MB): wall, every row written"] == ("250 s", "met")
    assert labels["200,000-item feed (120 MB): peak RSS / feed size"] == ("5.2x", "met")


def test_a_wrong_run_gets_no_figures_and_a_missing_row_says_so():
    wrong = dict(HUGE, error="199 rows, expected 200")
    line = next(l for l in run.render([], None, None, CONTEXT, {}, wrong).splitlines() if "huge" in l)
    assert "REFUSED" in line and "199 rows" in line and "250.0" not in line
    assert [t[3] for t in run.targets([], None, None, wrong)] == ["NOT MET: 199 rows, expected 200"]
    absent = run.render([], None, None, CONTEXT, {}, None)
    assert "not measured in this run" in next(l for l in absent.splitlines() if "huge" in l)
    assert run.targets([], None, None, None) == []


def test_docs_table_renders_results_with_and_without_the_row():
    data = docs_table.load()
    older = copy.deepcopy(data)
    older.pop("huge", None)
    assert "not measured in this run" in docs_table.render_table(older)
    newer = dict(copy.deepcopy(data), huge=HUGE)
    assert "5.2x the feed" in docs_table.render_table(newer)
    assert "peak RSS / feed size" in docs_table.render_targets(json.loads(json.dumps(newer)))


@pytest.mark.slow
@pytest.mark.integration
def test_measure_runs_newswatch_and_checks_every_row(tmp_path):
    result = huge_bench.measure(items=2000, work=str(tmp_path))
    assert result["error"] == "" and result["rows"] == 2 and result["items"] == 2000
    assert result["peak_rss"] > 0 and result["wall_s"] > 0
