"""The retag throughput benchmark's harness (benchmarks/retag_throughput.py)
at a tiny scale: its archive is real entries files and runs/ rows that the
replay accepts, and both modes re-tag every entry into a view."""
import json

import pyarrow.parquet as pq
import pytest

from benchmarks import retag_throughput
from pipeline import dataset
from transforms.schema import ENTRIES_SCHEMA

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_the_generated_archive_is_one_entries_file_and_one_runs_row_per_run(tmp_path):
    counts = retag_throughput.generate(tmp_path / "out", runs=2, entries_per_run=100)
    files = sorted((tmp_path / "out" / "entries").rglob("*.parquet"))
    assert [f.name for f in files] == ["run0000-000.parquet", "run0001-000.parquet"]
    assert pq.read_schema(files[0]).names == ENTRIES_SCHEMA.names
    entries = dataset.read_entries(tmp_path / "out")
    assert len(entries) == counts["entries"] == 200 and entries.title.notna().all()
    assert list(dataset.read_runs(tmp_path / "out").run_id) == ["run0000", "run0001"]


def test_a_tiny_measure_retags_every_run_in_both_modes_and_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(retag_throughput.ROOT))
    result = json.loads(json.dumps(retag_throughput.measure(runs=2, entries_per_run=100, work=tmp_path)))
    assert result["entries"] == 200 and set(result["modes"]) == {"in_process", "multi_processing_2"}
    stories = {m["stories"] for m in result["modes"].values()}
    assert len(stories) == 1 and stories.pop() > 0          # both modes: the same rows
    text = retag_throughput.render(result)
    assert "retag of 200 archived entries in 2 runs" in text and "multi_processing_2" in text


def test_a_kept_archive_can_be_profiled_by_area(tmp_path, monkeypatch, capsys):
    from benchmarks import profile

    monkeypatch.setenv("PYTHONPATH", str(retag_throughput.ROOT))
    work = tmp_path / "kept"
    assert retag_throughput.main(["--runs", "1", "--entries-per-run", "100", "--modes", "in_process",
                                  "--work", str(work)]) == 0
    assert (work / "b.yaml").is_file() and dataset.read_entries(work / "out").shape[0] == 100
    capsys.readouterr()
    assert profile.main(["--retag", str(work), "--top", "0"]) == 0
    printed = capsys.readouterr().out
    assert "CPU by area" in printed and "topic matching" in printed
    assert dataset.read_view(work / "out", "profiled")["runs"] == ["run0000"]
