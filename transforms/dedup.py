"""Dedup stage: the same story seen in several feeds, or several times in one
feed, is kept once.

Two entries are the same story when they share any identity from
identity.dedup_keys: the guid within one feed, the canonical URL, or the
normalised title and text. The kinds are applied one after the other
(strongest first); within each group the preferred copy wins, so which copy
is kept does not depend on arrival order, runner or worker count.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Tuple, Union

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from transforms import identity, metrics, unmatched
from transforms.records import Story
from transforms.state.store import key_digest

KEY_KINDS = identity.DEDUP_KINDS
_NO_DATE = float("inf")


def preference(story: Story) -> tuple:
    """Sort key of the copy to keep: earliest published, then feed, then
    position in the feed, then id. Smaller is preferred."""
    published = story.published_at.timestamp() if story.published_at else _NO_DATE
    return (published, story.feed_url, story.entry_index, story.story_id,
            story.url or "", story.guid or "")


def dedup_key(story: Story, kind: str) -> Optional[str]:
    """The story's identity of one kind, or None when it has none of that kind."""
    value = identity.story_dedup_keys(story).get(kind)
    return f"{kind}:{value}" if value is not None else None


def dedup_digest(item: Union[Story, tuple], kind: str) -> Optional[bytes]:
    """The digest of dedup_key (as identity_record has it), of a story or
    an unmatched record; None when it has no identity of that kind."""
    if unmatched.is_unmatched(item):
        return unmatched.key_of_kind(item, kind)
    key = dedup_key(item, kind)
    return key_digest(key) if key is not None else None


def entry_handle(story: Story) -> str:
    """Names one entry of one fetch: unique within a run."""
    return f"{story.feed_url}\x1f{story.entry_index}\x1f{story.fetched_at}"


def _passthrough_key(story: Story) -> str:
    # Unique per entry and run, so stories without this kind of key stay alone.
    return f"self:{entry_handle(story)}"


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


# ---------------------------------------------------------------- Beam
#
# The passes compare compact identity records, not whole stories: a
# GroupByKey on the DirectRunner decodes, holds and re-encodes every value,
# so three passes over full stories cost most of the stage's CPU and memory.
# A record is a plain tuple (Beam's fast coder handles it without pickle);
# the winners are picked out of the stories (or unmatched records) once, at the end.
# Its handle and keys are 16-byte digests (key_digest), not the strings
# they stand for: every pass holds each record, keyed, in memory at once.

_HANDLE, _PREFERENCE = 0, 4
_KEY_INDEX = {kind: 1 + i for i, kind in enumerate(KEY_KINDS)}


def handle_digest(story: Story) -> bytes:
    """entry_handle's digest: how the winners name the stories they keep."""
    return key_digest(entry_handle(story))


def identity_record(story: Story, digests: Optional[Tuple[Optional[bytes], ...]] = None) -> tuple:
    """(handle digest, guid key, url key, text key, preference): all that
    dedup needs to know about a story, each key the digest of dedup_key's
    string (`digests`: unmatched.key_digests of its keys, when the caller
    has them). A kind the story has no key of gets a key of its own, so the
    story stays alone in that pass."""
    if digests is None:
        digests = unmatched.key_digests(identity.story_dedup_keys(story))
    handle = entry_handle(story)
    alone = key_digest(f"self:{handle}") if None in digests else None
    return (key_digest(handle), *(alone if d is None else d for d in digests), preference(story))


class _KeepPreferred(beam.CombineFn):
    """(best record, copies seen): liftable, so only winners cross the shuffle."""

    def create_accumulator(self):
        return (None, 0)

    def add_input(self, acc, record):
        best, n = acc
        if best is None or record[_PREFERENCE] < best[_PREFERENCE]:
            best = record
        return (best, n + 1)

    def merge_accumulators(self, accs):
        best, total = None, 0
        for candidate, n in accs:
            total += n
            if candidate is not None and (best is None or candidate[_PREFERENCE] < best[_PREFERENCE]):
                best = candidate
        return (best, total)

    def extract_output(self, acc):
        return acc


class _EmitWinnerFn(beam.DoFn):
    """Each group's winner, keyed for the next pass (by its identity of
    `next_index`), or by None for the set of winners after the last: keyed
    here, in the step that emits it, rather than by a step of its own that
    every record would pass."""

    def __init__(self, next_index: Optional[int]):
        self.next_index = next_index
        self.duplicates = metrics.counter("duplicates")

    def process(self, keyed):
        _, (best, copies) = keyed
        if copies > 1:
            self.duplicates.inc(copies - 1)
        if self.next_index is None:
            yield (None, best[_HANDLE])
        else:
            yield (best[self.next_index], best)


