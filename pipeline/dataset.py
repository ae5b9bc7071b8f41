"""Reading an output folder into pandas: stories, fetches, errors, and why
each story matched. Importing this module does not import Beam; reading a
gs:// or s3:// output does (its filesystems), to reach the store as the
pipeline does.

    from pipeline import dataset
    stories = dataset.read_stories("output", since="2021-09-01", topics=["dprk"])
    why = dataset.read_matches("output", run_id=dataset.LAST_RUN)
    health = dataset.read_fetches("output", since="2021-09-01")
    runs = dataset.read_runs("output")
    rules = dataset.read_rules("output")
    views = dataset.list_views("output")

Every reader returns the same columns with the same dtypes whatever it
finds, also when the folder does not exist yet:

- the full schema of transforms/schema.py, files of older schema versions
  included (their missing columns read as nulls);
- `date` as datetime.date, timestamps as tz-aware UTC, lists as arrays,
  integer columns as pandas' nullable integers (Int32, Int64), so a column
  with nulls stays an integer column.

Time ranges are pushed down to pyarrow: the `date` partitions outside the
range are not opened, then the timestamps are compared.

A compacted output (pipeline/compact.py, its layout contract) reads the
same: `month=YYYY-MM` folders are pruned by their month and their rows get
`date` from their time; a merged file and the sources it names are never
both read, and a read that meets a file deleted since the listing lists again.
"""
from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from transforms.errors import error_category
from transforms.schema import (ENTRIES_DATASET_SCHEMA, ERRORS_DATASET_SCHEMA, FETCHES_DATASET_SCHEMA, MATCHES, PARTITION_SCHEMA,
                               RUNS_DATASET_SCHEMA, STORIES_DATASET_SCHEMA)

# The state files last_run reads (laid out in transforms/state/__init__.py;
# the names are store.SEEN and store.RUNS, which this module does not
# import: the state store imports Beam).
STATE_SEEN = "_state/seen"
STATE_RUNS = "_state/runs"

ON_PUBLISHED, ON_RUN = "published_at", "run"
MATCH_COLUMNS = [field.name for field in MATCHES.value_type]
# A streaming job commits each window pane as `<run_id>-w<start>-p<pane>`;
# its rows carry the job's run_id.
_WINDOW_UNIT = re.compile(r"^(?P<run_id>.+)-w\d{8}T\d{6}Z-p\d+$")

Bound = Union[None, str, date, datetime]
RunIds = Union[None, str, Iterable[str], "_LastRun"]


class _LastRun:
    def __repr__(self):
        return "LAST_RUN"


# run_id=LAST_RUN: the rows of the latest committed run (see last_run); no
# rows when no run has committed yet.
LAST_RUN = _LastRun()


# --------------------------------------------------------------------------- the readers


def read_stories(output, since: Bound = None, until: Bound = None, on: str = ON_PUBLISHED,
                 topics: Optional[Iterable[str]] = None, columns: Optional[Sequence[str]] = None,
                 run_id: RunIds = None, filesystem: Optional[pafs.FileSystem] = None,
                 view: Optional[str] = None) -> pd.DataFrame:
    """OUT/stories as one DataFrame, a row per story.

    since, until: the time range, `since` included, `until` excluded; a
      date (or "YYYY-MM-DD") is a whole UTC day at either end, so
      since="2021-09-01", until="2021-09-30" keeps 1 to 30 September.
      Naive datetimes are UTC.
    on: "published_at" compares the story's time, published_at, or
      fetched_at when the feed gave no date (the time its `date` partition
      is of): only the partitions in range are read. "run" compares
      fetched_at, when the run fetched it: every partition is read.
    topics: keep stories that matched any of these topics.
    columns: only these columns, in this order (default: all, `date` last).
    run_id: one run id, several, or LAST_RUN.
    filesystem: a pyarrow filesystem for OUT (default: local disk, or Beam's
      filesystems for gs:// and s3://, configured as for the pipeline).
    view: the stories of the view of this name (`newswatch retag`,
      docs/retag.md), OUT/views/<view>/, instead of OUT/stories.
    """
    if on not in (ON_PUBLISHED, ON_RUN):
        raise ValueError(f"on must be {ON_PUBLISHED!r} or {ON_RUN!r}, not {on!r}")
    columns = _columns(STORIES_DATASET_SCHEMA, columns)
    table = _in_view(output, view, filesystem, lambda root: _read_stories_table(
        root, since, until, on, topics, columns, run_id, filesystem))
    return _frame(table.select(columns))


