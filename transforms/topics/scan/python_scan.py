"""The pure-Python field scan: every topic's terms found in a field with
dicts, sets and a few regexes, in one pass over each field.

It meets the FieldScan contract of scan/__init__.py and finds exactly what
the Hyperscan scan (hyperscan_scan.py) finds; the matcher uses it where the
`hyperscan` package does not install, and for the fields that scan does not
read. Work per story grows with the story's length and the topics it hits,
not with the number of rules:

- a field is split at whitespace (C speed) and its distinct chunks
  ("Korea's", "북한은") are looked up in what is known about the chunks
  seen so far: news vocabulary repeats, so most are known already, and one
  set intersection finds the few that contain anything;
- a field's new chunks are read together: one normalisation and one word
  split of them all, then set operations and one prefix regex over their
  words leave the few words to look up in tables built from all topics'
  terms once; only the chunks holding such a word are read one by one;
- Korean, Japanese, Chinese and Thai terms are found with a character trie;
  those with word edges (<북>) are the trie's hits that start or end their
  word (a run of those scripts' characters), settled once per new word;
- a phrase is followed past its first word only when the next word can
  continue it (one dict lookup).

Positions and character offsets are worked out only for what needs them:
phrase starts, NEAR, ATLEAST and reported matches.

A place is (chunk, word, character): the chunk's index in text.split(), the
word's index among the chunk's normalised words, and a character offset in
that word. Places order like the text.
"""
from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from transforms.topics.query import Key, piece_core, piece_edges, piece_matches
from transforms.topics.text import (
    UNSPACED_RE,
    find_words,
    fold_accents,
    is_unspaced,
    normalize,
    offset_mapper,
    word_re,
)

if TYPE_CHECKING:  # for annotations: scan/__init__.py imports this module
    from transforms.topics.scan import Occurrence, Place

_END = ""                 # trie marker (its value: the keys ending there); no character key is empty
_CACHE_LIMIT = 200_000    # distinct chunks remembered per matcher (some tens of MB)
# Words of unspaced scripts, among words joined by newlines.
_UNSPACED_WORD_RE = re.compile(f"^{UNSPACED_RE.pattern}[^\n]*", re.M)


class _Chunk:
    """A whitespace-separated piece of text with something in it for the
    index: words that are terms, that may start a phrase, or unspaced text."""

    __slots__ = ("raw", "singles", "phrases", "unspaced_hits", "unspaced")

    def __init__(self, raw: str, singles, phrases, unspaced_hits, unspaced: bool):
        self.raw = raw
        self.singles: Tuple[Tuple[Key, int], ...] = singles   # (one-word key, word index)
        self.phrases: Tuple[Tuple[int, "_PhraseStarts"], ...] = phrases  # (word index, phrases)
        # (key, word index, start, end) of unspaced one-piece terms inside a word
        self.unspaced_hits: Tuple[Tuple[Key, int, int, int], ...] = unspaced_hits
        self.unspaced = unspaced  # has a word that may start a several-word unspaced term


@functools.lru_cache(maxsize=4096)
def _chunk_offsets(raw: str) -> Tuple[List[int], Callable[[int], int]]:
    """Word starts in normalize(raw), and the map back to offsets in raw."""
    norm = normalize(raw)
    return [m.start() for m in word_re(norm).finditer(norm)], offset_mapper(raw, norm)


def raw_offset(raw: str, word: int, char: int = 0) -> int:
    """Offset in `raw` of character `char` of its word number `word`."""
    starts, to_raw = _chunk_offsets(raw)
    return to_raw(starts[word] + char)


def _trie_pattern(node: dict) -> str:
    """A regex matching exactly the terms under `node`."""
    alternatives = [re.escape(ch) + _trie_pattern(child)
                    for ch, child in sorted(node.items()) if ch != _END]
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    return f"(?:{body})?" if _END in node else body


