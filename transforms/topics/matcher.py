"""The matcher: every topic against a story, each field scanned once.

For each story, a field scan (scan/) finds the terms of all topics in each
text field at once; then only the topics whose necessary terms were found
(or that can match without any, such as `NOT sport` or `language:ko`) are
evaluated, their query nodes asking _StoryScan (the `ctx` of query.Node)
which terms a field has, where, and how far apart. Work per story grows with
the story's length and the topics it hits, not with the number of rules.

Nothing here depends on which scan reads a field (scan.FieldScanner picks
it): positions are the scan's own places, turned into offsets in the stored
text only for the matches reported.
"""
from __future__ import annotations

import bisect
import itertools
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from transforms.records import Match
from transforms.topics.query import TEXT_FIELDS, And, AtLeast, Except, Key, Near, Node, Or, Term
from transforms.topics.rules import CompiledTopic, TopicDef, compile_rules, topics_version
from transforms.topics.scan import FieldScan, FieldScanner
from transforms.topics.text import normalize

FIELD_ORDER = {name: i for i, name in enumerate(TEXT_FIELDS + ("source", "language"))}
UNDETERMINED = "und"
_NOTHING: frozenset = frozenset()

Language = Union[None, str, Callable[[], str]]


class _StoryScan:
    """What the query nodes ask about one story (the `ctx` of query.Node):
    the scans of its text fields (None for an empty field), its site and its
    language."""

    def __init__(self, scanner: FieldScanner, fields: Sequence[Optional[str]],
                 source: Optional[str], language: Language):
        self.scans: Dict[str, Optional[FieldScan]] = {
            name: scanner.scan(text) if text else None for name, text in zip(TEXT_FIELDS, fields)
        }
        self.found = {name: (s.found if s is not None else _NOTHING) for name, s in self.scans.items()}
        self.found_any = frozenset().union(*self.found.values())
        self.source = normalize(source).removeprefix("www.") if source else None
        self._language = language
        self._memo: dict = {}

    def language(self) -> str:
        if callable(self._language):
            self._language = self._language() or UNDETERMINED
        return self._language or UNDETERMINED

    def first_offset(self, keys: Sequence[Key], field: str) -> Optional[int]:
        """Offset in the field's own text of the earliest of `keys`."""
        found = self.found[field]
        present = [k for k in keys if k in found]
        if not present:
            return None
        scan = self.scans[field]
        return scan.original_offset(min(scan.first_start(k) for k in present))

    def original_offset(self, field: str, place) -> int:
        """Offset in the field's own text of a place of its scan."""
        return self.scans[field].original_offset(place)

    def _term_occurrences(self, terms: Sequence[Union[Term, Except]], field: str) -> list:
        scan = self.scans[field]
        found = scan.found
        out = []
        for term in terms:
            if type(term) is Except:
                if not found.isdisjoint(term.keys):
                    out.extend(self.surviving(term, field))
            elif field in term.fields:
                for key in term.keys:
                    if key in found:
                        out.extend((start, end, term.text) for start, end in scan.occurrences(key))
        return out

    def surviving(self, node: Except, field: str) -> list:
        """(start, end, term) of the occurrences of `node`'s terms in a field
        that are not part of an occurrence of its longer words, in text
        order. Places of one field scan order like the text, so "part of"
        is start and end inside a longer occurrence's: one sort and a
        bisection each, whichever scan read the field."""
        memo_key = ("except", id(node), field)
        if memo_key in self._memo:
            return self._memo[memo_key]
        scan = self.scans[field]
        kept: list = []
        if scan is not None:
            kept = sorted(self._term_occurrences(node.left_terms, field))
            longer = sorted(occ for term in node.right_terms for key in term.keys
                            if key in scan.found for occ in scan.occurrences(key))
            if kept and longer:
                starts = [start for start, _ in longer]
                # the furthest end of the longer occurrences starting at or before each
                reach = list(itertools.accumulate((end for _, end in longer), max))
                inside = bisect.bisect_right
                kept = [occ for occ in kept
                        if (i := inside(starts, occ[0]) - 1) < 0 or reach[i] < occ[1]]
        self._memo[memo_key] = kept
        return kept

    def near(self, node: Near) -> Optional[list]:
        """Evidence of a pair of occurrences within the distance, or None.

        One sweep in text order: for each occurrence, the closest earlier
        occurrence of the other side that ends before it starts is the only
        candidate worth measuring, so long texts cost O(n log n), not n*m."""
        memo_key = ("near", id(node))
        if memo_key in self._memo:
            return self._memo[memo_key]
        result = None
        for field in TEXT_FIELDS:
            scan = self.scans[field]
            if scan is None:
                continue
            left = self._term_occurrences(node.left_terms, field)
            right = self._term_occurrences(node.right_terms, field) if left else []
            if not right:
                continue
            ends: Tuple[list, list] = ([], [])     # per side: sorted end places
            owners: Tuple[list, list] = ([], [])   # the occurrences they end
            merged = sorted([(occ, 0) for occ in left] + [(occ, 1) for occ in right])
            for occ, side in merged:
                other_ends = ends[1 - side]
                i = bisect.bisect_right(other_ends, occ[0]) - 1
                if i >= 0 and scan.words_between(other_ends[i], occ[0], node.distance) <= node.distance:
                    partner = owners[1 - side][i]
                    a, b = (partner, occ) if side == 1 else (occ, partner)
                    result = [(a[2], field, scan.original_offset(a[0])),
                              (b[2], field, scan.original_offset(b[0]))]
                    break
                at = bisect.bisect_right(ends[side], occ[1])
                ends[side].insert(at, occ[1])
                owners[side].insert(at, occ)
            if result is not None:
                break
        self._memo[memo_key] = result
        return result

    def count(self, terms: Sequence[Term], enough: int) -> int:
        """Occurrences of `terms`, overlapping ones ("North Korea" and
        "Korea") counted once; stops counting at `enough`."""
        total = 0
        for field in TEXT_FIELDS:
            if self.scans[field] is None:
                continue
            end = None
            for start, stop, _ in sorted(self._term_occurrences(terms, field)):
                if end is None or start >= end:
                    total += 1
                    if total >= enough:
                        return total
                end = stop if end is None else max(end, stop)
        return total


