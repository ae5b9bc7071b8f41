"""Sink stage: Hive-partitioned Parquet that pandas reads back whole."""
import os
import zlib
from datetime import datetime, timezone

import apache_beam as beam
import pytest
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.records import FetchLogRow, Match, Story
from transforms.schema import STORIES_DATASET_SCHEMA, STORIES_SCHEMA, partition_date
from transforms.sink import FETCHES, STORIES, WritePartitions, to_row, write_parquet_atomically

UTC = timezone.utc


def make_story(i, published):
    # Stories carry from none to many explained matches (a NOT-only rule
    # matches with none).
    matches = [Match("dprk", "DPRK", "title", k) for k in range(i % 4)]
    return Story(story_id=f"id{i:03d}", url=f"https://e.org/{i}", canonical_url=f"https://e.org/{i}",
                 guid=None, title=f"T{i}", summary="s", content="", authors=["A", "B"], tags=[],
                 published_at=published, updated_at=None,
                 fetched_at=datetime(2021, 9, 30, 12, tzinfo=UTC), feed_url="f", topics=["dprk"],
                 matched_terms=["DPRK"], matches=matches, topics_version="0123456789abcdef",
                 language="en", content_hash="h", run_id="r1")


STORIES_IN = [make_story(i, datetime(2021, 9, 28 + i % 2, 5, tzinfo=UTC)) for i in range(10)] + \
    [make_story(99, None)]  # no date: partitioned by fetched_at


def write(records, out, kind, run_id, shards=1):
    with TestPipeline(runner="DirectRunner") as p:
        p | beam.Create(records) | WritePartitions(str(out), kind, run_id, shards)


