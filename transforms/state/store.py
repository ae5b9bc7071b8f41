"""The state store: OUT/_state/ on disk (or gs://, s3://), as laid out in
transforms/state/__init__.py. Reads merge every run's files, commits write
the run's own files, compaction merges a folder that grew too long.

Also here: the files' pyarrow schemas and the records read from and written
to them (SeenRecord, StateReport).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms import phases
from transforms.errors import first_line
from transforms.feedstate import FeedState
from transforms.paths import delete_files, delete_present, file_metadata
from transforms.paths import make_folder
from transforms.sink import write_parquet_atomically
from transforms.sketch import NUM_PERM
from transforms.state.cluster_index import ClusterIndex, ClusterRecord
from transforms.state import seen_digests, seen_files
from transforms.state.seen_index import SeenIndex

_log = logging.getLogger(__name__)

STATE_DIR = "_state"
FEEDS, SEEN, CLUSTERS, RUNS, CORRUPT = "feeds", "seen", "clusters", "runs", "corrupt"
COMPACT_AFTER = 32
# A compaction writes its digest file, then renames its Parquet file into
# place (a copy on gs:// and s3://, minutes for a large file): a digest file
# without its Parquet file is left over only once it is older than this.
ORPHAN_DIGEST_SECONDS = 3600
DEFAULT_LOOKBACK_DAYS = 30
_TS = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

FEED_STATE_SCHEMA = pa.schema([
    pa.field("feed_url", pa.string(), nullable=False),
    pa.field("etag", pa.string()),
    pa.field("last_modified", pa.string()),
    pa.field("last_status", pa.int32()),
    pa.field("last_fetched_at", _TS),
    pa.field("next_fetch_at", _TS),
    pa.field("consecutive_failures", pa.int32()),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("committed_at", _TS, nullable=False),
])

# key: 16-byte digest of a dedup identity; a null key marks the commit itself,
# so a re-run that writes no story still supersedes its earlier attempt.
SEEN_SCHEMA = pa.schema([
    pa.field("key", pa.binary(16)),
    pa.field("story_id", pa.string()),
    pa.field("seen_at", _TS, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("committed_at", _TS, nullable=False),
])
# One row per written story that has a sketch (transforms/sketch.py); a null
# story_id marks the commit itself, as in SEEN_SCHEMA.
CLUSTER_STATE_SCHEMA = pa.schema([
    pa.field("story_id", pa.string()),
    pa.field("cluster_id", pa.string()),
    pa.field("signature", pa.binary(4 * NUM_PERM)),
    pa.field("shingles", pa.int32()),
    pa.field("seen_at", _TS, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("committed_at", _TS, nullable=False),
])
SCHEMAS = {FEEDS: FEED_STATE_SCHEMA, SEEN: SEEN_SCHEMA, CLUSTERS: CLUSTER_STATE_SCHEMA}


def key_digest(identity: str) -> bytes:
    """The 16-byte digest stored for one dedup identity ("url:https://...")."""
    return hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class SeenRecord:
    """One identity of a written story, as remembered by the next runs."""

    key: bytes
    story_id: str
    seen_at: datetime


class UnreadableFile(NamedTuple):
    """A state file that could not be read (moved to _state/corrupt/)."""

    path: str      # where it was found
    reason: str    # the error, one line


@dataclass
class StateReport:
    """What a run found in the state: the summary prints its notes."""

    feeds_known: int = 0
    files: int = 0
    unreadable: List[UnreadableFile] = field(default_factory=list)
    open_runs: Dict[str, Optional[str]] = field(default_factory=dict)  # run id -> started at
    missing: bool = False

    def notes(self) -> List[str]:
        notes = [f"state: {self.feeds_known:,} feeds remembered from earlier runs"]
        for path, reason in self.unreadable:
            notes.append(f"WARNING state file {path} is unreadable ({reason}); moved to "
                         f"{STATE_DIR}/{CORRUPT}/; what it remembered is treated as new in this run")
        if self.missing:
            notes.append("WARNING no state found although the output holds stories: every feed "
                         "is fetched in full and every story is treated as new in this run")
        for run_id, started in sorted(self.open_runs.items()):
            notes.append(f"WARNING run {run_id} (started {started or 'at an unknown time'}) has not "
                         f"committed its state: the next run that holds the output's lease "
                         f"recovers it")
        return notes


class LoadedFeedStates(NamedTuple):
    """What StateStore.load_feed_states found: feed URL -> FeedState, and the report."""

    states: Dict[str, FeedState]
    report: StateReport


class StateStore:
    """Reads and writes OUT/_state. Every method goes through FileSystems."""

    def __init__(self, output: str):
        self.output = output
        self.root = FileSystems.join(output, STATE_DIR)

    def _dir(self, kind: str) -> str:
        return FileSystems.join(self.root, kind)

    def _parquet_files(self, kind: str) -> list:
        """Metadata of the Parquet files in one state folder (none while it is absent)."""
        return _list(self._dir(kind), "*.parquet")

    def _file_stamps(self, kind: str) -> Dict[str, Tuple[int, float]]:
        """Path -> (size, last update) of each Parquet file in one state folder."""
        return {m.path: (m.size_in_bytes, m.last_updated_in_seconds) for m in self._parquet_files(kind)}

    # -- run markers ------------------------------------------------------------
    def open_run(self, run_id: str, started_at: datetime, window_s: Optional[float] = None) -> None:
        """Marks `run_id` as started: until it commits, its rows count for nobody.
        A streaming job's marker also holds its window length, for
        `newswatch retag` to tell its committed windows from later ones."""
        marker = {"run_id": run_id, "started_at": _iso(started_at)}
        if window_s is not None:
            marker["window_s"] = window_s
        body = json.dumps(marker).encode()
        write_atomically(FileSystems.join(self._dir(RUNS), f"{run_id}.json"), body)

    def close_run(self, run_id: str) -> None:
        delete_present([FileSystems.join(self._dir(RUNS), f"{run_id}.json")])

    def open_runs(self) -> Dict[str, Optional[str]]:
        runs = {}
        for meta in _list(self._dir(RUNS), "*.json"):
            run_id = meta.path.rsplit("/", 1)[-1][: -len(".json")]
            try:
                with FileSystems.open(meta.path) as handle:
                    runs[run_id] = json.loads(handle.read().decode()).get("started_at")
            except Exception:
                runs[run_id] = None  # the name is what counts
        return runs

    # -- reading ----------------------------------------------------------------
    def read(self, kind: str, move_aside: bool = True) -> Tuple[Optional[pa.Table], List[UnreadableFile], int]:
        """All rows of one folder (or None), the unreadable files, the file count.

        An unreadable file (not Parquet, wrong schema) is moved to _state/corrupt/
        and reported. A file that vanishes while we read was merged by a
        concurrent compaction, which wrote its merged file first: we list again
        and read the files we have not read yet. Rows read twice are harmless
        (every reader takes the union, the latest commit, the latest fetch).
        """
        schema = SCHEMAS[kind]
        tables, unreadable, done = [], [], set()
        for _ in range(20):
            metas = self._parquet_files(kind)
            vanished = False
            for meta in metas:
                if meta.path in done:
                    continue
                try:
                    data = _read_bytes(meta.path)
                except Exception:
                    if FileSystems.exists(meta.path):
                        raise  # storage trouble, not a state problem: the run fails
                    vanished = True
                    continue
                done.add(meta.path)
                try:
                    tables.append(_parse_table(data, schema))
                except (pa.ArrowException, ValueError, KeyError, EOFError) as exc:
                    reason = first_line(exc, limit=200)
                    unreadable.append(UnreadableFile(meta.path, reason))
                    if move_aside:
                        _log.warning("state file %s is unreadable (%s); moving it aside", meta.path, reason)
                        self._move_aside(meta.path)
            if not vanished:
                table = pa.concat_tables(tables) if tables else None
                return table, unreadable, len(metas)
        raise IOError(f"state folder {self._dir(kind)} keeps changing while being read")

    def _move_aside(self, path: str) -> None:
        target = FileSystems.join(self._dir(CORRUPT), f"{uuid.uuid4().hex[:8]}-{path.rsplit('/', 1)[-1]}")
        try:
            make_folder(self._dir(CORRUPT))
            FileSystems.rename([path], [target])
        except Exception:  # another reader moved it first
            return
        digests = seen_digests.digests_path(path) if path.endswith(".parquet") else None
        if digests and FileSystems.exists(digests):   # made from the file moved: of no use without it
            try:
                FileSystems.rename([digests], [seen_digests.digests_path(target)])
            except Exception:
                pass

    def load_feed_states(self, run_id: str) -> LoadedFeedStates:
        """The FeedState to start from for every feed known to committed runs
        (other than `run_id`, which is about to run), and what was found.

        Every committed row counts, however old: rows past the lookback
        go when compaction prunes them."""
        open_runs = self.open_runs()
        table, unreadable, files = self.read(FEEDS)
        states: Dict[str, FeedState] = {}
        if table is not None:
            table = current_rows(table, set(open_runs) | {run_id})
            for row in sorted(table.to_pylist(), key=lambda r: (r["last_fetched_at"] or _EPOCH,
                                                                r["committed_at"])):
                states[row["feed_url"]] = _feed_state(row)  # the latest fetch wins
        report = StateReport(feeds_known=len(states), files=files, unreadable=unreadable,
                             open_runs={r: s for r, s in open_runs.items() if r != run_id})
        if files == 0 and not unreadable and not self._parquet_files(SEEN):
            report.missing = _has_stories(self.output)
        return LoadedFeedStates(states, report)

    def load_seen(self, run_id: str, as_of: datetime, lookback: timedelta) -> SeenIndex:
        """The identities of stories written by committed runs within the lookback.

        Read row group by row group, only the digest columns (seen_files.py);
        a compaction's digests are memory-mapped from its digest file when it
        has a valid one. An unreadable file is moved aside and reported, as read() does."""
        hidden = set(self.open_runs()) | {run_id}
        cutoff_us = (as_of - lookback - _EPOCH) // timedelta(microseconds=1)
        index, unreadable = self._read_seen(
            lambda paths, digests: seen_files.load_index(paths, digests, hidden, cutoff_us, SEEN_SCHEMA))
        index.unreadable = unreadable
        return index

    def seen_commits(self, move_aside: bool = True) -> Dict[str, int]:
        """Run id -> its latest committed_at (µs since 1970) in _state/seen,
        every run that has a row there (only those two columns are read)."""
        commits, _ = self._read_seen(
            lambda paths, digests: seen_files.latest_commits(paths, digests, SEEN_SCHEMA), move_aside)
        return commits

    def _read_seen(self, read, move_aside: bool = True):
        """(read(paths, digest file sizes) over the seen folder's Parquet files,
        the unreadable files), as read() does it: a file that vanished (merged
        by a concurrent compaction) makes us list again; an unreadable one is
        left out, moved aside unless `move_aside` is false, and reported."""
        unreadable: List[UnreadableFile] = []
        changes = 0   # an unreadable file is left out for good: only vanished ones count
        while changes < 20:
            bad_paths = {u.path for u in unreadable}
            paths = [m.path for m in self._parquet_files(SEEN) if m.path not in bad_paths]
            digests = {m.path: m.size_in_bytes for m in _list(self._dir(SEEN), "*" + seen_digests.SUFFIX)}
            try:
                return read(paths, digests), unreadable
            except seen_files.Vanished:
                changes += 1
            except seen_files.Unreadable as bad:
                unreadable.append(UnreadableFile(bad.path, bad.reason))
                if move_aside:
                    _log.warning("state file %s is unreadable (%s); moving it aside", bad.path, bad.reason)
                    self._move_aside(bad.path)
        raise IOError(f"state folder {self._dir(SEEN)} keeps changing while being read")

    def load_clusters(self, run_id: str, as_of: datetime, lookback: timedelta) -> ClusterIndex:
        """The sketches and clusters of stories written by committed runs
        within the lookback, leaving out `run_id` and its streaming units
        (a streaming job remembers those in keyed state)."""
        table, _, _ = self.read(CLUSTERS)
        if table is None:
            return ClusterIndex.empty()
        table = current_rows(table, set(self.open_runs()) | {run_id})
        # The job's own units from this start on are in its keyed state; those
        # of an earlier start under the same run id are not.
        own = pc.and_(pc.starts_with(table["run_id"], f"{run_id}-w"),
                      pc.greater_equal(table["committed_at"], pa.scalar(as_of, _TS)))
        table = table.filter(pc.and_(pc.invert(own),
                                     pc.greater_equal(table["seen_at"], pa.scalar(as_of - lookback, _TS))))
        return ClusterIndex.from_table(table)

    def later_commits(self, run_id: str) -> List[str]:
        """The run ids committed after `run_id`'s latest commit (none if it never committed).
        Unreadable files stay where they are, for the run's own reading to report."""
        commits = self.seen_commits(move_aside=False)
        if run_id not in commits:
            return []
        return sorted(r for r, committed in commits.items() if committed > commits[run_id] and r != run_id)

    # -- writing ----------------------------------------------------------------
    def commit(self, run_id: str, committed_at: datetime, seen: Iterable[SeenRecord],
               feeds: Iterable[Tuple[str, FeedState]], as_of: datetime, lookback: timedelta,
               clusters: Iterable[ClusterRecord] = ()) -> None:
        """Writes the run's state files, then removes its marker (the commit
        point), then compacts folders that grew past COMPACT_AFTER files.
        Clusters first, seen next, feeds last: a streaming unit (no marker)
        cut off between two of them lacks what only later files hold."""
        clusters = sorted(clusters, key=lambda r: r.story_id)
        cluster_table = pa.table({
            "story_id": [r.story_id for r in clusters] + [None],
            "cluster_id": [r.cluster_id for r in clusters] + [None],
            "signature": [r.signature for r in clusters] + [None],
            "shingles": [r.shingles for r in clusters] + [None],
            "seen_at": [r.seen_at for r in clusters] + [committed_at],
            "run_id": [run_id] * (len(clusters) + 1),
            "committed_at": [committed_at] * (len(clusters) + 1),
        }, schema=CLUSTER_STATE_SCHEMA)
        seen = sorted(seen, key=lambda r: r.key)
        seen_table = pa.table({
            "key": [r.key for r in seen] + [None],
            "story_id": [r.story_id for r in seen] + [None],
            "seen_at": [r.seen_at for r in seen] + [committed_at],
            "run_id": [run_id] * (len(seen) + 1),
            "committed_at": [committed_at] * (len(seen) + 1),
        }, schema=SEEN_SCHEMA)
        feed_rows = [dict(feed_url=url, **_feed_state_row(state), run_id=run_id,
                          committed_at=committed_at) for url, state in sorted(feeds, key=lambda p: p[0])]
        feed_table = pa.Table.from_pylist(feed_rows, schema=FEED_STATE_SCHEMA)
        write_parquet_atomically(FileSystems.join(self._dir(CLUSTERS), f"{run_id}.parquet"), cluster_table)
        write_parquet_atomically(FileSystems.join(self._dir(SEEN), f"{run_id}.parquet"), seen_table)
        phases.reached(phases.COMMIT)
        write_parquet_atomically(FileSystems.join(self._dir(FEEDS), f"{run_id}.parquet"), feed_table)
        self.close_run(run_id)
        for kind in (CLUSTERS, SEEN, FEEDS):
            if len(self._parquet_files(kind)) > COMPACT_AFTER:
                self.compact(kind, as_of, lookback)

    def compact(self, kind: str, as_of: datetime, lookback: timedelta) -> Optional[str]:
        """Merges the folder into one file: superseded commits and rows older
        than the lookback dropped; for feeds, one row per feed (plus rows of
        open runs, which may yet be superseded). Returns the new file."""
        if kind == SEEN:
            return self._compact_seen(as_of, lookback)
        before = self._file_stamps(kind)
        table, _, _ = self.read(kind)
        if table is None:
            return None
        table = current_rows(table, set())
        cutoff = pa.scalar(as_of - lookback, _TS)
        if kind in (SEEN, CLUSTERS):
            table = table.filter(pc.greater_equal(table["seen_at"], cutoff))
        else:
            table = table.filter(pc.greater_equal(table["last_fetched_at"], cutoff))
            table = _latest_per_feed(table, set(self.open_runs()))
        path = FileSystems.join(self._dir(kind), f"compacted-{uuid.uuid4().hex}.parquet")
        write_parquet_atomically(path, table)
        # Delete only inputs still as we read them: a re-run may have replaced one.
        now = self._file_stamps(kind)
        delete_present([p for p, stamp in before.items() if now.get(p) == stamp])
        self._close_forgotten_runs(as_of, lookback)
        return path

    def _compact_seen(self, as_of: datetime, lookback: timedelta) -> Optional[str]:
        """compact() of the seen folder, file by file and row group by row group
        (seen_files.compact), also writing the new file's digest file."""
        cutoff_us = (as_of - lookback - _EPOCH) // timedelta(microseconds=1)
        path = FileSystems.join(self._dir(SEEN), f"compacted-{uuid.uuid4().hex}.parquet")
        unreadable = set()
        changes = 0   # an unreadable file is left out for good: only vanished ones count
        while True:
            if changes == 20:
                raise IOError(f"state folder {self._dir(SEEN)} keeps changing while being compacted")
            before = {p: stamp for p, stamp in self._file_stamps(SEEN).items() if p not in unreadable}
            if not before:
                return None
            try:
                make_folder(self._dir(SEEN))
                seen_files.compact(sorted(before), path, cutoff_us, SEEN_SCHEMA)
                break
            except seen_files.Vanished:
                changes += 1
            except seen_files.Unreadable as bad:
                _log.warning("state file %s is unreadable (%s); moving it aside", bad.path, bad.reason)
                unreadable.add(bad.path)
                self._move_aside(bad.path)
        # Delete only inputs still as we read them: a re-run may have replaced one.
        now = self._file_stamps(SEEN)
        gone = [p for p, stamp in before.items() if now.get(p) == stamp]
        delete_present(gone)
        delete_present([seen_digests.digests_path(p) for p in gone
                         if p.rsplit("/", 1)[-1].startswith("compacted-")])
        self._delete_orphan_digests()
        self._close_forgotten_runs(as_of, lookback)
        return path

    def _delete_orphan_digests(self) -> None:
        """Deletes digest files without their Parquet file (left by a
        compaction cut off partway) once ORPHAN_DIGEST_SECONDS old: a
        compaction under way writes its digest file before renaming its
        Parquet file into place."""
        parquet = {m.path for m in self._parquet_files(SEEN)}
        now = time.time()
        delete_present([
            m.path for m in _list(self._dir(SEEN), "compacted-*" + seen_digests.SUFFIX)
            if m.path[: -len(seen_digests.SUFFIX)] + ".parquet" not in parquet
            and now - (m.last_updated_in_seconds or now) >= ORPHAN_DIGEST_SECONDS])

    def _close_forgotten_runs(self, as_of: datetime, lookback: timedelta) -> None:
        for run_id, started in self.open_runs().items():
            if started and _parse_iso(started) < as_of - lookback:
                self.close_run(run_id)  # forgotten long ago: its rows are pruned anyway


