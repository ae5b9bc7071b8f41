"""The parse speed benchmark (benchmarks/parse_speed.py) at a tiny scale: it
measures the three paths on the same documents, checks they agree, and has
its row in `make bench` (benchmarks/run.py). No speed is asserted here."""
import pytest

from benchmarks import parse_guards, parse_speed, run

pytestmark = [pytest.mark.bench]

REFUSED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut</title>'
           b"<item><title>one</title></item><item><title>two")   # not well-formed: feedparser's


def test_the_three_paths_are_measured_on_the_same_documents(tmp_path):
    (tmp_path / "a.xml").write_bytes(parse_guards.sample_feed(5))
    (tmp_path / "b.xml").write_bytes(parse_guards.sample_feed(3))
    (tmp_path / "c.xml").write_bytes(REFUSED)
    (tmp_path / "notes.txt").write_text("not a feed file")
    r = parse_speed.measure(str(tmp_path), rounds=1)
    assert (r["documents"], r["accepted"]) == (3, 2)
    assert r["entries_accepted"] == 8 and r["entries"] == 8 + 2
    for key in ("feedparser_per_s", "fast_per_s", "auto_per_s", "fast_ratio", "auto_ratio"):
        assert r[key] > 0
    assert r["command"] == parse_speed.COMMAND
    (line,) = run._component_lines({"parse_speed": r})
    assert "entries/s with --parser auto" in line and "on the 2 it reads" in line


def test_without_the_corpus_it_is_skipped_not_failed(tmp_path):
    r = parse_speed.measure(str(tmp_path / "absent"))
    assert "skipped" in r and "error" not in r
    assert run._component_lines({"parse_speed": r}) == [f"parse_speed  skipped: {r['skipped']}"]
    assert "parse_speed" in run.COMPONENTS