class _ChunkWords(dict):
    """Chunk -> its words. The words of a chunk without terms are needed
    only now and then (the word after a phrase's first word, words between
    NEAR's sides), so they are worked out when first asked for."""

    def __missing__(self, raw: str) -> Tuple[str, ...]:
        words = self[raw] = tuple(find_words(normalize(raw)))
        return words


class _Trie:
    """Unspaced terms (북한, 北朝鮮, "김정은 위원장") found anywhere in a text."""

    def __init__(self):
        self.root: dict = {}
        self.start_re = None

    def add(self, text: str, key: Key) -> None:
        node = self.root
        for ch in text:
            node = node.setdefault(ch, {})
        # Several keys may share a text: 북, <북> and 북> all end at 북.
        node[_END] = node.get(_END, ()) + (key,)

    def freeze(self) -> "_Trie":
        # The trie as one regex in a lookahead: a C-level scan stops only
        # where a whole term starts (a first character alone would stop at
        # nearly every Hangul syllable), and the walk below lists the terms.
        if self.root:
            self.start_re = re.compile(f"(?={_trie_pattern(self.root)})")
        return self

    def scan(self, text: str) -> Iterable[Tuple[Key, int, int]]:
        n = len(text)
        for m in self.start_re.finditer(text):
            start = m.start()
            node = self.root
            j = start
            while j < n:
                node = node.get(text[j])
                if node is None:
                    break
                j += 1
                for key in node.get(_END, ()):
                    yield key, start, j