def current_rows(table: pa.Table, open_runs: set) -> pa.Table:
    """Rows of each run's latest commit, without the rows of open runs."""
    if table.num_rows == 0:
        return table
    runs = pc.dictionary_encode(table["run_id"].combine_chunks())
    run_of = runs.indices.to_numpy()
    committed = pc.cast(table["committed_at"], pa.int64()).combine_chunks().to_numpy()
    latest = np.full(len(runs.dictionary), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, run_of, committed)
    keep = committed == latest[run_of]
    if open_runs:
        is_open = np.isin(np.asarray(runs.dictionary.to_pylist(), dtype=object), list(open_runs))
        keep &= ~is_open[run_of]
    return table.filter(pa.array(keep))


def _latest_per_feed(table: pa.Table, open_runs: set) -> pa.Table:
    rows = table.to_pylist()
    latest: Dict[str, dict] = {}
    kept_open = []
    for row in rows:
        if row["run_id"] in open_runs:
            kept_open.append(row)
            continue
        best = latest.get(row["feed_url"])
        if best is None or (row["last_fetched_at"], row["committed_at"]) > (
                best["last_fetched_at"], best["committed_at"]):
            latest[row["feed_url"]] = row
    merged = sorted(list(latest.values()) + kept_open, key=lambda r: (r["feed_url"], r["run_id"]))
    return pa.Table.from_pylist(merged, schema=FEED_STATE_SCHEMA)