def read_matches(output, since: Bound = None, until: Bound = None, on: str = ON_PUBLISHED,
                 topics: Optional[Iterable[str]] = None, columns: Sequence[str] = (),
                 run_id: RunIds = None, filesystem: Optional[pafs.FileSystem] = None,
                 view: Optional[str] = None) -> pd.DataFrame:
    """Why the stories matched: one row per element of their `matches`,
    columns story_id, topic, term, field, offset, then the story `columns`
    asked for (title, date ...). A story without matches (schema version 1)
    has no rows. With `topics`, only the matches of those topics. The other
    arguments select stories as in read_stories."""
    if on not in (ON_PUBLISHED, ON_RUN):
        raise ValueError(f"on must be {ON_PUBLISHED!r} or {ON_RUN!r}, not {on!r}")
    extra = [name for name in _columns(STORIES_DATASET_SCHEMA, list(columns) or ["story_id"])
             if name not in ("story_id", "matches")]
    table = _in_view(output, view, filesystem, lambda root: _read_stories_table(
        root, since, until, on, None, ["story_id", "matches", *extra], run_id, filesystem))
    matches = table.column("matches").combine_chunks()
    parents = pc.list_parent_indices(matches)
    flat = pc.list_flatten(matches)
    out = {"story_id": table.column("story_id").take(parents)}
    for name in MATCH_COLUMNS:
        out[name] = pc.struct_field(flat, name)
    for name in extra:
        out[name] = table.column(name).take(parents)
    result = pa.table(out, schema=_matches_schema(extra))
    if topics is not None:
        result = result.filter(pc.is_in(result.column("topic"), pa.array(_names(topics), pa.string())))
    return _frame(result)


def read_fetches(output, since: Bound = None, until: Bound = None, run_id: RunIds = None,
                 columns: Optional[Sequence[str]] = None,
                 filesystem: Optional[pafs.FileSystem] = None) -> pd.DataFrame:
    """OUT/fetches, a row per feed and run; since/until on fetched_at (the
    partitions' time, so only those in range are read), as in read_stories.
    Rows written before schema version 4 get their error_category from
    `error`; their feed_title and parse_warning are null (not recorded)."""
    columns = _columns(FETCHES_DATASET_SCHEMA, columns)
    table = _read(output, "fetches", FETCHES_DATASET_SCHEMA, _with_source(columns, "error"),
                  _in_range(since, until, ("fetched_at",), by_partition=True), run_id, filesystem,
                  _span(since, until))
    return _frame(_fill_category(table, "error").select(columns))


def read_errors(output, since: Bound = None, until: Bound = None, run_id: RunIds = None,
                columns: Optional[Sequence[str]] = None,
                filesystem: Optional[pafs.FileSystem] = None) -> pd.DataFrame:
    """OUT/errors (dead letters); since/until on occurred_at, as in read_fetches.
    Rows written before schema version 4 get their error_category from `reason`.
    An output whose runs all predate version 4 may have no errors/ folder: then
    the frame is empty."""
    columns = _columns(ERRORS_DATASET_SCHEMA, columns)
    table = _read(output, "errors", ERRORS_DATASET_SCHEMA, _with_source(columns, "reason"),
                  _in_range(since, until, ("occurred_at",), by_partition=True), run_id, filesystem,
                  _span(since, until))
    return _frame(_fill_category(table, "reason").select(columns))


def read_runs(output, since: Bound = None, until: Bound = None, run_id: RunIds = None,
              columns: Optional[Sequence[str]] = None, mode: Optional[str] = None,
              filesystem: Optional[pafs.FileSystem] = None) -> pd.DataFrame:
    """OUT/runs, a row per finished run (its summary table as data), oldest
    first; since/until on started_at (the partitions' time), as in
    read_stories; mode "batch" or "streaming" keeps those runs only. Runs
    written before schema version 4 have no rows: then the frame is empty.
    The per-topic and per-language counters are lists of (name, count)
    pairs: `dict(row.matched_by_topic)`."""
    columns = _columns(RUNS_DATASET_SCHEMA, columns)
    conditions = _in_range(since, until, ("started_at",), by_partition=True)
    if mode is not None:
        conditions.append(ds.field("mode") == mode)
    wanted = columns if "started_at" in columns else [*columns, "started_at"]
    table = _read(output, "runs", RUNS_DATASET_SCHEMA, wanted, conditions, run_id, filesystem,
                  _span(since, until))
    table = table.take(pc.sort_indices(table, [("started_at", "ascending")]))
    return _frame(table.select(columns))


