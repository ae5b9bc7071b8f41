"""The refactor check (benchmarks/same_rows.py) sees every kind of difference
between two outputs and nothing else."""
from datetime import datetime, timezone

import pandas as pd
import pytest

from benchmarks.same_rows import differences

pytestmark = [pytest.mark.bench]


def write(out, dataset, rows):
    folder = out / dataset / "date=2026-12-03"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "part.parquet")


def story(story_id, title, run_id="a", topics=("dprk",)):
    return {"story_id": story_id, "title": title, "topics": list(topics), "run_id": run_id,
            "fetched_at": datetime.now(timezone.utc)}


def test_outputs_that_differ_only_in_clock_readings_and_order_are_the_same(tmp_path):
    write(tmp_path / "before", "stories", [story("1", "a"), story("2", "b")])
    write(tmp_path / "after", "stories", [story("2", "b", run_id="z"), story("1", "a", run_id="z")])
    assert differences(str(tmp_path / "before"), str(tmp_path / "after")) == []


@pytest.mark.parametrize("after, expected", [
    ([story("1", "a"), story("2", "B")], "stories.title: 1 rows differ, first 'b' -> 'B'"),
    ([story("1", "a"), story("2", "b", topics=())], "stories.topics: 1 rows differ"),
    ([story("1", "a")], "stories: 2 rows -> 1"),
])
def test_a_changed_value_list_or_row_count_is_reported(tmp_path, after, expected):
    write(tmp_path / "before", "stories", [story("1", "a"), story("2", "b")])
    write(tmp_path / "after", "stories", after)
    problems = differences(str(tmp_path / "before"), str(tmp_path / "after"))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_a_dataset_on_one_side_only_is_reported(tmp_path):
    for side in ("before", "after"):
        write(tmp_path / side, "stories", [story("1", "a")])
    write(tmp_path / "after", "errors", [{"stage": "fetch", "reason": "x"}])
    assert differences(str(tmp_path / "before"), str(tmp_path / "after")) == [
        "errors: only after has it"]


def test_empty_datasets_are_the_same_and_the_entry_archive_is_compared(tmp_path):
    # A run without errors writes an errors/ folder with no rows.
    for side in ("before", "after"):
        write(tmp_path / side, "errors", {"stage": pd.Series([], dtype=str), "reason": pd.Series([], dtype=str)})
        write(tmp_path / side, "stories", [story("1", "a")])
    write(tmp_path / "before", "entries", [story("1", "a"), story("2", "b")])
    write(tmp_path / "after", "entries", [story("1", "a"), story("2", "b2")])
    assert differences(str(tmp_path / "before"), str(tmp_path / "after")) == [
        "entries.title: 1 rows differ, first 'b' -> 'b2'"]
