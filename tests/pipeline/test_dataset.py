"""pipeline.dataset, the reader, on real runs: two batch runs on one output
(the bundled seeds from local files, then the sample feeds over HTTP with a
feed that answers 404), read back with every function and argument; files
of schema versions 1 and 2 written beside them; the same output copied to
gs:// and s3:// (the emulators) and read there."""
import json
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import dataset
from pipeline.dataset import LAST_RUN, last_run, read_errors, read_fetches, read_matches, read_stories
from tests.support.feedserver import FeedServer
from tests.support.paths import ROOT, SEEDS
from tests.support.sample import run, serve_sample
from transforms.schema import ERRORS_SCHEMA, FETCHES_SCHEMA, STORIES_SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UTC = timezone.utc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """OUT after run r1 (the seeds: 18 stories on six dates, no errors) and
    run r2 (the sample's feeds and a 404: new stories and a dead letter);
    `healthy` is a copy of OUT after r1; `between` a time between the runs."""
    folder = tmp_path_factory.mktemp("dataset")
    out = folder / "out"
    assert run(SEEDS / "feeds.opml", SEEDS / "topics.yaml", out, "--run-id", "r1") == 0
    healthy = folder / "healthy"
    shutil.copytree(out, healthy)
    between = datetime.now(UTC)
    with FeedServer() as server:
        feeds, topics = serve_sample(server, folder)
        server.add("/gone.xml", "not here", status=404)
        feeds.write_text(feeds.read_text() + server.url("/gone.xml") + "\n")
        assert run(feeds, topics, out, "--run-id", "r2") == 0
    return {"out": out, "healthy": healthy, "between": between, "folder": folder}


def plain(df):
    """Every row as comparable Python values (arrays to lists, NA to None)."""
    return [{k: (list(v) if hasattr(v, "tolist") and not isinstance(v, str) else (None if v is pd.NA else v))
             for k, v in row.items()} for row in df.to_dict("records")]


# --------------------------------------------------------------------------- import


