"""Seen-before stage: drops stories that an earlier run already wrote.

A story was seen before when any of its dedup identities (guid within its
feed, canonical URL, normalised title and text: transforms.dedup), or the
canonical URL of the link its feed gave (identity.remembered_keys), is in the
state of committed runs within the lookback. So a story whose guid changed
but whose URL or text did not is not written again, nor one stored under a
redirector's link before its publisher's link was read.

Each worker loads the remembered identities once (per process, shared by its
threads) as a SeenIndex: sorted 128-bit digests, ~24 bytes an identity, so a
million stories (~3 million identities) take ~72 MB and a lookup is a binary
search; the last compaction's digests are memory-mapped from its digest
file, so the worker processes of one machine share them
(transforms/state/seen_files.py). We chose this over a CoGroupByKey join of the stored keys against the
run's stories because the lookback bounds the state, while a join would
shuffle every remembered key on every run to answer a few thousand lookups.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator, List, Union

import apache_beam as beam
from apache_beam.utils import shared

from transforms import identity, metrics, unmatched
from transforms.records import Story
from transforms.state.seen_index import SeenIndex
from transforms.state.store import SeenRecord, StateStore, key_digest

REFRESH = "refresh"


def seen_keys(story: Union[Story, tuple]) -> List[bytes]:
    """The digests under which the story (or unmatched record) is remembered."""
    if unmatched.is_unmatched(story):
        return unmatched.remembered_digests(story)
    keys = identity.remembered_keys(
        story.canonical_url, story.feed_link, story.feed_url, story.guid,
        bool(story.title or story.summary or story.content), story.content_hash)
    return [key_digest(f"{kind}:{value}") for kind, value in keys]


def _id_and_fetch_time(story: Union[Story, tuple]):
    if unmatched.is_unmatched(story):
        return unmatched.story_id(story), unmatched.fetched_at(story)
    return story.story_id, story.fetched_at


def seen_records(story: Union[Story, tuple]) -> List[SeenRecord]:
    story_id, fetched_at = _id_and_fetch_time(story)
    return [SeenRecord(key, story_id, fetched_at) for key in seen_keys(story)]


def last_seen(story: Union[Story, tuple], index: SeenIndex):
    """When any identity of the story was last recorded, or None."""
    if index.is_empty:   # nothing remembered (a first run): no keys to make
        return None
    times = [t for t in (index.last_seen(k) for k in seen_keys(story)) if t is not None]
    return max(times) if times else None


class _SeenBeforeFn(beam.DoFn):
    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta):
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback
        self._shared = shared.Shared()
        self._index = None
        self.seen_before = metrics.counter("seen_before")
        self.identities = metrics.distribution("state_seen_identities")
        self.unreadable = metrics.distribution("state_seen_unreadable_files")

    def setup(self):
        def load():
            return StateStore(self.output).load_seen(self.run_id, self.as_of, self.lookback)
        self._index = self._shared.acquire(load, tag=(self.output, self.run_id, self.as_of.isoformat()))

    def start_bundle(self):
        self.identities.update(len(self._index))
        self.unreadable.update(len(self._index.unreadable))

    def process(self, story) -> Iterator:
        seen_at = last_seen(story, self._index)
        if seen_at is None:
            yield story
            return
        self.seen_before.inc()
        # Re-record a story still in its feed before the lookback forgets it,
        # or a long-lived item would come back as new every `lookback` days.
        _, fetched_at = _id_and_fetch_time(story)
        if fetched_at - seen_at > self.lookback / 2:
            for record in seen_records(story):
                yield beam.pvalue.TaggedOutput(REFRESH, record)


class SeenBefore(beam.PTransform):
    """PCollection[Story or unmatched record] -> DoOutputsTuple with

    - main output: the stories (and unmatched records) not written by an
      earlier run
    - `refresh`: PCollection[SeenRecord] to re-record (seen-before stories
      whose record is older than half the lookback)

    Counts the dropped stories in `newswatch/seen_before`.
    """

    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta):
        super().__init__()
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback

    def expand(self, stories):
        return stories | "Lookup" >> beam.ParDo(
            _SeenBeforeFn(self.output, self.run_id, self.as_of, self.lookback)
        ).with_outputs(REFRESH, main="new")
