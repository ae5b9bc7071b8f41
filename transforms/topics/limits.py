"""The size limits of topic rules: one set, whichever scan reads them.

Each scan has limits of its own, and they differ. Hyperscan refuses a
pattern longer than 16,000 bytes ("Pattern length exceeds limit"; a
phrase with a wildcard before its last word is a regex, ~4 pattern
characters per byte), its compile time grows with the number of patterns,
and faster than that with phrases that have a wildcard inside (~1,000 take
about half a minute here). The pure-Python scan turns terms into regexes
built from tries: recursion bounds those (a Korean term of ~1,000
characters, or ~450 terms each a prefix of the next, end in
RecursionError). Rules that fit inside one scan could fail in the other, at
run time, in every worker.

So newswatch has its own limits, well inside both, and checks them when the
rules compile (rules.compile_rules, at config time): what one accepts the
other accepts. They are documented in docs/query-language.md (Limits).

A literal is one form of a term the scans look for: one per spelling
(query.term_keys: "Kim Jong-un" has two, accent-folding topics fold them),
doubled at each place where a phrase goes from Korean, Japanese, Chinese or
Thai words to others or back, which text may write with or without a space
("DPRK는", "DPRK 는"). The guards of issue 18 add no literals of their own:
a word with edges (`<북>`) is one literal, its `<` and `>` counted in its
length as written, and the longer words after EXCEPT are terms like any
other, counted in the totals. Pure functions; the callers turn
LimitExceeded into their own errors, with a position or a topic name.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple

from transforms.topics.text import is_unspaced

MAX_TERM_CHARS = 200         # a word or phrase, as written and once normalised
MAX_TERM_LITERALS = 64       # literals of one term
MAX_TOPIC_LITERALS = 50_000  # distinct literals of one topic, references expanded
MAX_LITERALS = 100_000       # distinct literals of all topics together
MAX_WILDCARD_PHRASES = 300   # distinct phrases with a wildcard before their last word, all topics


class LimitExceeded(ValueError):
    """A rule over one of the limits; str() says which and by how much.
    `topic` names the topic for the limits check_topics checks."""

    def __init__(self, message: str, topic: Optional[str] = None):
        super().__init__(message)
        self.topic = topic


def written_length(text: str) -> int:
    """Characters of a word or phrase as written, a run of whitespace
    counted as one (a phrase wrapped over lines in YAML is the same phrase)."""
    return len(" ".join(text.split()))


def check_written(text: str) -> None:
    """Raise LimitExceeded for a word or phrase longer than MAX_TERM_CHARS."""
    if len(text) <= MAX_TERM_CHARS:  # most words: no need to look at spaces
        return
    length = written_length(text)
    if length > MAX_TERM_CHARS:
        raise LimitExceeded(f"a word or phrase may have at most {MAX_TERM_CHARS} characters; "
                            f"this one has {length:,}")


def spelling_length(pieces: Sequence[str]) -> int:
    """Characters of one spelling of a term: its normalised words joined by
    single spaces, a trailing "*" included."""
    return sum(len(p) for p in pieces) + len(pieces) - 1


def script_switches(pieces: Sequence[str]) -> int:
    """Places where a phrase goes from an unspaced script (Korean, Japanese,
    Chinese, Thai ...) to another or back."""
    return sum(1 for a, b in zip(pieces, pieces[1:]) if is_unspaced(a) != is_unspaced(b))


def literal_count(pieces: Sequence[str]) -> int:
    """Literals of one spelling: 2 for each script switch, multiplied."""
    return 1 if len(pieces) == 1 else 2 ** script_switches(pieces)


def is_wildcard_phrase(pieces: Sequence[str]) -> bool:
    """Whether a spelling has a wildcard before its last word (a regex for
    Hyperscan, where every other term is a literal)."""
    return any(p.endswith("*") for p in pieces[:-1])


def check_term(spellings: Sequence[Sequence[str]]) -> None:
    """Raise LimitExceeded for a term whose spellings (normalised word
    tuples) are too long or expand to too many literals."""
    longest = max(spelling_length(p) for p in spellings)
    if longest > MAX_TERM_CHARS:
        raise LimitExceeded(f"a word or phrase may have at most {MAX_TERM_CHARS} characters once "
                            f"normalised; this one has {longest:,}")
    literals = sum(literal_count(p) for p in spellings)
    if literals > MAX_TERM_LITERALS:
        raise LimitExceeded(
            f"a word or phrase may expand to at most {MAX_TERM_LITERALS} literals; this one expands "
            f"to {literals:,} (its spellings, doubled wherever Korean, Japanese, Chinese or Thai "
            "words meet others)")


def check_topics(topics: Iterable[Tuple[str, Iterable[Tuple[bool, Sequence[str]]]]]) -> None:
    """Raise LimitExceeded for the first topic (in the order given) that
    goes over a per-topic limit, or with which all topics together go over
    a total. `topics`: (name, the keys of its terms, references expanded);
    a key is (folded, pieces), as query.Key."""
    counted: dict = {}  # every key of the topics so far -> its literals
    total = wildcards = 0
    for name, keys in topics:
        own = 0
        for key in set(keys):
            count = counted.get(key)
            if count is None:
                count = counted[key] = literal_count(key[1])
                total += count
                wildcards += is_wildcard_phrase(key[1])
            own += count
        if own > MAX_TOPIC_LITERALS:
            raise LimitExceeded(f"its terms expand to {own:,} literals; the limit for one topic "
                                f"is {MAX_TOPIC_LITERALS:,}", name)
        if total > MAX_LITERALS:
            raise LimitExceeded(f"with this topic the rules expand to {total:,} literals; the "
                                f"limit for all topics together is {MAX_LITERALS:,}", name)
        if wildcards > MAX_WILDCARD_PHRASES:
            raise LimitExceeded(f"with this topic the rules have {wildcards:,} phrases with a "
                                f"wildcard before their last word; the limit for all topics "
                                f"together is {MAX_WILDCARD_PHRASES:,}", name)
