"""Sink stage: rows -> Hive-partitioned Parquet files (OUT/<kind>/date=YYYY-MM-DD/).

Written through Beam's FileSystems, so OUT may be a local path or gs:// / s3://.
Each file is written under a hidden temporary name in its partition folder and
then renamed, so readers never see a partial file (pyarrow and pandas skip names
starting with "."). File names carry the run id (and a window tag when
streaming), so a new run adds files and never overwrites another run's.

We group rows ourselves instead of using Beam's file sinks: in Beam 2.77 both
can lose data silently. fileio.WriteToFiles takes its `destination`
as a file-name prefix, not a folder: with `date=2021-09-29/` the final rename
fails on local disk, the error is logged at DEBUG only, the run reports
success and the rows stay in `.temp*` folders (unless a file_naming callable
creates the folder and returns `destination/filename`).
beam.io.WriteToParquet writes unreadable and mislabelled files for windowed
(streaming) input.
"""
from __future__ import annotations

import contextlib
import io
import re
import uuid
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows, IntervalWindow
from apache_beam.utils.windowed_value import WindowedValue

from transforms import metrics, phases
from transforms import schema as schemas
from transforms.paths import delete_files, has_files, list_files, make_folder
from transforms.records import Story
from transforms.state.lease import LeaseFence, LeaseHandle


@dataclass(frozen=True)
class OutputKind:
    """How one output (stories, fetches, errors) is laid out."""

    name: str
    schema: pa.Schema
    date_of: Callable            # record -> datetime that picks the partition
    sort_key: Callable           # record -> sortable: picks the shard (shard_of)
    # The same order as sort_key, on the file's columns (sort_indices): how
    # rows are sorted in a file. Columns in `null_as_empty` sort a null as ""
    # as sort_key does (`entry_key or ""`).
    sort_columns: Tuple[str, ...]
    null_as_empty: Tuple[str, ...] = ()
    compression_level: Optional[int] = None   # zstd level; None: pyarrow's default


def _story_date(story: Story):
    return story.published_at or story.fetched_at


STORIES = OutputKind("stories", schemas.STORIES_SCHEMA, _story_date, lambda s: s.story_id, ("story_id",))
FETCHES = OutputKind("fetches", schemas.FETCHES_SCHEMA, lambda r: r.fetched_at,
                     lambda r: (r.feed_url, r.fetched_at), ("feed_url", "fetched_at"))
ERRORS = OutputKind("errors", schemas.ERRORS_SCHEMA, lambda r: r.occurred_at,
                    lambda r: (r.stage, r.feed_url, r.entry_key or "", r.reason),
                    ("stage", "feed_url", "entry_key", "reason"), null_as_empty=("entry_key",))
# Partitioned by when the entry was fetched, so a retag of some days reads
# those days only. zstd 3: levels 6 and 9 save a few percent of the
# largest output's disk for two to four times the CPU, and the archive's
# CPU is what a run pays for it (docs/archive.md#cost).
ENTRIES = OutputKind("entries", schemas.ENTRIES_SCHEMA, lambda s: s.fetched_at,
                     lambda s: (s.feed_url, s.fetched_at, s.entry_index, s.story_id),
                     ("feed_url", "fetched_at", "entry_index", "story_id"), compression_level=3)
# One file a run (`<run_id>.parquet`), written by write_run_row, not WritePartitions.
RUNS = OutputKind("runs", schemas.RUNS_SCHEMA, lambda r: r["started_at"], lambda r: r["run_id"], ("run_id",))
# Outputs that exist, with their schema, from a run on: an empty file when
# the run gave them no rows (ensure_schema_files).
ALWAYS_PRESENT = (FETCHES, ERRORS)


def to_row(record, schema: pa.Schema) -> dict:
    return {name: getattr(record, name) for name in schema.names}


def partition_dir(output: str, kind: str, date: str) -> str:
    return FileSystems.join(output, kind, f"date={date}")