class PythonTermIndex:
    """Lookup tables for the keys of all terms of all topics, and what is
    known about the chunks seen so far."""

    def __init__(self, keys: Iterable[Key]):
        # mode (accent-folded?) -> word or prefix -> [one-word keys, phrase keys]
        exact: Dict[bool, Dict[str, list]] = {False: {}, True: {}}
        prefix: Dict[bool, Dict[str, list]] = {False: {}, True: {}}
        # One-piece unspaced terms are found inside a word (cached with its
        # chunk); several pieces ("김정은 위원장") in a field's joined words.
        self.trie_word, self.trie_words = _Trie(), _Trie()
        # key -> (must start its word, must end it), for keys with word edges
        self.edges: Dict[Key, Tuple[bool, bool]] = {}
        # The first pieces of several-word unspaced terms: a field is read
        # for those only if one of its words holds one (an unspaced piece
        # may end a longer word: 배우 김정은 in "여배우 김정은"), or is one
        # (a Latin piece is a whole word: "e 북").
        join_starts, self._join_latin = _Trie(), set()
        for key in keys:
            mode, pieces = key
            if any(is_unspaced(p) for p in pieces):
                if len(pieces) == 1:
                    self.trie_word.add(piece_core(pieces[0]), key)
                    edges = piece_edges(pieces[0])
                    if edges != (False, False):
                        self.edges[key] = edges
                else:  # edges are one-word only (query.edged_term_keys)
                    self.trie_words.add(" ".join(pieces), key)
                    if is_unspaced(pieces[0]):
                        join_starts.add(pieces[0], True)
                    else:
                        self._join_latin.add(pieces[0])
                continue
            first = pieces[0]
            table = prefix[mode] if first.endswith("*") else exact[mode]
            table.setdefault(first.rstrip("*"), [[], []])[0 if len(pieces) == 1 else 1].append(key)
        self.exact = {m: {w: (tuple(a), tuple(b)) for w, (a, b) in t.items()} for m, t in exact.items()}
        self.prefix = {m: {w: (tuple(a), tuple(b)) for w, (a, b) in t.items()} for m, t in prefix.items()}
        self.prefix_lengths = {m: sorted({len(p) for p in self.prefix[m]}) for m in (False, True)}
        self.folding = bool(self.exact[True] or self.prefix[True])
        self.trie_word.freeze()
        self.trie_words.freeze()
        # The lines (words) holding a first piece, among words joined by newlines.
        self._join_start_re = (re.compile(f"^[^\n]*?{_trie_pattern(join_starts.root)}[^\n]*", re.M)
                               if join_starts.root else None)
        # C-speed filters for new words: a superset of the words with
        # something in them, which _lookup then settles one by one.
        self._exact_words = frozenset(self.exact[False]).union(self.exact[True])
        prefixes = _Trie()
        for mode in (False, True):
            for p in self.prefix[mode]:
                prefixes.add(p, True)
        self._prefix_re = (re.compile(f"^{_trie_pattern(prefixes.root)}[^\n]*", re.M)
                           if prefixes.root else None)
        self.seen: set = set()                         # every chunk seen
        self.words = _ChunkWords()                     # chunk -> its words, when asked
        self.chunks: Dict[str, _Chunk] = {}           # the chunks with something in them
        self.interesting: set = set()                  # their keys, for one set intersection
        self.seen_words: set = set()                   # every word seen
        self.join_words: set = set()                   # those that may start a several-word unspaced term
        # what a word holds, for the words with something in them:
        # (one-word keys, phrases that may start, unspaced terms inside it)
        self.word_hits: Dict[str, Tuple[tuple, Optional[_PhraseStarts], tuple]] = {}

    def learn(self, new: Iterable[str]) -> None:
        """Read the chunks of a field not seen before, together: one
        normalisation and one word split for all, set operations at C speed
        for the few words worth a lookup, and a look at the chunks only
        where such a word is."""
        raws = list(new)
        self.seen.update(raws)
        # No character normalises to or across a newline.
        joined = normalize("\n".join(raws))
        present = set(find_words(joined))
        fresh = present - self.seen_words
        if fresh:
            self._learn_words(fresh)
        found = self.word_hits.keys() & present
        starts = self.join_words & present  # a several-word unspaced term may start here
        if not (found or starts):
            return  # most fields: nothing new in them
        lines = joined.split("\n")
        # One regex for every line: word_re(joined) finds what word_re(line) would.
        words_in = word_re(joined).findall
        if starts:  # the field's words will be joined (PythonFieldScan._find_joined)
            for raw, line in zip(raws, lines):
                self.words[raw] = tuple(words_in(line))
        # the chunks holding a found word, by where it occurs in `joined`
        ends = list(map(operator.add, itertools.accumulate(map(len, lines)), itertools.count()))
        todo = set()
        for word in found | starts:
            at = joined.find(word)
            while at >= 0:
                todo.add(bisect.bisect_right(ends, at))
                at = joined.find(word, at + 1)
        word_hits = self.word_hits
        for i in todo:
            raw = raws[i]
            words = self.words[raw] = tuple(words_in(lines[i]))
            unspaced = bool(starts) and not starts.isdisjoint(words)
            singles, phrases, unspaced_hits = [], [], []
            for j, word in enumerate(words):
                hits = word_hits.get(word)
                if hits is not None:
                    singles.extend((key, j) for key in hits[0])
                    if hits[1] is not None:
                        phrases.append((j, hits[1]))
                    unspaced_hits.extend((key, j, a, b) for key, a, b in hits[2])
            if singles or phrases or unspaced_hits or unspaced:
                self.chunks[raw] = _Chunk(raw, tuple(singles), tuple(phrases), tuple(unspaced_hits),
                                          unspaced)
                self.interesting.add(raw)

    def _learn_words(self, fresh: set) -> None:
        self.seen_words.update(fresh)
        joined = "\n".join(fresh)
        check = fresh & self._exact_words
        if self._prefix_re is not None:
            check.update(self._prefix_re.findall(joined))
        if self._join_latin:
            self.join_words.update(fresh & self._join_latin)
        if not joined.isascii():
            unspaced = _UNSPACED_WORD_RE.findall(joined)  # runs of Korean, Japanese, ...
            if self._join_start_re is not None and unspaced:
                self.join_words.update(self._join_start_re.findall("\n".join(unspaced)))
            if self.trie_word.start_re is not None and unspaced:
                # One scan over them all (no term holds a newline).
                text = "\n".join(unspaced)
                ends = list(map(operator.add, itertools.accumulate(map(len, unspaced)), itertools.count()))
                inside: Dict[int, list] = {}
                edges = self.edges
                for key, a, b in self.trie_word.scan(text):
                    i = bisect.bisect_right(ends, a)
                    start = ends[i] - len(unspaced[i])
                    a, b = a - start, b - start
                    if key in edges:  # each of these words is a whole run of its script
                        must_start, must_end = edges[key]
                        if (must_start and a) or (must_end and b != len(unspaced[i])):
                            continue
                    inside.setdefault(i, []).append((key, a, b))
                for i, hits in inside.items():
                    self.word_hits[unspaced[i]] = ((), None, tuple(hits))
            if self.folding:  # their accent-folded forms may be terms
                check.update(w for w in fresh if not w.isascii())
                check.difference_update(unspaced)
        for word in check:
            singles, phrases = self._lookup(word)
            if singles or phrases is not None:
                self.word_hits[word] = (singles, phrases, ())

    def forget_if_full(self) -> None:
        """Bound the memory; called between stories only, since a story's
        scan relies on its chunks staying known."""
        if len(self.seen) >= _CACHE_LIMIT:
            for table in (self.seen, self.words, self.chunks, self.interesting, self.seen_words,
                          self.join_words, self.word_hits):
                table.clear()

    def _lookup(self, word: str) -> Tuple[tuple, Optional[_PhraseStarts]]:
        """(keys of one-word terms, phrases that may start) for a word."""
        singles: tuple = ()
        phrases: tuple = ()
        for mode in ((False, True) if self.folding else (False,)):
            w = fold_accents(word) if mode and not word.isascii() else word
            hit = self.exact[mode].get(w)
            if hit is not None:
                singles, phrases = singles + hit[0], phrases + hit[1]
            table = self.prefix[mode]
            for length in self.prefix_lengths[mode]:
                if length > len(w):
                    break
                hit = table.get(w[:length])
                if hit is not None:
                    singles, phrases = singles + hit[0], phrases + hit[1]
        return singles, (_PhraseStarts(phrases) if phrases else None)


