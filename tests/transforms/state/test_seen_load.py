"""Loading the seen index (transforms/state/seen_files.py, seen_digests.py):
row group by row group, the compaction's digest file memory-mapped. The
index must hold exactly what the rule of transforms/state/__init__.py gives
when every file is read whole (`expected` below: store.read + current_rows,
the reading the loader replaced), with or without a usable digest file.
Real Parquet files on disk, gs:// (gcp-storage-emulator) and s3:// (moto)."""
import fcntl
import hashlib
import logging
import mmap
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.state import seen_digests, seen_files
from transforms.state import store as st
from transforms.state.store import SEEN_SCHEMA, SeenRecord, StateStore, current_rows, key_digest

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(days=30)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def records(names, at):
    return [SeenRecord(key_digest(f"url:{n}"), f"id-{n}", at) for n in names]


def commit(store, run_id, names, at, open_marker=True):
    if open_marker:
        store.open_run(run_id, at)
    store.commit(run_id, at + timedelta(seconds=1), records(names, at), [], NOW, LOOKBACK)


def expected(store, run_id, as_of=NOW):
    """{key: newest seen µs} as a whole-table read gives it: every file read
    whole, rows of each run's latest commit, open runs and the reader's own
    run left out, null keys and rows before the lookback dropped."""
    table, _, _ = store.read(st.SEEN, move_aside=False)
    if table is None:
        return {}
    table = current_rows(table, set(store.open_runs()) | {run_id})
    table = table.filter(pc.and_(pc.is_valid(table["key"]),
                                 pc.greater_equal(table["seen_at"], pa.scalar(as_of - LOOKBACK, st._TS))))
    newest = {}
    for key, seen in zip(table["key"].to_pylist(), pc.cast(table["seen_at"], pa.int64()).to_pylist()):
        newest[key] = max(seen, newest.get(key, seen))
    return newest


def contents(index):
    hi, lo, seen = index.identities()
    return {int(h).to_bytes(8, "big") + int(l).to_bytes(8, "big"): int(s)
            for h, l, s in zip(hi.tolist(), lo.tolist(), seen.tolist())}


def mapped(index):
    """The index's segments mapped from a digest file."""
    return [s for s in index.segments if s.mapped_from and isinstance(s.hi.base.obj, mmap.mmap)]


def busy_store(root):
    """Several runs and streaming units, a re-run, an old run past the
    lookback, a compaction in the middle, runs after it, one still open."""
    store = StateStore(root)
    commit(store, "old", "abu", NOW - timedelta(days=35))               # past the reader's lookback
    commit(store, "r1", "abcd", NOW - timedelta(days=20))
    commit(store, "r2", "defg", NOW - timedelta(days=10))
    commit(store, "job-w1-p0", "ghi", NOW - timedelta(days=9), open_marker=False)   # streaming unit
    commit(store, "rerun", "jkl", NOW - timedelta(days=8))
    store.compact(st.SEEN, NOW - timedelta(days=7), LOOKBACK)           # keeps "old": its lookback then
    commit(store, "rerun", "jm", NOW - timedelta(days=3))               # supersedes its compacted rows
    commit(store, "r3", "anop", NOW - timedelta(days=2))
    store.open_run("running", NOW - timedelta(hours=1))
    store.commit("running", NOW - timedelta(minutes=30), records("qrs", NOW - timedelta(hours=1)), [],
                 NOW, LOOKBACK)
    store.open_run("running", NOW)                                      # a re-run of it, under way
    store.open_run("r2", NOW)                                           # r2 re-running: hidden
    return store


def digest_files(root):
    return sorted(p for p in os.listdir(os.path.join(root, "_state", "seen")) if p.endswith(".digests"))


@pytest.mark.parametrize("reader,as_of", [("reader", NOW), ("r1", NOW), ("r3", NOW), ("rerun", NOW),
                                          ("reader", NOW + timedelta(days=15))])
def test_the_index_holds_what_a_whole_read_gives_with_the_mapped_digests(tmp_path, reader, as_of):
    store = busy_store(str(tmp_path))
    assert len(digest_files(tmp_path)) == 1
    index = store.load_seen(reader, as_of, LOOKBACK)
    assert mapped(index), "the compaction's digest file is mapped"
    want = expected(store, reader, as_of)
    assert want and contents(index) == want
    assert len(index) == len(want)   # each identity once, none hidden or past the lookback
    for name in "abcdefghijklmnopqrsu":
        key = key_digest(f"url:{name}")
        got = index.last_seen(key)
        assert (None if got is None else (got - EPOCH) // timedelta(microseconds=1)) == want.get(key)


def test_the_index_is_the_same_without_the_digest_file(tmp_path):
    store = busy_store(str(tmp_path))
    with_digests = contents(store.load_seen("reader", NOW, LOOKBACK))
    for name in digest_files(tmp_path):
        os.remove(tmp_path / "_state" / "seen" / name)
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert not mapped(index)
    assert contents(index) == with_digests == expected(store, "reader")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "another compaction's", "unsorted", "lo bits",
                                    "one seen time"])
