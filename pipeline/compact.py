"""`newswatch compact`: many small output files merged into few large ones.

Layout contract (what a reader may rely on at every instant, crash included):

    OUT/stories/date=D/compacted-<token>.parquet       every row of closed day D, one file
    OUT/entries/date=D/compacted-<token>.parquet       (the same for the entry archive)
    OUT/<kind>/month=YYYY-MM/compacted-<token>.parquet every row of the closed days of that
                                                       month (fetches/, errors/, runs/ ...: every
                                                       kind but stories and entries); no `date` column is
                                                       stored: a reader takes it from the row's time
    OUT/<kind>/<folder>/.compacted-<token>.parquet.inprogress   a merged file being written
    OUT/_state/compact/<token>.json                    the manifest of one swap: kind, merged file,
                                                       its temporary name, the sources (path, size)

A day is closed when it is before `before` (default: today, UTC). Batch runs
and streaming jobs (allowed lateness: transforms/windowing.py) may still add
files to any day, today or older, since the `date` of a story is the day it
was published; compaction therefore holds the output's lease
(transforms/state/lease.py), so no run writes while it works (with `force` it
works beside the lease's holder, e.g. a streaming job). It never merges the
story files that transforms/state/recovery.py will look for by name: those of
a run with an open marker (killed, or a streaming job) whose commit unit is
not committed. They stay beside the merged file until a later compaction,
after their unit commits or their run is recovered. A file added to a closed day later is merged by the next compaction,
with the merged file already there. "Closed" only spares today's partition,
which would otherwise be rewritten every run.

A merged file holds the rows of its sources in the current schema
(transforms/schema.py: older versions' missing columns as nulls; a group
holding a column the current schema lacks is left alone), sorted by the
kind's first timestamp column (published_at, fetched_at, occurred_at ...;
the entry archive by fetched_at, the time its partitions and a retag's
--since/--until are on, then feed and position in the feed), with Parquet
sorting_columns saying so, and row groups of about
ROW_GROUP_BYTES. Its key-value metadata `newswatch.compacted_from` lists its
sources (path below OUT/<kind>/, size).

The swap, in this order, each step whole (a rename, or an object written
whole, on every filesystem):

  1. write the merged file under its hidden temporary name (readers skip
     names starting with "." or "_");
  2. write the manifest;
  3. publish: rename the temporary file to compacted-<token>.parquet;
  4. delete the sources;
  5. delete the manifest.

A reader therefore finds every row at every instant: before 3 in the sources,
after 4 in the merged file, and between 3 and 4 in both. pipeline/dataset.py
drops a file named (with its size) in a merged file's compacted_from, so it
reads the old files or the new one, never both or neither, and it reads again
when a file it listed vanished before it opened it. A plain reader (pandas,
DuckDB on a glob) may see both during step 4 (milliseconds on local disk, the
deletes' duration on an object store). Nothing is deleted before its rows are
published, so no row is ever lost.

Killed at any point, the next compaction finishes the job first (`recover`):
a manifest whose merged file is published (or still temporary: then it is
published now) has its sources deleted, then goes; a temporary file without a
manifest is removed (its sources are untouched). On gs:// a rename is a copy
and a delete: a temporary file beside its published copy is removed. A
source is deleted only while it has the size its manifest names, and a
temporary merged file is published only while every source does: otherwise
a re-run replaced a source by name since, so the temporary file and the
manifest go and the sources stay. A re-run (`run --run-id`) calls `recover`
first, under its lease, while a manifest is pending, so it sees the merged
file holding its rows and refuses.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms import schema as schemas

_log = logging.getLogger(__name__)

COMPACTED_PREFIX = "compacted-"
COMPACTED_FROM = b"newswatch.compacted_from"
MANIFEST_DIR = "_state/compact"
# One file a day for the large kinds read by day ranges; every other kind one file a month.
DAILY_KINDS = frozenset({"stories", "entries"})
ROW_GROUP_BYTES = 64 * 1024 * 1024        # in memory, before compression
MIN_ROW_GROUP_ROWS, MAX_ROW_GROUP_ROWS = 1024, 1_000_000
COMPACT_HOLDER = "compact"

# Points where a test can stop a compaction (transforms/phases.py: NEWSWATCH_PAUSE_AT).
WRITTEN = "compact-written"        # the merged file is written under its temporary name
MANIFESTED = "compact-manifested"  # its manifest is written, it is not published
PUBLISHED = "compact-published"    # it is published, its sources are all still there
DELETING = "compact-deleting"      # one source is deleted, the others not yet
DELETED = "compact-deleted"        # every source is deleted, the manifest not yet
STEPS = (WRITTEN, MANIFESTED, PUBLISHED, DELETING, DELETED)

_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_MONTH = re.compile(r"^month=(\d{4}-\d{2})$")
_TEMP = re.compile(rf"^\.{COMPACTED_PREFIX}([0-9a-f]+)\.parquet\.inprogress$")


class CompactRefused(Exception):
    """A run is open on OUT, or OUT is missing: nothing to do safely (exit 2)."""


def output_exists(output: str) -> bool:
    """Whether OUT is there: a folder on local disk, any object below it on
    an object store (which has no folders). A wrong path is not an empty output."""
    import os

    from apache_beam.io.filesystems import FileSystems

    from transforms.paths import has_files

    if FileSystems.get_scheme(output) in (None, "file"):
        return os.path.isdir(output[len("file://"):] if output.startswith("file://") else output)
    return has_files(output, "**")


# --------------------------------------------------------------------------- planning (pure)


@dataclass(frozen=True)
class SourceFile:
    path: str      # below OUT/<kind>/, e.g. "date=2021-09-25/r1-000.parquet"
    size: int

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def is_compacted(self) -> bool:
        return self.path.rsplit("/", 1)[-1].startswith(COMPACTED_PREFIX)


@dataclass(frozen=True)
class Group:
    """Files merged into one: `folder` is `date=D` or `month=YYYY-MM`."""

    kind: str
    folder: str
    sources: Tuple[SourceFile, ...]


def kind_schemas() -> Dict[str, pa.Schema]:
    """Each output kind's current file schema, by the `newswatch.kind` of
    the schemas in transforms/schema.py: a kind added there is compacted too."""
    found = {}
    for value in vars(schemas).values():
        if isinstance(value, pa.Schema) and value.metadata and b"newswatch.kind" in value.metadata:
            found.setdefault(value.metadata[b"newswatch.kind"].decode(), value)
    return found


def folder_span(folder: str) -> Optional[Tuple[date, date]]:
    """The first and last day a partition folder holds, or None if it is none."""
    day = _DAY.match(folder)
    if day:
        try:
            when = date.fromisoformat(day.group(1))
        except ValueError:
            return None
        return when, when
    month = _MONTH.match(folder)
    if month:
        try:
            first = date.fromisoformat(month.group(1) + "-01")
        except ValueError:
            return None
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, date.fromordinal(following.toordinal() - 1)
    return None


def is_visible(relative: str) -> bool:
    """A data file readers see: a .parquet name, no part hidden."""
    parts = relative.split("/")
    return relative.endswith(".parquet") and not any(p.startswith((".", "_")) for p in parts)


def plan(kind: str, files: Iterable[SourceFile], before: date) -> List[Group]:
    """The groups to merge in one kind's folder: each closed day (stories) or
    the closed days of each month (other kinds) with the month's merged file;
    not a group that is already one merged file."""
    daily = kind in DAILY_KINDS
    groups: Dict[str, List[SourceFile]] = {}
    for source in files:
        if not is_visible(source.path) or source.path.count("/") != 1:
            continue
        span = folder_span(source.folder)
        if span is None or span[0] >= before:
            continue
        if source.folder.startswith("date="):
            target = source.folder if daily else f"month={span[0].isoformat()[:7]}"
        else:
            target = source.folder if not daily else None
            if target is None:
                continue  # a month folder in a daily kind is none of ours
        groups.setdefault(target, []).append(source)
    planned = []
    for target, sources in sorted(groups.items()):
        sources.sort(key=lambda s: s.path)
        if len(sources) == 1 and sources[0].is_compacted and sources[0].folder == target:
            continue  # already compact: idempotent
        planned.append(Group(kind, target, tuple(sources)))
    return planned


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` in `schema`: columns in its order, missing ones null. Raises
    ValueError for a column the schema lacks (never dropped silently)."""
    extra = [name for name in table.column_names if name not in schema.names and name != "date"]
    if extra:
        raise ValueError(f"columns {', '.join(extra)} are not in the current schema")
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


