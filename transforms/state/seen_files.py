"""Reading `_state/seen` without holding it: each Parquet file is opened
through FileSystems (local disk, gs://, s3://; ranged reads, never the whole
file as bytes) and read row group by row group, only the columns needed.

Both readers of the folder are here:
- load_index: the SeenIndex of a run (StateStore.load_seen). The digests of a
  compacted file come from its memory-mapped digest file
  (transforms/state/seen_digests.py) when there is a valid one, the other
  files' digests are appended into preallocated arrays and sorted once.
- compact: the merged Parquet file of a compaction and its digest file,
  written batch by batch.

Which rows count is the rule of transforms/state/__init__.py (as
store.current_rows applies it to a table): a run's rows count if they belong
to its latest commit (the greatest committed_at of that run id over every
file) and the run is not hidden (open, or the reader's own run); for the
index, a row counts if its key is not null and seen_at is within the lookback.
"""
from __future__ import annotations

import mmap
import uuid
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.state import seen_digests
from transforms.state.seen_index import SeenIndex, Segment

_NEVER = np.iinfo(np.int64).min   # latest commit of a hidden run: no row has it
_INDEX_COLUMNS = ["key", "seen_at", "run_id", "committed_at"]
_COMMIT_COLUMNS = ["run_id", "committed_at"]
_ROW_GROUP_ROWS = 1 << 18   # rows per row group of a compacted file: bounds a reader's batch
_UNREADABLE = (pa.ArrowException, ValueError, KeyError, EOFError, TypeError)


class Vanished(Exception):
    """A listed file is gone: a concurrent compaction merged it. List again."""


class Unreadable(Exception):
    """A state file that is not a readable seen file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class _SeenFile(NamedTuple):
    path: str
    handle: object
    parquet: pq.ParquetFile
    digests: Optional[seen_digests.DigestFile]


class _OpenFiles(list):
    """The opened seen files of one read, closed at the end of it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for f in self:
            try:
                f.handle.close()
            except Exception:
                pass


def load_index(paths: Sequence[str], digest_sizes: Dict[str, int], hidden: Set[str],
               cutoff_us: int, schema: pa.Schema) -> SeenIndex:
    """The index of the seen files `paths`. `digest_sizes`: the digest files
    listed beside them (path -> bytes). Raises Unreadable for the first file
    that is not a seen file, Vanished when one is gone."""
    with _OpenFiles() as files:
        files.extend(_open(path, schema, digest_sizes) for path in paths)
        return _index(files, hidden, cutoff_us, schema)


def latest_commits(paths: Sequence[str], digest_sizes: Dict[str, int], schema: pa.Schema) -> Dict[str, int]:
    """Run id -> its latest committed_at (µs) in the seen files `paths`: two
    columns read, or the header of a valid digest file. Raises as load_index."""
    with _OpenFiles() as files:
        files.extend(_open(path, schema, digest_sizes) for path in paths)
        return _latest_commits(files, set())


def _index(files: List[_SeenFile], hidden: Set[str], cutoff_us: int, schema: pa.Schema) -> SeenIndex:
    latest = _latest_commits(files, hidden)
    segments = []
    for f in files:
        if f.digests is not None:
            segments.append(_mapped_segment(f.digests, latest, cutoff_us))
    scanned = [f for f in files if f.digests is None]
    buckets = _Buckets(sum(f.parquet.metadata.num_rows for f in scanned))
    for f in scanned:
        for batch in _batches(f, _INDEX_COLUMNS, schema):
            seen_us = _micros(batch["seen_at"])
            keep = _current(batch, latest) & pc.is_valid(batch["key"]).to_numpy(zero_copy_only=False)
            keep &= seen_us >= cutoff_us
            if keep.any():
                hi, lo = _halves(batch["key"])
                buckets.add(hi[keep], lo[keep], seen_us[keep])
    segments.append(buckets.segment())
    return SeenIndex(segments)


