"""Dedup stage: the same story seen in several feeds, or several times in one
feed, is kept once.

Two entries are the same story when they share any identity from
identity.dedup_keys: the guid within one feed, the canonical URL, or the
normalised title and text. The kinds are applied one after the other
(strongest first); within each group the preferred copy wins, so which copy
is kept does not depend on arrival order, runner or worker count.
"""
from __future__ import annotations

import functools
import struct
from datetime import datetime
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


# preference_key's encodings, each sorting as its value does: a float by
# its IEEE bits (sign bit flipped, all bits flipped for a negative), an int
# offset by 2**63, a string as UTF-8 (code point order; surrogatepass for a
# lone surrogate) with each NUL escaped and a terminator below any byte
# that can follow, so a string sorts before every longer one it begins.
_SIGN = 1 << 63
_ALL_BITS = (1 << 64) - 1
_FLOAT = struct.Struct(">d")
_NUL, _NUL_ESCAPED, _END = b"\x00", b"\x00\xff", b"\x00\x00"


def _float_key(value: float) -> bytes:
    bits = int.from_bytes(_FLOAT.pack(value + 0.0), "big")   # + 0.0: -0.0 sorts as 0.0
    return (bits ^ _ALL_BITS if bits & _SIGN else bits | _SIGN).to_bytes(8, "big")


def _str_key(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass").replace(_NUL, _NUL_ESCAPED) + _END


def preference_key(story: Story) -> bytes:
    """preference(story) as one bytes object that sorts as the tuple does:
    what dedup's identity records carry, one object where the tuple holds
    six, each with its own header."""
    published, feed_url, entry_index, story_id, url, guid = preference(story)
    return b"".join((_float_key(published), _str_key(feed_url), (entry_index + _SIGN).to_bytes(8, "big"),
                     _str_key(story_id), _str_key(url), _str_key(guid)))


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
    at = story.fetched_at
    moment = _moment_text(at, at.utcoffset()) if isinstance(at, datetime) else at
    return f"{story.feed_url}\x1f{story.entry_index}\x1f{moment}"


@functools.lru_cache(maxsize=256)
def _moment_text(moment, offset) -> str:
    # All entries of a fetch share its time: formatted once, not per entry.
    # (Keyed with the offset too: equal instants in two zones print differently.)
    return str(moment)


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
# Dedup compares compact identity records, not whole stories, and picks the
# winners out of the stories (or unmatched records) once, at the end.
# A record is a plain tuple of two bytes objects, which Beam encodes
# without pickle: its handle and keys as 16-byte digests (key_digest), not
# the strings they stand for, and its preference as preference_key.
#
# The passes run inside one combine (_Winners) rather than as a keyed
# shuffle per kind: on the DirectRunner every shuffle is grouped in the
# main process, which decodes and holds each record, and a run's short
# grouped stages run one after the other whatever the worker count. The
# first pass (guid) is applied to each part as it is read, because a
# record that loses its guid group within a part loses it in the whole;
# the others need every survivor, so they run on the merged whole, in one
# thread of one worker. That worker holds each guid's preferred record at
# once, about 0.5 KB each with the guid key its dict holds (about five
# times a winner's handle in the set every worker then holds; each later
# pass adds a 16-byte key a record while it runs): fine for a run of a few
# million entries, not for a backfill of many more in one run.

_DIGESTS, _PREFERENCE = 0, 1
_DIGEST = len(key_digest(""))
_KEY_AT = {kind: _DIGEST * (1 + i) for i, kind in enumerate(KEY_KINDS)}   # where in _DIGESTS
_FIRST = _KEY_AT[KEY_KINDS[0]]


def handle_digest(story: Story) -> bytes:
    """entry_handle's digest: how the winners name the stories they keep."""
    return key_digest(entry_handle(story))


def identity_record(story: Story, digests: Optional[Tuple[Optional[bytes], ...]] = None) -> tuple:
    """(digests, preference key): all that dedup needs to know about a
    story. `digests` is the handle's digest and then each kind's key, the
    digest of dedup_key's string, 16 bytes each in one bytes object (the
    keys: unmatched.key_digests, when the caller has them); a kind the
    story has no key of gets a key of its own, so the story stays alone in
    that pass. The preference key is preference_key's."""
    if digests is None:
        digests = unmatched.key_digests(identity.story_dedup_keys(story))
    handle = entry_handle(story)
    alone = key_digest(f"self:{handle}") if None in digests else None
    return (b"".join((key_digest(handle), *(alone if d is None else d for d in digests))),
            preference_key(story))


def record_handle(record: tuple) -> bytes:
    """The handle digest of an identity record (handle_digest of its story)."""
    return record[_DIGESTS][:_DIGEST]


def _keep_preferred(best: dict, record: tuple, at: int) -> None:
    key = record[_DIGESTS][at:at + _DIGEST]
    held = best.get(key)
    if held is None or record[_PREFERENCE] < held[_PREFERENCE]:
        best[key] = record


class _Winners(beam.CombineFn):
    """Identity records -> (the winners' handles, the copies dropped).

    The accumulator is (the preferred record of each guid key, records
    read). Where the runner lifts the combine (the FnApiRunner and
    Dataflow in batch), each part crosses the shuffle as one element with
    its guid copies already dropped."""

    def create_accumulator(self):
        return ({}, 0)

    def add_input(self, acc, record):
        _keep_preferred(acc[0], record, _FIRST)
        return (acc[0], acc[1] + 1)

    def merge_accumulators(self, accs):
        accs = iter(accs)
        best, total = next(accs, ({}, 0))
        for other, n in accs:
            total += n
            for record in other.values():
                _keep_preferred(best, record, _FIRST)
        return (best, total)

    def extract_output(self, acc):
        best, total = acc
        records = best.values()
        for kind in KEY_KINDS[1:]:
            kept: dict = {}
            for record in records:
                _keep_preferred(kept, record, _KEY_AT[kind])
            records = kept.values()
        winners = {record_handle(record) for record in records}
        return (winners, total - len(winners))


class _CountDroppedFn(beam.DoFn):
    """(None, (winners, dropped)) -> the set of winners; counts the copies."""

    def __init__(self):
        self.duplicates = metrics.counter("duplicates")

    def process(self, keyed):
        winners, dropped = keyed[1]
        if dropped:
            self.duplicates.inc(dropped)
        yield winners


_RECORDS = "records"


class _IdentifyFn(beam.DoFn):
    """Each story's identity record, keyed for the combine, and the story
    as it waits for the winners: with `compact_unmatched`, one without
    topics as its unmatched record."""

    def __init__(self, compact_unmatched: bool):
        self.compact_unmatched = compact_unmatched

    def process(self, story: Story):
        digests = unmatched.key_digests(identity.story_dedup_keys(story))   # both records' keys, computed once
        record = identity_record(story, digests)
        yield beam.pvalue.TaggedOutput(_RECORDS, (None, record))
        if self.compact_unmatched and not story.topics:
            yield unmatched.unmatched_record(story, record_handle(record), digests)
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
        records, items = split[_RECORDS], split.items
        winners = (
            records
            # Per window, as CombineGlobally(...).without_defaults() would; a
            # window without any gets AsSingleton's default_value.
            | "Winners" >> beam.CombinePerKey(_Winners())
            | "Count" >> beam.ParDo(_CountDroppedFn()).with_output_types(set)
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
