"""Repeated text: one match for the copies of a story a tagger sees.

Topics are matched before dedup (see TagTopics), so every copy of a story
is matched: a wire story carried word for word by several feeds, the same
item in two feeds of one site, an item served again on a later poll of a
streaming job. What the matcher finds depends only on a story's title,
summary and content, its site when a rule has `source:`, and its language
when a rule has `language:` (tag_story's inputs; such a rule detects the
language from the same text). So a copy with the same inputs gets the same
answer. RepeatMemo keeps the answers of the stories tagged last, keyed by
exactly those inputs (the strings themselves, compared in full: no digest
can make two texts share an answer), bounded by the characters its keys
hold plus a fixed cost an entry, so the texts it keeps alive stay a few
megabytes whatever the feeds carry.

Pure: one per StoryTagger, which is one per DoFn instance (a worker that
runs bundles on several threads holds one for each).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Hashable, Optional, Tuple

MEMO_CHARS = 4_000_000   # the bound, in characters of the remembered keys, ~4-16 MB of text
ENTRY_CHARS = 200        # counted for each entry besides its text: the key tuple, the answer, the slot


def match_inputs(story, source: bool, language: bool) -> Tuple[str, str, str, Optional[str], Optional[str]]:
    """What tag_story's answer depends on: the story's title, summary and
    content, and its site and language where rules read them (`source`,
    `language`: the matcher's needs_source and needs_language)."""
    return (story.title or "", story.summary or "", story.content or "",
            story.source if source else None, story.language if language else None)


def _chars(key: Tuple) -> int:
    return ENTRY_CHARS + sum(len(part) for part in key if part)


class RepeatMemo:
    """Answers by key, the most recently used kept while their keys' text
    (and ENTRY_CHARS each) fits in `max_chars`; a key larger than that is
    never kept."""

    def __init__(self, max_chars: int = MEMO_CHARS):
        self.max_chars = max_chars
        self.chars = 0
        self.hits = 0
        self._answers: "OrderedDict[Hashable, Tuple[object, int]]" = OrderedDict()   # least recently used first

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Hashable, default=None):
        found = self._answers.get(key)
        if found is None:
            return default
        self._answers.move_to_end(key)
        self.hits += 1
        return found[0]

    def put(self, key: Tuple, answer) -> None:
        size = _chars(key)
        if size > self.max_chars or key in self._answers:
            return
        while self._answers and self.chars + size > self.max_chars:
            self.chars -= self._answers.popitem(last=False)[1][1]
        self._answers[key] = (answer, size)
        self.chars += size
