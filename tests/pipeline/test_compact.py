"""`newswatch compact` and `run --compact` (pipeline/compact.py) on real
output: one run of the bundled seeds, its story files split into one file
per story (as drip runs leave them) and fetches spread over two months; the
rows read back through pipeline/dataset.py and plain pandas before and after,
compaction killed (SIGKILL) at each step of its swap, files of schema
versions 1, 2 and 3 in one partition, and the same on gs:// and s3://."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import compact as compaction
from pipeline.dataset import read_entries, read_errors, read_fetches, read_stories
from tests.support.paths import ROOT, SEEDS
from tests.support.sample import run
from transforms.schema import FETCHES_SCHEMA, STORIES_SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UTC = timezone.utc


def _split(out):
    """Each stories file as one file per row, and the fetches file as 40
    files over two months (a 15-minute schedule leaves such folders)."""
    for path in sorted((out / "stories").glob("date=*/*.parquet")):
        table = pq.read_table(path)
        for i in range(table.num_rows):
            pq.write_table(table.slice(i, 1), path.parent / f"drip{i:02d}-000.parquet")
        path.unlink()
    fetches = pq.read_table(next((out / "fetches").glob("date=*/*.parquet")))
    for path in (out / "fetches").glob("date=*/*.parquet"):
        path.unlink()
        path.parent.rmdir()
    for n in range(40):
        when = datetime(2021, 8, 20, 6, tzinfo=UTC) + timedelta(days=n // 2, hours=12 * (n % 2))
        rows = fetches.set_column(fetches.schema.get_field_index("fetched_at"), FETCHES_SCHEMA.field("fetched_at"),
                                  pa.array([when] * fetches.num_rows, FETCHES_SCHEMA.field("fetched_at").type))
        rows = rows.set_column(rows.schema.get_field_index("run_id"), FETCHES_SCHEMA.field("run_id"),
                               pa.array([f"run{n:02d}"] * rows.num_rows))
        folder = out / "fetches" / f"date={when.date().isoformat()}"
        folder.mkdir(exist_ok=True)
        pq.write_table(rows, folder / f"run{n:02d}-000.parquet")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compact")
    out = folder / "out"
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "r1") == 0
    _split(out)
    return out


@pytest.fixture
def out(seeded, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(seeded, copy)
    return copy


def everything(out):
    return {"stories": read_stories(out).sort_values("story_id").reset_index(drop=True),
            "fetches": read_fetches(out).sort_values(["fetched_at", "feed_url", "run_id"]).reset_index(drop=True),
            "errors": read_errors(out).sort_values(["occurred_at", "feed_url"]).reset_index(drop=True)}


def same(before, after):
    for kind in before:
        pd.testing.assert_frame_equal(before[kind], after[kind])


def cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, **kwargs)


def data_files(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")
                  if "_state" not in p.parts)


def sorted_by(meta):
    """The names of the Parquet leaf columns a file's first row group says it is sorted by."""
    sorting = meta.row_group(0).sorting_columns
    assert all(not c.descending and not c.nulls_first for c in sorting)
    return [meta.schema.column(c.column_index).path for c in sorting]


# --------------------------------------------------------------------------- planning


def test_the_plan_takes_closed_days_and_months_and_skips_what_is_compact():
    files = [compaction.SourceFile(p, 1) for p in (
        "date=2021-09-01/a-000.parquet", "date=2021-09-01/b-000.parquet", "date=2021-09-02/compacted-x.parquet",
        "date=2021-09-03/a-000.parquet", "date=2021-09-03/.a.inprogress", "_x/a.parquet")]
    stories = compaction.plan("stories", files, before=date(2021, 9, 3))
    assert [(g.folder, len(g.sources)) for g in stories] == [("date=2021-09-01", 2)]
    fetches = compaction.plan("fetches", files, before=date(2021, 9, 3))
    assert [(g.folder, len(g.sources)) for g in fetches] == [("month=2021-09", 3)]
    done = [compaction.SourceFile("month=2021-09/compacted-y.parquet", 1)]
    assert compaction.plan("fetches", done, before=date(2021, 10, 1)) == []
    assert compaction.folder_span("month=2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert "runs" not in compaction.DAILY_KINDS and set(compaction.kind_schemas()) >= {"stories", "fetches",
                                                                                        "errors"}


# --------------------------------------------------------------------------- compaction


