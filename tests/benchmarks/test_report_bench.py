"""The report benchmark (benchmarks/report_build.py): the generated output
reads whole through pipeline.dataset with the real schemas, the report is
built on it, and its results file renders into docs/performance.md's
section. No speed is asserted here."""
import json
from datetime import date

import pytest

from benchmarks import docs_table, report_build
from pipeline import dataset, report

pytestmark = [pytest.mark.bench]


def test_the_generated_output_is_a_month_of_stories_and_fetches_as_runs_write_them(tmp_path):
    counts = report_build.generate(tmp_path / "out", 600)
    stories = dataset.read_stories(tmp_path / "out")
    fetches = dataset.read_fetches(tmp_path / "out")
    assert len(stories) == counts["stories"] == 600 and stories.story_id.is_unique
    assert min(stories["date"]) == date(2026, 3, 1) and max(stories["date"]) == date(2026, 3, 30)
    assert {t for ts in stories.topics for t in ts} == set(report_build.TOPICS)
    assert len(fetches) == counts["fetches"] == report_build.DAYS * report_build.RUNS_PER_DAY * report_build.FEEDS
    assert set(fetches.status.dropna()) == {200, 304, 404, 503}
    matches = dataset.read_matches(tmp_path / "out")
    assert set(matches.story_id) == set(stories.story_id)
    tables = report.build(tmp_path / "out")
    assert len(tables.failing) >= 3 and len(tables.silent) >= 5     # the always-broken and never-writing feeds


@pytest.mark.slow
def test_a_saved_run_renders_as_the_performance_page_section(tmp_path):
    saved = tmp_path / "report_build.json"
    assert report_build.main(["--stories", "400", "--save", str(saved)]) == 0
    result = json.loads(saved.read_text())
    assert result["counts"]["stories"] == 400 and result["target_s"] == 30
    assert set(result["seconds"]) >= {"read", "tables", "html", "csv", "total"}
    text = docs_table.render_report_build({}, path=saved)
    assert "report on 400 stories" in text and "read to page" in text
