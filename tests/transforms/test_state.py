"""Cross-run state files (transforms/state.py): commit, supersede, prune,
compaction, corrupt files, concurrent writers. Real files on disk."""
import os
import threading
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import identity
from transforms import state as st
from transforms.feedstate import FeedState
from transforms.records import Story
from transforms.seen import REFRESH, SeenBefore, seen_keys, seen_records
from transforms.state import SeenIndex, SeenRecord, StateStore, key_digest

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
    assert os.listdir(tmp_path / "_state" / "seen") == [os.path.basename(path)]


def test_feed_states_latest_fetch_wins_and_compaction_keeps_one_row_per_feed(tmp_path):
    store = StateStore(str(tmp_path))
    early = FeedState(etag='"1"', last_status=200, last_fetched_at=NOW)
    late = FeedState(etag='"2"', last_status=200, last_fetched_at=NOW + timedelta(minutes=5))
    commit(store, "b", "", feeds=[("http://f", late)])
    commit(store, "a", "", feeds=[("http://f", early), ("http://g", early)])  # committed later
    states, report = store.load_feed_states("reader", NOW, LOOKBACK)
    assert states["http://f"].etag == '"2"' and states["http://g"].etag == '"1"'
    assert report.feeds_known == 2 and not report.unreadable and not report.open_runs
    path = store.compact(st.FEEDS, NOW, LOOKBACK)
    assert pq.read_table(path).num_rows == 2
    assert store.load_feed_states("reader", NOW, LOOKBACK)[0] == states


def test_a_corrupt_file_is_moved_aside_reported_and_the_rest_still_read(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "r1", "a", feeds=[("http://f", FeedState(etag='"1"', last_fetched_at=NOW))])
    commit(store, "r2", "b")
    (tmp_path / "_state" / "seen" / "r2.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "_state" / "feeds" / "r2.parquet").write_text("{}")
    index = store.load_seen("reader", NOW, LOOKBACK)
    assert len(index.unreadable) == 1 and index.unreadable[0][0].endswith("seen/r2.parquet")
    assert known(store) == {"a"}
    states, report = store.load_feed_states("reader", NOW, LOOKBACK)
    assert list(states) == ["http://f"] and report.unreadable[0][0].endswith("feeds/r2.parquet")
    assert "unreadable" in " ".join(report.notes())
    assert sorted(n.split("-", 1)[1] for n in os.listdir(tmp_path / "_state" / "corrupt")) == \
        ["r2.parquet", "r2.parquet"]


def test_missing_state_beside_existing_stories_is_reported(tmp_path):
    store = StateStore(str(tmp_path))
    assert not store.load_feed_states("r", NOW, LOOKBACK)[1].missing  # a first run
    (tmp_path / "stories" / "date=2026-03-01").mkdir(parents=True)
    (tmp_path / "stories" / "date=2026-03-01" / "old-000.parquet").write_bytes(b"x")
    report = store.load_feed_states("r", NOW, LOOKBACK)[1]
    assert report.missing and "no state found" in " ".join(report.notes())


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
    assert len(store.load_feed_states("reader", NOW, LOOKBACK)[0]) == len(names)
    assert store.open_runs() == {}


def test_seen_index_lookup_and_newest_time_per_identity():
    recs = records("a", "b", at=NOW) + records("a", at=NOW + timedelta(days=1))
    index = SeenIndex.from_records(recs)
    assert len(index) == 2
    assert index.last_seen(key_digest("url:a")) == NOW + timedelta(days=1)
    assert index.last_seen(key_digest("url:b")) == NOW
    assert index.last_seen(key_digest("url:zz")) is None


def story(i, guid, url, title, fetched=NOW):
    summary = "Pyongyang said so on Tuesday."
    return Story(story_id=f"s{i}", url=url, canonical_url=url, guid=guid, title=title,
                 summary=summary, content="", fetched_at=fetched, feed_url="http://feed",
                 entry_index=i, content_hash=identity.content_hash(title, summary))


def test_seen_before_drops_any_shared_identity_and_refreshes_old_records(tmp_path):
    store = StateStore(str(tmp_path))
    old = story(0, "g1", "https://e.org/a", "Missile launch")
    fading = story(1, "g2", "https://e.org/b", "Hotline talks")
    store.open_run("earlier", NOW)
    store.commit("earlier", NOW, seen_records(old), [], NOW, LOOKBACK)
    store.open_run("earliest", NOW)
    store.commit("earliest", NOW, seen_records(fading.replace(fetched_at=NOW - timedelta(days=20))),
                 [], NOW, LOOKBACK)
    later = NOW + timedelta(hours=1)
    incoming = [
        story(2, "g1-new-guid", "https://e.org/a", "Missile launch", later),        # same URL and text
        story(3, "g9", "https://e.org/moved", "Missile launch", later),             # same text
        story(4, "g2", "https://e.org/b", "Hotline talks", later),                  # seen 20 days ago
        story(5, "g5", "https://e.org/new", "Entirely new", later),
    ]
    with TestPipeline(runner="DirectRunner") as p:
        out = p | beam.Create(incoming) | SeenBefore(str(tmp_path), "now", later, LOOKBACK)
        assert_that(out.new | "Ids" >> beam.Map(lambda s: s.story_id), equal_to(["s5"]), label="new")
        assert_that(out[REFRESH] | "Keys" >> beam.Map(lambda r: (r.key, r.story_id)),
                    equal_to([(k, "s4") for k in seen_keys(incoming[2])]), label="refresh")


def test_a_million_remembered_stories_fit_in_a_small_index():
    """1,000,000 stories x 3 identities: 24 bytes each (72 MB), exact lookups.
    Time is measured by benchmarks/seen_lookup.py, not asserted here."""
    import numpy as np

    n = 3_000_000
    rng = np.random.default_rng(7)
    hi, lo = rng.integers(0, 2**64, size=n, dtype=np.uint64), rng.integers(0, 2**64, size=n, dtype=np.uint64)
    index = SeenIndex.from_arrays(hi, lo, np.full(n, 1_700_000_000_000_000, dtype=np.int64))
    assert len(index) == n and index.nbytes == 24 * n
    for i in rng.integers(0, n, size=200):
        key = int(hi[i]).to_bytes(8, "big") + int(lo[i]).to_bytes(8, "big")
        assert index.last_seen(key) is not None
        other = int(hi[i]).to_bytes(8, "big") + int(lo[i] ^ np.uint64(1)).to_bytes(8, "big")
        assert index.last_seen(other) is None    # same high half, different key