def read_entries(output, since: Bound = None, until: Bound = None, run_id: RunIds = None,
                 columns: Optional[Sequence[str]] = None,
                 filesystem: Optional[pafs.FileSystem] = None) -> pd.DataFrame:
    """OUT/entries, the entry archive (transforms/archive.py): a row per
    parsed entry, matched or not, duplicates included; since/until on
    fetched_at (the partitions' time, so only those in range are read), as
    in read_fetches. Text columns are null for runs that archived
    identities only. Runs before schema version 5 archived nothing."""
    columns = _columns(ENTRIES_DATASET_SCHEMA, columns)
    table = _read(output, "entries", ENTRIES_DATASET_SCHEMA, columns,
                  _in_range(since, until, ("fetched_at",), by_partition=True), run_id, filesystem,
                  _span(since, until))
    return _frame(table.select(columns))


def last_day(output, kind: str, filesystem: Optional[pafs.FileSystem] = None) -> Optional[date]:
    """The last UTC day a partition folder of OUT/<kind> holds (a month
    folder's last day for a compacted month), or None when there is none;
    from the folder names alone, no file is opened."""
    from pipeline.compact import folder_span

    fs, root = _resolve(output, filesystem)
    infos = fs.get_file_info(pafs.FileSelector(f"{root}/{kind}", allow_not_found=True))
    days = [folder_span(info.base_name) for info in infos if info.type == pafs.FileType.Directory]
    return max((span[1] for span in days if span is not None), default=None)


def last_run(output, filesystem: Optional[pafs.FileSystem] = None) -> Optional[str]:
    """The run id of the latest committed run, or None.

    A run commits as its last step (transforms/state/store.py): it writes
    _state/seen/<run_id>.parquet, whose rows carry committed_at, and removes
    its marker _state/runs/<run_id>.json. A run whose marker is still there
    is running or died, and is not counted. A streaming job commits each
    window pane while its marker stays; its latest pane gives the job's run
    id, whose rows are everything the job has written so far (its rows carry
    the job's id, not the pane's).
    """
    fs, root = _resolve(output, filesystem)
    open_runs = {info.base_name[: -len(".json")]
                 for info in _listing(fs, f"{root}/{STATE_RUNS}") if info.base_name.endswith(".json")}
    latest: Tuple[Optional[int], Optional[str]] = (None, None)
    for info in _listing(fs, f"{root}/{STATE_SEEN}"):
        if not info.base_name.endswith(".parquet") or info.base_name.startswith((".", "_")):
            continue
        try:
            table = pq.read_table(info.path, filesystem=fs, columns=["run_id", "committed_at"])
        except (pa.ArrowException, OSError):
            continue  # unreadable: the next run moves it to _state/corrupt/
        table = table.filter(pc.invert(pc.is_in(table.column("run_id"), pa.array(sorted(open_runs),
                                                                                   pa.string()))))
        if table.num_rows == 0:
            continue
        at = pc.cast(table.column("committed_at"), pa.int64()).to_numpy()
        newest = int(at.argmax())
        if latest[0] is None or at[newest] > latest[0]:
            latest = (int(at[newest]), table.column("run_id")[newest].as_py())
    if latest[1] is None:
        return None
    unit = _WINDOW_UNIT.match(latest[1])
    return unit.group("run_id") if unit else latest[1]


RULES_SCHEMA = pa.schema([
    pa.field("version", pa.string()),
    pa.field("path", pa.string()),
    pa.field("first_run", pa.string()),
    pa.field("first_run_at", pa.timestamp("us", tz="UTC")),
    pa.field("last_run", pa.string()),
    pa.field("last_run_at", pa.timestamp("us", tz="UTC")),
    pa.field("runs", pa.int64()),
])