def file_name(run_id: str, shard: int, tag: str = "") -> str:
    return f"{run_id}{'-' + tag if tag else ''}-{shard:03d}.parquet"


def write_parquet_atomically(path: str, table: pa.Table, compression_level: Optional[int] = None) -> None:
    """Write `table` to `path` so that the file appears whole or not at all."""
    write_row_groups_atomically(path, table.schema, [table], compression_level)


def write_row_groups_atomically(path: str, schema: pa.Schema, row_groups: Iterable[pa.Table],
                                compression_level: Optional[int] = None,
                                before_publish: Callable[[], None] = lambda: None) -> None:
    """Write the tables of `row_groups` one after the other into one file at
    `path`, which appears whole or not at all: each is written as it comes
    (no more of the file than one of them is in memory), into a hidden
    temporary that is renamed once complete. `before_publish` runs just
    before the rename; if it (or the writing) raises, the temporary goes and
    nothing appears."""
    folder, name = path.rsplit("/", 1)
    make_folder(folder)
    temp = f"{folder}/.{name}.{uuid.uuid4().hex}.inprogress"
    try:
        with FileSystems.create(temp) as handle:
            with pq.ParquetWriter(handle, schema, compression="zstd",
                                  compression_level=compression_level) as writer:
                for table in row_groups:
                    writer.write_table(table)
                    del table   # before the next one is made
        before_publish()
        if FileSystems.exists(path):  # re-run of the same run id: replace
            delete_files([path])
        FileSystems.rename([temp], [path])
    except Exception:
        with contextlib.suppress(Exception):  # the first error is the one to see
            delete_files([temp])
        raise


def remove_run_files(output: str, run_id: str) -> List[str]:
    """Deletes every file a batch run with this id wrote (or began to write).

    Called before a run starts, so that re-running a crashed (or any) run with
    the same --run-id leaves exactly that attempt's rows: whole files of the
    first attempt in partitions the second does not write (fetched_at crossed
    midnight, a feed changed, --shards changed) would otherwise stay visible as
    duplicates or stale rows, and its hidden temporaries would stay as litter.
    Only untagged names `<run_id>-<shard>.parquet` match exactly: a run "r"
    never touches run "r-2"'s files (`r-2-000.parquet`).
    """
    final = rf"{re.escape(run_id)}-\d{{3,}}\.parquet"
    exact = re.compile(rf"{final}|\.{final}\.[0-9a-f]{{32}}\.inprogress")
    paths = [path for kind in (STORIES, FETCHES, ERRORS, ENTRIES)
             for path in list_files(output, kind.name, "date=*", "*")
             if exact.fullmatch(path.rsplit("/", 1)[-1])]
    row = rf"{re.escape(run_id)}\.parquet"
    exact_row = re.compile(rf"{row}|\.{row}\.[0-9a-f]{{32}}\.inprogress")
    paths += [path for path in list_files(output, RUNS.name, "date=*", "*")
              if exact_row.fullmatch(path.rsplit("/", 1)[-1])]
    delete_files(paths)
    return paths


def ensure_schema_files(output: str, run_id: str, day: str) -> List[str]:
    """For each of ALWAYS_PRESENT without any file yet (in any partition
    folder, `date=` or compaction's `month=`): an empty file with
    its schema, OUT/<kind>/date=<day>/<run_id>-000.parquet (the name of the
    run's own first shard; remove_run_files treats it as the run's). So
    `pd.read_parquet("OUT/errors")` works, with every column, on an output
    that never had an error. Returns the files written."""
    written = []
    for kind in ALWAYS_PRESENT:
        # any partition counts: `month=` folders hold what compaction merged
        if has_files(FileSystems.join(output, kind.name), "*", "*.parquet"):
            continue
        path = FileSystems.join(partition_dir(output, kind.name, day), file_name(run_id, 0))
        write_parquet_atomically(path, kind.schema.empty_table())
        written.append(path)
    return written