def test_partition_date_is_the_utc_date():
    from datetime import timedelta
    assert partition_date(datetime(2021, 9, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5)))) == "2021-09-30"
    assert partition_date(datetime(1969, 12, 31, tzinfo=UTC)) == "1969-12-31"
    assert partition_date(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01"


def test_stories_land_in_date_partitions_that_pandas_reads_with_dtypes(tmp_path):
    write(STORIES_IN, tmp_path, STORIES, "r1")
    dirs = sorted(os.listdir(tmp_path / "stories"))
    assert dirs == ["date=2021-09-28", "date=2021-09-29", "date=2021-09-30"]
    df = pd.read_parquet(tmp_path / "stories")
    assert len(df) == 11
    assert list(df.columns[:-1]) == STORIES_SCHEMA.names and df.columns[-1] == "date"
    assert str(df["published_at"].dtype) == "datetime64[us, UTC]"
    assert str(df["fetched_at"].dtype) == "datetime64[us, UTC]"
    row = df.set_index("story_id").loc["id099"]
    assert pd.isna(row["published_at"]) and str(row["date"]) == "2021-09-30"
    assert list(df.set_index("story_id").loc["id001", "authors"]) == ["A", "B"]
    assert list(df.set_index("story_id").loc["id001", "topics"]) == ["dprk"]


def test_explained_matches_and_rule_version_read_back_for_every_row(tmp_path):
    many = [make_story(i, datetime(2021, 9, 28, tzinfo=UTC)) for i in range(300)]
    write(many + STORIES_IN, tmp_path, STORIES, "r1", shards=2)
    df = pd.read_parquet(tmp_path / "stories").set_index("story_id")
    assert len(df) == 311  # id000..id009 and id099 appear in both lists under the same id
    assert set(df["topics_version"]) == {"0123456789abcdef"}
    assert [dict(m) for m in df.loc["id003", "matches"].iloc[0]] == [
        {"topic": "dprk", "term": "DPRK", "field": "title", "offset": k} for k in range(3)]
    assert len(df.loc["id004", "matches"].iloc[0]) == 0
    table = pq.read_table(next((tmp_path / "stories").rglob("*.parquet")))
    assert table.schema.field("matches").type == STORIES_SCHEMA.field("matches").type
    assert str(table.schema.field("matches").type) == (
        "list<element: struct<topic: string, term: string, field: string, offset: int32>>")


def test_files_are_named_by_run_and_a_second_run_adds_instead_of_overwriting(tmp_path):
    write(STORIES_IN, tmp_path, STORIES, "run-1")
    write(STORIES_IN, tmp_path, STORIES, "run-2")
    names = sorted(os.listdir(tmp_path / "stories" / "date=2021-09-28"))
    assert names == ["run-1-000.parquet", "run-2-000.parquet"]
    assert len(pd.read_parquet(tmp_path / "stories")) == 22


def test_no_temporary_file_is_left_and_rows_are_sorted(tmp_path):
    write(STORIES_IN, tmp_path, STORIES, "r", shards=3)
    for folder, _, files in os.walk(tmp_path / "stories"):
        for name in files:
            assert not name.startswith("."), name
            ids = pq.read_table(os.path.join(folder, name)).column("story_id").to_pylist()
            assert ids == sorted(ids)
    assert len(pd.read_parquet(tmp_path / "stories")) == 11


def test_atomic_write_replaces_a_file_of_the_same_run(tmp_path):
    import pyarrow as pa
    path = str(tmp_path / "stories" / "date=2021-09-28" / "r-000.parquet")
    write_parquet_atomically(path, pa.table({"x": [1, 2]}))
    write_parquet_atomically(path, pa.table({"x": [3]}))
    assert pq.read_table(path).column("x").to_pylist() == [3]
    assert os.listdir(os.path.dirname(path)) == ["r-000.parquet"]


def test_fetch_log_rows(tmp_path):
    rows = [FetchLogRow(feed_url="u", final_url="u", status=200, bytes=10, elapsed_s=0.5,
                        entry_count=3, error=None, fetched_at=datetime(2021, 9, 30, tzinfo=UTC), run_id="r")]
    write(rows, tmp_path, FETCHES, "r")
    df = pd.read_parquet(tmp_path / "fetches")
    assert df.loc[0, "entry_count"] == 3 and df.loc[0, "status"] == 200


def test_removing_a_run_deletes_its_files_and_temporaries_and_nothing_else(tmp_path):
    import pyarrow as pa
    from transforms.sink import remove_run_files

    table = pa.table({"x": [1]})
    keep = [tmp_path / "stories" / "date=2021-09-28" / name
            for name in ("r-2-000.parquet", "r2-000.parquet", "other-000.parquet")]
    gone = [tmp_path / "stories" / "date=2021-09-28" / "r-000.parquet",
            tmp_path / "errors" / "date=2030-01-01" / "r-001.parquet"]
    for path in keep + gone:
        write_parquet_atomically(str(path), table)
    temporary = tmp_path / "fetches" / "date=2021-09-28" / f".r-000.parquet.{'a' * 32}.inprogress"
    temporary.parent.mkdir(parents=True)
    temporary.write_bytes(b"half a file")

    removed = remove_run_files(str(tmp_path), "r")

    assert sorted(removed) == sorted(str(p) for p in gone + [temporary])
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone + [temporary])
    assert remove_run_files(str(tmp_path / "nothing-here"), "r") == []


def test_a_folder_mixing_schema_versions_reads_whole(tmp_path):
    # A run written before `matches` and `topics_version` existed, beside a new one.
    old_schema = pa.schema([f for f in STORIES_SCHEMA if f.name not in ("matches", "topics_version")])
    old_rows = [{**to_row(make_story(i, None), old_schema), "story_id": f"old{i}"} for i in range(3)]
    path = tmp_path / "stories" / "date=2021-09-01" / "old-000.parquet"
    write_parquet_atomically(str(path), pa.Table.from_pylist(old_rows, schema=old_schema))
    write(STORIES_IN, tmp_path, STORIES, "new")
    assert len(pd.read_parquet(tmp_path / "stories")) == 14  # every row, whatever the first file
    df = pd.read_parquet(tmp_path / "stories", schema=STORIES_DATASET_SCHEMA).set_index("story_id")
    assert len(df) == 14 and str(df.loc["old0", "date"]) == "2021-09-01"
    assert df.loc["old0", "matches"] is None and len(df.loc["id003", "matches"]) == 3
    assert df.loc["id003", "topics_version"] == "0123456789abcdef"


def test_removing_a_run_deletes_its_runs_row_and_nothing_else(tmp_path):
    from transforms.sink import remove_run_files, run_row_path

    table = pa.table({"x": [1]})
    mine = run_row_path(str(tmp_path), "r", "2021-09-28")
    others = [run_row_path(str(tmp_path), name, "2021-09-28") for name in ("r-2", "r2")]
    for path in [mine, *others]:
        write_parquet_atomically(path, table)
    assert remove_run_files(str(tmp_path), "r") == [mine]
    assert not os.path.exists(mine) and all(os.path.exists(p) for p in others)