def _mapped_array(rows: int, dtype) -> np.ndarray:
    """An array in an anonymous mapping of its own: given back to the system
    as soon as it is freed (malloc may keep a freed block of a few MB), and
    only its written pages are resident."""
    return np.frombuffer(mmap.mmap(-1, max(1, rows * np.dtype(dtype).itemsize)), dtype=dtype, count=rows)


class _Buckets:
    """Digests gathered by the top 4 bits of their high half, in chunks, then
    sorted a bucket at a time into one segment, each bucket's chunks freed as
    its sorted rows are written: memory peaks at the digests once plus one
    bucket (a sort of the whole would add two columns' worth)."""

    BITS = 4
    MIN_CHUNK, MAX_CHUNK = 1 << 10, 1 << 22   # rows

    def __init__(self, capacity: int):
        self.chunk = max(self.MIN_CHUNK, min(self.MAX_CHUNK, capacity >> self.BITS))
        self.parts: List[list] = [[] for _ in range(1 << self.BITS)]   # per bucket: [hi, lo, seen, used]
        self.rows = 0

    def add(self, hi: np.ndarray, lo: np.ndarray, seen_us: np.ndarray) -> None:
        bucket = (hi >> np.uint64(64 - self.BITS)).astype(np.intp)
        order = np.argsort(bucket, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(bucket, minlength=len(self.parts)))]
        hi, lo, seen_us = hi[order], lo[order], seen_us[order]
        for b in np.flatnonzero(np.diff(bounds)):
            self._append(self.parts[b], hi[bounds[b]:bounds[b + 1]], lo[bounds[b]:bounds[b + 1]],
                         seen_us[bounds[b]:bounds[b + 1]])
        self.rows += len(hi)

    def _append(self, chunks: list, hi, lo, seen_us) -> None:
        done = 0
        while done < len(hi):
            if not chunks or chunks[-1][3] == self.chunk:
                chunks.append([_mapped_array(self.chunk, np.uint64), _mapped_array(self.chunk, np.uint64),
                               _mapped_array(self.chunk, np.int64), 0])
            last = chunks[-1]
            take = min(len(hi) - done, self.chunk - last[3])
            for column, values in zip(last[:3], (hi, lo, seen_us)):
                column[last[3]:last[3] + take] = values[done:done + take]
            last[3] += take
            done += take

    def segment(self) -> Segment:
        # Pages of the outputs are touched only as buckets are written.
        hi, lo, seen = np.empty(self.rows, np.uint64), np.empty(self.rows, np.uint64), np.empty(self.rows, np.int64)
        m = 0
        for b in range(len(self.parts)):
            chunks, self.parts[b] = self.parts[b], []
            if not chunks:
                continue
            columns = [np.concatenate([c[i][:c[3]] for c in chunks]) for i in range(3)]
            del chunks
            part = SeenIndex.sorted_segment(columns)
            k = len(part)
            hi[m:m + k], lo[m:m + k], seen[m:m + k] = part.hi, part.lo, part.seen_us
            m += k
        return Segment(hi[:m], lo[:m], seen[:m])


def compact(paths: Sequence[str], target: str, cutoff_us: int, schema: pa.Schema) -> None:
    """Merges the seen files `paths` into `target` (a compacted-*.parquet path)
    and writes its digest file first: rows of each run's latest commit (open
    runs' included: they may yet be superseded), seen_at within the lookback.
    Raises Unreadable / Vanished as load_index does."""
    with _OpenFiles() as files:
        files.extend(_open(path, schema, {}) for path in paths)
        _compact(files, target, cutoff_us, schema)


