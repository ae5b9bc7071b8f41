"""The conversion benchmark (benchmarks/convert_speed.py) at a tiny scale: it
times the conversion against the kept reference on the same parsed entries
(after checking they give equal stories), and has its rows in `make bench`. No speed is
asserted here."""
import pytest

from benchmarks import convert_speed, parse_guards, run

pytestmark = [pytest.mark.bench]


def test_both_conversions_are_timed_on_the_same_entries(tmp_path):
    (tmp_path / "a.xml").write_bytes(parse_guards.sample_feed(5))
    r = convert_speed.measure(entries=100, rounds=1, corpus_dir=str(tmp_path))
    assert r["realfeeds"]["entries"] == 5 and r["generated"]["entries"] == 100
    for c in (r["generated"], r["realfeeds"]):
        for key in ("parse_us", "reference_us", "convert_us", "convert_per_s", "ratio"):
            assert c[key] > 0
    assert r["command"] == convert_speed.COMMAND
    lines = run._component_lines({"convert": r})
    assert len(lines) == 2 and all("x the CPU of the reference conversion" in line for line in lines)


def test_without_the_real_feeds_that_part_is_skipped(tmp_path):
    r = convert_speed.measure(entries=100, rounds=1, corpus_dir=str(tmp_path / "absent"))
    assert "skipped" in r["realfeeds"] and "entries" in r["generated"]
    assert "convert" in run.COMPONENTS
