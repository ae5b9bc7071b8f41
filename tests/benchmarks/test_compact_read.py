"""The compaction read benchmark's harness (benchmarks/compact_read.py) at a
small scale: what it generates is real output in the current schemas, its
reads count the same rows before and after, and its figures render as
docs/performance.md shows them."""
import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from benchmarks import compact_read
from transforms.schema import FETCHES_SCHEMA, STORIES_SCHEMA

pytestmark = [pytest.mark.bench]


def test_generated_runs_are_one_stories_and_one_fetches_file_each_in_the_real_schemas(tmp_path):
    rows = compact_read.generate(tmp_path / "out", days=1, interval_min=120, feeds=4, stories_per_run=2)
    assert rows == {"stories": 24, "fetches": 48, "files": 24}
    stories = sorted((tmp_path / "out" / "stories").glob("date=*/*.parquet"))
    assert len(stories) == 12 and pq.read_schema(stories[0]).names == STORIES_SCHEMA.names
    fetches = sorted((tmp_path / "out" / "fetches").glob("date=*/*.parquet"))
    assert len(fetches) == 12 and pq.read_schema(fetches[0]).names == FETCHES_SCHEMA.names


def test_a_small_measure_reads_the_same_rows_before_and_after_and_renders(tmp_path):
    result = compact_read.measure(days=2, interval_min=240, repeat=1, work=tmp_path)
    today = datetime.now(timezone.utc).date()
    months = {(today - timedelta(days=n)).strftime("%Y-%m") for n in (1, 2)}
    assert result["files_before"] == 24 and result["files_after"] == 2 + len(months)   # a file a day, a month
    for read in result["reads"].values():
        assert read["rows"] == result["stories"] + result["fetches"] and read["before_s"] > 0
    again = json.loads(json.dumps(result))
    text = compact_read.render(again)
    assert "2 days of a 240-minute schedule: 12 runs" in text and f"files: 24 before, {2 + len(months)} after" in text
    assert all(name in text for name in ("pandas", "reader", "duckdb"))