# Kinds whose merged files sort otherwise than by sort_keys' default. The
# archive's first timestamp is published_at, but it is partitioned and read
# by fetched_at; within one fetch, entries keep their feed's order.
SORT_KEYS = {"entries": ["fetched_at", "feed_url", "entry_index", "story_id", "run_id"]}


def sort_keys(schema: pa.Schema) -> List[str]:
    """The first timestamp column, then the first string column, then
    run_id: the time order readers scan by, made total for equal times
    (or the kind's own keys in SORT_KEYS)."""
    kind = (schema.metadata or {}).get(b"newswatch.kind", b"").decode()
    if kind in SORT_KEYS:
        return list(SORT_KEYS[kind])
    first_time = next(f.name for f in schema if pa.types.is_timestamp(f.type))
    first_text = next(f.name for f in schema if pa.types.is_string(f.type))
    keys = [first_time, first_text]
    if "run_id" in schema.names and "run_id" not in keys:
        keys.append("run_id")
    return keys


def row_group_rows(table: pa.Table) -> int:
    if table.num_rows == 0:
        return MIN_ROW_GROUP_ROWS
    per_row = max(1, table.nbytes // table.num_rows)
    return int(min(MAX_ROW_GROUP_ROWS, max(MIN_ROW_GROUP_ROWS, ROW_GROUP_BYTES // per_row)))


def merge(tables: Sequence[pa.Table], schema: pa.Schema, sources: Sequence[SourceFile]) -> pa.Table:
    """The sources' rows in `schema`, sorted, with compacted_from in the metadata."""
    merged = pa.concat_tables([conform(t, schema) for t in tables]) if tables else schema.empty_table()
    keys = sort_keys(schema)
    order = pc.sort_indices(merged, sort_keys=[(k, "ascending", "at_end") for k in keys])
    merged = merged.take(order)
    listed = json.dumps([[s.path, s.size] for s in sources]).encode()
    return merged.replace_schema_metadata({**(schema.metadata or {}), COMPACTED_FROM: listed})


def compacted_from(metadata: Optional[dict]) -> List[Tuple[str, int]]:
    """The (path, size) sources a merged file's key-value metadata names."""
    if not metadata or COMPACTED_FROM not in metadata:
        return []
    try:
        return [(str(path), int(size)) for path, size in json.loads(metadata[COMPACTED_FROM].decode())]
    except (ValueError, TypeError):
        return []


# --------------------------------------------------------------------------- the run


@dataclass
class CompactReport:
    groups: int = 0
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    recovered: int = 0
    skipped: List[str] = field(default_factory=list)

    def line(self) -> str:
        text = (f"compacted {self.files_in} files into {self.files_out} "
                f"({self.rows} rows, {self.groups} partitions)")
        if self.recovered:
            text += f"; finished {self.recovered} interrupted swaps"
        if self.skipped:
            text += f"; left alone: {'; '.join(self.skipped)}"
        return text


def compact(output: str, before: Optional[date] = None, force: bool = False,
            lease_held: bool = False,
            merged: Callable[[int, int], None] = lambda files, rows: None) -> CompactReport:
    """Compacts every kind folder of OUT. Holds OUT's lease while it works
    (unless the caller does: lease_held). Raises CompactRefused if OUT is
    missing, or while a run holds the lease, unless `force`; never merges
    the story files of uncommitted units of runs with an open marker. Calls
    `merged(files, rows)` after each partition it merged (progress lines)."""
    from transforms.state.lease import BATCH, Heartbeat, Lease, LeaseHeld

    before = before or datetime.now(timezone.utc).date()
    output = output.rstrip("/")
    if lease_held:
        return _compact_all(output, before, merged)
    if not output_exists(output):
        raise CompactRefused(f"no output at {output}")  # before the lease, which would create it
    holder = f"{COMPACT_HOLDER}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    try:
        lease = Lease(output, holder, BATCH).acquire(0)
    except LeaseHeld as held:
        if not force:
            raise CompactRefused(f"{output} has an open run: {held.body.describe()}; compact waits for "
                                 f"it to end (give --force to compact beside it: the story files it has "
                                 f"not committed are left alone)") from None
        _log.warning("compacting %s while %s holds its lease (--force)", output, held.body.holder)
        return _compact_all(output, before, merged)
    with Heartbeat(lease):
        return _compact_all(output, before, merged)


def _compact_all(output: str, before: date, merged: Callable[[int, int], None]) -> CompactReport:
    report = CompactReport()
    report.recovered = recover(output)
    for kind, schema in sorted(kind_schemas().items()):
        folder = f"{output}/{kind}"
        sources = _sources(folder)
        if kind == "stories":
            # listed before the markers are read: a file written after the
            # listing is not merged, one listed is checked against them
            left = uncommitted_story_files(output)
            sources = [s for s in sources if f"{folder}/{s.path}" not in left]
        for group in plan(kind, sources, before):
            try:
                rows = _swap(output, group, schema)
            except ValueError as exc:  # a column the current schema lacks
                report.skipped.append(f"{kind}/{group.folder}: {exc}")
                continue
            report.groups += 1
            report.files_in += len(group.sources)
            report.files_out += 1
            report.rows += rows
            merged(len(group.sources), rows)
    return report


def uncommitted_story_files(output: str) -> Set[str]:
    """The story files recovery (transforms/state/recovery.py) will look for
    by name: those of a run with an open marker whose commit unit is not
    committed (a killed run's, a streaming job's open windows). Merged away,
    their stories would never be remembered and would be written again."""
    from transforms.state.recovery import run_story_files, unit_of
    from transforms.state.store import StateStore

    store = StateStore(output)
    runs = store.open_runs()
    if not runs:
        return set()
    committed = set(store.seen_commits(move_aside=False))
    return {path for run_id in runs for path in run_story_files(output, run_id)
            if unit_of(path) == run_id or unit_of(path) not in committed}


def _swap(output: str, group: Group, schema: pa.Schema) -> int:
    from apache_beam.io.filesystems import FileSystems

    from transforms import phases
    from transforms.paths import delete_files
    from transforms.paths import make_folder

    folder = f"{output}/{group.kind}"
    tables = []
    for source in group.sources:
        with FileSystems.open(f"{folder}/{source.path}") as handle:
            tables.append(pq.read_table(pa.BufferReader(handle.read())))
    merged = merge(tables, schema, group.sources)
    expected = sum(t.num_rows for t in tables)
    if merged.num_rows != expected:
        raise RuntimeError(f"{group.kind}/{group.folder}: merged {merged.num_rows} rows of {expected}")
    token = uuid.uuid4().hex
    target_dir = f"{folder}/{group.folder}"
    make_folder(target_dir)
    target = f"{target_dir}/{COMPACTED_PREFIX}{token}.parquet"
    temp = f"{target_dir}/.{COMPACTED_PREFIX}{token}.parquet.inprogress"
    keys = sort_keys(schema)
    # Parquet numbers leaf columns (a list column has leaves of its own), not
    # Arrow fields: from_ordering maps the names to leaves.
    sorting = pq.SortingColumn.from_ordering(schema, [(k, "ascending") for k in keys], null_placement="at_end")
    with FileSystems.create(temp) as handle:
        pq.write_table(merged, handle, compression="zstd", row_group_size=row_group_rows(merged),
                       sorting_columns=sorting, write_statistics=True)
    phases.reached(WRITTEN)
    manifest = {"kind": group.kind, "target": target, "temp": temp, "rows": expected,
                "sources": [[f"{folder}/{s.path}", s.size] for s in group.sources]}
    from transforms.state.store import write_atomically

    write_atomically(f"{output}/{MANIFEST_DIR}/{token}.json", json.dumps(manifest).encode())
    phases.reached(MANIFESTED)
    FileSystems.rename([temp], [target])
    phases.reached(PUBLISHED)
    sources = [f"{folder}/{s.path}" for s in group.sources]
    delete_files(sources[:1])
    phases.reached(DELETING)
    delete_files(sources[1:])
    phases.reached(DELETED)
    delete_files([f"{output}/{MANIFEST_DIR}/{token}.json"])
    _remove_empty_folders(sources)
    return expected


def _remove_empty_folders(paths: Iterable[str]) -> None:
    """On local disk, the partition folders the deletes emptied (an object
    store has no folders): a reader would list them as empty partitions."""
    import os

    from apache_beam.io.filesystems import FileSystems

    for folder in sorted({path.rsplit("/", 1)[0] for path in paths}):
        if FileSystems.get_scheme(folder) in (None, "file"):
            try:
                os.rmdir(folder)
            except OSError:
                pass  # not empty: it holds today's or a merged file


def recover(output: str) -> int:
    """Finishes the swaps a killed compaction left (their manifests), then
    removes temporary merged files that have no manifest. Returns how many
    swaps it finished.

    A source is deleted only while it still has the size its manifest
    names: a re-run may have replaced it by name since (new rows). A merged
    file still temporary is published only if every source is unchanged;
    otherwise it and its manifest go and the sources stay."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.paths import delete_files, list_files

    finished, claimed = 0, set()
    for path in list_files(f"{output}/{MANIFEST_DIR}", "*.json"):
        with FileSystems.open(path) as handle:
            manifest = json.loads(handle.read().decode())
        target, temp = manifest["target"], manifest["temp"]
        sources = [(p, int(size)) for p, size in manifest["sources"]]
        now = {p: _size(p) for p, _ in sources}
        unchanged = [p for p, size in sources if now[p] == size]
        changed = [p for p, size in sources if now[p] is not None and now[p] != size]
        claimed.add(temp)
        if FileSystems.exists(target):
            if FileSystems.exists(temp):
                delete_files([temp])  # gs:// rename: the copy is whole, the delete did not happen
        elif FileSystems.exists(temp) and len(unchanged) == len(sources):
            FileSystems.rename([temp], [target])
        else:
            _log.warning("compaction manifest %s: its merged file is unpublished and its sources "
                         "changed since, or it is gone; the sources stay", path)
            if FileSystems.exists(temp):
                delete_files([temp])
            delete_files([path])
            continue
        if changed:
            _log.warning("compaction manifest %s: %s changed since it was merged (a re-run?); "
                         "it stays", path, ", ".join(changed))
        delete_files(unchanged)
        delete_files([path])
        _remove_empty_folders([p for p, _ in sources])
        finished += 1
    for kind in kind_schemas():
        for path in list_files(f"{output}/{kind}", "*", ".*"):
            if _TEMP.match(path.rsplit("/", 1)[-1]) and path not in claimed:
                delete_files([path])
    return finished


def pending_swaps(output: str) -> List[str]:
    """The manifests of swaps a killed compaction left for `recover`."""
    from transforms.paths import list_files

    return list_files(f"{output.rstrip('/')}/{MANIFEST_DIR}", "*.json")


def _size(path: str) -> Optional[int]:
    """A file's size in bytes, None if it is absent."""
    from transforms.paths import file_metadata, literal

    folder, name = path.rsplit("/", 1)
    found = file_metadata(folder, literal(name))
    return found[0].size_in_bytes if found else None


def files_holding_run(output: str, run_id: str) -> List[str]:
    """The merged files that hold rows of run `run_id`. A re-run of that run
    replaces its files by name, so it would write these rows a second time.
    Row groups whose run_id statistics exclude it are not read."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.paths import list_files

    output = output.rstrip("/")
    holding = []
    for kind in sorted(kind_schemas()):
        for path in list_files(f"{output}/{kind}", "*", f"{COMPACTED_PREFIX}*.parquet"):
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                parquet = pq.ParquetFile(handle)
                column = parquet.schema_arrow.get_field_index("run_id")
                if column < 0:
                    continue
                for group in range(parquet.metadata.num_row_groups):
                    stats = parquet.metadata.row_group(group).column(column).statistics
                    if stats is not None and stats.has_min_max and isinstance(stats.min, str) \
                            and not stats.min <= run_id <= stats.max:
                        continue
                    runs = parquet.read_row_group(group, columns=["run_id"])["run_id"]
                    if pc.any(pc.equal(runs, run_id)).as_py():
                        holding.append(path)
                        break
    return holding


def _sources(folder: str) -> List[SourceFile]:
    from transforms.paths import file_metadata

    prefix = folder + "/"
    return [SourceFile(meta.path[len(prefix):], meta.size_in_bytes)
            for meta in file_metadata(folder, "*", "*.parquet")]
