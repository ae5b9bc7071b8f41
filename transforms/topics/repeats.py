"""Repeated text: one match for the copies of a story a worker tags.

Topics are matched before dedup (see TagTopics), so every copy of a story
is matched: the same item served again on the next poll of its feed, a
wire story carried word for word by several feeds. What the matcher finds
depends only on a story's title, summary, content, site and language
(tag_story's inputs; a `language:` rule detects the language from the same
text), so a copy with the same five gets the same answer. RepeatMemo keeps
the answers of the stories tagged last, keyed by exactly those five (the
strings themselves, compared in full: no digest can make two texts share
an answer), and bounded by the characters its keys hold, so the texts it
keeps alive stay a few megabytes whatever the feeds carry.

Pure: one per StoryTagger, which is one per worker.
"""
from __future__ import annotations

from typing import Dict, Hashable, Optional, Tuple

MEMO_CHARS = 4_000_000   # characters of the remembered keys, ~4-16 MB of text


def match_inputs(story) -> Tuple[str, str, str, Optional[str], Optional[str]]:
    """What tag_story's answer depends on: the story's title, summary,
    content, site and language."""
    return (story.title or "", story.summary or "", story.content or "", story.source, story.language)


def _chars(key: Tuple) -> int:
    return sum(len(part) for part in key if part)


class RepeatMemo:
    """Answers by key, the most recently used kept while their keys' text
    fits in `max_chars`; a key larger than that is never kept."""

    def __init__(self, max_chars: int = MEMO_CHARS):
        self.max_chars = max_chars
        self.chars = 0
        self.hits = 0
        self._answers: Dict[Hashable, Tuple[object, int]] = {}   # in order of last use

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Hashable, default=None):
        found = self._answers.pop(key, None)
        if found is None:
            return default
        self._answers[key] = found   # most recently used last
        self.hits += 1
        return found[0]

    def put(self, key: Tuple, answer) -> None:
        size = _chars(key)
        if size > self.max_chars or key in self._answers:
            return
        while self._answers and self.chars + size > self.max_chars:
            oldest = next(iter(self._answers))
            self.chars -= self._answers.pop(oldest)[1]
        self._answers[key] = (answer, size)
        self.chars += size