def run_row_path(output: str, run_id: str, day: str) -> str:
    return FileSystems.join(partition_dir(output, RUNS.name, day), f"{run_id}.parquet")


def write_run_row(output: str, row: dict) -> str:
    """OUT/runs/date=<UTC date of started_at>/<run_id>.parquet: one row of
    RUNS_SCHEMA, written atomically. Returns its path."""
    path = run_row_path(output, row["run_id"], schemas.partition_date(RUNS.date_of(row)))
    write_parquet_atomically(path, pa.Table.from_pylist([row], schema=RUNS.schema))
    return path


def window_tag(win, pane) -> str:
    """"" in the global window (batch); else the window start and pane index,
    so each window's files, and each late pane's, get names of their own."""
    if not isinstance(win, IntervalWindow):
        return ""
    start = win.start.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ")
    return f"w{start}-p{pane.index if pane is not None else 0}"


def shard_of(record, kind: OutputKind, shards: int) -> int:
    if shards <= 1:
        return 0
    return zlib.crc32(repr(kind.sort_key(record)).encode()) % shards


# Rows travel from the stages to the writer as Arrow record batches of at
# most BATCH_ROWS rows, zstd-compressed IPC bytes, and a file is written
# ROW_GROUP_ROWS rows at a time, because the archive's (date, shard) groups
# hold every entry of a fetch day with its text: compressed Arrow keeps
# what the group holds until the write small, where a Python object per row
# did not, and the writer never holds more of the group decompressed than
# one message or one row group (sorted_row_groups, docs/archive.md#cost).
BATCH_ROWS = 2_000
ROW_GROUP_ROWS = 10_000
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def records_to_batch(records: List, schema: pa.Schema) -> pa.RecordBatch:
    """`records` (read by attribute, as to_row reads them) as one record
    batch, built a column at a time: a dict per row and from_pylist cost
    several times as much, most of the archive's CPU."""
    return pa.RecordBatch.from_arrays(
        [pa.array([getattr(r, name) for r in records], type=field.type) for name, field in zip(schema.names, schema)],
        schema=schema)


def rows_to_ipc(records: List, schema: pa.Schema) -> bytes:
    """`records` as one Arrow IPC stream (records_to_batch)."""
    return _batch_to_ipc(records_to_batch(records, schema))


def _batch_to_ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema, options=_IPC_OPTIONS) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _batches(message: bytes, fields: Optional[List[int]] = None) -> Iterator[pa.RecordBatch]:
    options = pa.ipc.IpcReadOptions(included_fields=fields) if fields is not None else None
    return iter(pa.ipc.open_stream(message, options=options))


def sort_order(table: pa.Table, kind: OutputKind) -> pa.Array:
    """The row order kind.sort_key gives, on the table's columns (the sort
    columns are enough): a stable sort, so rows with equal keys keep the
    order they came in. (Strings compare as UTF-8 bytes, which is code point
    order, as Python's do; timestamps by their UTC instant, as aware
    datetimes do.)"""
    keys = {}
    for name in kind.sort_columns:
        column = table.column(name)
        keys[name] = pc.fill_null(column, "") if name in kind.null_as_empty else column
    return pc.sort_indices(pa.table(keys), sort_keys=[(name, "ascending") for name in keys])


def sorted_row_groups(messages: Iterable[bytes], kind: OutputKind, rows: int = ROW_GROUP_ROWS) -> Iterator[pa.Table]:
    """The rows of `messages` (rows_to_ipc's) in file order (sort_order),
    `rows` at a time, without ever holding them all decompressed:
    1. the sort columns alone are read, and every row gets its rank;
    2. each message is decompressed once, and its rows go, compressed
       again, to the bucket of the row group their rank puts them in;
    3. each bucket in turn is decompressed, put in rank order and given out.
    Held besides the messages and the buckets (compressed): one message
    decompressed, or one row group as read and sorted, and one column of it
    joined by the take. A group of at most `rows` rows is read and sorted
    whole."""
    messages = list(messages)
    rank = _ranks(messages, kind)
    if len(rank) <= rows:
        if len(rank):
            yield pa.Table.from_batches([b for message in messages for b in _batches(message)],
                                        schema=kind.schema).take(np.argsort(rank))
        return
    buckets = _route_to_buckets(messages, rank, rows, kind.schema)
    del rank
    for group in range(len(buckets)):
        data, ranks = buckets[group]
        buckets[group] = None
        table = pa.ipc.open_stream(data).read_all()
        del data
        ordered = table.take(np.argsort(ranks))
        del table
        yield ordered
        del ordered


