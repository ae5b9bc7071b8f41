"""Unmatched stories after dedup: a story no topic matched, carried as
its identities only.

Topics are matched before dedup (transforms.topics.TagTopics), and most
stories match none. Such a story is still needed after dedup: it may be
the preferred copy of a story whose later copy matched, an earlier run
may remember it (SeenBefore re-records it before the lookback forgets
it), and a streaming job remembers it across polls (DedupAcrossPolls).
None of these reads its text or links, only digests of its identities.
So once dedup has taken its identity record, DedupStories carries it on
as an unmatched record: a plain tuple, which Beam encodes without
pickle, in under half the size of the story cut down by
topics.without_text (test_unmatched.py). Every story of a run waits for
dedup's winners in one buffer, which the stage after dedup holds twice
on the DirectRunner (docs/performance.md).

An unmatched record, in this order:

  handle       dedup.handle_digest: which entry of which fetch it is
  guid         digest of its dedup identity of each kind (identity.DEDUP_KINDS),
  url          or None when it has none of that kind
  text
  given_url    digest of the "url" identity of the link its feed gave, when
               identity.remembered_keys adds one, else None
  story_id
  fetched_at   UTC microseconds (records.utc_micros)

The stages after dedup take a Story or an unmatched record, and ask this
module for what they need of either.
"""
from __future__ import annotations

from datetime import datetime
from typing import Dict, List, Optional, Tuple, Union

from transforms import identity
from transforms.records import Story, from_utc_micros, utc_micros
from transforms.state.store import key_digest

_HANDLE, _STORY_ID, _FETCHED_AT = 0, 5, 6
_KEY_INDEX = {kind: 1 + i for i, kind in enumerate(identity.DEDUP_KINDS)}


def key_digests(dedup_keys: Dict[str, str]) -> Tuple[Optional[bytes], ...]:
    """The digest of each kind's dedup identity (identity.DEDUP_KINDS order),
    or None where `dedup_keys` (kind -> value) has none."""
    return tuple(key_digest(f"{kind}:{dedup_keys[kind]}") if kind in dedup_keys else None
                 for kind in identity.DEDUP_KINDS)


def unmatched_record(story: Story, handle: bytes,
                     digests: Optional[Tuple[Optional[bytes], ...]] = None) -> tuple:
    """The record an unmatched story is carried as; `handle` is its
    dedup.handle_digest, `digests` its key_digests when the caller has them."""
    if digests is None:
        digests = key_digests(identity.story_dedup_keys(story))
    given = identity.given_url(story.canonical_url, story.feed_link)
    return (handle, *digests, key_digest(f"url:{given}") if given else None,
            story.story_id, utc_micros(story.fetched_at))


def is_unmatched(item: Union[Story, tuple]) -> bool:
    return type(item) is tuple


def handle(record: tuple) -> bytes:
    return record[_HANDLE]


def key_of_kind(record: tuple, kind: str) -> Optional[bytes]:
    """The digest of the record's dedup identity of `kind`, or None."""
    return record[_KEY_INDEX[kind]]


def remembered_digests(record: tuple) -> List[bytes]:
    """The digests under which it is remembered: seen.seen_keys of the story."""
    return [key for key in record[1:_STORY_ID] if key is not None]


def story_id(record: tuple) -> str:
    return record[_STORY_ID]


def fetched_at(record: tuple) -> Optional[datetime]:
    return from_utc_micros(record[_FETCHED_AT])