def test_a_damaged_or_foreign_digest_file_is_ignored(tmp_path, damage, caplog):
    store = busy_store(str(tmp_path))
    folder = tmp_path / "_state" / "seen"
    (name,) = digest_files(tmp_path)
    path = folder / name
    body = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(body[:-5])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(body)))
    elif damage == "another compaction's":
        other = StateStore(str(tmp_path / "other"))
        commit(other, "x", "abcdefghijklmnopqrs", NOW - timedelta(days=1))
        other.compact(st.SEEN, NOW, LOOKBACK)
        (foreign,) = digest_files(tmp_path / "other")
        path.write_bytes((tmp_path / "other" / "_state" / "seen" / foreign).read_bytes())
    else:
        header = 16 + int.from_bytes(body[8:16], "little")
        rows = (len(body) - header) // 28
        if damage == "unsorted":   # the right header over a body in the wrong order
            hi = np.frombuffer(body, "<u8", rows, header)[::-1].copy()
            path.write_bytes(body[:header] + hi.tobytes() + body[header + 8 * rows:])
        elif damage == "lo bits":   # one bit of every low half flipped: sorted, codes in range
            lo = np.frombuffer(body, "<u8", rows, header + 8 * rows) ^ np.uint64(1)
            path.write_bytes(body[:header] + body[header:header + 8 * rows] + lo.tobytes()
                             + body[header + 16 * rows:])
        else:   # the last entry's seen time a day earlier
            at = header + 24 * rows - 8
            seen = int.from_bytes(body[at:at + 8], "little", signed=True) - 86_400_000_000
            path.write_bytes(body[:at] + seen.to_bytes(8, "little", signed=True) + body[at + 8:])
    with caplog.at_level(logging.WARNING):
        index = store.load_seen("reader", NOW, LOOKBACK)
    assert not mapped(index)
    assert contents(index) == expected(store, "reader")
    assert "not used" in caplog.text and not index.unreadable


def test_an_unreadable_file_is_moved_aside_reported_and_the_rest_loaded(tmp_path):
    store = busy_store(str(tmp_path))
    folder = tmp_path / "_state" / "seen"
    (folder / "r3.parquet").write_bytes(b"PAR1 this is not parquet")
    wrong = pa.table({"key": [b"x" * 16], "seen_at": pa.array([NOW], st._TS)})   # columns missing
    pq.write_table(wrong, folder / "broken.parquet")
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert sorted(os.path.basename(u.path) for u in index.unreadable) == ["broken.parquet", "r3.parquet"]
    assert not (folder / "r3.parquet").exists() and len(os.listdir(tmp_path / "_state" / "corrupt")) == 2
    assert mapped(index) and contents(index) == expected(store, "reader")
    assert key_digest("url:o") not in contents(index)    # r3's own identities went with its file