def _ranks(messages: List[bytes], kind: OutputKind) -> np.ndarray:
    """Each row's place in file order, the rows numbered as the messages give them."""
    schema = kind.schema
    key_fields = sorted(schema.get_field_index(name) for name in kind.sort_columns)   # as IPC reads them
    keys = pa.Table.from_batches([batch for message in messages for batch in _batches(message, key_fields)],
                                 schema=pa.schema([schema.field(i) for i in key_fields]))
    order = sort_order(keys, kind).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def _route_to_buckets(messages: List[bytes], rank: np.ndarray, rows: int,
                      schema: pa.Schema) -> List[Tuple[bytes, np.ndarray]]:
    """Per row group (rank // rows): its rows as one compressed IPC stream,
    in the order they came, and their ranks. The streams grow in Python
    buffers, which over-allocate by an eighth, where Arrow's double."""
    count = -(-len(rank) // rows)
    sinks = [io.BytesIO() for _ in range(count)]
    writers = [pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), schema, options=_IPC_OPTIONS) for sink in sinks]
    ranks_of: List[list] = [[] for _ in range(count)]
    at = 0
    for message in messages:
        for batch in _batches(message):
            ranks = rank[at:at + batch.num_rows]
            at += batch.num_rows
            groups = ranks // rows
            by_group = np.argsort(groups, kind="stable")   # each group's rows, in the order they came
            present, starts = np.unique(groups[by_group], return_index=True)
            for group, start, end in zip(present, starts, [*starts[1:], len(by_group)]):
                where = by_group[start:end]
                writers[group].write_batch(batch.take(where))
                ranks_of[group].append(ranks[where])
    for writer in writers:
        writer.close()
    return [(sink.getvalue(), np.concatenate(ranks)) for sink, ranks in zip(sinks, ranks_of)]


