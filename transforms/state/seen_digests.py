"""The digest file of a seen compaction: `_state/seen/compacted-<uuid>.digests`
beside `compacted-<uuid>.parquet`, the identities of that Parquet file sorted
for lookups, in a fixed-width layout that a worker memory-maps instead of
reading it (so the worker processes of one VM share its pages):

    bytes 0-7      magic b"NWSEEN1\\n"
    bytes 8-15     header length H, uint64 little-endian
    bytes 16-...   header: UTF-8 JSON, space-padded so the body starts at a
                   multiple of 64 bytes:
                   {"format": 2, "rows": N, "parquet": "<name>.parquet",
                    "parquet_rows": <rows of that file, commit rows included>,
                    "runs": [[run_id, committed_at as µs since 1970], ...],
                    "blake2b": <hex BLAKE2b-256 of the body, every byte after the header>}
    then           hi       N x uint64 LE   first 8 bytes of each key (big-endian value)
                   lo       N x uint64 LE   last 8 bytes
                   seen_us  N x int64 LE    seen_at, µs since 1970 UTC
                   run      N x uint32 LE   index into "runs"
    sorted by hi; one entry per (key, run) row of the Parquet file (a key
    may repeat: the reader keeps the newest allowed one).

The Parquet file stays the truth: a digest file is used only when its header
names the Parquet file beside it and that file's row count, its length
matches N and its body matches the checksum; otherwise the reader reads the
Parquet file (transforms/state/seen_files.py). On gs:// and s3:// the file is
downloaded once per machine (under a lock) into a local cache folder, the
checksum computed on the bytes as they arrive; only a copy that matched is
kept (its name carries the compaction's uuid, so it never goes stale). A
digest file on local disk is checked once per process.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import struct
import time
import tempfile
import uuid
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

_log = logging.getLogger(__name__)

SUFFIX = ".digests"
MAGIC = b"NWSEEN1\n"
FORMAT = 2
_ALIGN = 64
_COLUMNS = (("hi", "<u8"), ("lo", "<u8"), ("seen_us", "<i8"), ("run", "<u4"))
ROW_BYTES = sum(np.dtype(t).itemsize for _, t in _COLUMNS)
# Where gs:// and s3:// digest files are cached on this machine (shared by its processes).
CACHE_DIR = os.path.join(tempfile.gettempdir(), "newswatch-seen-digests")
_BLOCK = 1 << 20   # rows written at a time
_cached: Dict[str, str] = {}   # remote path -> local copy, for this process
_checked: Dict[str, Tuple[int, int]] = {}   # local digest file -> (size, mtime ns) whose body matched
# A cached copy of an earlier compaction is removed only when this old: a
# process that has just listed the folder may be about to open it.
STALE_COPY_SECONDS = 600


class DigestFile(NamedTuple):
    """The mapped columns of one digest file and the runs they refer to."""

    hi: np.ndarray
    lo: np.ndarray
    seen_us: np.ndarray
    run: np.ndarray
    runs: List[Tuple[str, int]]   # run code -> (run_id, committed_at µs)
    path: str                     # the digest file (in the store)


def digests_path(parquet_path: str) -> str:
    """The digest file named after a compacted Parquet file."""
    return parquet_path[: -len(".parquet")] + SUFFIX


def write(path: str, parquet_name: str, parquet_rows: int, hi: np.ndarray, lo: np.ndarray,
          seen_us: np.ndarray, run: np.ndarray, runs: List[Tuple[str, int]], order: np.ndarray) -> None:
    """Writes the digest file (whole or not at all): the arrays taken in
    `order`, which sorts them by hi (applied a block at a time, never as a
    sorted copy of a whole column)."""
    columns = (hi, lo, seen_us, run)

    def blocks():
        for (_, dtype), column in zip(_COLUMNS, columns):
            for start in range(0, len(order), _BLOCK):
                block = np.ascontiguousarray(column[order[start:start + _BLOCK]], dtype=dtype)
                yield memoryview(block.view(np.uint8))

    # The header comes first and holds the body's checksum: one pass to
    # compute it, one to write (gs:// and s3:// cannot seek back).
    checksum = hashlib.blake2b(digest_size=32)
    for block in blocks():
        checksum.update(block)
    header = json.dumps({"format": FORMAT, "rows": int(len(hi)), "parquet": parquet_name,
                         "parquet_rows": int(parquet_rows),
                         "runs": [[r, int(c)] for r, c in runs],
                         "blake2b": checksum.hexdigest()}).encode()
    header += b" " * (-(len(MAGIC) + 8 + len(header)) % _ALIGN)
    folder, name = path.rsplit("/", 1)
    temp = f"{folder}/.{name}.{uuid.uuid4().hex}.inprogress"
    with FileSystems.create(temp) as handle:
        handle.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for block in blocks():
            handle.write(block)
    FileSystems.rename([temp], [path])


def open_mapped(path: str, size: int, parquet_name: str, parquet_rows: int) -> Optional[DigestFile]:
    """The digest file at `path` (`size` bytes as listed), mapped, if it belongs
    to `parquet_name` as it is now (`parquet_rows` rows); None, with a warning,
    if it does not or cannot be read: the caller reads the Parquet file."""
    try:
        local, checked = _local_copy(path, size)
        with open(local, "rb") as handle:
            stamp = (os.fstat(handle.fileno()).st_size, os.fstat(handle.fileno()).st_mtime_ns)
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            check = None if checked or _checked.get(local) == stamp else handle
            digests = _columns(mapped, parquet_name, parquet_rows, path, check)
        _checked[local] = stamp
        return digests
    except Exception as exc:
        _log.warning("seen digest file %s not used (%s); reading %s instead", path, exc, parquet_name)
        return None


def _header(prefix: bytes) -> Optional[Tuple[dict, int]]:
    """(header, body offset) from the first bytes of a digest file, or None
    if `prefix` is too short to hold the header."""
    if len(prefix) >= len(MAGIC) and prefix[:len(MAGIC)] != MAGIC:
        raise ValueError("not a seen digest file")
    if len(prefix) < len(MAGIC) + 8:
        return None
    (length,) = struct.unpack("<Q", prefix[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if len(prefix) < start + length:
        return None
    header = json.loads(bytes(prefix[start:start + length]).decode())
    if header.get("format") != FORMAT:
        raise ValueError(f"format {header.get('format')!r}, expected {FORMAT}")
    return header, start + length


def _columns(mapped: mmap.mmap, parquet_name: str, parquet_rows: int, path: str,
             check_body=None) -> DigestFile:
    """The columns of the mapped file; `check_body`: the open file, to check
    its body against the checksum (read, not through the mapping, so its
    pages do not count in this process's resident memory)."""
    parsed = _header(mapped[:1 << 16])
    if parsed is None:   # a header of many runs
        parsed = _header(mapped[:])
    if parsed is None:
        raise ValueError("cut short in its header")
    header, body = parsed
    if header["parquet"] != parquet_name or header["parquet_rows"] != parquet_rows:
        raise ValueError(f"made from {header['parquet']} of {header['parquet_rows']} rows")
    rows, offset = int(header["rows"]), body
    if len(mapped) != offset + rows * ROW_BYTES:
        raise ValueError(f"{len(mapped)} bytes, expected {offset + rows * ROW_BYTES}")
    columns = []
    for _, dtype in _COLUMNS:
        columns.append(np.frombuffer(mapped, dtype=dtype, count=rows, offset=offset))
        offset += rows * np.dtype(dtype).itemsize
    if check_body is not None:
        checksum = hashlib.blake2b(digest_size=32)
        check_body.seek(body)
        while True:
            block = check_body.read(1 << 23)
            if not block:
                break
            checksum.update(block)
        if checksum.hexdigest() != header["blake2b"]:
            raise ValueError("body does not match its checksum")
    runs = [(str(r), int(c)) for r, c in header["runs"]]
    hi, run = columns[0], columns[3]
    # A sample of the order and the run codes: a few pages, and catches a body of the wrong bytes.
    sample = hi[:: max(1, rows // 256)]
    if np.any(sample[1:] < sample[:-1]) or (rows and int(run[:: max(1, rows // 256)].max()) >= len(runs)):
        raise ValueError("body not sorted or run codes out of range")
    return DigestFile(*columns, runs, path)


def _local_copy(path: str, size: int) -> Tuple[str, bool]:
    """(`path` itself on local disk, False); else (a copy in CACHE_DIR whose
    body matched its checksum, True), downloaded once per machine: the first
    process downloads under a lock, the others wait for it and map its copy."""
    if FileSystems.get_scheme(path) in (None, "file"):
        return (path[len("file://"):] if path.startswith("file://") else path), False
    if path in _cached and os.path.exists(_cached[path]):
        return _cached[path], True
    os.makedirs(CACHE_DIR, exist_ok=True)
    folder, name = path.rsplit("/", 1)
    prefix = hashlib.sha256(folder.encode()).hexdigest()[:16]
    local = os.path.join(CACHE_DIR, f"{prefix}-{name}")
    with open(local + ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not (os.path.exists(local) and os.path.getsize(local) == size):
            _download_checked(path, local)
            _forget_older_copies(prefix, local)
        else:
            os.utime(local)   # in use: not stale for _forget_older_copies
    _cached[path] = local
    return local, True


def _download_checked(path: str, local: str) -> None:
    """Copies `path` to `local` (whole or not at all), checking the body's
    checksum on the bytes as they arrive; raises ValueError if it does not match."""
    temp = f"{local}.{uuid.uuid4().hex}.part"
    checksum, prefix, parsed = hashlib.blake2b(digest_size=32), b"", None
    try:
        with FileSystems.open(path, compression_type="uncompressed") as source, open(temp, "wb") as target:
            while True:
                block = source.read(1 << 23)
                if not block:
                    break
                target.write(block)
                if parsed is None:
                    prefix += block
                    parsed = _header(prefix)
                    if parsed is not None:
                        checksum.update(prefix[parsed[1]:])
                        prefix = b""
                else:
                    checksum.update(block)
        if parsed is None:
            raise ValueError("cut short in its header")
        if checksum.hexdigest() != parsed[0].get("blake2b"):
            raise ValueError("body does not match its checksum")
        os.replace(temp, local)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _forget_older_copies(prefix: str, keep: str) -> None:
    """Removes cached digest files of the same folder's earlier compactions
    that no process has opened for STALE_COPY_SECONDS (a process that still maps
    one keeps its pages until it unmaps them)."""
    now = time.time()
    for name in os.listdir(CACHE_DIR):
        other = os.path.join(CACHE_DIR, name)
        if name.startswith(prefix + "-") and other != keep and name.endswith(SUFFIX):
            try:
                if now - os.path.getmtime(other) >= STALE_COPY_SECONDS:
                    os.remove(other)
            except OSError:
                pass