def test_empty_schema_files_only_where_a_folder_has_none(tmp_path):
    from transforms.schema import ERRORS_DATASET_SCHEMA, FETCHES_SCHEMA
    from transforms.sink import ensure_schema_files

    rows = [FetchLogRow(feed_url="u", final_url="u", status=None, bytes=0, elapsed_s=0.5, entry_count=0,
                        error="timeout: timed out", fetched_at=datetime(2021, 9, 30, tzinfo=UTC), run_id="r",
                        error_category="timeout")]
    write(rows, tmp_path, FETCHES, "r")
    written = ensure_schema_files(str(tmp_path), "r", "2021-10-01")
    assert written == [str(tmp_path / "errors" / "date=2021-10-01" / "r-000.parquet")]
    errors = pd.read_parquet(tmp_path / "errors")
    assert len(errors) == 0 and list(errors.columns) == ERRORS_DATASET_SCHEMA.names
    fetches = pd.read_parquet(tmp_path / "fetches")
    assert list(fetches.columns) == FETCHES_SCHEMA.names + ["date"] and len(fetches) == 1
    assert str(fetches["status"].dtype) == "Int32" and fetches.loc[0, "error_category"] == "timeout"
    assert ensure_schema_files(str(tmp_path), "r2", "2021-10-02") == []


def test_a_compacted_month_file_counts_as_a_schema_file(tmp_path):
    from transforms.schema import ERRORS_SCHEMA, FETCHES_SCHEMA
    from transforms.sink import ensure_schema_files

    for kind, schema in (("errors", ERRORS_SCHEMA), ("fetches", FETCHES_SCHEMA)):
        folder = tmp_path / kind / "month=2021-09"
        folder.mkdir(parents=True)
        pq.write_table(schema.empty_table(), folder / "compacted-0123.parquet")
    assert ensure_schema_files(str(tmp_path), "r3", "2021-10-03") == []
    assert not list(tmp_path.glob("*/date=*"))


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_empty_files_and_the_run_row_on_object_storage(scheme, request):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.dataset import read_errors, read_runs
    from transforms.sink import ensure_schema_files, write_run_row

    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    FileSystems.set_options(PipelineOptions(store.use_from_beam()))
    out = f"{scheme}://{store.bucket}/health-{scheme}/out"
    assert len(ensure_schema_files(out, "r", "2021-10-01")) == 2
    assert ensure_schema_files(out, "r2", "2021-10-01") == []      # the listing sees them
    row = {"run_id": "r", "started_at": datetime(2021, 10, 1, 9, tzinfo=UTC),
           "finished_at": datetime(2021, 10, 1, 9, 1, tzinfo=UTC), "entries": 7, "reconciles": True}
    path = write_run_row(out, row)
    assert path == f"{out}/runs/date=2021-10-01/r.parquet"
    runs = read_runs(out)
    assert list(runs["run_id"]) == ["r"] and runs.loc[0, "entries"] == 7
    assert len(read_errors(out)) == 0


def _old_file_rows(records, kind):
    """A file's rows as a sort of the records by kind.sort_key gives them."""
    return pa.Table.from_pylist([to_row(r, kind.schema) for r in sorted(records, key=kind.sort_key)],
                                schema=kind.schema).to_pylist()