def test_compaction_keeps_every_row_in_one_sorted_file_a_day_and_a_month(out):
    before = everything(out)
    files_before = data_files(out)
    assert len(files_before) > 40
    done = cli("compact", "--output", out)
    assert done.returncode == 0, done.stderr
    assert "compacted" in done.stdout
    same(before, everything(out))
    # plain pandas reads the same stories too
    assert len(pd.read_parquet(out / "stories")) == len(before["stories"])

    today = datetime.now(UTC).date().isoformat()
    for day in (out / "stories").glob("date=*"):
        names = [p.name for p in day.glob("*.parquet")]
        if day.name != f"date={today}":
            assert len(names) == 1 and names[0].startswith("compacted-"), names
            meta = pq.ParquetFile(next(day.glob("*.parquet"))).metadata
            assert sorted_by(meta) == ["published_at", "story_id", "run_id"]
            published = pq.read_table(next(day.glob("*.parquet"))).column("published_at").to_pylist()
            assert [p for p in published if p] == sorted(p for p in published if p)
            assert meta.schema.to_arrow_schema().metadata[b"newswatch.schema_version"] \
                == STORIES_SCHEMA.metadata[b"newswatch.schema_version"]
    months = sorted(p.name for p in (out / "fetches").iterdir())
    assert months == ["month=2021-08", "month=2021-09"]
    assert all(len(list((out / "fetches" / m).glob("*.parquet"))) == 1 for m in months)
    for month in months:
        assert sorted_by(pq.read_metadata(next((out / "fetches" / month).glob("*.parquet")))) \
            == ["fetched_at", "feed_url", "run_id"]
    assert set(read_fetches(out, since="2021-09-03", until="2021-09-03").run_id) == {"run28", "run29"}
    assert not list((out / "_state").glob("compact/*.json"))

    files_after = data_files(out)
    again = cli("compact", "--output", out)
    assert again.returncode == 0 and "compacted 0 files" in again.stdout
    assert data_files(out) == files_after                  # idempotent: nothing rewritten


def test_a_run_with_compact_compacts_after_it_commits(tmp_path):
    out = tmp_path / "out"
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "r1", "--compact") == 0
    today = datetime.now(UTC).date().isoformat()
    closed = [d for d in (out / "stories").glob("date=*") if d.name != f"date={today}"]
    assert closed and all([p.name[:10] for p in d.glob("*.parquet")] == ["compacted-"] for d in closed)
    assert len(read_stories(out)) == 18
    # Its rows now sit in compacted files a re-run cannot replace: re-running
    # it would write them twice, so it is refused before any fetch.
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "r1") == 2
    assert len(read_stories(out)) == 18
    assert compaction.files_holding_run(str(out), "r1")
    assert compaction.files_holding_run(str(out), "r2") == []
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "r2") == 0


def _streaming_job_files(out):
    """Run r9's marker open, as a streaming job's (or a killed run's) is, and
    three of its story files in closed days: one of a window unit it
    committed, one of a window unit it did not, one batch file of its own.
    Returns (committed, uncommitted) paths."""
    from transforms.state.recovery import story_seen_records
    from transforms.state.store import StateStore

    drips = sorted((out / "stories" / "date=2021-09-29").glob("drip*.parquet"))
    done = out / "stories" / "date=2021-09-29" / "r9-w20210929T000000Z-p0-000.parquet"
    open_window = out / "stories" / "date=2021-09-29" / "r9-w20210929T010000Z-p0-000.parquet"
    own = out / "stories" / "date=2021-09-28" / "r9-000.parquet"
    for source, target in zip(drips, (done, open_window)):
        source.rename(target)
    sorted((out / "stories" / "date=2021-09-28").glob("drip*.parquet"))[0].rename(own)
    store = StateStore(str(out))
    now = datetime.now(UTC)
    store.commit("r9-w20210929T000000Z-p0", now, story_seen_records(pq.read_table(done).to_pylist()), [], now,
                 timedelta(days=30))
    store.open_run("r9", now)
    return done, [open_window, own]


