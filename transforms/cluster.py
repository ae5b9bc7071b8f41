"""Cluster stage: reprints of one wire story share a `cluster_id`.

Exact copies are gone by now (dedup.py). What is left may still be one
story run by several outlets, each with its own headline, dateline, cuts
and footer. Each story carries a sketch of its lead (transforms/sketch.py,
made at parse time, where the feed document's boilerplate is known). Here
every kept story joins the cluster of the most similar earlier story it is
a reprint of, or starts a cluster of its own:

- `cluster_id` is the story_id of the cluster's first member, and never
  changes once written;
- `cluster_size` counts the members written so far, this one included, as
  this row saw it: later members have larger sizes, earlier rows keep theirs.

Order decides who is first, so a run's stories are taken in dedup's
preference order (earliest published first), after the clusters that
earlier runs wrote (the cluster index in _state/clusters, loaded once per
worker like the seen index) and, in a streaming job, after what the job
wrote in earlier windows (keyed state, forgotten after the dedup TTL).
A story joins a cluster through any member, not only the first.

All stories of a run (of a window, streaming) pass one key, so that the
order is the same on every runner: kept stories are the few that matched a
topic, and their clustering costs microseconds each.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.coders import PickleCoder
from apache_beam.transforms import window
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.utils import shared

from transforms import metrics, sketch as sketches
from transforms.dedup import preference
from transforms.records import Story
from transforms.sketch import BANDS, NUM_PERM, band_keys
from transforms.state.cluster_index import MAX_BUCKET, Candidate, ClusterIndex, ClusterRecord
from transforms.state.store import StateStore


class DocumentSketcher:
    """Sketches one feed document's stories, a batch at a time: what was
    boilerplate in its earlier batches stays boilerplate in later ones, so
    the last few items of a long feed are not sketched with their footer."""

    def __init__(self):
        self.known = None

    def __call__(self, stories: List[Story], wanted: Optional[List[bool]] = None) -> List[Story]:
        """`wanted`: which stories need their sketch (the others get None;
        all count towards the boilerplate)."""
        texts = [sketches.clustering_text(s.summary, s.content) for s in stories]
        found, self.known = sketches.sketch_document(
            texts, self.known, items=[(s.title, text) for s, text in zip(stories, texts)], wanted=wanted)
        for story, made in zip(stories, found):
            story.sketch = made
        return stories


def sketch_stories(stories: List[Story]) -> List[Story]:
    """One feed document's stories with their sketches (its boilerplate left out)."""
    return DocumentSketcher()(stories)


class ClusterMemory:
    """What this run (or streaming job) wrote: sketches by LSH band, and the
    size of every cluster it added to. Picklable: a streaming job keeps it
    in keyed state."""

    def __init__(self):
        self.members: Dict[int, Tuple[bytes, int, str, int]] = {}   # n -> (signature, shingles, cluster, seen µs)
        self.buckets: List[Dict[int, List[int]]] = [{} for _ in range(BANDS)]
        self.sizes: Dict[str, int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self.members)

    def candidates(self, keys: np.ndarray, values: np.ndarray) -> List[Candidate]:
        found = set()
        for band, key in enumerate(keys.tolist()):
            found.update(self.buckets[band].get(key, ())[-MAX_BUCKET:])
        result = []
        for n in sorted(found):
            signature, shingles, cluster, _ = self.members[n]
            hits = int(np.count_nonzero(np.frombuffer(signature, dtype="<u4") == values))
            result.append(Candidate(cluster, self.sizes[cluster], hits, shingles))
        return result

    def add(self, keys: np.ndarray, made: sketches.Sketch, cluster: str, seen_us: int) -> None:
        n, self._next = self._next, self._next + 1
        self.members[n] = (made.signature, made.shingles, cluster, seen_us)
        for band, key in enumerate(keys.tolist()):
            self.buckets[band].setdefault(key, []).append(n)

    def forget_before(self, cutoff_us: int) -> int:
        """Drops members seen before `cutoff_us` (a streaming job's TTL); returns how many."""
        old = [n for n, member in self.members.items() if member[3] < cutoff_us]
        if not old:
            return 0
        gone = set(old)
        for n in old:
            del self.members[n]
        for band in self.buckets:
            for key in list(band):
                kept = [n for n in band[key] if n not in gone]
                if kept:
                    band[key] = kept
                else:
                    del band[key]
        # Sizes stay (an int a cluster): a cluster the index also holds must
        # go on counting from what this job added, never back from the index's.
        return len(old)