def _compact(files: List[_SeenFile], target: str, cutoff_us: int, schema: pa.Schema) -> None:
    latest = _latest_commits(files, set())
    capacity = sum(f.parquet.metadata.num_rows for f in files)
    hi, lo = np.empty(capacity, np.uint64), np.empty(capacity, np.uint64)
    seen, run = np.empty(capacity, np.int64), np.empty(capacity, np.uint32)
    codes: Dict[str, int] = {}
    n = rows = 0
    folder, name = target.rsplit("/", 1)
    temp = f"{folder}/.{name}.{uuid.uuid4().hex}.inprogress"
    try:
        with FileSystems.create(temp) as handle:
            with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
                for f in files:
                    for batch in _batches(f, schema.names, schema):
                        keep = _current(batch, latest) & (_micros(batch["seen_at"]) >= cutoff_us)
                        if not keep.any():
                            continue
                        batch = batch.filter(pa.array(keep))
                        runs = batch["run_id"]
                        # The codes of the runs left in the batch: a filtered
                        # dictionary array keeps every value of its dictionary.
                        indices = runs.indices.to_numpy(zero_copy_only=False)
                        present = np.unique(indices)
                        values = runs.dictionary.to_pylist()
                        to_code = np.zeros(len(values), np.uint32)
                        for i in present.tolist():
                            to_code[i] = codes.setdefault(values[i], len(codes))
                        out = batch.set_column(batch.schema.get_field_index("run_id"), "run_id",
                                               runs.dictionary.take(runs.indices))
                        writer.write_batch(out.cast(schema), row_group_size=_ROW_GROUP_ROWS)
                        rows += out.num_rows
                        has_key = pc.is_valid(batch["key"]).to_numpy(zero_copy_only=False)
                        k = int(np.count_nonzero(has_key))
                        bhi, blo = _halves(batch["key"])
                        hi[n:n + k], lo[n:n + k] = bhi[has_key], blo[has_key]
                        seen[n:n + k] = _micros(batch["seen_at"])[has_key]
                        run[n:n + k] = to_code[indices][has_key]
                        n += k
        by_code = sorted(codes, key=codes.get)
        seen_digests.write(seen_digests.digests_path(target), name, rows, hi[:n], lo[:n], seen[:n],
                           run[:n], [(r, int(latest[r])) for r in by_code], order=np.argsort(hi[:n]))
        FileSystems.rename([temp], [target])
    except BaseException:
        _delete_quietly(temp)
        _delete_quietly(seen_digests.digests_path(target))   # if written: no Parquet file will match it
        raise


# ---------------------------------------------------------------- helpers

def _open(path: str, schema: pa.Schema, digest_sizes: Dict[str, int]) -> _SeenFile:
    try:
        handle = FileSystems.open(path, compression_type="uncompressed")
    except Exception:
        if FileSystems.exists(path):
            raise  # storage trouble, not a state problem: the run fails
        raise Vanished(path)
    try:
        parquet = pq.ParquetFile(handle, read_dictionary=["run_id"])
        # The file's columns must be the schema's (castable), as a whole-table read required.
        parquet.schema_arrow.empty_table().select(schema.names).cast(schema)
    except _UNREADABLE as exc:
        handle.close()
        _unreadable_or_vanished(path, exc)
    digests = None
    digest_path = seen_digests.digests_path(path)
    if digest_path in digest_sizes:
        digests = seen_digests.open_mapped(digest_path, digest_sizes[digest_path],
                                           path.rsplit("/", 1)[-1], parquet.metadata.num_rows)
    return _SeenFile(path, handle, parquet, digests)


def _unreadable_or_vanished(path: str, exc: Exception):
    if not FileSystems.exists(path):
        raise Vanished(path)
    raise Unreadable(path, _first_line(exc)) from exc


def _first_line(exc: Exception, limit: int = 200) -> str:
    from transforms.errors import first_line

    return first_line(exc, limit=limit)