class _DedupByKind(beam.PTransform):
    """Records keyed by their identity of one kind -> the winner of each
    key, keyed for the next kind (or by None, its handle, after the last)."""

    def __init__(self, next_kind: Optional[str]):
        super().__init__()
        self.next_kind = next_kind

    def expand(self, keyed_records):
        if self.next_kind is None:
            emit = beam.ParDo(_EmitWinnerFn(None)).with_output_types(Tuple[None, bytes])
        else:
            emit = beam.ParDo(_EmitWinnerFn(_KEY_INDEX[self.next_kind])).with_output_types(Tuple[bytes, tuple])
        return (
            keyed_records
            | "KeepPreferred" >> beam.CombinePerKey(_KeepPreferred())
            | "Emit" >> emit
        )


class _ToSet(beam.CombineFn):
    def create_accumulator(self):
        return set()

    def add_input(self, acc, value):
        acc.add(value)
        return acc

    def merge_accumulators(self, accs):
        merged = set()
        for acc in accs:
            merged |= acc
        return merged

    def extract_output(self, acc):
        return acc


_RECORDS = "records"


class _IdentifyFn(beam.DoFn):
    """Each story's identity record, keyed for the first pass, and the story
    as it waits for the winners: with `compact_unmatched`, one without
    topics as its unmatched record."""

    def __init__(self, compact_unmatched: bool):
        self.compact_unmatched = compact_unmatched

    def process(self, story: Story):
        digests = unmatched.key_digests(identity.story_dedup_keys(story))   # both records' keys, computed once
        record = identity_record(story, digests)
        yield beam.pvalue.TaggedOutput(_RECORDS, (record[_KEY_INDEX[KEY_KINDS[0]]], record))
        if self.compact_unmatched and not story.topics:
            yield unmatched.unmatched_record(story, record[_HANDLE], digests)
        else:
            yield story


class _KeepWinnersFn(beam.DoFn):
    def process(self, item, winners):
        handle = unmatched.handle(item) if unmatched.is_unmatched(item) else handle_digest(item)
        if handle in winners:
            yield item


class DedupStories(beam.PTransform):
    """PCollection[Story] -> PCollection[Story] with each story once.

    With `compact_unmatched` (the pipeline's stages after TagTopics), a
    story without topics comes out as its unmatched record
    (transforms/unmatched.py), which the stages after dedup take as well.
    Counts the dropped copies in the counter `newswatch/duplicates`.
    """

    def __init__(self, compact_unmatched: bool = False, label: Optional[str] = None):
        super().__init__(label)
        self.compact_unmatched = compact_unmatched

    def expand(self, stories):
        split = stories | "IdentityRecords" >> beam.ParDo(
            _IdentifyFn(self.compact_unmatched)).with_outputs(_RECORDS, main="items")
        records, items = split[_RECORDS], split.items   # records keyed by their first kind
        for kind, next_kind in zip(KEY_KINDS, [*KEY_KINDS[1:], None]):
            records = records | f"By{kind.capitalize()}" >> _DedupByKind(next_kind)
        winners = (
            records
            # Per window, as CombineGlobally(...).without_defaults() would; a
            # window without any gets AsSingleton's default_value.
            | "AsOneSet" >> beam.CombinePerKey(_ToSet())
            | "Set" >> beam.Map(lambda keyed: keyed[1]).with_output_types(set)
        )
        return items | "KeepWinners" >> beam.ParDo(
            _KeepWinnersFn(), winners=beam.pvalue.AsSingleton(winners, default_value=set()))


# ---------------------------------------------------------------- across polls

class _RememberForTTLFn(beam.DoFn):
    """Keyed by one story identity: lets the first story with that identity
    through and drops later ones until the identity has not been seen for
    `ttl_s` seconds of event time. An event-time timer clears the state, so
    memory holds only identities seen within the TTL."""

    SEEN = ReadModifyWriteStateSpec("seen", VarIntCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_s: float, repeats: str, forgotten: str):
        self.ttl_s = ttl_s
        self.duplicates = metrics.counter(repeats)
        self.forgotten = metrics.counter(forgotten)

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
            lambda s, n: 0 if dedup_digest(s, kind) else 1, 2)
        remembered = (
            keyed
            # Hex: the DirectRunner decodes timer keys as text.
            | "Key" >> beam.Map(lambda s: (dedup_digest(s, kind).hex(), s)).with_output_types(Tuple[str, Any])
            | "Remember" >> OncePerTTL(self.ttl_s, "duplicates", "dedup_keys_forgotten")
        )
        return (remembered, keyless) | "Merge" >> beam.Flatten()


class DedupAcrossPolls(beam.PTransform):
    """PCollection[Story or unmatched record] in the global window -> each
    story once per TTL.

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


class OncePerTTL(beam.PTransform):
    """PCollection[(key, value)] in the global window -> the values whose
    key was not seen in the last `ttl_s` seconds (each sighting restarts the
    clock). Drops count in the counter `repeats`; forgotten keys in `forgotten`.
    DedupAcrossPolls is this, once per kind of identity."""

    def __init__(self, ttl_s: float, repeats: str, forgotten: str):
        super().__init__()
        self.ttl_s, self.repeats, self.forgotten = ttl_s, repeats, forgotten

    def expand(self, keyed):
        return keyed | "Remember" >> beam.ParDo(_RememberForTTLFn(self.ttl_s, self.repeats, self.forgotten))
