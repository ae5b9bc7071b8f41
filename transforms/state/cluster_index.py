"""The cluster index: sketches of the stories earlier runs wrote, with their
cluster, for the cluster stage (transforms/cluster.py) to find the cluster
a new reprint joins (StateStore.load_clusters).

Held in numpy arrays: per story its MinHash signature (4 * NUM_PERM bytes),
its set size and its cluster's number; per LSH band a sorted array of 32-bit
band keys with the story each belongs to (8 bytes a story a band). About
0.5 KB a story: 1,000,000 remembered stories take ~520 MB
(benchmarks/cluster_bench.py measures it). Cluster ids are stored once per
cluster, not once per story.
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.sketch import BANDS, NUM_PERM, ROWS, band_keys_of_band

# A band key shared by more stories than this is not a useful lead (the
# newest of them are checked): it keeps one lookup's cost bounded.
MAX_BUCKET = 64


def _band_column(signatures: np.ndarray, band: int) -> np.ndarray:
    """The low 32 bits of every story's key in one band (as band_keys computes it)."""
    part = signatures[:, band * ROWS:(band + 1) * ROWS]
    return (band_keys_of_band(part) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


class ClusterRecord(NamedTuple):
    """One written story's sketch and cluster, as remembered by the next runs."""

    story_id: str
    cluster_id: str
    signature: bytes
    shingles: int
    seen_at: datetime


class Candidate(NamedTuple):
    """A remembered story a new one may be a reprint of."""

    cluster_id: str
    cluster_size: int       # members of its cluster remembered
    matches: int            # signature values equal to the new story's
    shingles: int


class ClusterIndex:
    """Remembered sketches, looked up by LSH band (immutable once built)."""

    def __init__(self, signatures: np.ndarray, shingles: np.ndarray, cluster_of: np.ndarray,
                 cluster_ids: pa.Array, seen: Optional[np.ndarray] = None):
        self.signatures = signatures            # (n, NUM_PERM) uint32
        self.shingles = shingles                # (n,) int32
        self.cluster_of = cluster_of            # (n,) int32: index into cluster_ids
        self.cluster_ids = cluster_ids          # distinct cluster ids (pyarrow strings)
        self.sizes = np.bincount(cluster_of, minlength=len(cluster_ids)).astype(np.int32)
        n = len(signatures)
        # Per band: the stories' band keys, sorted, and which story each is.
        # 32-bit keys: a chance collision only adds a candidate that the
        # signature comparison then turns away. Built band by band, so the
        # peak while loading is one band's temporaries, not all of them.
        self.keys = np.empty((BANDS, n), dtype=np.uint32)
        self.order = np.empty((BANDS, n), dtype=np.uint32)
        # Among equal keys, oldest first (`seen`: when each was written), so
        # that a crowded bucket's bounded lookup takes its newest members.
        by_seen = np.argsort(seen, kind="stable") if seen is not None else None
        for band in range(BANDS):
            keys = _band_column(signatures, band)
            if by_seen is None:
                order = np.argsort(keys, kind="stable")
            else:
                order = by_seen[np.argsort(keys[by_seen], kind="stable")]
            self.keys[band] = keys[order]
            self.order[band] = order

    @classmethod
    def empty(cls) -> "ClusterIndex":
        return cls(np.zeros((0, NUM_PERM), np.uint32), np.zeros(0, np.int32),
                   np.zeros(0, np.int32), pa.array([], pa.string()))

    @classmethod
    def from_table(cls, table: Optional[pa.Table]) -> "ClusterIndex":
        """From _state/clusters rows (commit rows, with null story_id, left out)."""
        if table is None or table.num_rows == 0:
            return cls.empty()
        table = table.filter(pc.is_valid(table["story_id"]))
        if table.num_rows == 0:
            return cls.empty()
        if pc.count_distinct(table["story_id"]).as_py() < table.num_rows:
            # A story recorded twice (a streaming unit cut off between its
            # clusters and seen files, then recovered) counts once: its newest row.
            table = table.sort_by([("story_id", "ascending"), ("committed_at", "descending")])
            story = table["story_id"].combine_chunks()
            first = np.ones(len(story), dtype=bool)
            first[1:] = pc.not_equal(story[1:], story[:-1]).to_numpy(zero_copy_only=False)
            table = table.filter(pa.array(first))
        raw = table["signature"].combine_chunks()
        # A view of Arrow's buffer, not a copy: at a million stories that is 256 MB.
        signatures = np.frombuffer(raw.buffers()[1], dtype="<u4")[
            raw.offset * NUM_PERM:(raw.offset + len(raw)) * NUM_PERM].reshape(len(raw), NUM_PERM)
        clusters = pc.dictionary_encode(table["cluster_id"].combine_chunks())
        seen = pc.cast(table["seen_at"], pa.int64()).combine_chunks().to_numpy()
        return cls(signatures, table["shingles"].to_numpy().astype(np.int32),
                   clusters.indices.to_numpy().astype(np.int32), clusters.dictionary, seen)

    def __len__(self) -> int:
        return len(self.shingles)

    @property
    def nbytes(self) -> int:
        return (self.signatures.nbytes + self.shingles.nbytes + self.cluster_of.nbytes
                + self.sizes.nbytes + self.order.nbytes + self.keys.nbytes + self.cluster_ids.nbytes)

    def candidates(self, keys: np.ndarray, values: np.ndarray):
        """The remembered stories sharing a band key with a new sketch
        (`keys`: its BANDS band keys; `values`: its signature)."""
        if not len(self):
            return []
        found = set()
        short = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        for band in range(BANDS):
            row = self.keys[band]
            lo = int(np.searchsorted(row, short[band], side="left"))
            hi = int(np.searchsorted(row, short[band], side="right"))
            if hi > lo:
                found.update(self.order[band, max(lo, hi - MAX_BUCKET):hi].tolist())
        if not found:
            return []
        positions = np.fromiter(sorted(found), dtype=np.int64, count=len(found))
        matches = np.count_nonzero(self.signatures[positions] == values[None, :], axis=1)
        result = []
        for pos, hits in zip(positions.tolist(), matches.tolist()):
            code = int(self.cluster_of[pos])
            result.append(Candidate(self.cluster_ids[code].as_py(), int(self.sizes[code]),
                                    int(hits), int(self.shingles[pos])))
        return result
