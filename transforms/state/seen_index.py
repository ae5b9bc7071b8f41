"""The seen index: the identities of remembered stories (StateStore.load_seen),
held by each worker of the seen-before stage (transforms.seen).

Sorted 128-bit digests in numpy arrays: ~24 bytes an identity, so a million
remembered stories (~3 million identities) take ~72 MB, and a lookup is a
binary search. The index is one or more sorted segments: the digests of a
compaction, memory-mapped from its digest file (shared by the processes of
one machine; transforms/state/seen_digests.py), and the digests read from the
other state files, in memory.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from transforms.state.store import SeenRecord, UnreadableFile

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Segment:
    """Digests sorted by their high half, with their seen time. A mapped
    segment holds every row of its compaction: the reader's lookback
    (`min_seen_us`) and the runs it must not count (`hidden_runs`, indexed by
    the `run` code of each entry) are applied at lookup. `mapped_from`: the
    digest file a mapped segment's arrays are mapped from."""

    def __init__(self, hi: np.ndarray, lo: np.ndarray, seen_us: np.ndarray,
                 min_seen_us: Optional[int] = None, run: Optional[np.ndarray] = None,
                 hidden_runs: Optional[np.ndarray] = None, mapped_from: Optional[str] = None):
        self.hi, self.lo, self.seen_us = hi, lo, seen_us
        self.min_seen_us, self.run, self.hidden_runs = min_seen_us, run, hidden_runs
        self.mapped_from = mapped_from

    def __len__(self) -> int:
        return len(self.hi)

    @property
    def nbytes(self) -> int:
        return self.hi.nbytes + self.lo.nbytes + self.seen_us.nbytes

    def newest(self, hi: np.uint64, lo: np.uint64) -> Optional[int]:
        """The newest counted seen time (µs) of the identity, or None."""
        his, newest = self.hi, None
        at, end = int(his.searchsorted(hi)), len(his)
        while at < end and his[at] == hi:   # most lookups miss: one comparison
            if self.lo[at] == lo:
                seen = int(self.seen_us[at])
                if (newest is None or seen > newest) and self._counts(at, seen):
                    newest = seen
            at += 1
        return newest

    def _counts(self, at: int, seen: int) -> bool:
        if self.min_seen_us is not None and seen < self.min_seen_us:
            return False
        return self.hidden_runs is None or not self.hidden_runs[self.run[at]]

    def counts(self) -> Optional[np.ndarray]:
        """Which entries a lookup counts (None: all of them)."""
        if self.min_seen_us is None and self.hidden_runs is None:
            return None
        keep = np.ones(len(self.hi), dtype=bool)
        if self.min_seen_us is not None:
            keep &= self.seen_us >= self.min_seen_us
        if self.hidden_runs is not None:
            keep &= ~self.hidden_runs[self.run]
        return keep

    def counted(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hi, lo, seen_us) of the entries a lookup counts, as arrays."""
        keep = self.counts()
        if keep is None or keep.all():
            return self.hi, self.lo, self.seen_us
        return self.hi[keep], self.lo[keep], self.seen_us[keep]


class SeenIndex:
    """Sorted 128-bit digests of remembered identities, with their last
    seen time: ~24 bytes per identity, a lookup is a binary search per segment."""

    def __init__(self, segments: Sequence[Segment] = (), unreadable: Sequence[UnreadableFile] = ()):
        self.segments: List[Segment] = [s for s in segments if len(s)]
        self.unreadable = list(unreadable)

    @classmethod
    def empty(cls, unreadable=()) -> "SeenIndex":
        return cls((), unreadable)

    @staticmethod
    def sorted_segment(columns: List[np.ndarray]) -> Segment:
        """A segment of the digests `columns` = [hi, lo, seen_us], sorted, one
        entry per identity (its newest time). Takes the arrays over (the list
        is emptied, so the caller holds none of them and each is freed once
        reordered): sorting adds two arrays' worth of memory at most."""
        hi, lo, seen_us = columns
        columns.clear()
        # Sorting by the high half alone is enough (and several times faster
        # than a three-key sort): entries sharing it are adjacent and
        # Segment.newest() checks them all.
        order = np.argsort(hi)
        lo = lo[order]
        seen_us = seen_us[order]
        hi.sort()   # hi[order], without a copy
        del order
        first = np.ones(len(hi), dtype=bool)
        first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        if first.all():
            return Segment(hi, lo, seen_us)
        starts = np.flatnonzero(first)
        return Segment(hi[starts], lo[starts], np.maximum.reduceat(seen_us, starts))

    @classmethod
    def from_arrays(cls, hi, lo, seen_us, unreadable=()) -> "SeenIndex":
        return cls([cls.sorted_segment([np.array(hi, np.uint64), np.array(lo, np.uint64),
                                        np.array(seen_us, np.int64)])], unreadable)

    @classmethod
    def from_records(cls, records: Iterable[SeenRecord]) -> "SeenIndex":
        records = list(records)
        raw = np.frombuffer(b"".join(r.key for r in records), dtype=">u8").astype(np.uint64)
        seen = np.array([_micros(r.seen_at) for r in records], dtype=np.int64)
        return cls.from_arrays(raw[0::2], raw[1::2], seen)

    def __len__(self) -> int:
        """Identities a lookup finds: each once, however many segments or
        runs hold it, none past the lookback or of a hidden run. Only the
        entries sharing their high half with another are compared whole (a
        few, where an identity repeats), so no segment is copied."""
        counts = [s.counts() for s in self.segments]
        total = sum(len(s) if keep is None else int(np.count_nonzero(keep))
                    for s, keep in zip(self.segments, counts))
        shared = [[] for _ in self.segments]   # per segment: positions whose hi is not unique
        for i, s in enumerate(self.segments):
            repeat = np.flatnonzero(s.hi[1:] == s.hi[:-1])
            shared[i] += [repeat, repeat + 1]
            for j in range(i + 1, len(self.segments)):
                # The smaller segment's highs looked up in the larger one.
                small, big = (i, j) if len(s) <= len(self.segments[j]) else (j, i)
                his, within = self.segments[small].hi, self.segments[big].hi
                left, right = within.searchsorted(his, "left"), within.searchsorted(his, "right")
                hit = np.flatnonzero(right > left)
                shared[small].append(hit)
                width = (right - left)[hit]
                starts = np.repeat(left[hit] - np.r_[0, np.cumsum(width)[:-1]], width)
                shared[big].append(starts + np.arange(int(width.sum())))
        his, los = [], []
        for s, keep, parts in zip(self.segments, counts, shared):
            at = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.intp)
            if keep is not None:
                at = at[keep[at]]
            his.append(s.hi[at])
            los.append(s.lo[at])
        if not his:
            return total
        pairs = np.stack([np.concatenate(his), np.concatenate(los)], axis=1)
        return total - len(pairs) + len(np.unique(pairs, axis=0))

    @property
    def is_empty(self) -> bool:
        """No digests at all, so every lookup misses (len() may also be 0
        when every entry is past the lookback, but costs a pass to tell)."""
        return not self.segments

    @property
    def nbytes(self) -> int:
        """Bytes of the digests, mapped or in memory."""
        return sum(s.nbytes for s in self.segments)

    def last_seen(self, key: bytes) -> Optional[datetime]:
        """When the identity was last recorded, or None if it never was."""
        hi = np.uint64(int.from_bytes(key[:8], "big"))  # a Python int > 2**63 would
        lo = np.uint64(int.from_bytes(key[8:], "big"))  # make numpy compare as float
        newest = None
        for segment in self.segments:
            seen = segment.newest(hi, lo)
            if seen is not None and (newest is None or seen > newest):
                newest = seen
        return None if newest is None else _EPOCH + timedelta(microseconds=newest)

    def identities(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hi, lo, newest seen µs) of every counted identity, sorted: the
        index's contents as arrays (tests and benchmarks compare them)."""
        parts = [s.counted() for s in self.segments]
        if not parts:
            return (np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64))
        merged = self.sorted_segment([np.concatenate([p[i] for p in parts]) for i in range(3)])
        order = np.lexsort((merged.lo, merged.hi))
        return merged.hi[order], merged.lo[order], merged.seen_us[order]


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)