def test_a_file_of_many_row_groups_is_read_group_by_group(tmp_path, monkeypatch):
    monkeypatch.setattr(seen_files._Buckets, "MIN_CHUNK", 64)    # several chunks a bucket
    monkeypatch.setattr(seen_files._Buckets, "MAX_CHUNK", 64)
    store = StateStore(str(tmp_path))
    rng = np.random.default_rng(3)
    n = 10_000
    keys = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    keys[5000] = keys[200]                                    # one key twice, two times
    seen = np.full(n, (NOW - timedelta(days=1) - EPOCH) // timedelta(microseconds=1), np.int64)
    seen[5000] += 7
    seen[:100] -= 40 * 86_400_000_000                         # before the lookback
    table = pa.table({
        "key": pa.array([bytes(k) for k in keys] + [None], pa.binary(16)),
        "story_id": pa.array([f"s{i}" for i in range(n)] + [None]),
        "seen_at": pa.array(np.r_[seen, seen[-1]]).cast(st._TS),
        "run_id": ["big"] * (n + 1),
        "committed_at": pa.array(np.full(n + 1, seen[-1])).cast(st._TS),
    }, schema=SEEN_SCHEMA)
    os.makedirs(tmp_path / "_state" / "seen")
    pq.write_table(table, tmp_path / "_state" / "seen" / "big.parquet", row_group_size=777)
    assert pq.ParquetFile(tmp_path / "_state" / "seen" / "big.parquet").num_row_groups > 10
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert contents(index) == expected(store, "reader") and len(index) == n - 100 - 1
    assert index.last_seen(bytes(keys[200])) == EPOCH + timedelta(microseconds=int(seen[5000]))


def test_compaction_keeps_the_rows_a_whole_read_keeps_and_its_digests_match_them(tmp_path):
    store = busy_store(str(tmp_path))
    before, _, _ = store.read(st.SEEN, move_aside=False)
    want = current_rows(before, set())
    want = want.filter(pc.greater_equal(want["seen_at"], pa.scalar(NOW - LOOKBACK, st._TS)))
    path = store.compact(st.SEEN, NOW, LOOKBACK)
    got = pq.read_table(path)
    assert sorted(got.to_pylist(), key=repr) == sorted(want.to_pylist(), key=repr)
    assert len(digest_files(tmp_path)) == 1
    digests = seen_digests.open_mapped(seen_digests.digests_path(path), 0, os.path.basename(path), got.num_rows)
    keyed = got.filter(pc.is_valid(got["key"]))
    assert len(digests.hi) == keyed.num_rows and np.all(digests.hi[1:] >= digests.hi[:-1])
    pairs = sorted(zip(keyed["key"].to_pylist(), keyed["run_id"].to_pylist()))
    mapped_pairs = sorted((int(h).to_bytes(8, "big") + int(l).to_bytes(8, "big"), digests.runs[r][0])
                          for h, l, r in zip(digests.hi, digests.lo, digests.run))
    assert mapped_pairs == pairs


def test_a_later_compaction_removes_the_earlier_digest_file(tmp_path):
    store = busy_store(str(tmp_path))
    first = digest_files(tmp_path)
    commit(store, "r4", "t", NOW - timedelta(hours=5))
    store.compact(st.SEEN, NOW, LOOKBACK)
    second = digest_files(tmp_path)
    assert len(second) == 1 and second != first
    parquet = sorted(p for p in os.listdir(tmp_path / "_state" / "seen") if p.endswith(".parquet"))
    assert parquet == [second[0].replace(".digests", ".parquet")]


@pytest.mark.integration
@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_on_object_storage_the_digest_file_is_checked_cached_once_per_machine_and_mapped(scheme, request, monkeypatch, tmp_path):
    store_server = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    monkeypatch.setattr(FileSystems, "_pipeline_options", FileSystems._pipeline_options)
    if scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{store_server.port}")
    FileSystems.set_options(PipelineOptions(store_server.use_from_beam()))
    monkeypatch.setattr(seen_digests, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(seen_digests, "_cached", {})
    root = f"{scheme}://{store_server.bucket}/{uuid.uuid4().hex}"
    store = busy_store(root)
    (name,) = [m.path for m in FileSystems.match([f"{root}/_state/seen/*.digests"])[0].metadata_list]
    cache = tmp_path / "cache"
    os.makedirs(cache)
    folder = name.rsplit("/", 1)[0]
    local = cache / f"{hashlib.sha256(folder.encode()).hexdigest()[:16]}-{name.rsplit('/', 1)[1]}"
    # Another process of this machine downloading it (holding the lock): a
    # loader waits for it and maps its copy instead of downloading its own.
    loaded = {}
    with open(f"{local}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        loader = threading.Thread(target=lambda: loaded.update(index=store.load_seen("reader", NOW, LOOKBACK)))
        loader.start()
        loader.join(timeout=2)
        assert loader.is_alive(), "the loader waits for the lock"
        seen_digests._download_checked(name, str(local))
    loader.join(timeout=60)
    index = loaded["index"]
    assert mapped(index) and contents(index) == expected(store, "reader")
    assert [n for n in os.listdir(cache) if n.endswith(".digests")] == [local.name]
    inode = os.stat(local).st_ino
    again = StateStore(root).load_seen("r3", NOW, LOOKBACK)   # the same process: no new download
    assert os.stat(local).st_ino == inode
    assert mapped(again) and contents(again) == expected(store, "r3")
    # Damaged in the store (one low half, size kept): the download is checked, no copy kept.
    with FileSystems.open(name, compression_type="uncompressed") as handle:
        body = handle.read()
    header = 16 + int.from_bytes(body[8:16], "little")
    at = header + 8 * ((len(body) - header) // 28)
    with FileSystems.create(name) as handle:
        handle.write(body[:at] + bytes([body[at] ^ 1]) + body[at + 1:])
    os.remove(local)
    seen_digests._cached.clear()
    index = StateStore(root).load_seen("reader", NOW, LOOKBACK)
    assert not mapped(index) and contents(index) == expected(store, "reader")
    assert [n for n in os.listdir(cache) if not n.endswith(".lock")] == []
    # Without it (deleted from the store), the Parquet files answer alone.
    FileSystems.delete([name])
    index = StateStore(root).load_seen("reader", NOW, LOOKBACK)
    assert not mapped(index) and contents(index) == expected(store, "reader")


@pytest.mark.parametrize("digests", ["mapped", "removed"])
def test_latest_commits_and_later_runs_are_what_a_whole_read_gives(tmp_path, digests):
    store = busy_store(str(tmp_path))
    if digests == "removed":
        for name in digest_files(tmp_path):
            os.remove(tmp_path / "_state" / "seen" / name)
    table, _, _ = store.read(st.SEEN, move_aside=False)
    want = {}
    for run_id, committed in zip(table["run_id"].to_pylist(), pc.cast(table["committed_at"], pa.int64()).to_pylist()):
        want[run_id] = max(committed, want.get(run_id, committed))
    assert store.seen_commits() == want and "old" in want and "running" in want
    # a run's later commits: those of runs committed after its latest commit
    assert store.later_commits("r2") == ["job-w1-p0", "r3", "rerun", "running"]
    assert store.later_commits("r3") == ["running"]
    assert store.later_commits("never") == []
    (tmp_path / "_state" / "seen" / "r3.parquet").write_bytes(b"not parquet")
    assert store.later_commits("r2") == ["job-w1-p0", "rerun", "running"]   # left where it is
    assert (tmp_path / "_state" / "seen" / "r3.parquet").exists()


def test_a_local_digest_file_is_checked_once_per_process(tmp_path):
    store = busy_store(str(tmp_path))
    assert mapped(store.load_seen("reader", NOW, LOOKBACK))
    (name,) = digest_files(tmp_path)
    path = tmp_path / "_state" / "seen" / name
    body, stamp = path.read_bytes(), os.stat(path)
    # Damaged in place, size and time kept: this process checked it already and maps it ...
    header = 16 + int.from_bytes(body[8:16], "little")
    at = header + 8 * ((len(body) - header) // 28)   # the first low half
    path.write_bytes(body[:at] + bytes([body[at] ^ 1]) + body[at + 1:])
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert mapped(store.load_seen("reader", NOW, LOOKBACK))
    # ... a rewritten file (a new time) is checked again.
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert not mapped(store.load_seen("reader", NOW, LOOKBACK))


def test_a_compaction_lists_only_the_runs_its_file_holds(tmp_path):
    """A file written before digest files (one row group of several runs),
    compacted when one of its runs is past the lookback: the digest header
    lists the runs of the new file only, as its rows say."""
    folder = tmp_path / "_state" / "seen"
    os.makedirs(folder)
    old_at, new_at = NOW - timedelta(days=40), NOW - timedelta(days=2)
    keys = [key_digest(f"url:{n}") for n in "abcd"]
    table = pa.table({
        "key": keys[:2] + [None] + keys[2:] + [None],
        "story_id": ["a", "b", None, "c", "d", None],
        "seen_at": pa.array([old_at] * 3 + [new_at] * 3, st._TS),
        "run_id": ["old"] * 3 + ["new"] * 3,
        "committed_at": pa.array([old_at] * 3 + [new_at] * 3, st._TS),
    }, schema=SEEN_SCHEMA)
    pq.write_table(table, folder / f"compacted-{uuid.uuid4().hex}.parquet")
    store = StateStore(str(tmp_path))
    path = store.compact(st.SEEN, NOW, LOOKBACK)
    assert set(pq.read_table(path)["run_id"].to_pylist()) == {"new"}
    digests = seen_digests.open_mapped(seen_digests.digests_path(path), 0, os.path.basename(path),
                                       pq.read_metadata(path).num_rows)
    assert [r for r, _ in digests.runs] == ["new"]
    assert list(store.seen_commits()) == ["new"]
    assert store.later_commits("old") == []       # as without the digest file
    os.remove(seen_digests.digests_path(path))
    assert list(store.seen_commits()) == ["new"]


def test_many_unreadable_files_are_all_moved_aside_in_one_load_and_compaction(tmp_path):
    store = busy_store(str(tmp_path))
    folder = tmp_path / "_state" / "seen"
    for i in range(21):
        (folder / f"junk-{i:02}.parquet").write_bytes(b"not parquet")
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert len(index.unreadable) == 21 and contents(index) == expected(store, "reader")
    assert len(os.listdir(tmp_path / "_state" / "corrupt")) == 21
    for i in range(21):
        (folder / f"more-{i:02}.parquet").write_bytes(b"not parquet")
    want = expected(store, "reader")
    path = store.compact(st.SEEN, NOW, LOOKBACK)
    assert path and len(os.listdir(tmp_path / "_state" / "corrupt")) == 42
    assert contents(store.load_seen("reader", NOW, LOOKBACK)) == want


def test_orphan_digest_files_go_at_the_next_compaction_once_old(tmp_path):
    store = busy_store(str(tmp_path))
    folder = tmp_path / "_state" / "seen"
    (current,) = digest_files(tmp_path)
    old = time.time() - st.ORPHAN_DIGEST_SECONDS - 60
    for name in ("compacted-killed.digests", "compacted-gone.digests"):   # cut-off compactions
        (folder / name).write_bytes((folder / current).read_bytes())
        os.utime(folder / name, (old, old))
    (folder / "compacted-underway.digests").write_bytes(b"a compaction under way")   # recent: kept
    commit(store, "r4", "t", NOW - timedelta(hours=5))
    path = store.compact(st.SEEN, NOW, LOOKBACK)
    assert digest_files(tmp_path) == sorted(["compacted-underway.digests",
                                             os.path.basename(seen_digests.digests_path(path))])


def test_a_compacted_file_moved_aside_takes_its_digest_file_along(tmp_path):
    store = busy_store(str(tmp_path))
    folder = tmp_path / "_state" / "seen"
    (name,) = digest_files(tmp_path)
    parquet = folder / name.replace(".digests", ".parquet")
    parquet.write_bytes(b"PAR1 damaged")
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert [os.path.basename(u.path) for u in index.unreadable] == [parquet.name]
    assert digest_files(tmp_path) == []
    assert sorted(n.split("-", 1)[1] for n in os.listdir(tmp_path / "_state" / "corrupt")) == sorted(
        [parquet.name, name])


def test_a_cached_copy_of_an_earlier_compaction_goes_only_when_unused_for_a_while(tmp_path, monkeypatch):
    monkeypatch.setattr(seen_digests, "CACHE_DIR", str(tmp_path))
    prefix = "0123456789abcdef"
    keep, recent, stale = (tmp_path / f"{prefix}-compacted-{n}.digests" for n in ("new", "recent", "stale"))
    for p in (keep, recent, stale):
        p.write_bytes(b"x")
    old = time.time() - seen_digests.STALE_COPY_SECONDS - 1
    os.utime(stale, (old, old))
    seen_digests._forget_older_copies(prefix, str(keep))
    assert keep.exists() and recent.exists() and not stale.exists()


@pytest.mark.integration
@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_a_file_deleted_while_its_row_groups_are_read_counts_as_vanished(scheme, request, monkeypatch):
    """A streaming job's compaction may delete a seen file while a worker
    reads it. Beam's object-store readers fetch 16 MB at a time, so the
    failure comes from a later row group, as a storage error, not a Parquet
    one: the loader must still take it for a vanished file (and list again),
    not fail the run."""
    store_server = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    monkeypatch.setattr(FileSystems, "_pipeline_options", FileSystems._pipeline_options)
    if scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{store_server.port}")
    FileSystems.set_options(PipelineOptions(store_server.use_from_beam()))
    path = f"{scheme}://{store_server.bucket}/{uuid.uuid4().hex}/_state/seen/big.parquet"
    rows = 1_500_000   # random keys do not compress: ~30 MB, beyond one 16 MB read
    rng = np.random.default_rng(7)
    keys = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), rows, [None, pa.py_buffer(rng.bytes(16 * rows))])
    seen = pa.array(np.full(rows, int(NOW.timestamp() * 1e6), np.int64)).cast(st._TS)
    table = pa.table({"key": keys, "story_id": pa.nulls(rows, pa.string()), "seen_at": seen,
                      "run_id": pa.array(["r1"] * rows), "committed_at": seen}, schema=SEEN_SCHEMA)
    with FileSystems.create(path) as handle:
        pq.write_table(table, handle, row_group_size=100_000)
    f = seen_files._open(path, SEEN_SCHEMA, {})
    batches = seen_files._batches(f, seen_files._INDEX_COLUMNS, SEEN_SCHEMA)
    assert next(batches).num_rows == 100_000
    FileSystems.delete([path])
    if scheme == "gs":   # the next 16 MB range request meets a 404
        with pytest.raises(seen_files.Vanished):
            for _ in batches:
                pass
    else:   # Beam's S3 reader keeps one open download going: it reads on to the end
        assert 100_000 + sum(batch.num_rows for batch in batches) == rows
    f.handle.close()
