"""The seen index: the identities of remembered stories (StateStore.load_seen),
held in memory by each worker of the seen-before stage (transforms.seen).

Sorted 128-bit digests in numpy arrays: ~24 bytes an identity, so a million
remembered stories (~3 million identities) take ~72 MB, and a lookup is a
binary search.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from transforms.state.store import SeenRecord, UnreadableFile

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SeenIndex:
    """Sorted 128-bit digests of remembered identities, with their last
    seen time: ~24 bytes per identity, a lookup is two binary searches."""

    def __init__(self, hi: np.ndarray, lo: np.ndarray, seen_us: np.ndarray,
                 unreadable: Sequence[UnreadableFile] = ()):
        self.hi, self.lo, self.seen_us = hi, lo, seen_us
        self.unreadable = list(unreadable)

    @classmethod
    def empty(cls, unreadable=()) -> "SeenIndex":
        z = np.zeros(0, dtype=np.uint64)
        return cls(z, z.copy(), np.zeros(0, dtype=np.int64), unreadable)

    @classmethod
    def from_table(cls, table: pa.Table, unreadable=()) -> "SeenIndex":
        keys = table["key"].combine_chunks()
        if len(keys) == 0:
            return cls.empty(unreadable)
        raw = np.frombuffer(keys.buffers()[1], dtype=">u8")[2 * keys.offset: 2 * (keys.offset + len(keys))]
        seen = pc.cast(table["seen_at"], pa.int64()).to_numpy()
        return cls.from_arrays(raw[0::2].astype(np.uint64), raw[1::2].astype(np.uint64), seen,
                               unreadable)

    @classmethod
    def from_arrays(cls, hi, lo, seen_us, unreadable=()) -> "SeenIndex":
        # Sorting by the high half alone is enough (and several times faster
        # than a three-key sort): entries sharing it are adjacent and
        # last_seen() checks them all.
        order = np.argsort(hi)
        hi, lo, seen_us = hi[order], lo[order], seen_us[order]
        first = np.ones(len(hi), dtype=bool)
        first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        starts = np.flatnonzero(first)
        if len(starts) == len(hi):
            return cls(hi, lo, seen_us, unreadable)
        # one entry per identity, with its newest time
        return cls(hi[starts], lo[starts], np.maximum.reduceat(seen_us, starts), unreadable)

    @classmethod
    def from_records(cls, records: Iterable[SeenRecord]) -> "SeenIndex":
        records = list(records)
        raw = np.frombuffer(b"".join(r.key for r in records), dtype=">u8").astype(np.uint64)
        seen = np.array([_micros(r.seen_at) for r in records], dtype=np.int64)
        return cls.from_arrays(raw[0::2], raw[1::2], seen)

    def __len__(self) -> int:
        return len(self.hi)

    @property
    def nbytes(self) -> int:
        return self.hi.nbytes + self.lo.nbytes + self.seen_us.nbytes

    def last_seen(self, key: bytes) -> Optional[datetime]:
        """When the identity was last recorded, or None if it never was."""
        hi = np.uint64(int.from_bytes(key[:8], "big"))  # a Python int > 2**63 would
        lo = np.uint64(int.from_bytes(key[8:], "big"))  # make numpy compare as float
        newest = None
        at = int(np.searchsorted(self.hi, hi, side="left"))
        while at < len(self.hi) and self.hi[at] == hi:
            if self.lo[at] == lo and (newest is None or self.seen_us[at] > newest):
                newest = int(self.seen_us[at])
            at += 1
        return None if newest is None else _EPOCH + timedelta(microseconds=newest)


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)