def _triggers(node: Node) -> Optional[frozenset]:
    """Keys of which at least one must be found for `node` to be true; None
    when it can be true without any (NOT x, source:, language:)."""
    if isinstance(node, Term):
        return frozenset(node.keys)
    if isinstance(node, (Or, And)):
        sets = [_triggers(c) for c in node.children]
        if isinstance(node, Or):
            return None if any(s is None for s in sets) else frozenset().union(*sets)
        # AND: any one child's keys will do; the smallest set triggers least.
        sets = [s for s in sets if s is not None]
        return min(sets, key=len) if sets else None
    if isinstance(node, Near):
        return min(_triggers(node.left), _triggers(node.right), key=len)
    if isinstance(node, AtLeast):
        return _triggers(node.operand)
    if isinstance(node, Except):  # the longer words alone never make it true
        return _triggers(node.left)
    return None  # Not, SourceIs, LanguageIs


# The scan TopicMatcher uses when it is not given one (scan.ENGINES); the
# tests set it to run every matching test with each scan (tests/conftest.py).
DEFAULT_ENGINE = "auto"


class TopicMatcher:
    """All topics against one story at a time; built once per worker.

    `engine`: "auto" (Hyperscan if installed), "hyperscan" or "python"."""

    def __init__(self, topics: Iterable[TopicDef], engine: Optional[str] = None):
        compiled = compile_rules(topics)
        self.version = topics_version(compiled)
        compiled = sorted(compiled, key=lambda c: c.topic.name)
        self.compiled: List[CompiledTopic] = compiled
        self.topics = [c.topic for c in compiled]
        self._names = [c.topic.name for c in compiled]
        self._nodes: List[Node] = [c.node for c in compiled]
        by_key: Dict[Key, set] = {}
        always = []
        keys = set()
        for i, node in enumerate(self._nodes):
            for term in node.terms():
                keys.update(term.keys)
            triggers = _triggers(node)
            if triggers is None:
                always.append(i)  # evaluated for every story
            else:
                for key in triggers:
                    by_key.setdefault(key, set()).add(i)
        self._by_key = {k: tuple(sorted(v)) for k, v in by_key.items()}
        self._always = tuple(always)
        self.needs_language = any(n.needs_language for n in self._nodes)
        self.needs_source = any(n.needs_source for n in self._nodes)
        self._scanner = FieldScanner(keys, engine or DEFAULT_ENGINE)
        self.engine = self._scanner.engine

    def match(self, title: Optional[str] = "", summary: Optional[str] = "",
              content: Optional[str] = "", *, source: Optional[str] = None,
              language: Language = None) -> List[Tuple[str, List[Match]]]:
        """(topic name, its matches) for each matching topic, by name.

        `language` is the story's language code, or a function returning it
        (called only if a `language:` condition is reached), or None
        ("und"). Matches are sorted by field, offset and term.
        """
        self._scanner.forget_if_full()
        scan = _StoryScan(self._scanner, (title, summary, content), source, language)
        candidates = set(self._always)
        by_key = self._by_key
        for key in scan.found_any:
            topics = by_key.get(key)
            if topics:
                candidates.update(topics)
        result = []
        for i in sorted(candidates):  # indices are in name order
            node = self._nodes[i]
            if node.evaluate(scan):
                name = self._names[i]
                evidence = {Match(name, term, field, offset)
                            for term, field, offset in node.evidence(scan, True)}
                result.append((name, sorted(evidence, key=_match_order)))
        return result


def _match_order(m: Match):
    return FIELD_ORDER[m.field], m.offset, m.term
