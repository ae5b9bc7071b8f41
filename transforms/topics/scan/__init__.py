"""Field scans: what the matcher asks about one field of one story, and the
two scans that answer it.

A field scan finds, in one field's text, the index keys (query.Key: a term's
spelling) of all topics at once, then answers the matcher's questions about
them: which keys are in the field, where, how many words lie between two
places, and where a place is in the text as stored. The matcher asks them
while it evaluates topics (matcher._StoryScan, the `ctx` of the query nodes).
FieldScan below is that contract. Two scans meet it, and they find exactly
the same matches (topic, term, field, offset):

- python_scan.PythonFieldScan: pure Python, reads any field;
- hyperscan_scan.Latin1FieldScan and Utf8FieldScan: on the `hyperscan`
  package, ~2.5x faster, for the fields they read (HyperscanIndex.field_scan
  raises FieldNotScannable for the others).

FieldScanner, which picks the scan for each field, lives here too rather than
in matcher.py: which scan reads a field depends on the scans alone (what is
installed, which fields the Hyperscan scan declines), so the matcher holds no
code of either scan and evaluates topics the same whichever answers. The two
scan modules import nothing from this one at run time (Place and Occurrence
serve their annotations only), so importing them here makes no cycle.
"""
from __future__ import annotations

from typing import Collection, FrozenSet, List, Optional, Protocol, Tuple, Union, runtime_checkable

from transforms.topics.query import Key
from transforms.topics.scan import hyperscan_scan
from transforms.topics.scan.python_scan import PythonFieldScan, PythonTermIndex

# A place in a field, in the units of the scan that found it: only places
# from one scan of one field are compared, passed back or ordered (places
# order like the text), and only original_offset() turns one into an offset
# in the text. The pure-Python scan's places are (chunk, word, character)
# tuples; the Hyperscan scans' are ints (offsets in a form of the
# normalised field).
Place = Union[int, Tuple[int, int, int]]
# An occurrence of a key: (start, end) places; `end` is just past its last
# character, so an occurrence that starts at or after another's end does
# not overlap it.
Occurrence = Tuple[Place, Place]


@runtime_checkable
class FieldScan(Protocol):
    """The keys found in one field of one story, and what the matcher asks
    about them. All the matcher and the query nodes use of a field scan."""

    found: FrozenSet[Key]
    """The keys with at least one occurrence in the field."""

    def occurrences(self, key: Key) -> List[Occurrence]:
        """Every occurrence of `key` in the field as (start, end) places,
        sorted (by start); [] for a key not found. Overlapping occurrences
        of different keys ("North Korea", "Korea") are all listed."""
        ...

    def first_start(self, key: Key) -> Place:
        """The start of the first occurrence of `key`, a key in `found`:
        occurrences(key)[0][0], often without listing them."""
        ...

    def words_between(self, first: Place, second: Place, limit: int) -> int:
        """How many words lie strictly between the word `first` ends in (an
        occurrence's end) and the word `second` starts in (a later
        occurrence's start, not before `first`); 0 when they are in one word
        or adjacent words. Exact up to `limit`; beyond it, any number above
        `limit` (a scan may stop counting)."""
        ...

    def original_offset(self, place: Place) -> int:
        """The character offset in the field's own text (as stored, before
        normalisation) of the character at `place`, an occurrence's start:
        what `matches` reports."""
        ...


ENGINES = ("auto", "hyperscan", "python")


class FieldScanner:
    """Reads each field with the Hyperscan scan when it is installed and the
    engine allows it, else (or for a field that scan declines:
    hyperscan_scan.FieldNotScannable) with the pure-Python scan; both find
    the same matches. One per matcher, for the keys of all its topics.

    `engine`: "auto" (Hyperscan if installed), "hyperscan" or "python"."""

    def __init__(self, keys: Collection[Key], engine: str):
        if engine not in ENGINES:
            raise ValueError(f"unknown matcher engine {engine!r} (one of {', '.join(ENGINES)})")
        if engine == "hyperscan" and not hyperscan_scan.AVAILABLE:
            raise RuntimeError("matcher engine 'hyperscan' asked for, but the hyperscan package "
                               "does not import")
        self.keys = keys
        use_hyperscan = engine == "hyperscan" or (engine == "auto" and hyperscan_scan.AVAILABLE)
        self.hyperscan = hyperscan_scan.HyperscanIndex(keys) if use_hyperscan else None
        self.engine = "hyperscan" if use_hyperscan else "python"
        self._python: Optional[PythonTermIndex] = None

    @property
    def python(self) -> PythonTermIndex:
        """The pure-Python index, built when a field first needs it."""
        if self._python is None:
            self._python = PythonTermIndex(self.keys)
        return self._python

    def scan(self, text: str) -> FieldScan:
        """The keys found in a field's text."""
        if self.hyperscan is not None:
            try:
                return self.hyperscan.field_scan(text)
            except hyperscan_scan.FieldNotScannable:
                pass
        return PythonFieldScan(self.python, text)

    def forget_if_full(self) -> None:
        """Bound the pure-Python index's memory; between stories only."""
        if self._python is not None:
            self._python.forget_if_full()