class _PhraseStarts:
    """The phrases that may start at a word, grouped by their second piece:
    the word after rules out nearly all of them with one dict lookup."""

    __slots__ = ("longest", "plain", "folded", "wild")

    def __init__(self, keys: Sequence[Key]):
        self.longest = max(len(pieces) for _, pieces in keys) - 1
        self.plain: Dict[str, list] = {}    # second piece -> keys, unfolded
        self.folded: Dict[str, list] = {}   # second piece -> keys, accent-folded
        wild = []                           # keys whose second piece is a wildcard
        for key in keys:
            folded, pieces = key
            if pieces[1].endswith("*"):
                wild.append(key)
            else:
                (self.folded if folded else self.plain).setdefault(pieces[1], []).append(key)
        self.wild = tuple(wild)

    def may_follow(self, word: str) -> bool:
        """Whether a phrase may go on with `word` (a cheap test first)."""
        return bool(self.wild) or word in self.plain or (
            bool(self.folded) and fold_accents(word) in self.folded)

    def candidates(self, word: str) -> Sequence[Key]:
        """Keys whose second piece may be `word`; the callers sort what they find."""
        found = list(self.wild)
        found.extend(self.plain.get(word, ()))
        if self.folded:
            found.extend(self.folded.get(fold_accents(word), ()))
        return found