def read_rules(output, filesystem: Optional[pafs.FileSystem] = None) -> pd.DataFrame:
    """The versions of the topics rules an output knows, one row each: the
    `topics_version` of the finished runs in OUT/runs, and the files stored
    under OUT/_rules/ (transforms/rules_archive.py).

    path: OUT/_rules/<version>.yaml, or null when no file of the version is
      stored (runs from before the archive, or _rules/ deleted).
    first_run, first_run_at, last_run, last_run_at: the run id and
      started_at of the version's first and last finished run; null, and
      runs 0, for a stored version no finished run used (a run still going,
      failed, or handed to Dataflow, which writes no runs/ row).
    Rows in order of first_run_at, then versions without a run by version.
    """
    from transforms.rules_archive import RULES_FOLDER, rules_path, version_of

    runs = read_runs(output, columns=["run_id", "started_at", "topics_version"], filesystem=filesystem)
    runs = runs[runs.topics_version.notna()].sort_values(["started_at", "run_id"], kind="stable")
    fs, root = _resolve(output, filesystem)
    stored = {version_of(info.base_name) for info in _listing(fs, f"{root}/{RULES_FOLDER}")} - {None}
    used = {}
    for version, group in runs.groupby("topics_version", sort=False):
        first, last = group.iloc[0], group.iloc[-1]
        used[version] = (first.run_id, first.started_at, last.run_id, last.started_at, len(group))
    order = sorted(used, key=lambda v: (used[v][1], v)) + sorted(stored - set(used))
    none = (None, None, None, None, 0)
    rows = [(v, rules_path(os.fspath(output), v) if v in stored else None, *used.get(v, none)) for v in order]
    columns = list(zip(*rows)) if rows else [()] * len(RULES_SCHEMA)
    table = pa.table([pa.array(values, type=field.type) for values, field in zip(columns, RULES_SCHEMA)],
                     schema=RULES_SCHEMA)
    return _frame(table)
def read_view(output, view: str, filesystem: Optional[pafs.FileSystem] = None) -> dict:
    """The pointer of a view (OUT/views/<view>/_view.json) as a dict: its
    generation, topics_version, topics text, source, range, runs replayed,
    counts (pipeline/views.py). Raises FileNotFoundError when there is no
    such view (also while it is being deleted)."""
    from pipeline.views import POINTER, VIEWS_DIR, is_tombstone

    fs, root = _resolve(output, filesystem)
    path = f"{root}/{VIEWS_DIR}/{view}/{POINTER}"
    try:
        with fs.open_input_stream(path) as handle:
            body = json.loads(handle.read().decode("utf-8"))
    except Exception as exc:
        # An object store's client raises its own "not found" (google's NotFound).
        if isinstance(exc, FileNotFoundError) or fs.get_file_info(path).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"no view {view!r} in {output} (no {VIEWS_DIR}/{view}/{POINTER})") from None
        raise
    if is_tombstone(body):
        raise FileNotFoundError(f"no view {view!r} in {output} (it is being deleted)")
    return body