def test_compaction_leaves_the_uncommitted_story_files_of_an_open_run_and_refuses_a_held_lease(out):
    from transforms.state.lease import Lease

    committed, uncommitted = _streaming_job_files(out)
    before = everything(out)
    # An open marker alone is no refusal: the files recovery reads by name stay.
    done = cli("compact", "--output", out)
    assert done.returncode == 0, done.stderr
    same(before, everything(out))
    assert all(p.exists() for p in uncommitted) and not committed.exists()
    assert [p.name[:10] for p in committed.parent.glob("*.parquet")].count("compacted-") == 1
    assert (out / "_state" / "runs" / "r9.json").exists()

    lease = Lease(str(out), "r9").acquire()       # the job runs on this host and holds the lease
    try:
        files = data_files(out)
        held = cli("compact", "--output", out)
        assert held.returncode == 2 and len(held.stderr.strip().splitlines()) == 1
        assert "r9" in held.stderr and "--force" in held.stderr and data_files(out) == files
        # A file that arrived since: --force merges it beside the job, never its open windows.
        late = out / "stories" / "date=2021-09-25" / "drip99-000.parquet"
        shutil.copyfile(next((out / "stories" / "date=2021-09-30").glob("*.parquet")), late)
        before = everything(out)
        forced = cli("compact", "--output", out, "--force")
        assert forced.returncode == 0, forced.stderr
        same(before, everything(out))
        assert not late.exists() and all(p.exists() for p in uncommitted)
    finally:
        lease.release()


