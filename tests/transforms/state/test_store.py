"""The state store (transforms/state/store.py): commit, supersede, prune,
compaction, corrupt files, concurrent writers. Real files on disk."""
import os
import threading
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from transforms.feedstate import FeedState
from transforms.state import store as st
from transforms.state.store import SeenRecord, StateStore, key_digest

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(days=30)


def records(*names, at=NOW):
    return [SeenRecord(key_digest(f"url:{n}"), f"id-{n}", at) for n in names]


def known(store, run_id="reader", as_of=NOW):
    index = store.load_seen(run_id, as_of, LOOKBACK)
    return {n for n in "abcdefghij" if index.last_seen(key_digest(f"url:{n}")) is not None}


def commit(store, run_id, names, at=NOW, feeds=()):
    store.open_run(run_id, at)
    store.commit(run_id, at + timedelta(seconds=1), records(*names, at=at), feeds, at, LOOKBACK)


def test_a_committed_run_is_remembered_and_an_open_one_is_not(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "r1", "ab")
    store.open_run("r2", NOW)  # started, not committed
    assert known(store) == {"a", "b"}
    assert store.open_runs() == {"r2": "2026-03-01T12:00:00Z"}
    # a run never counts its own rows: a re-run must write its stories again
    assert known(store, run_id="r1") == set()


def test_a_rerun_supersedes_its_earlier_attempt_even_after_compaction(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "x", "abc")
    commit(store, "y", "d")
    store.compact(st.SEEN, NOW, LOOKBACK)
    assert known(store) == {"a", "b", "c", "d"}
    store.open_run("x", NOW + timedelta(hours=1))   # re-run of x starts
    assert known(store) == {"d"}                     # x's old rows vouch for nothing now
    store.commit("x", NOW + timedelta(hours=2), records("a"), [], NOW, LOOKBACK)
    assert known(store) == {"a", "d"}                # b and c were not written again
    commit(store, "z", "")                           # a commit with no story at all
    store.open_run("z", NOW + timedelta(hours=3))
    store.commit("z", NOW + timedelta(hours=4), [], [], NOW, LOOKBACK)
    assert known(store) == {"a", "d"}


def test_identities_older_than_the_lookback_are_forgotten_and_pruned(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "old", "a", at=NOW - timedelta(days=40))
    commit(store, "new", "b", at=NOW - timedelta(days=5))
    assert known(store) == {"b"}
    path = store.compact(st.SEEN, NOW, LOOKBACK)
    assert pq.read_table(path).num_rows == 2   # b and the commit row of "new"
    stem = os.path.basename(path)[: -len(".parquet")]   # the merged file and its digest file
    assert sorted(os.listdir(tmp_path / "_state" / "seen")) == [f"{stem}.digests", f"{stem}.parquet"]


def test_feed_states_latest_fetch_wins_and_compaction_keeps_one_row_per_feed(tmp_path):
    store = StateStore(str(tmp_path))
    early = FeedState(etag='"1"', last_status=200, last_fetched_at=NOW)
    late = FeedState(etag='"2"', last_status=200, last_fetched_at=NOW + timedelta(minutes=5))
    commit(store, "b", "", feeds=[("http://f", late)])
    commit(store, "a", "", feeds=[("http://f", early), ("http://g", early)])  # committed later
    states, report = store.load_feed_states("reader")
    assert states["http://f"].etag == '"2"' and states["http://g"].etag == '"1"'
    assert report.feeds_known == 2 and not report.unreadable and not report.open_runs
    path = store.compact(st.FEEDS, NOW, LOOKBACK)
    assert pq.read_table(path).num_rows == 2
    assert store.load_feed_states("reader").states == states


def test_a_corrupt_file_is_moved_aside_reported_and_the_rest_still_read(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "r1", "a", feeds=[("http://f", FeedState(etag='"1"', last_fetched_at=NOW))])
    commit(store, "r2", "b")
    (tmp_path / "_state" / "seen" / "r2.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "_state" / "feeds" / "r2.parquet").write_text("{}")
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert len(index.unreadable) == 1 and index.unreadable[0].path.endswith("seen/r2.parquet")
    assert known(store) == {"a"}
    states, report = store.load_feed_states("reader")
    assert list(states) == ["http://f"] and report.unreadable[0].path.endswith("feeds/r2.parquet")
    assert "unreadable" in " ".join(report.notes())
    assert sorted(n.split("-", 1)[1] for n in os.listdir(tmp_path / "_state" / "corrupt")) == \
        ["r2.parquet", "r2.parquet"]


def test_missing_state_beside_existing_stories_is_reported(tmp_path):
    store = StateStore(str(tmp_path))
    assert not store.load_feed_states("r").report.missing  # a first run
    (tmp_path / "stories" / "date=2026-03-01").mkdir(parents=True)
    (tmp_path / "stories" / "date=2026-03-01" / "old-000.parquet").write_bytes(b"x")
    report = store.load_feed_states("r").report
    assert report.missing and "no state found" in " ".join(report.notes())


@pytest.mark.slow
def test_concurrent_commits_and_compactions_lose_no_identity(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "COMPACT_AFTER", 3)   # compact on almost every commit
    store = StateStore(str(tmp_path))
    names = [f"n{i}" for i in range(24)]
    errors = []

    def run(name):
        try:
            s = StateStore(str(tmp_path))
            s.open_run(name, NOW)
            s.commit(name, NOW + timedelta(seconds=1), [SeenRecord(key_digest(name), name, NOW)],
                     [(f"http://{name}", FeedState(last_fetched_at=NOW))], NOW, LOOKBACK)
            s.load_seen("reader", NOW, LOOKBACK)   # readers during compactions
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert all(index.last_seen(key_digest(n)) is not None for n in names)
    assert len(store.load_feed_states("reader").states) == len(names)
    assert store.open_runs() == {}