VIEWS_SCHEMA = pa.schema([
    pa.field("name", pa.string()),
    pa.field("topics_version", pa.string()),
    pa.field("generation", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("since", pa.string()),
    pa.field("until", pa.string()),
    pa.field("units", pa.int64()),
    pa.field("skipped", pa.int64()),
    pa.field("entries", pa.int64()),
    pa.field("stories", pa.int64()),
    pa.field("warnings", pa.int64()),
    pa.field("unpublished", pa.int64()),
    pa.field("path", pa.string()),
])


def list_views(output, filesystem: Optional[pafs.FileSystem] = None) -> pd.DataFrame:
    """The published views of an output (`newswatch retag`, docs/retag.md),
    one row each, by name, from their pointers (OUT/views/<name>/_view.json):

    topics_version, generation, created_at (when it was published), since
      and until (the retag's range, as given; null: unbounded);
    units, skipped: the commit units replayed, and those left out;
    entries, stories: archived entries replayed, stories in the view;
    warnings: where the view may differ from the live runs;
    unpublished: generation folders the pointer names neither as its own
      nor as `previous` (a retag under way, or killed);
    path: the generation's stories folder.

    Folders without a pointer (a first retag under way or killed) and views
    being deleted are left out."""
    from pipeline.views import POINTER, VIEWS_DIR, is_generation

    fs, root = _resolve(output, filesystem)
    folders = fs.get_file_info(pafs.FileSelector(f"{root}/{VIEWS_DIR}", allow_not_found=True))
    rows = []
    for folder in sorted((f for f in folders if f.type == pafs.FileType.Directory), key=lambda f: f.base_name):
        inside = fs.get_file_info(pafs.FileSelector(folder.path, allow_not_found=True))
        if not any(i.base_name == POINTER and i.type == pafs.FileType.File for i in inside):
            continue
        try:
            body = read_view(output, folder.base_name, filesystem)
        except FileNotFoundError:
            continue   # deleted since the listing, or being deleted
        counts = body.get("counts") or {}
        named = {body.get("generation"), body.get("previous")}
        others = [i for i in inside if i.type == pafs.FileType.Directory and is_generation(i.base_name)
                  and i.base_name not in named]
        created = body.get("created_at")
        rows.append((folder.base_name, body.get("topics_version"), body.get("generation"),
                     datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
                     body.get("since"), body.get("until"), len(body.get("runs") or []),
                     len(body.get("skipped") or {}), counts.get("entries"), counts.get("stories"),
                     len(body.get("warnings") or []), len(others),
                     f"{os.fspath(output).rstrip('/')}/{VIEWS_DIR}/{folder.base_name}/{body.get('generation')}"
                     f"/stories"))
    columns = list(zip(*rows)) if rows else [()] * len(VIEWS_SCHEMA)
    table = pa.table([pa.array(values, type=field.type) for values, field in zip(columns, VIEWS_SCHEMA)],
                     schema=VIEWS_SCHEMA)
    return _frame(table)


def _in_view(output, view: Optional[str], filesystem, read):
    """read(root): of OUT itself, or of the generation the view's pointer
    names. A retag that replaces the view keeps the generation it replaced
    until the next retag of the name: a read whose pointer changed
    meanwhile (its generation may be going) or that meets a vanished file
    follows the pointer again."""
    if view is None:
        return read(output)
    from pipeline.views import VIEWS_DIR

    for attempt in range(_READ_ATTEMPTS):
        generation = read_view(output, view, filesystem)["generation"]
        root = f"{os.fspath(output).rstrip('/')}/{VIEWS_DIR}/{view}/{generation}"
        last = attempt == _READ_ATTEMPTS - 1
        try:
            result = read(root)
        except FileNotFoundError:
            if last:
                raise
            continue
        if read_view(output, view, filesystem)["generation"] == generation:
            return result
        if last:
            raise IOError(f"view {view!r} in {output} kept changing while being read; read it again")


def entry_files(output, since: Bound = None, until: Bound = None,
                filesystem: Optional[pafs.FileSystem] = None):
    """(pyarrow filesystem, the entries files of the partitions that meet
    [since, until), (start, end) as UTC datetimes): what `newswatch retag`
    reads. Only those partition folders are listed below OUT/entries/."""
    fs, root = _resolve(output, filesystem)
    start, end = _bound(since, is_end=False), _bound(until, is_end=True)
    folder = f"{root}/entries"
    if fs.get_file_info(folder).type == pafs.FileType.NotFound:
        return fs, [], (start, end)
    return fs, _data_files(fs, folder, _span(since, until)), (start, end)


def bounds(since: Bound = None, until: Bound = None) -> Tuple[Optional[datetime], Optional[datetime]]:
    """[since, until) as UTC datetimes (a date is its whole day), None for open ends."""
    return _bound(since, is_end=False), _bound(until, is_end=True)


def resolve(output, filesystem: Optional[pafs.FileSystem] = None) -> Tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, OUT as a path on it), as every reader here finds them."""
    return _resolve(output, filesystem)


def output_exists(output, filesystem: Optional[pafs.FileSystem] = None) -> bool:
    try:
        fs, root = _resolve(output, filesystem)
    except FileNotFoundError:
        return False
    return fs.get_file_info(root).type != pafs.FileType.NotFound or bool(
        fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)))


def open_markers(output, filesystem: Optional[pafs.FileSystem] = None) -> dict:
    """Run id -> started_at (UTC datetime, or None) of each open run marker
    in _state/runs: runs under way or killed, and streaming jobs running."""
    markers = {}
    for run_id, body in run_markers(output, filesystem).items():
        text = body.get("started_at")
        try:
            markers[run_id] = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
        except (ValueError, AttributeError):
            markers[run_id] = None
    return markers


def run_markers(output, filesystem: Optional[pafs.FileSystem] = None) -> dict:
    """Run id -> the body of its open marker in _state/runs (a dict; empty
    when unreadable: the name is what counts): started_at, and a streaming
    job's window_s."""
    fs, root = _resolve(output, filesystem)
    markers = {}
    for info in _listing(fs, f"{root}/{STATE_RUNS}"):
        if not info.base_name.endswith(".json") or info.base_name.startswith("."):
            continue
        body = {}
        try:
            with fs.open_input_stream(info.path) as handle:
                body = json.loads(handle.read().decode())
        except (OSError, ValueError):
            pass
        markers[info.base_name[: -len(".json")]] = body if isinstance(body, dict) else {}
    return markers