def _best(candidates: Iterable[Candidate], shingles: int) -> Optional[Candidate]:
    """The candidate the story is most clearly a reprint of, or None."""
    best, best_rank = None, None
    for c in candidates:
        containment, shared = sketches.estimate(c.matches / NUM_PERM, shingles, c.shingles)
        if not sketches.is_reprint(containment, shared):
            continue
        rank = (-containment, -shared, c.cluster_id)   # ties: the smaller id, on every runner
        if best_rank is None or rank < best_rank:
            best, best_rank = c, rank
    return best


def _micros(when: Optional[datetime]) -> int:
    return 0 if when is None else int(when.timestamp() * 1_000_000)


def assign_clusters(stories: Iterable[Story], index: Optional[ClusterIndex] = None,
                    memory: Optional[ClusterMemory] = None) -> List[Story]:
    """The stories (sketched) with cluster_id and cluster_size, in preference
    order; `memory` (updated) holds what was written before them in this run."""
    index = index if index is not None else ClusterIndex.empty()
    memory = memory if memory is not None else ClusterMemory()
    out = []
    for story in sorted(stories, key=preference):
        made = getattr(story, "sketch", None)
        if made is None:
            out.append(story.replace(cluster_id=story.story_id, cluster_size=1))
            continue
        values = made.values()
        keys = band_keys(values[None, :])[0]
        best = _best(index.candidates(keys, values) + memory.candidates(keys, values), made.shingles)
        if best is None:
            cluster = story.story_id
            memory.sizes[cluster] = 1
        else:
            cluster = best.cluster_id
            memory.sizes[cluster] = memory.sizes.get(cluster, best.cluster_size) + 1
        memory.add(keys, made, cluster, _micros(story.fetched_at))
        out.append(story.replace(cluster_id=cluster, cluster_size=memory.sizes[cluster]))
    return out


def cluster_records(story: Story) -> List[ClusterRecord]:
    """What the next runs remember of a written story's cluster (none without a sketch)."""
    made = getattr(story, "sketch", None)
    if made is None or story.cluster_id is None:
        return []
    return [ClusterRecord(story.story_id, story.cluster_id, made.signature, made.shingles,
                          story.fetched_at)]


# ---------------------------------------------------------------- Beam

class _AssignClustersFn(beam.DoFn):
    MEMORY = ReadModifyWriteStateSpec("memory", PickleCoder())

    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta,
                 ttl_s: Optional[float]):
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback
        self.ttl_s = ttl_s
        self._shared = shared.Shared()
        self._index = None
        self.joined = metrics.counter("cluster_reprints")
        self.remembered = metrics.distribution("state_cluster_sketches")
        self.forgotten = metrics.counter("cluster_sketches_forgotten")

    def setup(self):
        def load():
            return StateStore(self.output).load_clusters(self.run_id, self.as_of, self.lookback)
        self._index = self._shared.acquire(load, tag=("clusters", self.output, self.run_id,
                                                      self.as_of.isoformat()))

    def process(self, keyed, memory=beam.DoFn.StateParam(MEMORY)):
        _, stories = keyed
        stories = list(stories)
        mem = memory.read() if self.ttl_s is not None else None
        if mem is None:
            mem = ClusterMemory()
        if self.ttl_s is not None and stories:
            newest = max(_micros(s.fetched_at) for s in stories)
            self.forgotten.inc(mem.forget_before(newest - int(self.ttl_s * 1_000_000)))
        self.remembered.update(len(self._index) + len(mem))
        for story in assign_clusters(stories, self._index, mem):
            if story.cluster_id != story.story_id:
                self.joined.inc()
            yield story
        if self.ttl_s is not None:
            memory.write(mem)


class AssignClusters(beam.PTransform):
    """PCollection[Story] (sketched) -> the same stories with cluster_id and
    cluster_size.

    Batch: one group of the run's stories. Streaming (`ttl_s` set): input in
    output windows; each window's stories are grouped once the window closes,
    then clustered in the global window after what the job wrote before
    (keyed state, members forgotten `ttl_s` after their fetch). The output is
    in the global window, timestamped at its window's end: re-window it.
    Reprints joining a cluster count in `newswatch/cluster_reprints`.
    """

    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta,
                 ttl_s: Optional[float] = None):
        super().__init__()
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback
        self.ttl_s = ttl_s

    def expand(self, stories):
        grouped = (
            stories
            | "OneKey" >> beam.Map(lambda s: ("clusters", s)).with_output_types(Tuple[str, Story])
            | "Together" >> beam.GroupByKey()
        )
        if self.ttl_s is not None:
            grouped = grouped | "Global" >> beam.WindowInto(window.GlobalWindows())
        return grouped | "Assign" >> beam.ParDo(
            _AssignClustersFn(self.output, self.run_id, self.as_of, self.lookback, self.ttl_s))