# ---------------------------------------------------------------- helpers

def _feed_state(row: dict) -> FeedState:
    return FeedState(etag=row["etag"], last_modified=row["last_modified"],
                     last_status=row["last_status"], last_fetched_at=row["last_fetched_at"],
                     next_fetch_at=row["next_fetch_at"],
                     consecutive_failures=row["consecutive_failures"] or 0)


def _feed_state_row(state: FeedState) -> dict:
    return dict(etag=state.etag, last_modified=state.last_modified, last_status=state.last_status,
                last_fetched_at=state.last_fetched_at, next_fetch_at=state.next_fetch_at,
                consecutive_failures=state.consecutive_failures)


def _read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()


def _parse_table(data: bytes, schema: pa.Schema) -> pa.Table:
    table = pq.read_table(pa.BufferReader(data))
    return table.select(schema.names).cast(schema)


def _list(folder: str, *glob_parts: str):
    """Metadata of the files under `folder` (literal) matching `glob_parts`."""
    try:
        return file_metadata(folder, *glob_parts)
    except Exception:  # folder absent: nothing yet
        return []


def _has_stories(output: str) -> bool:
    return bool(_list(output, "stories", "date=*", "*.parquet"))


def write_atomically(path: str, data: bytes) -> None:
    """A small object that appears whole: written under a hidden name, then renamed."""
    folder, name = path.rsplit("/", 1)
    make_folder(folder)
    temp = f"{folder}/.{name}.{uuid.uuid4().hex}.inprogress"
    with FileSystems.create(temp) as handle:
        handle.write(data)
    if FileSystems.exists(path):
        delete_files([path])
    FileSystems.rename([temp], [path])


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

