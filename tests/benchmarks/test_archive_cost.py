"""The archive cost benchmark's harness (benchmarks/archive_cost.py) at a tiny
scale: three real runs of the pipeline over one generated corpus, each
checked (stories right, every entry archived or none), and figures that
agree with the files the runs wrote and render as docs/performance.md shows
them (never its timings)."""
import json

import pytest

from benchmarks import archive_cost, run
from benchmarks.docs_table import render_archive_cost

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_a_tiny_measure_checks_its_runs_and_reports_disk_and_cpu(tmp_path):
    result = archive_cost.measure(entries=200, repeat=1, work=str(tmp_path / "work"), log=lambda line: None)
    assert "error" not in result, result.get("error")
    assert result["entries"] == 200 and set(result["cpu_s"]) == {"off", "full", "none"}
    assert all(result["cpu_s"][name] > 0 for name in result["cpu_s"])
    full, none = result["archive_bytes"]["full"], result["archive_bytes"]["none"]
    assert full > none > 0                                   # identities only is smaller
    assert result["bytes_per_100k"] == {"full": round(full * 500), "none": round(none * 500)}
    assert result["cpu_ratio"]["full"] == round(result["cpu_s"]["full"] / result["cpu_s"]["off"], 3)
    if result["real_feeds"] is not None:                     # ../shared/corpora present
        real = result["real_feeds"]["bytes_per_100k"]
        assert real["full"] > real["none"] > 0

    saved = tmp_path / "archive_cost.json"
    saved.write_text(json.dumps(result))
    text = archive_cost.render(json.loads(saved.read_text()))
    assert "--no-archive" in text and "--archive-text none" in text and "disk per 100,000 entries" in text
    assert f"{result['cpu_ratio']['full']:.2f}x" in text and "target: CPU with the archive" in text
    section = render_archive_cost({}, saved)
    assert "python -m benchmarks.archive_cost --entries 200 --repeat 1" in section and text in section
    # as a component of make bench: a line of the table and a target
    assert "archive" in run.COMPONENTS
    (line,) = run._component_lines({"archive": result})
    assert f"CPU {result['cpu_ratio']['full']:.2f}x with the archive on vs off" in line
    (target,) = [t for t in run.targets([], None, None, None, {"archive": result}) if "archive" in t[0]]
    assert target[1] == f"{result['cpu_ratio']['full']:.2f}x" and target[2] == "<= 1.15x"


def test_a_wrong_run_gives_no_figures():
    assert archive_cost.render({"error": "full: 10 entries archived, expected 200"}).startswith(
        "entry archive: REFUSED")
    assert not archive_cost.met({"error": "x"})


@pytest.mark.parametrize("variants", ["off,fulll", "off,none", "bogus"])
def test_variants_unknown_or_without_full_stop_before_any_run(variants, capsys):
    with pytest.raises(SystemExit) as stop:
        archive_cost.main(["--entries", "200", "--variants", variants])
    assert stop.value.code == 2
    assert "--variants" in capsys.readouterr().err


def test_a_result_without_the_archive_run_renders_and_is_not_met():
    # what a measure() without "full" returns: the figures are still shown
    result = {"entries": 200, "documents": 2, "corpus_bytes": 10**6, "repeat": 1,
              "cpu_s": {"off": 2.0, "none": 2.1}, "wall_s": {"off": 3.0, "none": 3.1},
              "peak_rss": {"off": 2**28, "none": 2**28}, "bytes_per_100k": {"none": 2**20},
              "cpu_ratio": {"none": 1.05}, "target_cpu_ratio": 1.15,
              "rss_ratio": {"none": 1.0}, "target_rss_ratio": 1.3, "real_feeds": None}
    text = archive_cost.render(result)
    assert "--archive-text none" in text and "1.05x" in text and "targets: not measured" in text
    assert not archive_cost.met(result)