class _BatchRowsFn(beam.DoFn):
    """record -> ("<date>|<shard>", Arrow IPC bytes of up to batch_rows
    records of that partition and window), in the order the records came.
    Each batch is stamped with its latest record's timestamp."""

    def __init__(self, kind: OutputKind, shards: int, batch_rows: int):
        self.kind, self.shards, self.batch_rows = kind, shards, batch_rows

    def start_bundle(self):
        self._buffers: Dict[Tuple[str, object], list] = {}
        self._latest: Dict[Tuple[str, object], object] = {}
        # datetime -> partition date: the entries (and errors) of one fetch share their time
        self._dates: Dict[object, str] = {}

    def process(self, record, win=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        slot = (self._key(record), win)
        latest = self._latest.get(slot)
        if latest is None or timestamp.micros > latest.micros:   # ints: Timestamp's own comparison is Python
            self._latest[slot] = timestamp
        if self._add(slot, record):
            yield self._flush(slot)

    def finish_bundle(self):
        for slot in list(self._buffers):
            yield self._flush(slot)

    def _key(self, record) -> str:
        when = self.kind.date_of(record)
        date = self._dates.get(when)
        if date is None:
            date = self._dates[when] = schemas.partition_date(when)
        return f"{date}|{shard_of(record, self.kind, self.shards)}"

    def _add(self, slot, record) -> bool:
        """Buffers the record; True when its slot holds a full batch."""
        buffer = self._buffers.setdefault(slot, [])
        buffer.append(record)
        return len(buffer) >= self.batch_rows

    def _message(self, slot) -> Tuple[str, bytes]:
        return slot[0], rows_to_ipc(self._buffers.pop(slot), self.kind.schema)

    def _flush(self, slot) -> WindowedValue:
        return WindowedValue(self._message(slot), self._latest.pop(slot), [slot[1]])


class _GlobalBatchRowsFn(_BatchRowsFn):
    """_BatchRowsFn for records in the global window (a batch run), as
    Beam's BatchElements does there: asking for each record's window and
    timestamp makes Beam call process its slower way, microseconds more a
    record (`python -m benchmarks.invoker_cost`), and in the one window a
    batch is stamped at its end, which nothing after the grouping reads."""

    def process(self, record):
        slot = (self._key(record), None)
        if self._add(slot, record):
            yield self._flush(slot)

    def _flush(self, slot) -> WindowedValue:
        return GlobalWindows.windowed_value_at_end_of_window(self._message(slot))


class _WritePartitionFn(beam.DoFn):
    def __init__(self, output: str, kind: OutputKind, run_id: str, lease: Optional[LeaseHandle] = None,
                 row_group_rows: int = ROW_GROUP_ROWS):
        self.output = output
        self.kind = kind
        self.run_id = run_id
        self.lease = lease
        self.row_group_rows = row_group_rows
        self._fence = LeaseFence(lease)
        self.rows = metrics.counter(f"rows_written_{kind.name}")
        self.files = metrics.counter(f"files_written_{kind.name}")

    def process(self, grouped: Tuple[str, Iterable[bytes]], win=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam):
        key, messages = grouped
        date, shard = key.split("|", 1)
        tag = window_tag(win, pane)
        written = 0

        def row_groups():
            nonlocal written
            for table in sorted_row_groups(messages, self.kind, self.row_group_rows):
                written += table.num_rows
                yield table
                del table

        path = FileSystems.join(partition_dir(self.output, self.kind.name, date),
                                file_name(self.run_id, int(shard), tag))
        # A run that lost its lease (taken over while it was frozen) must not
        # add visible files: the new holder has already recovered its writes.
        # The check runs once the temporary file is complete, just before
        # the rename that makes it visible; if it fails the temporary is
        # removed and nothing is published.
        write_row_groups_atomically(path, self.kind.schema,
                                    row_groups(),
                                    self.kind.compression_level, before_publish=self._fence.check)
        if self.kind.name == STORIES.name:
            phases.reached(phases.WRITE)
        self.rows.inc(written)
        self.files.inc()
        yield path


class WritePartitions(beam.PTransform):
    """PCollection[record] -> PCollection[str] of the Parquet files written.

    Records are grouped by (UTC date partition, shard) in Arrow batches of
    `batch_rows`; each group becomes one file
    OUT/<kind>/date=<date>/<run_id>[-w<window start>-p<pane>]-<shard>.parquet with rows
    sorted (sort_order), written `row_group_rows` at a time, so the same
    input always gives the same files.
    """

    def __init__(self, output: str, kind: OutputKind, run_id: str, shards: int = 1,
                 lease: Optional[LeaseHandle] = None, batch_rows: int = BATCH_ROWS,
                 row_group_rows: int = ROW_GROUP_ROWS):
        super().__init__()
        self.output, self.kind, self.run_id = output, kind, run_id
        self.shards = shards
        self.lease = lease
        self.batch_rows, self.row_group_rows = batch_rows, row_group_rows

    def expand(self, records):
        batching = _GlobalBatchRowsFn if records.windowing.is_default() else _BatchRowsFn
        return (
            records
            | "ArrowBatches" >> beam.ParDo(batching(self.kind, self.shards, self.batch_rows))
            .with_output_types(Tuple[str, bytes])
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WritePartitionFn(self.output, self.kind, self.run_id, self.lease,
                                                      self.row_group_rows))
        )