def test_importing_the_reader_and_reading_local_files_does_not_import_beam(world):
    code = ("import sys; from pipeline import dataset; "
            f"n = len(dataset.read_stories({str(world['out'])!r})); "
            "print(n, 'apache_beam' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    count, beam = done.stdout.split()
    assert int(count) == len(pd.read_parquet(world["out"] / "stories")) and beam == "False"
    done = subprocess.run([sys.executable, "-c", "import pipeline.dataset, sys; print('apache_beam' in sys.modules)"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --------------------------------------------------------------------------- stories


def test_stories_have_every_row_the_full_schema_and_a_real_date(world):
    stories = read_stories(world["out"])
    assert len(stories) == len(pd.read_parquet(world["out"] / "stories"))
    assert list(stories.columns) == STORIES_SCHEMA.names + ["date"]
    assert all(type(d) is date for d in stories["date"])
    assert (stories["date"] == stories["published_at"].fillna(stories["fetched_at"]).dt.date).all()
    assert str(stories["published_at"].dtype) == "datetime64[us, UTC]"
    assert str(stories["cluster_size"].dtype) == "Int32"
    # a real date compares with datetime.date, as analysts filter
    assert len(stories[stories["date"] >= date(2021, 9, 29)]) == (stories["date"].astype(str) >= "2021-09-29").sum()
    assert set(stories.run_id) == {"r1", "r2"}


def test_since_and_until_on_published_at_take_whole_days_and_times(world):
    stories = read_stories(world["out"])
    when = stories["published_at"].fillna(stories["fetched_at"])
    days = read_stories(world["out"], since="2021-09-28", until=date(2021, 9, 29))
    assert sorted(days.story_id) == sorted(stories[(when >= "2021-09-28") & (when < "2021-09-30")].story_id)
    assert set(days["date"]) == {date(2021, 9, 28), date(2021, 9, 29)}
    # times: since included, until excluded; naive times are UTC
    start = when[when.dt.date == date(2021, 9, 28)].sort_values().iloc[1].to_pydatetime()
    end = start + timedelta(days=1, hours=3)
    timed = read_stories(world["out"], since=start.replace(tzinfo=None), until=end.isoformat())
    assert sorted(timed.story_id) == sorted(stories[(when >= start) & (when < end)].story_id)
    assert 0 < len(timed) < len(days)
    # a story without a date is in range by the time it was fetched, as its partition
    undated = stories[stories.published_at.isna()]
    assert len(undated) and set(undated.story_id) <= set(read_stories(world["out"], since=undated.fetched_at.min()).story_id)
    assert len(read_stories(world["out"], until="2000-01-01")) == 0
    with pytest.raises(ValueError, match="not a date or time: 'last week'"):
        read_stories(world["out"], since="last week")


def test_since_on_the_run_keeps_what_later_runs_fetched_whatever_its_date(world):
    stories = read_stories(world["out"])
    later = read_stories(world["out"], since=world["between"], on="run")
    assert sorted(later.story_id) == sorted(stories[stories.run_id == "r2"].story_id)
    assert min(later["date"]) < date(2022, 1, 1)        # published long before the run
    earlier = read_stories(world["out"], until=world["between"], on="run")
    assert set(earlier.run_id) == {"r1"} and len(earlier) + len(later) == len(stories)
    with pytest.raises(ValueError, match="on must be"):
        read_stories(world["out"], on="updated_at")


def test_a_range_reads_only_its_partitions(world, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    (out / "stories" / "date=2021-09-25" / "zz-broken-000.parquet").write_bytes(b"not parquet at all")
    (out / "fetches" / "date=2020-01-01").mkdir()
    (out / "fetches" / "date=2020-01-01" / "zz-broken-000.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(pa.ArrowInvalid):
        read_stories(out)                                # the broken file is read when in range
    in_range = read_stories(out, since="2021-09-27")
    assert sorted(in_range.story_id) == sorted(read_stories(world["out"], since="2021-09-27").story_id)
    assert len(read_fetches(out, since="2021-01-01")) == len(read_fetches(world["out"]))
    with pytest.raises(pa.ArrowInvalid):
        read_fetches(out, until="2020-01-02")


def test_topics_keep_stories_that_matched_any_of_them(world):
    stories = read_stories(world["out"])
    has = lambda *names: stories[stories.topics.map(lambda t: bool(set(t) & set(names)))]
    missiles = read_stories(world["out"], topics=["missile_tests"])
    assert 0 < len(missiles) < len(stories)
    assert sorted(missiles.story_id) == sorted(has("missile_tests").story_id)
    assert sorted(read_stories(world["out"], topics="missile_tests").story_id) == sorted(missiles.story_id)
    both = read_stories(world["out"], topics=["missile_tests", "dprk_mentions"])
    assert sorted(both.story_id) == sorted(has("missile_tests", "dprk_mentions").story_id)
    assert len(read_stories(world["out"], topics=["no_such_topic"])) == 0


def test_columns_come_in_the_order_asked_and_unknown_ones_are_refused(world):
    df = read_stories(world["out"], columns=["title", "date", "story_id"], topics=["dprk"])
    assert list(df.columns) == ["title", "date", "story_id"]      # topics filtered without the column
    full = read_stories(world["out"], topics=["dprk"])
    assert plain(df) == plain(full[["title", "date", "story_id"]])
    with pytest.raises(ValueError, match="no column 'headline'"):
        read_stories(world["out"], columns=["title", "headline"])


def test_run_id_one_several_and_the_last_committed_run(world):
    stories = read_stories(world["out"])
    r2 = stories[stories.run_id == "r2"]
    assert len(r2) and sorted(read_stories(world["out"], run_id="r2").story_id) == sorted(r2.story_id)
    assert len(read_stories(world["out"], run_id=["r1", "r2"])) == len(stories)
    assert last_run(world["out"]) == "r2" and last_run(world["healthy"]) == "r1"
    assert sorted(read_stories(world["out"], run_id=LAST_RUN).story_id) == sorted(r2.story_id)
    assert set(read_fetches(world["out"], run_id=LAST_RUN).run_id) == {"r2"}
    assert len(read_stories(world["out"], run_id=[])) == 0


def test_a_run_that_has_not_committed_is_not_the_last_run(world, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    # r2's marker back in place: as if it were still running, or had died
    (out / "_state" / "runs").mkdir(exist_ok=True)
    (out / "_state" / "runs" / "r2.json").write_text(json.dumps({"run_id": "r2", "started_at": None}))
    assert last_run(out) == "r1"
    assert set(read_stories(out, run_id=LAST_RUN).run_id) == {"r1"}
    # a streaming job's latest committed window pane names the job
    seen = pq.read_table(out / "_state" / "seen" / "r1.parquet")
    unit = seen.slice(0, 1).set_column(seen.schema.get_field_index("run_id"), "run_id",
                                       pa.array(["job7-w20261203T101500Z-p0"]))
    unit = unit.set_column(unit.schema.get_field_index("committed_at"), "committed_at",
                           pa.array([datetime.now(UTC)], seen.schema.field("committed_at").type))
    pq.write_table(unit, out / "_state" / "seen" / "job7-w20261203T101500Z-p0.parquet")
    assert last_run(out) == "job7"
    # nothing committed yet: no run, and no rows for LAST_RUN
    (tmp_path / "nothing").mkdir()
    assert last_run(tmp_path / "nothing") is None
    assert len(read_stories(tmp_path / "nothing", run_id=LAST_RUN)) == 0


def test_the_reader_looks_for_the_state_where_the_store_keeps_it():
    from transforms.state import store

    assert dataset.STATE_SEEN == f"{store.STATE_DIR}/{store.SEEN}"
    assert dataset.STATE_RUNS == f"{store.STATE_DIR}/{store.RUNS}"


# --------------------------------------------------------------------------- matches


def test_matches_are_one_row_per_match_with_its_story(world):
    stories = read_stories(world["out"])
    why = read_matches(world["out"])
    assert list(why.columns) == ["story_id", "topic", "term", "field", "offset"]
    assert len(why) == sum(len(m) for m in stories.matches if m is not None) > len(stories)
    for story in stories.itertuples():
        rows = why[why.story_id == story.story_id]
        assert plain(rows.drop(columns="story_id")) == [dict(m) for m in story.matches]
    assert str(why["offset"].dtype) == "Int32"


def test_matches_take_the_story_arguments_and_extra_columns(world):
    stories = read_stories(world["out"], since="2021-09-28", run_id="r1")
    why = read_matches(world["out"], since="2021-09-28", run_id="r1", columns=["title", "date"])
    assert list(why.columns) == ["story_id", "topic", "term", "field", "offset", "title", "date"]
    assert len(why) == sum(len(m) for m in stories.matches)
    title = dict(zip(stories.story_id, stories.title))
    assert (why.title == why.story_id.map(title)).all()
    only = read_matches(world["out"], topics=["missile_tests"])
    assert set(only.topic) == {"missile_tests"}
    assert len(only) == sum(1 for ms in read_stories(world["out"]).matches for m in ms if m["topic"] == "missile_tests")
    later = read_matches(world["out"], since=world["between"], on="run")
    assert set(later.story_id) == set(read_stories(world["out"], run_id="r2").story_id)


# --------------------------------------------------------------------------- fetches and errors


def test_fetches_and_errors_of_a_run_with_a_failing_feed(world):
    fetches = read_fetches(world["out"])
    assert list(fetches.columns) == FETCHES_SCHEMA.names + ["date"]
    assert len(fetches) == len(pd.read_parquet(world["out"] / "fetches"))
    assert str(fetches["status"].dtype) == "Int32" and 404 in set(fetches.status.dropna())
    r2 = read_fetches(world["out"], run_id="r2", columns=["feed_url", "status"])
    assert list(r2.columns) == ["feed_url", "status"] and len(r2) == 3
    assert len(read_fetches(world["out"], since=date.today() - timedelta(days=1))) == len(fetches)
    assert len(read_fetches(world["out"], until="2021-01-01")) == 0
    errors = read_errors(world["out"])
    assert list(errors.columns) == ERRORS_SCHEMA.names + ["date"]
    assert len(errors) == 1 and errors.feed_url.iloc[0].endswith("/gone.xml") and errors.run_id.iloc[0] == "r2"
    assert errors["date"].iloc[0] == errors["occurred_at"].iloc[0].date()
    assert len(read_errors(world["out"], run_id="r1")) == 0
    assert len(read_errors(world["out"], since=world["between"])) == 1
    assert len(read_errors(world["out"], until=world["between"])) == 0


def test_folders_that_do_not_exist_give_empty_frames_of_the_same_columns_and_dtypes(world, tmp_path):
    assert not (world["healthy"] / "errors").exists() or len(read_errors(world["healthy"])) == 0
    (tmp_path / "none").mkdir()  # an output folder nothing has been written to yet
    cases = [(read_errors, world["healthy"]), (read_errors, tmp_path / "none"),
             (read_stories, tmp_path / "none"), (read_fetches, tmp_path / "none"),
             (read_matches, tmp_path / "none")]
    for read, out in cases:
        empty, full = read(out), read(world["out"])
        assert len(empty) == 0 and len(full) > 0
        assert dict(empty.dtypes) == dict(full.dtypes), read.__name__
    # the same when nothing is in range
    assert dict(read_stories(world["out"], until="2000-01-01").dtypes) == dict(read_stories(world["out"]).dtypes)


def test_a_wrong_output_path_is_an_error_not_an_empty_dataset(world, tmp_path, monkeypatch):
    for read in (read_stories, read_fetches, read_errors, read_matches, last_run):
        with pytest.raises(FileNotFoundError, match="no output folder"):
            read(tmp_path / "typo")
    # ~ is the user's home, as in a shell
    monkeypatch.setenv("HOME", str(world["out"].parent))
    assert len(read_stories(f"~/{world['out'].name}")) == len(read_stories(world["out"]))


def test_an_open_ended_range_reads_everything(world):
    everything = read_stories(world["out"])
    assert len(read_stories(world["out"], since=date.min, until=date.max)) == len(everything)
    assert len(read_stories(world["out"], until="9999-12-31")) == len(everything)


# --------------------------------------------------------------------------- schema versions


def _older(table, version, drop, run_id):
    """`table` as a file of an earlier schema version: without `drop`, new ids."""
    schema = pa.schema([f for f in STORIES_SCHEMA if f.name not in drop],
                       metadata={**STORIES_SCHEMA.metadata, b"newswatch.schema_version": version.encode()})
    table = table.select(schema.names).cast(schema)
    ids = pa.array([f"{run_id}-{i}" for i in range(table.num_rows)])
    table = table.set_column(schema.get_field_index("story_id"), schema.field("story_id"), ids)
    return table.set_column(schema.get_field_index("run_id"), schema.field("run_id"),
                            pa.array([run_id] * table.num_rows))


def test_files_of_schema_versions_1_to_4_read_together(world, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    partition = out / "stories" / "date=2021-09-25"
    current = pq.read_table(next(partition.glob("r1-*.parquet")))
    # named to sort first: pyarrow on its own would take the columns of version 1
    pq.write_table(_older(current, "1", {"matches", "topics_version", "cluster_id", "cluster_size", "feed_link"},
                          "v1"), partition / "a-v1-000.parquet")
    pq.write_table(_older(current, "2", {"cluster_id", "cluster_size", "feed_link"}, "v2"),
                   partition / "a-v2-000.parquet")
    pq.write_table(_older(current, "3", {"feed_link"}, "v3"), partition / "a-v3-000.parquet")
    assert "matches" not in pd.read_parquet(out / "stories").columns   # the trap the reader avoids

    stories = read_stories(out).set_index("story_id")
    assert list(stories.columns) == STORIES_SCHEMA.names[1:] + ["date"]
    assert len(stories) == len(read_stories(world["out"])) + 3 * current.num_rows
    v1, v2, v3 = stories.loc["v1-0"], stories.loc["v2-0"], stories.loc["v3-0"]
    assert pd.isna(v1.feed_link) and pd.isna(v3.feed_link) and v3.cluster_size is not pd.NA
    assert v3.url and stories[stories.run_id == "r1"].feed_link.notna().all()
    assert v1.matches is None and pd.isna(v1.topics_version) and v1.cluster_size is pd.NA
    assert len(v2.matches) > 0 and v2.topics_version and pd.isna(v2.cluster_id) and v2.cluster_size is pd.NA
    assert v1.title == v2.title and v1["date"] == date(2021, 9, 25)
    assert str(stories["cluster_size"].dtype) == "Int32"
    why = read_matches(out)
    assert len(why) == sum(len(m) for m in stories.matches if m is not None)
    assert "v1-0" not in set(why.story_id) and "v2-0" in set(why.story_id)
    assert set(read_stories(out, run_id=["v1", "v2", "v3"], since="2021-09-25", until="2021-09-25").run_id) == \
        {"v1", "v2", "v3"}


# --------------------------------------------------------------------------- object stores


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_an_output_on_object_storage_reads_as_on_disk(scheme, request, world):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    FileSystems.set_options(PipelineOptions(store.use_from_beam()))
    root = f"{scheme}://{store.bucket}/dataset-{scheme}/out"
    for path in sorted(world["out"].rglob("*")):
        if path.is_file() and not path.name.startswith("."):     # not the local lease's lock
            with FileSystems.create(f"{root}/{path.relative_to(world['out']).as_posix()}") as handle:
                handle.write(path.read_bytes())
    local = read_stories(world["out"], since="2021-09-28", topics=["dprk"])
    remote = read_stories(root, since="2021-09-28", topics=["dprk"])
    key = lambda df: df.sort_values("story_id").reset_index(drop=True)
    assert len(remote) > 0 and plain(key(remote)) == plain(key(local))
    assert dict(remote.dtypes) == dict(local.dtypes)
    assert len(read_matches(root)) == len(read_matches(world["out"]))
    assert len(read_fetches(root, run_id=LAST_RUN)) == 3 and last_run(root) == "r2"
    assert len(read_errors(root)) == 1 and len(read_errors(f"{root}-nothing-here")) == 0
    # or through a pyarrow filesystem of the analyst's own
    mine = read_stories(root, since="2021-09-28", topics=["dprk"], filesystem=store.arrow_fs())
    assert plain(key(mine)) == plain(key(local))


# --------------------------------------------------------------------------- after compaction


def test_a_compacted_output_reads_the_same_and_prunes_its_month_folders(world, tmp_path):
    from pipeline.compact import compact

    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    report = compact(str(out), before=tomorrow)           # every day closed, today's too
    assert report.files_out > 0
    assert [p.name for p in (out / "fetches").iterdir()] == [f"month={datetime.now(UTC):%Y-%m}"]
    key = lambda df: plain(df.sort_values(list(df.columns[:3])).reset_index(drop=True))
    for read, kwargs in [(read_stories, {}), (read_stories, {"since": "2021-09-27", "until": "2021-09-28"}),
                         (read_stories, {"on": "run", "since": world["between"]}),
                         (read_matches, {"topics": ["dprk"]}), (read_fetches, {}),
                         (read_fetches, {"since": world["between"]}), (read_fetches, {"until": world["between"]}),
                         (read_fetches, {"run_id": LAST_RUN}), (read_errors, {}),
                         (read_errors, {"since": datetime.now(UTC).date()})]:
        assert key(read(out, **kwargs)) == key(read(world["out"], **kwargs)), (read.__name__, kwargs)
    assert read_fetches(out).date.map(type).eq(date).all()
    assert last_run(out) == "r2"
    # a month folder outside the range is not opened
    (out / "fetches" / "month=2020-01").mkdir()
    (out / "fetches" / "month=2020-01" / "compacted-broken.parquet").write_bytes(b"not parquet at all")
    assert len(read_fetches(out, since="2020-02-01")) == len(read_fetches(world["out"]))
    with pytest.raises(pa.ArrowInvalid):
        read_fetches(out, until="2020-02-01")