def committed_units(output, filesystem: Optional[pafs.FileSystem] = None) -> List[str]:
    """The commit units in _state/seen: batch runs and streaming window
    panes (`<run_id>-w<start>-p<pane>`) that committed, less the runs whose
    marker is open (a re-run under way, or a commit cut off)."""
    fs, root = _resolve(output, filesystem)
    open_runs = set(open_markers(output, filesystem))
    units = set()
    for info in _listing(fs, f"{root}/{STATE_SEEN}"):
        if not info.base_name.endswith(".parquet") or info.base_name.startswith((".", "_")):
            continue
        try:
            table = pq.read_table(info.path, filesystem=fs, columns=["run_id"])
        except (pa.ArrowException, OSError):
            continue  # unreadable: the next run moves it to _state/corrupt/
        units.update(pc.unique(table.column("run_id")).to_pylist())
    return sorted(units - open_runs)


# --------------------------------------------------------------------------- reading


def _read_stories_table(output, since, until, on, topics, columns, run_id, filesystem) -> pa.Table:
    wanted = list(columns)
    if topics is not None and "topics" not in wanted:
        wanted.append("topics")
    span = (None, None)
    if on == ON_PUBLISHED:
        in_range = _in_range(since, until, ("published_at", "fetched_at"), by_partition=True)
        span = _span(since, until)
    else:
        in_range = _in_range(since, until, ("fetched_at",), by_partition=False)
    table = _read(output, "stories", STORIES_DATASET_SCHEMA, wanted, in_range, run_id, filesystem, span)
    if topics is not None:
        table = table.filter(_has_any(table.column("topics"), _names(topics)))
    return table


# The time columns whose UTC date is a row's `date` partition, per kind: the
# rows of a month file (pipeline/compact.py) get their `date` from them.
_DATE_OF = {"stories": ("published_at", "fetched_at"), "fetches": ("fetched_at",),
            "errors": ("occurred_at",), "runs": ("started_at",), "entries": ("fetched_at",)}
_READ_ATTEMPTS = 3


def _read(output, kind: str, schema: pa.Schema, columns: List[str], conditions: List[ds.Expression],
          run_id: RunIds, filesystem, span: Tuple[Optional[date], Optional[date]] = (None, None)) -> pa.Table:
    """The rows of OUT/<kind> that meet every condition and are of `run_id`,
    as a table of `columns`: the folders outside `span` (first and last day)
    are not opened, the conditions go down to the Parquet reader."""
    fs, root = _resolve(output, filesystem)
    runs = _run_ids(output, run_id, filesystem)
    conditions = list(conditions)
    if runs is not None:
        conditions.append(ds.field("run_id").isin(pa.array(sorted(runs), pa.string())))
    folder = f"{root}/{kind}"
    if (runs is not None and not runs) or fs.get_file_info(folder).type == pafs.FileType.NotFound:
        return schema.empty_table().select(columns)
    where = None
    for condition in conditions:
        where = condition if where is None else where & condition
    times = [name for name in _DATE_OF.get(kind, ()) if name in schema.names]
    wanted = list(columns) + [name for name in times if name not in columns and "date" in columns]
    for attempt in range(_READ_ATTEMPTS):
        try:
            paths = _data_files(fs, folder, span)
            if not paths:
                return schema.empty_table().select(columns)
            dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=fs,
                                 partitioning=ds.partitioning(PARTITION_SCHEMA, flavor="hive"),
                                 partition_base_dir=folder)
            table = dataset.to_table(columns=wanted, filter=where)
            break
        except FileNotFoundError:
            if attempt == _READ_ATTEMPTS - 1:  # a compaction swapped files while we read
                raise
    if "date" in columns and times:
        table = _fill_dates(table, times)
    return table.select(columns)