def test_arrow_sort_gives_the_order_of_the_sort_key_for_every_kind():
    from datetime import timedelta

    from transforms.records import DeadLetter
    from transforms.sink import ENTRIES, ERRORS, sort_order

    plus_two = timezone(timedelta(hours=2))
    feeds = ["https://b.example/", "https://a.example/z", "https://a.example/\u00e9", "https://a.example/\U0001f600"]
    entries = [Story(story_id=f"s{(i * 7) % 5}", url="u", canonical_url="u", guid=None, title="t",
                     summary="", content="", feed_url=feeds[i % 4], entry_index=(i * 3) % 4,
                     # the same instant written in two offsets sorts as one
                     fetched_at=(datetime(2021, 9, 30, 12, i % 3, tzinfo=UTC) if i % 2 else
                                 datetime(2021, 9, 30, 14, i % 3, tzinfo=plus_two)))
               for i in range(40)]
    errors = [DeadLetter(stage=["parse_entry", "fetch"][i % 2], feed_url=feeds[i % 3],
                         reason=f"r{i % 2}", excerpt=str(i), occurred_at=datetime(2021, 9, 30, tzinfo=UTC),
                         entry_key=[None, "", "k", "\u00e9"][(i // 2) % 4])
              for i in range(40)]   # null and "" entry keys tie, as in the sort key: input order decides
    fetches = [FetchLogRow(feed_url=feeds[i % 4], final_url="u", status=200, bytes=1, elapsed_s=0.1,
                           entry_count=i, error=None, fetched_at=datetime(2021, 9, 30, i % 5, tzinfo=UTC))
               for i in range(40)]
    for kind, records in ((ENTRIES, entries), (ERRORS, errors), (FETCHES, fetches), (STORIES, STORIES_IN[::-1])):
        table = pa.Table.from_pylist([to_row(r, kind.schema) for r in records], schema=kind.schema)
        assert table.take(sort_order(table, kind)).to_pylist() == _old_file_rows(records, kind), kind.name


def test_a_file_larger_than_a_batch_is_written_in_row_groups_with_the_rows_sorted(tmp_path):
    # Rows reach the writer in Arrow batches and leave it a row group at a
    # time: many batches and row groups must give the rows, and the order, of
    # one sort of every record.
    stories = [make_story(i, datetime(2021, 9, 28 + i % 2, 5, tzinfo=UTC)) for i in range(250)][::-1]
    with TestPipeline(runner="DirectRunner") as p:
        p | beam.Create(stories) | WritePartitions(str(tmp_path), STORIES, "r", shards=2,
                                                  batch_rows=7, row_group_rows=10)
    files = sorted(str(path) for path in (tmp_path / "stories").glob("date=*/*.parquet"))
    assert len(files) == 4
    for path in files:
        date = path.split("date=")[1][:10]
        shard = int(path[-11:-8])
        expected = [s for s in stories if partition_date(s.published_at) == date
                    and zlib.crc32(repr(s.story_id).encode()) % 2 == shard]
        parquet = pq.ParquetFile(path)
        assert parquet.metadata.num_row_groups == -(-len(expected) // 10) > 1
        assert pq.read_table(path).to_pylist() == _old_file_rows(expected, STORIES)
        assert parquet.schema_arrow.metadata == STORIES_SCHEMA.metadata


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path):
    from transforms.sink import write_row_groups_atomically

    def refuse():
        raise RuntimeError("lease lost")

    path = str(tmp_path / "stories" / "date=2021-09-28" / "r-000.parquet")
    table = pa.table({"x": [1, 2]})
    with pytest.raises(RuntimeError, match="lease lost"):
        write_row_groups_atomically(path, table.schema, [table, table], before_publish=refuse)
    assert os.listdir(os.path.dirname(path)) == []
    write_row_groups_atomically(path, table.schema, [table, table])
    assert pq.read_table(path).column("x").to_pylist() == [1, 2, 1, 2]
    assert pq.ParquetFile(path).metadata.num_row_groups == 2


def test_a_run_whose_lease_was_taken_over_publishes_no_file(tmp_path):
    # The fence inside the writer, end to end: a run frozen past its lease's
    # TTL, whose lease another run then took, must fail at its first file and
    # leave neither the file nor its temporary in the partition.
    import threading

    from transforms.state.lease import Lease, LeaseLost

    held = Lease(str(tmp_path), "held", ttl_s=3600).acquire()
    with TestPipeline(runner="DirectRunner") as p:   # a lease still held: the files appear
        p | beam.Create(STORIES_IN) | WritePartitions(str(tmp_path), STORIES, "r", lease=held.handle())
    assert len(list((tmp_path / "stories").glob("date=*/r-000.parquet"))) == 3
    held.release()

    frozen = Lease(str(tmp_path), "frozen", ttl_s=1).acquire()
    threading.Event().wait(1.2)                      # no heartbeat: past its TTL
    Lease(str(tmp_path), "next").acquire()
    with pytest.raises(Exception) as failure:
        with TestPipeline(runner="DirectRunner") as p:
            p | beam.Create(STORIES_IN) | WritePartitions(str(tmp_path), STORIES, "r2", lease=frozen.handle())
    assert isinstance(failure.value, LeaseLost) or "LeaseLost" in str(failure.value)
    left = [path.name for path in (tmp_path / "stories").rglob("*") if path.is_file()]
    assert sorted(left) == ["r-000.parquet"] * 3     # the first run's files only: no r2 file, no temporary


def test_row_groups_of_a_groups_messages_are_the_rows_of_one_sort():
    # A group comes as the IPC messages it was sent in (some empty): cut
    # into row groups of any size, its rows must be those of one take of
    # the sorted whole, in order.
    import random

    from transforms.sink import ENTRIES, rows_to_ipc, sort_order, sorted_row_groups

    rng = random.Random(7)
    feeds = [f"https://f{i}.example/" for i in range(9)]
    records = [Story(story_id=f"s{rng.randrange(50)}", url="u", canonical_url="u", guid=None,
                     title=f"t{i}", summary="x" * rng.randrange(30), content="", feed_url=rng.choice(feeds),
                     entry_index=rng.randrange(6), fetched_at=datetime(2021, 9, 30, rng.randrange(3), tzinfo=UTC))
               for i in range(500)]
    sizes = [0, 37, 1, 0, 120, 200, 142, 0]
    messages, at = [], 0
    for size in sizes:
        messages.append(rows_to_ipc(records[at:at + size], ENTRIES.schema))
        at += size
    whole = pa.Table.from_pylist([to_row(r, ENTRIES.schema) for r in records], schema=ENTRIES.schema)
    expected = whole.take(sort_order(whole, ENTRIES)).to_pylist()
    for group_rows in (7, 64, 499, 500, 1000):
        groups = list(sorted_row_groups(messages, ENTRIES, group_rows))
        assert [g.num_rows for g in groups][:-1] == [group_rows] * (len(groups) - 1)
        assert all(g.schema == ENTRIES.schema for g in groups)
        assert [row for g in groups for row in g.to_pylist()] == expected, group_rows
    assert list(sorted_row_groups([messages[0]], ENTRIES, 7)) == []
    assert list(sorted_row_groups([], ENTRIES, 7)) == []


def test_a_group_is_written_holding_one_row_group_twice_at_most_decompressed(tmp_path):
    # The writer never decompresses a whole group (a day of archived text):
    # Arrow's peak while writing every row group stays under three row
    # groups' worth (one as read and one sorted, plus the Parquet writer's
    # and one joined column's), where reading the group whole and sorting it
    # holds ten (the whole table) at least.
    import random

    from transforms.sink import ENTRIES, rows_to_ipc, sorted_row_groups, write_row_groups_atomically

    rng = random.Random(3)
    records = [Story(story_id=f"s{i}", url="u", canonical_url="u", guid=None, title=f"t{i}",
                     summary="".join(rng.choice("abcdefgh ") for _ in range(400)),
                     content="".join(rng.choice("xyz ") for _ in range(300)), feed_url=f"f{i % 7}",
                     entry_index=i % 50, fetched_at=datetime(2021, 9, 30, tzinfo=UTC))
               for i in range(3000)]
    rng.shuffle(records)
    messages = [rows_to_ipc(records[at:at + 100], ENTRIES.schema) for at in range(0, len(records), 100)]
    whole = pa.Table.from_pylist([to_row(r, ENTRIES.schema) for r in records], schema=ENTRIES.schema)

    path = str(tmp_path / "day" / "r-000.parquet")
    pool = pa.proxy_memory_pool(pa.system_memory_pool())
    default = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        write_row_groups_atomically(path, ENTRIES.schema, sorted_row_groups(messages, ENTRIES, 300),
                                    ENTRIES.compression_level)
    finally:
        pa.set_memory_pool(default)
    written = pq.ParquetFile(path)
    assert written.metadata.num_row_groups == 10
    rows = written.read(columns=["story_id"]).column("story_id").to_pylist()
    assert sorted(rows) == sorted(r.story_id for r in records) and len(rows) == 3000
    row_group = whole.nbytes * 300 / len(records)
    assert pool.max_memory() < 3 * row_group, (pool.max_memory(), row_group)
