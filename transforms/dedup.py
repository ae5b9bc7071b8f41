"""Dedup stage: the same story seen in several feeds, or several times in one
feed, is kept once.

Two entries are the same story when they share any identity from
identity.dedup_keys: the guid within one feed, the canonical URL, or the
normalised title and text. The kinds are applied one after the other
(strongest first); within each group the preferred copy wins, so which copy
is kept does not depend on arrival order, runner or worker count.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from transforms import identity
from transforms.records import Story

KEY_KINDS = ("guid", "url", "text")
_NO_DATE = float("inf")


def preference(story: Story) -> tuple:
    """Sort key of the copy to keep: earliest published, then feed, then
    position in the feed, then id. Smaller is preferred."""
    published = story.published_at.timestamp() if story.published_at else _NO_DATE
    return (published, story.feed_url, story.entry_index, story.story_id,
            story.url or "", story.guid or "")


def dedup_key(story: Story, kind: str) -> Optional[str]:
    """The story's identity of one kind, or None when it has none of that kind."""
    keys = dict(identity.dedup_keys(
        story.canonical_url, story.feed_url, story.guid,
        bool(story.title or story.summary or story.content), story.content_hash))
    value = keys.get(kind)
    return f"{kind}:{value}" if value is not None else None


def _passthrough_key(story: Story) -> str:
    # Unique per entry and run, so stories without this kind of key stay alone.
    return f"self:{story.feed_url}\x1f{story.entry_index}\x1f{story.fetched_at}"


def dedup_stories(stories: Iterable[Story]) -> Tuple[List[Story], int]:
    """In-memory twin of DedupStories (for baselines and tests): kept, dropped."""
    kept = list(stories)
    dropped = 0
    for kind in KEY_KINDS:
        best = {}
        for story in kept:
            key = dedup_key(story, kind) or _passthrough_key(story)
            if key not in best or preference(story) < preference(best[key]):
                best[key] = story
        dropped += len(kept) - len(best)
        kept = list(best.values())
    return sorted(kept, key=preference), dropped


class _KeepPreferred(beam.CombineFn):
    """(best story, copies seen): liftable, so only winners cross the shuffle."""

    def create_accumulator(self):
        return (None, 0)

    def add_input(self, acc, story):
        best, n = acc
        if best is None or preference(story) < preference(best):
            best = story
        return (best, n + 1)

    def merge_accumulators(self, accs):
        best, total = None, 0
        for candidate, n in accs:
            total += n
            if candidate is not None and (best is None or preference(candidate) < preference(best)):
                best = candidate
        return (best, total)

    def extract_output(self, acc):
        return acc


class _EmitWinner(beam.DoFn):
    def __init__(self):
        self.duplicates = Metrics.counter("newswatch", "duplicates")

    def process(self, keyed):
        _, (best, copies) = keyed
        if copies > 1:
            self.duplicates.inc(copies - 1)
        yield best


class _DedupByKind(beam.PTransform):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def expand(self, stories):
        kind = self.kind
        return (
            stories
            | "Key" >> beam.Map(lambda s: (dedup_key(s, kind) or _passthrough_key(s), s))
            .with_output_types(Tuple[str, Story])
            | "KeepPreferred" >> beam.CombinePerKey(_KeepPreferred())
            | "Emit" >> beam.ParDo(_EmitWinner())
        )


class DedupStories(beam.PTransform):
    """PCollection[Story] -> PCollection[Story] with each story once.

    Counts the dropped copies in the counter `newswatch/duplicates`.
    """

    def expand(self, stories):
        for kind in KEY_KINDS:
            stories = stories | f"By{kind.capitalize()}" >> _DedupByKind(kind)
        return stories


# ---------------------------------------------------------------- across polls

class _RememberForTTL(beam.DoFn):
    """Keyed by one story identity: lets the first story with that identity
    through and drops later ones until the identity has not been seen for
    `ttl_s` seconds of event time. An event-time timer clears the state, so
    memory holds only identities seen within the TTL."""

    SEEN = ReadModifyWriteStateSpec("seen", VarIntCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self.duplicates = Metrics.counter("newswatch", "duplicates")
        self.forgotten = Metrics.counter("newswatch", "dedup_keys_forgotten")

    def process(self, keyed, timestamp=beam.DoFn.TimestampParam,
                seen=beam.DoFn.StateParam(SEEN), expiry=beam.DoFn.TimerParam(EXPIRY)):
        _, story = keyed
        # Every sighting restarts the clock: an item re-served on every poll
        # stays remembered for as long as it is served, plus the TTL.
        expiry.set(timestamp + self.ttl_s)
        if seen.read() is not None:
            self.duplicates.inc()
            return
        seen.write(1)
        yield story

    @on_timer(EXPIRY)
    def forget(self, seen=beam.DoFn.StateParam(SEEN)):
        seen.clear()
        self.forgotten.inc()


class _DedupAcrossPollsByKind(beam.PTransform):
    def __init__(self, kind: str, ttl_s: float):
        super().__init__()
        self.kind, self.ttl_s = kind, ttl_s

    def expand(self, stories):
        kind = self.kind
        keyed, keyless = stories | "HasKey" >> beam.Partition(
            lambda s, n: 0 if dedup_key(s, kind) else 1, 2)
        remembered = (
            keyed
            | "Key" >> beam.Map(lambda s: (dedup_key(s, kind), s)).with_output_types(Tuple[str, Story])
            | "Remember" >> beam.ParDo(_RememberForTTL(self.ttl_s))
        )
        return (remembered, keyless) | "Merge" >> beam.Flatten()


class DedupAcrossPolls(beam.PTransform):
    """PCollection[Story] in the global window -> each story once per TTL.

    For streaming: a story is written only if none of its identities (guid in
    its feed, canonical URL, normalised text) was seen in the last `ttl_s`
    seconds, so a story whose guid changes while its URL or text does not is
    still a duplicate. Duplicates count in `newswatch/duplicates`.
    """

    def __init__(self, ttl_s: float):
        super().__init__()
        self.ttl_s = ttl_s

    def expand(self, stories):
        for kind in KEY_KINDS:
            stories = stories | f"Across{kind.capitalize()}" >> _DedupAcrossPollsByKind(kind, self.ttl_s)
        return stories