def _latest_commits(files: List[_SeenFile], hidden: Set[str]) -> Dict[str, int]:
    """Run id -> its latest committed_at (µs) over every file; _NEVER for hidden runs."""
    latest: Dict[str, int] = {}

    def note(run_id: str, committed: int) -> None:
        if committed > latest.get(run_id, _NEVER):
            latest[run_id] = committed

    for f in files:
        if f.digests is not None:
            for run_id, committed in f.digests.runs:
                note(run_id, committed)
            continue
        for batch in _batches(f, _COMMIT_COLUMNS, None):
            runs = batch["run_id"]
            committed = _micros(batch["committed_at"])
            best = np.full(len(runs.dictionary), _NEVER, np.int64)
            np.maximum.at(best, runs.indices.to_numpy(zero_copy_only=False), committed)
            for run_id, value in zip(runs.dictionary.to_pylist(), best.tolist()):
                note(run_id, value)
    for run_id in hidden:
        latest[run_id] = _NEVER
    return latest


def _batches(f: _SeenFile, columns: List[str], schema: Optional[pa.Schema]) -> Iterator[pa.RecordBatch]:
    """The file's rows, row group by row group: `columns`, run_id
    dictionary-encoded, the others cast to `schema`'s types (timestamps as
    read when no schema)."""
    try:
        for group in range(f.parquet.metadata.num_row_groups):
            table = f.parquet.read_row_group(group, columns=columns, use_threads=False)
            arrays = []
            for name in columns:
                column = table[name].combine_chunks()
                if name == "run_id":
                    column = _dictionary(column)
                elif schema is not None:
                    column = column.cast(schema.field(name).type)
                arrays.append(column)
            del table
            yield pa.RecordBatch.from_arrays(arrays, names=columns)
    except _UNREADABLE as exc:
        _unreadable_or_vanished(f.path, exc)
    except Exception:
        # A storage error partway through a file that a concurrent compaction
        # deleted (gs://: the next 16 MB range request; tested): list again.
        # Otherwise the run fails.
        if not FileSystems.exists(f.path):
            raise Vanished(f.path)
        raise


def _dictionary(column: pa.Array) -> pa.DictionaryArray:
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column.cast(pa.string()))
    elif not pa.types.is_string(column.type.value_type):
        column = pc.dictionary_encode(column.dictionary_decode().cast(pa.string()))
    if column.null_count:
        raise ValueError("run_id has nulls")
    return column


def _current(batch: pa.RecordBatch, latest: Dict[str, int]) -> np.ndarray:
    """Rows of their run's latest commit (never those of hidden runs)."""
    runs = batch["run_id"]
    wanted = np.array([latest.get(r, _NEVER) for r in runs.dictionary.to_pylist()], np.int64)
    committed = _micros(batch["committed_at"])
    return (committed == wanted[runs.indices.to_numpy(zero_copy_only=False)]) & (committed != _NEVER)


def _micros(column: pa.Array) -> np.ndarray:
    """Timestamps as µs since 1970 (UTC); a null as _NEVER, which no filter keeps."""
    if column.type != pa.timestamp("us", tz="UTC") and pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", tz=column.type.tz))
    values = pc.cast(column, pa.int64())
    if values.null_count:
        values = values.fill_null(_NEVER)
    return values.to_numpy(zero_copy_only=False)


def _halves(keys: pa.Array) -> Tuple[np.ndarray, np.ndarray]:
    """The high and low 8 bytes of each 16-byte key, as big-endian numbers
    (a null key's slot holds whatever bytes: callers mask it out)."""
    raw = np.frombuffer(keys.buffers()[1], dtype=">u8")[2 * keys.offset: 2 * (keys.offset + len(keys))]
    return raw[0::2], raw[1::2]


def _mapped_segment(digests: seen_digests.DigestFile, latest: Dict[str, int], cutoff_us: int) -> Segment:
    hidden = np.array([latest.get(run_id, _NEVER) != committed for run_id, committed in digests.runs],
                      dtype=bool)
    return Segment(digests.hi, digests.lo, digests.seen_us, min_seen_us=cutoff_us,
                   run=digests.run, hidden_runs=hidden if hidden.any() else None,
                   mapped_from=digests.path)


def _delete_quietly(path: str) -> None:
    from transforms.paths import delete_files

    try:
        delete_files([path])
    except Exception:
        pass
