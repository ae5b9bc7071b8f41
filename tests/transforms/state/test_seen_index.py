"""The seen index (transforms/state/seen_index.py): exact lookups, the newest
time per identity, 24 bytes an identity."""
from datetime import datetime, timedelta, timezone

import numpy as np

from transforms.state.seen_index import SeenIndex
from transforms.state.store import SeenRecord, key_digest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def records(*names, at=NOW):
    return [SeenRecord(key_digest(f"url:{n}"), f"id-{n}", at) for n in names]


def test_seen_index_lookup_and_newest_time_per_identity():
    recs = records("a", "b", at=NOW) + records("a", at=NOW + timedelta(days=1))
    index = SeenIndex.from_records(recs)
    assert len(index) == 2
    assert index.last_seen(key_digest("url:a")) == NOW + timedelta(days=1)
    assert index.last_seen(key_digest("url:b")) == NOW
    assert index.last_seen(key_digest("url:zz")) is None


def test_a_million_remembered_stories_fit_in_a_small_index():
    """1,000,000 stories x 3 identities: 24 bytes each (72 MB), exact lookups.
    Time is measured by benchmarks/seen_lookup.py, not asserted here."""
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


def test_an_index_without_digests_is_empty_and_one_past_its_lookback_is_not():
    """is_empty lets the seen-before stage skip making keys on a first run;
    an index whose entries the lookback hides still has segments to search."""
    assert SeenIndex.empty().is_empty and SeenIndex.from_records([]).is_empty
    index = SeenIndex.from_records(records("a"))
    assert not index.is_empty
    index.segments[0].min_seen_us = 2**62   # every entry older than the lookback
    assert not index.is_empty and len(index) == 0 and index.last_seen(key_digest("url:a")) is None