@pytest.mark.parametrize("step", compaction.STEPS)
def test_compaction_killed_at_each_step_leaves_every_row_and_a_rerun_finishes(out, tmp_path, step):
    before = everything(out)
    signal_file = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "compact", "--output", str(out)], cwd=ROOT,
                            env={**os.environ, "NEWSWATCH_PAUSE_AT": step, "NEWSWATCH_PAUSE_SIGNAL": str(signal_file)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "compaction never reached " + step
            time.sleep(0.1)
        same(before, everything(out))                   # read while it is paused mid-swap
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    same(before, everything(out))
    assert len(pd.read_parquet(out / "stories")) >= len(before["stories"])  # never fewer, even for pandas
    rerun = cli("compact", "--output", out)
    assert rerun.returncode == 0, rerun.stderr
    same(before, everything(out))
    assert not list((out / "_state").glob("compact/*.json"))
    assert not [p for p in out.rglob(".compacted-*")]
    assert len(pd.read_parquet(out / "stories")) == len(before["stories"])
    assert cli("compact", "--output", out).stdout.strip().endswith("compacted 0 files into 0 (0 rows, 0 partitions)")


def _kill_at(out, step, signal_file, *extra):
    """A compaction of `out` SIGKILLed once it reaches `step`."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "compact", "--output", str(out), *extra], cwd=ROOT,
                            env={**os.environ, "NEWSWATCH_PAUSE_AT": step, "NEWSWATCH_PAUSE_SIGNAL": str(signal_file)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "compaction never reached " + step
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


# One story of the seeds (on 2021-09-27, the first closed day it touches, where
# the full topics keep four): run r1 with it, then again with the full topics.
NARROW_TOPICS = "topics:\n  - name: darpa\n    query: 'DARPA'\n"


def _narrow_run_killed_after_its_manifest(out, tmp_path):
    topics = tmp_path / "narrow.yaml"
    topics.write_text(NARROW_TOPICS)
    assert run(SEEDS / "feeds.opml", topics, out, "--run-id", "r1") == 0
    narrow = read_stories(out)
    assert set(narrow.date.astype(str)) >= {"2021-09-27"} and "2021-09-25" not in set(narrow.date.astype(str))
    _kill_at(out, compaction.MANIFESTED, tmp_path / "paused")
    assert list((out / "_state").glob("compact/*.json")) and list(out.rglob(".compacted-*"))
    return narrow


def test_a_killed_swap_whose_sources_a_rerun_replaced_keeps_the_new_rows(tmp_path):
    out, full = tmp_path / "out", tmp_path / "full"
    narrow = _narrow_run_killed_after_its_manifest(out, tmp_path)
    # What a re-run of r1 with the full topics leaves: its files, under the same names.
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", full, "--run-id", "r1") == 0
    for path in full.rglob("*.parquet"):
        if "_state" not in path.parts:
            (out / path.relative_to(full)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / path.relative_to(full))
    expected = read_stories(full)
    assert len(expected) > len(narrow)
    done = cli("compact", "--output", out)
    assert done.returncode == 0, done.stderr
    # the stale merged file (one story of 2021-09-27) is dropped, not published over the four
    assert sorted(read_stories(out).story_id) == sorted(expected.story_id)
    assert not list((out / "_state").glob("compact/*.json")) and not list(out.rglob(".compacted-*"))


def test_a_rerun_finishes_a_killed_swap_first_and_then_refuses(tmp_path):
    out = tmp_path / "out"
    narrow = _narrow_run_killed_after_its_manifest(out, tmp_path)
    rerun = cli("run", "--feeds", SEEDS / "feeds.opml", "--topics", SEEDS / "topics.yaml", "--output", out,
                "--run-id", "r1", "--runner", "DirectRunner", "--allow-private-addresses")
    assert rerun.returncode == 2 and len(rerun.stderr.strip().splitlines()) == 1, rerun.stderr
    assert "compacted into" in rerun.stderr and "new run id" in rerun.stderr
    assert sorted(read_stories(out).story_id) == sorted(narrow.story_id)
    assert not list((out / "_state").glob("compact/*.json")) and not list(out.rglob(".compacted-*"))


def _older(table, version, drop, prefix):
    schema = pa.schema([f for f in STORIES_SCHEMA if f.name not in drop],
                       metadata={**STORIES_SCHEMA.metadata, b"newswatch.schema_version": version.encode()})
    table = table.select(schema.names).cast(schema)
    ids = pa.array([f"{prefix}-{i}" for i in range(table.num_rows)])
    return table.set_column(schema.get_field_index("story_id"), schema.field("story_id"), ids)


def test_a_partition_of_schema_versions_1_2_and_3_compacts_to_the_current_schema(out):
    partition = out / "stories" / "date=2021-09-25"
    current = pa.concat_tables([pq.read_table(p) for p in sorted(partition.glob("*.parquet"))])
    pq.write_table(_older(current, "1", {"matches", "topics_version", "cluster_id", "cluster_size"}, "v1"),
                   partition / "a-v1-000.parquet")
    pq.write_table(_older(current, "2", {"cluster_id", "cluster_size"}, "v2"), partition / "a-v2-000.parquet")
    before = read_stories(out, since="2021-09-25", until="2021-09-25").sort_values("story_id")
    assert cli("compact", "--output", out).returncode == 0
    (merged,) = partition.glob("*.parquet")
    table = pq.read_table(merged)
    assert table.schema.names == STORIES_SCHEMA.names and table.num_rows == 3 * current.num_rows
    after = read_stories(out, since="2021-09-25", until="2021-09-25").sort_values("story_id")
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    rows = after.set_index("story_id")
    assert rows.loc["v1-0"].matches is None and len(rows.loc["v2-0"].matches) > 0


def test_a_column_the_current_schema_lacks_is_never_dropped(out):
    partition = out / "stories" / "date=2021-09-25"
    first = next(partition.glob("*.parquet"))
    table = pq.read_table(first)
    pq.write_table(table.append_column("from_the_future", pa.array(["x"] * table.num_rows)),
                   partition / "future-000.parquet")
    done = cli("compact", "--output", out)
    assert done.returncode == 0 and "from_the_future" in done.stdout
    assert (partition / "future-000.parquet").exists() and not list(partition.glob("compacted-*"))


def test_the_entry_archive_compacts_a_day_a_file_full_and_identity_only_runs_together(out):
    # r1 archived its entries' text; r2, over the same feeds, identities only
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "r2", "--archive-text", "none") == 0
    order = ["run_id", "feed_url", "entry_index"]
    before = read_entries(out).sort_values(order).reset_index(drop=True)
    assert set(before.run_id) == {"r1", "r2"} and len(before) == 2 * 32
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert cli("compact", "--output", out, "--before", tomorrow.isoformat()).returncode == 0
    (day,) = (out / "entries").iterdir()
    assert day.name.startswith("date=")                      # a day a file, like stories
    (merged,) = day.glob("*.parquet")
    assert merged.name.startswith("compacted-")
    assert sorted_by(pq.read_metadata(merged)) == ["fetched_at", "feed_url", "entry_index", "story_id", "run_id"]
    after = read_entries(out).sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    text = after.set_index("run_id")[["title", "summary", "content"]]
    assert text.loc["r1"].notna().all().all() and text.loc["r2"].isna().all().all()
    today = day.name[len("date="):]
    pd.testing.assert_frame_equal(
        read_entries(out, since=today, until=today).sort_values(order).reset_index(drop=True), after)


# --------------------------------------------------------------------------- object stores


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_compaction_on_object_storage(scheme, request, seeded):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.paths import list_files

    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    FileSystems.set_options(PipelineOptions(store.use_from_beam()))
    root = f"{scheme}://{store.bucket}/compact-{scheme}/out"
    for path in sorted(seeded.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            with FileSystems.create(f"{root}/{path.relative_to(seeded).as_posix()}") as handle:
                handle.write(path.read_bytes())
    before = everything(seeded)
    report = compaction.compact(root)
    assert report.files_out > 0 and report.rows == len(before["stories"]) - _today_rows(seeded) \
        + len(before["fetches"])
    same(before, everything(root))
    months = {p.split("/fetches/", 1)[1].split("/")[0] for p in list_files(root, "fetches", "*", "*.parquet")}
    assert months == {"month=2021-08", "month=2021-09"}
    assert not list_files(root, "_state", "compact", "*")
    assert compaction.compact(root).files_in == 0


def _today_rows(out):
    today = out / "stories" / f"date={datetime.now(UTC).date().isoformat()}"
    return sum(pq.read_metadata(p).num_rows for p in today.glob("*.parquet"))


def test_bad_arguments_are_one_line_and_exit_2(out, capsys):
    from pipeline.cli import main

    assert main(["compact", "--output", str(out), "--before", "yesterday"]) == 2
    assert main(["run", "--feeds", str(SEEDS / "feeds.opml"), "--topics", str(SEEDS / "topics.yaml"),
                 "--output", str(out), "--compact", "--every", "60"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "YYYY-MM-DD" in errors[0] and "newswatch compact" in errors[1]


def test_a_missing_output_is_one_line_and_exit_2_and_nothing_is_created(tmp_path):
    typo = tmp_path / "typo"
    done = cli("compact", "--output", typo)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"no output at {typo}" in done.stderr and "compacted" not in done.stdout
    assert not typo.exists()


def test_a_missing_output_on_s3_is_refused_before_the_lease(s3):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.paths import list_files

    FileSystems.set_options(PipelineOptions(s3.use_from_beam()))
    root = f"s3://{s3.bucket}/compact-typo/out"
    with pytest.raises(compaction.CompactRefused, match="no output at"):
        compaction.compact(root)
    assert list_files(f"s3://{s3.bucket}/compact-typo", "**") == []


@pytest.mark.parametrize("step", [compaction.PUBLISHED])   # every step on local disk above
def test_compaction_killed_on_s3_reads_whole_and_a_rerun_finishes(step, s3, seeded, tmp_path):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.paths import list_files

    beam_args = s3.use_from_beam()
    FileSystems.set_options(PipelineOptions(beam_args))
    root = f"s3://{s3.bucket}/compact-killed-{step}/out"
    for path in sorted(seeded.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            with FileSystems.create(f"{root}/{path.relative_to(seeded).as_posix()}") as handle:
                handle.write(path.read_bytes())
    before = everything(seeded)
    signal_file = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "compact", "--output", root, *beam_args], cwd=ROOT,
                            env={**os.environ, "NEWSWATCH_PAUSE_AT": step, "NEWSWATCH_PAUSE_SIGNAL": str(signal_file)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "compaction never reached " + step
            time.sleep(0.1)
        same(before, everything(root))     # mid-swap: a merged file beside its sources reads once
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    same(before, everything(root))
    rerun = cli("compact", "--output", root, *beam_args)
    assert rerun.returncode == 0, rerun.stderr
    same(before, everything(root))
    assert not list_files(root, "_state", "compact", "*")
    assert "compacted 0 files" in cli("compact", "--output", root, *beam_args).stdout


@pytest.mark.parametrize("quiet", [False, True])
def test_a_long_compaction_prints_progress_lines_unless_quiet(out, quiet):
    # A tiny interval stands in for a compaction that takes longer than the default 5 s.
    done = cli("compact", "--output", out, *(["--quiet"] if quiet else []),
               env={"NEWSWATCH_PROGRESS_INTERVAL": "0.000001"})
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("newswatch compact:")]
    if quiet:
        assert lines == []
        return
    assert lines and lines[-1].startswith("newswatch compact: done:"), done.stderr
    files_in, rows = (int(n.replace(",", "")) for n in
                      re.search(r"compacted (\d+) files into \d+ \(([\d,]+) rows", done.stdout).groups())
    assert f"{files_in:,} files" in lines[-1] and f"{rows:,} rows" in lines[-1], (lines[-1], done.stdout)