def _data_files(fs: pafs.FileSystem, folder: str, span: Tuple[Optional[date], Optional[date]]) -> List[str]:
    """The Parquet files of one kind folder that a reader reads: in a
    partition folder whose days meet `span`, not hidden, and not a source
    of a merged file that is also there (a compaction between publishing
    and deleting)."""
    from pipeline.compact import compacted_from, folder_span, is_visible

    prefix = folder + "/"
    files = {}
    for info in fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True)):
        relative = info.path[len(prefix):] if info.path.startswith(prefix) else info.path
        if info.type != pafs.FileType.File or not is_visible(relative):
            continue
        days = folder_span(relative.split("/", 1)[0]) if "/" in relative else None
        if days is not None and ((span[0] is not None and days[1] < span[0])
                                 or (span[1] is not None and days[0] > span[1])):
            continue
        files[relative] = info.size
    # A merged file's footer is read only while files it may replace are
    # still there: files in folders within its day or month.
    spans = {name: folder_span(name.split("/", 1)[0]) for name in files}
    for name in [name for name in files if name.rsplit("/", 1)[-1].startswith("compacted-")]:
        mine = spans[name]
        if mine is None or not any(other != name and days is not None and mine[0] <= days[0] <= days[1] <= mine[1]
                                   for other, days in spans.items()):
            continue
        for source, size in compacted_from(pq.read_schema(f"{prefix}{name}", filesystem=fs).metadata):
            if source != name and files.get(source) == size:
                del files[source]
    return [prefix + name for name in sorted(files)]


def _fill_dates(table: pa.Table, times: Sequence[str]) -> pa.Table:
    """`date` of rows that have none (those of a month file): the UTC date of
    the first of `times` that is not null."""
    dates = table.column("date")
    if dates.null_count == 0:
        return table
    when = pc.coalesce(*[table.column(name) for name in times]) if len(times) > 1 else table.column(times[0])
    derived = pc.cast(pc.cast(when, pa.timestamp("us")), pa.date32())  # UTC wall time, then its day
    return table.set_column(table.schema.get_field_index("date"), table.schema.field("date"),
                            pc.coalesce(dates, derived))


def _in_range(since: Bound, until: Bound, times: Sequence[str], by_partition: bool) -> List[ds.Expression]:
    """Conditions that keep rows whose time is in [since, until): the first of
    `times` that is not null. With `by_partition`, the `date` partition is
    the UTC date of that same time, and is checked first."""
    start, end = _bound(since, is_end=False), _bound(until, is_end=True)
    if start is None and end is None:
        return []
    conditions = _partition_range(start, end) if by_partition else []
    in_range, earlier_null = None, None
    for name in times:
        here = _time_range(ds.field(name), start, end)
        if earlier_null is not None:
            here = earlier_null & here
        in_range = here if in_range is None else in_range | here
        earlier_null = ds.field(name).is_null() if earlier_null is None else earlier_null & ds.field(name).is_null()
    return conditions + [in_range]


def _partition_range(start: Optional[datetime], end: Optional[datetime]) -> list:
    # A month file's rows have no `date` partition: the time condition decides.
    day = ds.field("date")
    condition = day.is_null()
    if start is not None and end is not None:
        return [condition | ((day >= start.date()) & (day <= (end - timedelta(microseconds=1)).date()))]
    if start is not None:
        return [condition | (day >= start.date())]
    return [condition | (day <= (end - timedelta(microseconds=1)).date())]


def _span(since: Bound, until: Bound) -> Tuple[Optional[date], Optional[date]]:
    """The first and last UTC day of [since, until), for pruning folders."""
    start, end = _bound(since, is_end=False), _bound(until, is_end=True)
    return (start.date() if start is not None else None,
            (end - timedelta(microseconds=1)).date() if end is not None else None)


def _time_range(field: ds.Expression, start: Optional[datetime], end: Optional[datetime]) -> ds.Expression:
    timestamp = STORIES_DATASET_SCHEMA.field("published_at").type
    condition = None
    if start is not None:
        condition = field >= pa.scalar(start, timestamp)
    if end is not None:
        before = field < pa.scalar(end, timestamp)
        condition = before if condition is None else condition & before
    return condition


