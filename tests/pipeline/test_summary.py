"""The run summary: counters reconcile, or the run says MISMATCH (and exits 1)."""
from pipeline.summary import RunSummary

BALANCED = {"fetch_attempts": 5, "fetch_ok": 3, "fetch_not_modified": 1, "fetch_failed": 1,
            "feeds_failed": 2, "entries": 10, "duplicates": 2, "unmatched": 3,
            "rows_written_stories": 4, "dead_letters_entries": 1,
            "rows_written_fetches": 5, "rows_written_errors": 3}


def summary(**changes):
    return RunSummary(dict(BALANCED, **changes), "r", "out", 1.0)


def test_balanced_counters_reconcile_on_every_line():
    s = summary()
    assert s.reconciles
    lines = s.render().splitlines()
    assert ("reconcile: entries 10 = duplicates 2 + seen before 0 + unmatched 3 + written 4 + "
            "dead-lettered 1 -> ok") in lines
    assert "reconcile: fetch attempts 5 = ok 3 + not modified 1 + failed 1 -> ok" in lines
    assert "reconcile: fetch rows 5 = attempts 5 + skipped 0 -> ok" in lines
    assert "reconcile: dead letters 3 = failed feeds 2 + failed entries 1 -> ok" in lines


def test_each_kind_of_loss_is_a_mismatch():
    for changes in ({"rows_written_stories": 3},  # an entry vanished
                    {"fetch_ok": 2},  # an attempt ended nowhere
                    {"rows_written_fetches": 4},  # a fetch row is missing
                    {"fetch_skipped": 1},  # a skipped feed left no row
                    {"seen_before": 1},  # an entry counted twice
                    {"rows_written_errors": 4}):  # a dead letter too many
        s = summary(**changes)
        assert not s.reconciles, changes
        assert sum("-> MISMATCH" in line for line in s.render().splitlines()) == 1, changes


def test_the_runs_row_has_a_column_for_every_line_of_the_table():
    import pyarrow as pa

    from pipeline.summary import ROWS, run_row
    from transforms.schema import RUN_COUNTERS, RUNS_SCHEMA

    assert [name for _, name, _ in ROWS] == list(RUN_COUNTERS)
    s = summary(matched_topic_dprk=4, language_en=3, language_ko=1)
    row = run_row(s)
    assert {name: row[name] for name in RUN_COUNTERS} == {name: s.get(name) for name in RUN_COUNTERS}
    assert row["matched_by_topic"] == [("dprk", 4)] and row["stories_by_language"] == [("en", 3), ("ko", 1)]
    assert row["reconciles"] is True and row["mode"] == "batch"
    assert pa.Table.from_pylist([row], schema=RUNS_SCHEMA).num_rows == 1
    assert run_row(summary(rows_written_stories=3))["reconciles"] is False


def test_every_parsed_entry_but_the_dead_lettered_is_archived():
    archived = RunSummary(dict(BALANCED, rows_written_entries=9), "r", "out", 1.0, archive="full")
    assert archived.reconciles
    assert "reconcile: entries archived 9 = entries 10 - dead-lettered 1 -> ok" in archived.render().splitlines()
    for count in (10, 8, 0):  # a dead letter archived too, an entry lost, the archive not written
        s = RunSummary(dict(BALANCED, rows_written_entries=count), "r", "out", 1.0, archive="none")
        assert not s.reconciles, count
        assert sum("-> MISMATCH" in line for line in s.render().splitlines()) == 1, count


def test_with_the_archive_off_nothing_is_archived():
    off = summary()
    assert off.archive is None and off.reconciles
    assert "reconcile: entries archived 0 = archive off 0 -> ok" in off.render().splitlines()
    assert not summary(rows_written_entries=3).reconciles


def test_no_dead_letter_is_still_shown_subtracted():
    s = RunSummary(dict(BALANCED, dead_letters_entries=0, rows_written_errors=2, rows_written_entries=10,
                        unmatched=4), "r", "out", 1.0, archive="full")
    assert s.reconciles
    assert "reconcile: entries archived 10 = entries 10 - dead-lettered 0 -> ok" in s.render().splitlines()