class PythonFieldScan:
    """The FieldScan of one field of one story: its chunks and the index
    keys found in it. Places are (chunk, word, character) tuples (see the
    module docstring)."""

    __slots__ = ("index", "text", "raws", "found", "_where", "_singles", "_unspaced",
                 "_phrases", "_joined", "_raw_starts", "_occurrences")

    def __init__(self, index: PythonTermIndex, text: str):
        # Reads the field's chunks not seen before into `index` (learn), so
        # one index serves all fields of all stories.
        self.index = index
        self.text = text
        self.raws = raws = text.split()
        self._raw_starts: Optional[List[int]] = None
        self._occurrences: Dict[Key, List[Occurrence]] = {}
        distinct = set(raws)
        new = distinct.difference(index.seen)  # chunks new to this matcher
        if new:
            index.learn(new)
        singles: Dict[Key, list] = {}
        unspaced: Dict[Key, list] = {}
        phrase_chunks = []
        any_unspaced = False
        hit_raws = distinct & index.interesting  # usually a handful
        for raw in hit_raws:
            chunk = index.chunks[raw]
            for key, j in chunk.singles:
                if key in singles:
                    singles[key].append((raw, j))
                else:
                    singles[key] = [(raw, j)]
            for key, j, a, b in chunk.unspaced_hits:
                unspaced.setdefault(key, []).append((raw, j, a, b))
            if chunk.phrases:
                phrase_chunks.append(chunk)
            any_unspaced = any_unspaced or chunk.unspaced
        self._where: Optional[Dict[str, List[int]]] = None
        self._singles = singles
        self._unspaced = unspaced
        self._phrases: Dict[Key, List[Occurrence]] = {}
        if phrase_chunks:
            self._find_phrases(phrase_chunks)
        self._joined: Dict[Key, List[Occurrence]] = {}
        if any_unspaced:
            self._find_joined()
        if self._phrases or self._unspaced or self._joined:
            self.found = frozenset(singles).union(self._phrases, self._unspaced, self._joined)
        else:
            self.found = frozenset(singles)

    def _positions(self, raw: str) -> List[int]:
        """Indexes of a chunk in self.raws (list.index runs at C speed)."""
        if self._where is None:
            self._where = {}
        found = self._where.get(raw)
        if found is None:
            found, i, raws = [], -1, self.raws
            while True:
                try:
                    i = raws.index(raw, i + 1)
                except ValueError:
                    break
                found.append(i)
            self._where[raw] = found
        return found

    def _first(self, raw: str) -> int:
        """Index of a chunk's first occurrence in self.raws."""
        found = self._where.get(raw) if self._where is not None else None
        return found[0] if found else self.raws.index(raw)

    def _words_after(self, at: int, j: int, count: int) -> List[Tuple[int, int, str]]:
        """The `count` words after word j of chunk `at`: (chunk, word, text)."""
        words_of, raws = self.index.words, self.raws
        words = words_of[raws[at]]
        out = []
        while len(out) < count:
            j += 1
            while j >= len(words):
                at += 1
                if at >= len(raws):
                    return out
                words, j = words_of[raws[at]], 0
            out.append((at, j, words[j]))
        return out

    def _find_phrases(self, chunks: List[_Chunk]) -> None:
        raws, words_of = self.raws, self.index.words
        wanted = {chunk.raw: chunk for chunk in chunks}
        # Where they are, in one pass at C speed (phrases here tend to
        # start with common words, so one list.index pass each costs more).
        for at in itertools.compress(itertools.count(), map(wanted.__contains__, raws)):
            chunk = wanted[raws[at]]
            words = words_of[chunk.raw]
            for j, starts in chunk.phrases:
                if j + 1 < len(words):
                    after = words[j + 1]
                else:  # the first word of the next chunk with words
                    k = at + 1
                    while k < len(raws) and not words_of[raws[k]]:
                        k += 1
                    if k == len(raws):
                        continue
                    after = words_of[raws[k]][0]
                if not starts.may_follow(after):
                    continue  # nearly always
                keys = starts.candidates(after)
                rest = self._words_after(at, j, starts.longest)
                for key in keys:
                    folded, pieces = key
                    n = len(pieces) - 1
                    if len(rest) >= n and all(
                            piece_matches(p, fold_accents(w) if folded else w)
                            for p, (_, _, w) in zip(pieces[1:], rest)):
                        end_at, end_j, end_word = rest[n - 1]
                        self._phrases.setdefault(key, []).append(
                            ((at, j, 0), (end_at, end_j, len(end_word))))

    def _find_joined(self) -> None:
        # Several-word unspaced terms, over the words joined by single spaces:
        # they match across punctuation ("김정은, 위원장은") as phrases do.
        words_of = self.index.words
        places = [(at, j) for at, raw in enumerate(self.raws) for j in range(len(words_of[raw]))]
        words = [words_of[self.raws[at]][j] for at, j in places]
        text = " ".join(words)
        starts = list(itertools.accumulate((len(w) + 1 for w in words), initial=0))
        for key, start, end in self.index.trie_words.scan(text):
            if _bounded(text, start, end):
                first = bisect.bisect_right(starts, start) - 1
                last = bisect.bisect_right(starts, end - 1) - 1
                self._joined.setdefault(key, []).append(
                    ((*places[first], start - starts[first]), (*places[last], end - starts[last])))

    # -- occurrences and offsets

    def occurrences(self, key: Key) -> List[Occurrence]:
        """Worked out when first asked for, from where the chunks holding
        the key stand in the field."""
        occ = self._occurrences.get(key)
        if occ is None:
            if key in self._singles:
                words_of = self.index.words
                occ = sorted(((at, j, 0), (at, j, len(words_of[raw][j])))
                             for raw, j in self._singles[key] for at in self._positions(raw))
            elif key in self._unspaced:
                occ = sorted(((at, j, a), (at, j, b))
                             for raw, j, a, b in self._unspaced[key] for at in self._positions(raw))
            else:
                occ = sorted(self._phrases.get(key) or self._joined.get(key) or ())
            self._occurrences[key] = occ
        return occ

    def first_start(self, key: Key) -> Place:
        """occurrences(key)[0][0]."""
        if key in self._singles:  # the common cases, without listing every occurrence
            return min((self._first(raw), j, 0) for raw, j in self._singles[key])
        if key in self._unspaced:
            return min((self._first(raw), j, a) for raw, j, a, _ in self._unspaced[key])
        return self.occurrences(key)[0][0]

    def words_between(self, first: Place, second: Place, limit: int) -> int:
        """Words strictly between the word of `first` and that of `second`
        (second later); stops counting past `limit`."""
        at1, j1, _ = first
        at2, j2, _ = second
        if at1 == at2:
            return max(j2 - j1 - 1, 0)
        words_of, raws = self.index.words, self.raws
        count = len(words_of[raws[at1]]) - j1 - 1 + j2
        for at in range(at1 + 1, at2):
            if count > limit:
                break
            count += len(words_of[raws[at]])
        return count

    def original_offset(self, place: Place) -> int:
        """Offset of a place in the field's own text."""
        at, j, char = place
        return self._raw_start(at) + raw_offset(self.raws[at], j, char)

    def _raw_start(self, at: int) -> int:
        raws = self.raws
        if self._raw_starts is None:
            if sum(map(len, raws)) + len(raws) - 1 == len(self.text):
                # One separator between chunks, as the parse stage writes text.
                self._raw_starts = []
            else:
                self._raw_starts = [m.start() for m in re.finditer(r"\S+", self.text)]
        if not self._raw_starts:
            return sum(map(len, raws[:at])) + at
        return self._raw_starts[at]


def _bounded(text: str, start: int, end: int) -> bool:
    # Unspaced characters may match inside words; a Latin edge of a mixed
    # term ("G7 정상") must still sit on a word boundary (a space after joining).
    if start > 0 and not is_unspaced(text[start]) and text[start - 1] != " ":
        return False
    if end < len(text) and not is_unspaced(text[end - 1]) and text[end] != " ":
        return False
    return True