def _has_any(lists: pa.ChunkedArray, names: List[str]) -> pa.Array:
    """For each list, whether it holds any of `names`."""
    lists = lists.combine_chunks()
    hits = pc.filter(pc.list_parent_indices(lists),
                     pc.is_in(pc.list_flatten(lists), pa.array(names, pa.string())))
    keep = np.zeros(len(lists), dtype=bool)
    keep[hits.to_numpy()] = True
    return pa.array(keep)


def _run_ids(output, run_id: RunIds, filesystem) -> Optional[set]:
    if run_id is None:
        return None
    if run_id is LAST_RUN:
        latest = last_run(output, filesystem)
        return {latest} if latest is not None else set()
    return {run_id} if isinstance(run_id, str) else set(run_id)


# --------------------------------------------------------------------------- helpers


def _resolve(output, filesystem: Optional[pafs.FileSystem]) -> Tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, OUT as a path on it)."""
    output = os.fspath(output)
    scheme, _, rest = output.partition("://") if "://" in output else ("", "", output)
    if filesystem is not None:
        return filesystem, (rest if scheme else output).rstrip("/")
    if not scheme or scheme == "file":
        root = os.path.abspath(os.path.expanduser(rest if scheme else output))
        # A folder not written yet reads as empty; the output itself missing
        # is a wrong path, not an empty dataset.
        if not os.path.isdir(root):
            raise FileNotFoundError(f"no output folder at {root}")
        return pafs.LocalFileSystem(), root
    from transforms.arrow_filesystem import beam_filesystem  # imports Beam: only for object stores

    return beam_filesystem(scheme), rest.rstrip("/")


def _listing(fs: pafs.FileSystem, folder: str) -> List[pafs.FileInfo]:
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)


def _bound(value: Bound, is_end: bool) -> Optional[datetime]:
    """A since/until value as a UTC datetime; a date is its whole day."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a date or time: {value!r} (use YYYY-MM-DD or ISO 8601)") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        day = datetime.combine(value, time(), tzinfo=timezone.utc)
        if is_end and value >= date.max:
            return None  # the end of time: no bound
        return day + timedelta(days=1) if is_end else day
    raise TypeError(f"since/until must be a date, a datetime or a string, not {type(value).__name__}")


def _columns(schema: pa.Schema, columns: Optional[Sequence[str]]) -> List[str]:
    if columns is None:
        return list(schema.names)
    if isinstance(columns, str):
        columns = [columns]
    unknown = [name for name in columns if name not in schema.names]
    if unknown:
        raise ValueError(f"no column {', '.join(map(repr, unknown))}; the columns are "
                         f"{', '.join(schema.names)}")
    return list(columns)


def _names(topics: Iterable[str]) -> List[str]:
    return [topics] if isinstance(topics, str) else list(topics)


def _matches_schema(extra: List[str]) -> pa.Schema:
    fields = [STORIES_DATASET_SCHEMA.field("story_id").with_nullable(True)]
    fields += list(MATCHES.value_type)
    fields += [STORIES_DATASET_SCHEMA.field(name) for name in extra]
    return pa.schema(fields)


def _with_source(columns: List[str], source: str) -> List[str]:
    """The columns to read: error_category needs the text it comes from."""
    return [*columns, source] if "error_category" in columns and source not in columns else columns


def _fill_category(table: pa.Table, source: str) -> pa.Table:
    """error_category taken from the `source` text where it is null: rows of
    files written before schema version 4 (newer rows have it, or no error)."""
    if "error_category" not in table.column_names:
        return table
    categories = table.column("error_category")
    if categories.null_count == 0:
        return table
    texts = table.column(source).to_pylist()
    filled = [given if given is not None else error_category(text)
              for given, text in zip(categories.to_pylist(), texts)]
    return table.set_column(table.schema.get_field_index("error_category"), "error_category",
                            pa.array(filled, pa.string()))


_NULLABLE_DTYPES = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                    pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def _frame(table: pa.Table) -> pd.DataFrame:
    # Nullable integers and flags: the same dtype whether or not a column holds nulls.
    return table.to_pandas(types_mapper=_NULLABLE_DTYPES.get)
