"""The matcher's field scan on Hyperscan: every term of every topic found in
one pass of a compiled automaton over each field.

It finds exactly what the pure-Python scan in matcher.py finds (tests run
both on real and generated stories and compare every match); the matcher
uses it whenever the `hyperscan` package imports, and the pure-Python scan
otherwise, or for a field this scan does not read (see Unreadable).

A field is read in one or two forms, each with the offsets of the
normalised text (NFKC, case folding), so no offset needs mapping:

- the words form: non-ASCII separators ("’", "«", "—") become spaces, so
  that a gap between two words is a run of ASCII non-alphanumerics;
- for accent-folding topics, the same with accents folded ("corée" ->
  "coree"), character for character.

Each term is one pattern: its words as literals, with gaps between them;
a wildcard before the last word runs on over word characters. Hyperscan
reports each match's end; the Python per hit is the whole-word check at a
Latin edge, walking back to a phrase's start, and stretching a trailing
wildcard to the end of its word.
"""
from __future__ import annotations

import functools
import itertools
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from transforms.topics.query import Key
from transforms.topics.text import (
    TOKEN_RE,
    UNSPACED_RE,
    _char_class,
    fold_accents,
    has_astral,
    normalize,
    offset_mapper,
    word_re,
)

try:
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None

AVAILABLE = hyperscan is not None

Occurrence = Tuple[int, int]

# What follows a pattern's last word.
_FREE = 0         # unspaced text: terms match inside words
_END_WORD = 1     # a Latin word: the next character must not be a word character
_EXTEND = 2       # a wildcard: the match goes on to the end of the word

_ASCII_GAP = "[\\x00-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]"   # what separates ASCII words


@functools.lru_cache(maxsize=1)
def _classes() -> Tuple[str, str]:
    """(word characters, unspaced characters) of the Basic Multilingual
    Plane as regex class bodies, as text.TOKEN_RE defines them."""
    words, unspaced = [], []
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if UNSPACED_RE.match(ch):
            unspaced.append(ch)
        elif TOKEN_RE.fullmatch(ch):
            words.append(ch)
    return _char_class(words), _char_class(unspaced)


@functools.lru_cache(maxsize=1)
def _regexes() -> dict:
    words, unspaced = _classes()
    fold = fold_accents.__wrapped__  # the whole BMP would only flush its cache
    word_one = re.compile(f"[{words}]")
    foldable, odd = {}, []
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        if 0xD800 <= cp < 0xE000 or not word_one.match(ch):
            continue
        folded = fold(ch)
        if len(folded) != 1:
            odd.append(ch)
        elif folded != ch:
            foldable[ch] = folded
    return {
        "word": re.compile(f"[{words}]"),
        "word_run": re.compile(f"[{words}]*"),
        # non-ASCII characters that separate words
        "separator": re.compile(f"[^\\x00-\\x7f{words}{unspaced}]"),
        # a character whose accent folding is not one character: a lone
        # combining accent folds to nothing, "æ" to "ae"
        "unfoldable": re.compile(f"[{_char_class(odd)}]") if odd else None,
        "foldable": re.compile(f"[{_char_class(sorted(foldable))}]"),
        "fold_table": foldable,
    }


def _latin1_folding() -> bytes:
    """A bytes.translate table folding Latin-1 letters' accents as
    text.fold_accents does; a letter whose folding is not one Latin-1
    letter ("æ" -> "ae") becomes 0xFF, which nothing else does ("ÿ" folds
    to "y")."""
    fold = fold_accents.__wrapped__
    table = bytearray(range(256))
    for c in range(0x80, 0x100):
        folded = fold(chr(c))
        if folded != chr(c):
            table[c] = ord(folded) if len(folded) == 1 and folded < "\xff" else 0xFF
    return bytes(table)


_LATIN1_FOLD = _latin1_folding()


def words_form(norm: str) -> Optional[str]:
    """`norm` with its non-ASCII separators as spaces, one for one; None if
    it has characters beyond U+FFFF, which the classes here do not cover."""
    if norm.isascii():
        return norm
    if has_astral(norm):
        return None
    separator = _regexes()["separator"]
    return separator.sub(" ", norm) if separator.search(norm) else norm


def folded_form(words: str) -> Optional[str]:
    """words_form() output with each word's accents folded as
    text.fold_accents folds it, one character for one; None where folding
    would change the length."""
    if words.isascii():
        return words
    rx = _regexes()
    if rx["unfoldable"] is not None and rx["unfoldable"].search(words):
        return None
    if not rx["foldable"].search(words):
        return words
    table = rx["fold_table"]
    return rx["foldable"].sub(lambda m: table[m.group()], words)


def _is_word_char(form: str, i: int) -> bool:
    ch = form[i]
    if ch.isascii():
        return ch.isalnum()
    return _regexes()["word"].match(ch) is not None


# ------------------------------------------------------------------ patterns


def _utf8_bytes(piece: str) -> str:
    # Byte by byte: Hyperscan compiles byte literals ~20x faster than the
    # same text in its UTF-8 mode, and a literal that starts with a whole
    # character can only match at a character's start.
    return "".join("\\x%02x" % b for b in piece.encode("utf-8"))


def _is_unspaced(piece: str) -> bool:
    return UNSPACED_RE.search(piece) is not None


def key_pattern(pieces: Sequence[str]) -> str:
    """A key's words as UTF-8 byte literals; between two Latin or two
    unspaced words a gap of one or more separators, between a Latin and an
    unspaced word ("DPRK는") of none or more. A wildcard before the last
    word runs over anything but ASCII separators: _phrase_start checks
    that what it ran over is one word."""
    parts = []
    for i, piece in enumerate(pieces):
        core = piece.rstrip("*")
        if i:
            same = _is_unspaced(pieces[i - 1]) == _is_unspaced(core)
            parts.append(f"{_ASCII_GAP}+" if same else f"{_ASCII_GAP}*")
        parts.append(_utf8_bytes(core))
        if piece.endswith("*") and i < len(pieces) - 1:
            parts.append(f"[^{_ASCII_GAP[1:-1]}]*")
    return "".join(parts)


class _Database:
    """Compiled patterns for any text (in UTF-8) and, per pattern id, what a
    hit is checked with: (key, words without wildcards, wildcard flags, must
    the start begin a word, what follows the end)."""

    def __init__(self, keys: Sequence[Key]):
        self.meta = []
        patterns = []
        for key in keys:
            pieces = key[1]
            last = pieces[-1]
            tail = _EXTEND if last.endswith("*") else _FREE if _is_unspaced(last) else _END_WORD
            self.meta.append((key, tuple(p.rstrip("*") for p in pieces),
                              tuple(p.endswith("*") for p in pieces),
                              not _is_unspaced(pieces[0]), tail))
            patterns.append(key_pattern(pieces).encode("ascii"))
        self.db = _compile(patterns, 0) if patterns else None

    def scan(self, form: str) -> List[Tuple[int, int]]:
        """(pattern id, end) of every match in `form`, the end as a character offset."""
        if self.db is None:
            return []
        hits: list = []
        append = hits.append
        data = form.encode("utf-8")
        self.db.scan(data, match_event_handler=lambda i, a, b, flags, ctx: append((i, b)))
        if hits and len(data) != len(form):
            to_char = _char_offsets(data, [b for _, b in hits])
            hits = [(i, to_char[b]) for i, b in hits]
        return hits


class _Latin1Database:
    """Compiled patterns for Latin-1 text (most Western news) read as bytes
    in which every byte that is not a letter or digit is a space, with a
    space before and after: a term is its words each between spaces, so a
    hit is a whole-word match already, and offsets are characters. Per
    pattern id: (key, words without wildcards, wildcard flags, whether the
    last word is a wildcard)."""

    def __init__(self, keys: Sequence[Key]):
        self.meta = []
        patterns = []
        for key in keys:
            pieces = key[1]
            if max(max(p) for p in pieces) > "\xff":
                continue  # cannot occur in Latin-1 text (nor can unspaced scripts)
            cores = tuple(p.rstrip("*") for p in pieces)
            wild = tuple(p.endswith("*") for p in pieces)
            words = ["".join("\\x{%x}" % ord(ch) for ch in core) + ("[^ ]*" if is_wild else "")
                     for core, is_wild in zip(cores[:-1], wild[:-1])]
            words.append("".join("\\x{%x}" % ord(ch) for ch in cores[-1]))
            # A trailing wildcard's hit ends with its prefix; the word runs on.
            pattern = " " + " +".join(words) + ("" if wild[-1] else " ")
            self.meta.append((key, cores, wild))
            patterns.append(pattern.encode("ascii"))
        self.db = _compile(patterns, 0) if patterns else None


def _compile(patterns: List[bytes], flags: int):
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=patterns, ids=list(range(len(patterns))), flags=flags)
    return db


def _char_offsets(data: bytes, offsets: Sequence[int]) -> Dict[int, int]:
    """Byte offsets in UTF-8 `data` -> character offsets (one decode in all)."""
    out, chars, at = {}, 0, 0
    for off in sorted(set(offsets)):
        chars += len(data[at:off].decode("utf-8"))
        at = off
        out[off] = chars
    return out


class HyperscanIndex:
    """Every term of every topic in Hyperscan databases: plain and
    accent-folded, for Latin-1 text (most Western news: offsets are bytes,
    folding a byte table) and for any text in UTF-8."""

    def __init__(self, keys: Iterable[Key]):
        if hyperscan is None:
            raise RuntimeError("the hyperscan package is not installed")
        keys = sorted(set(keys))
        plain = [k for k in keys if not k[0]]
        folded = [k for k in keys if k[0]]
        self.latin1 = (_Latin1Database(plain), _Latin1Database(folded))
        self.utf8 = (_Database(plain), _Database(folded))
        self.folding = bool(folded)
        _regexes()  # built now, not in the first story

    def field_scan(self, text: str) -> "HyperscanFieldScan":
        return HyperscanFieldScan(self, text)


class HyperscanFieldScan:
    """One field of one story, as matcher._StoryScan asks about it. A place
    is a character offset in the normalised field."""

    __slots__ = ("text", "norm", "found", "_occurrences", "_to_original")

    def __init__(self, index: HyperscanIndex, text: str):
        self.text = text
        self.norm = norm = normalize(text)
        occurrences: Dict[Key, List[Occurrence]] = {}
        words = None
        try:
            data = norm.encode("latin-1")
        except UnicodeEncodeError:  # curly quotes and dashes are separators, not letters
            words = words_form(norm)
            if words is None:
                raise Unreadable from None
            try:
                data = words.encode("latin-1")
            except UnicodeEncodeError:
                data = None
        if data is not None:
            spaced = b" " + data.translate(_LATIN1_SPACED) + b" "
            plain_db, folded_db = index.latin1
            _collect_spaced(plain_db, spaced, occurrences)
            if index.folding:
                folded = spaced if spaced.isascii() else spaced.translate(_LATIN1_FOLD)
                if folded.find(b"\xff") >= 0:
                    raise Unreadable  # a letter that folds to two ("æ")
                _collect_spaced(folded_db, folded, occurrences)
        else:
            plain_db, folded_db = index.utf8
            _collect(plain_db, words, occurrences)
            if index.folding:
                folded = folded_form(words)
                if folded is None:
                    raise Unreadable
                _collect(folded_db, folded, occurrences)
        for found in occurrences.values():
            found.sort()
        self._occurrences = occurrences
        self.found = frozenset(occurrences)
        self._to_original = None

    def occurrences(self, key: Key) -> List[Occurrence]:
        return self._occurrences.get(key) or []

    def first_start(self, key: Key) -> int:
        return self._occurrences[key][0][0]

    def words_between(self, first: int, second: int, limit: int) -> int:
        """Words strictly between the word where `first` (an end) falls and
        the word where `second` (a start) falls."""
        if second <= first:
            return 0
        norm = self.norm
        # Enough words to tell "more than limit" is all a caller needs.
        words = word_re(norm).finditer(norm, first, second)
        count = sum(1 for _ in itertools.islice(words, limit + 3))
        if first > 0 and _same_word(norm, first - 1, first):
            count -= 1  # the rest of the word `first` ends in
        if second < len(norm) and _same_word(norm, second - 1, second):
            count -= 1  # the start of the word `second` begins in
        return max(count, 0)

    def original_offset(self, place: int) -> int:
        if self._to_original is None:
            self._to_original = offset_mapper(self.text, self.norm)
        return self._to_original(place)


def _collect(db: _Database, form: str, occurrences: dict) -> None:
    n = len(form)
    meta = db.meta
    for i, b in db.scan(form):
        key, cores, wild, check_start, tail = meta[i]
        a = b - len(cores[-1])
        if len(cores) > 1:
            a = _phrase_start(form, a, cores, wild)
            if a < 0:
                continue
        if check_start and a and _is_word_char(form, a - 1):
            continue
        if tail == _END_WORD:
            if b < n and _is_word_char(form, b):
                continue
        elif tail == _EXTEND:
            b = _regexes()["word_run"].match(form, b).end() if not form.isascii() else _ascii_word_end(form, b)
        found = occurrences.get(key)
        if found is None:
            occurrences[key] = [(a, b)]
        else:
            found.append((a, b))


def _collect_spaced(db: _Latin1Database, spaced: bytes, occurrences: dict) -> None:
    """The occurrences of `db`'s keys in `spaced` (Latin-1, every separator
    a space, one space added before and after)."""
    if db.db is None:
        return
    hits: list = []
    append = hits.append
    db.db.scan(spaced, match_event_handler=lambda i, a, b, flags, ctx: append((i, b)))
    meta = db.meta
    for i, b in hits:
        key, cores, wild = meta[i]
        if wild[-1]:
            end = spaced.find(b" ", b)  # the padding space ends every word
            a = b - len(cores[-1])
        else:
            end = b - 1                 # before the space that closes the word
            a = end - len(cores[-1])
        if len(cores) > 1:              # back over each gap and word to the first word
            for core, is_wild in zip(cores[-2::-1], wild[-2::-1]):
                while spaced[a - 1] == 0x20:
                    a -= 1
                a = spaced.rfind(b" ", 0, a) + 1 if is_wild else a - len(core)
        found = occurrences.get(key)
        if found is None:
            occurrences[key] = [(a - 1, end - 1)]  # less the padding space
        else:
            found.append((a - 1, end - 1))


# Latin-1 bytes with every byte that is not a letter or digit a space
# (Latin-1 has no combining marks: a word character is what isalnum() says).
_LATIN1_SPACED = bytes(c if chr(c).isalnum() else 0x20 for c in range(256))

_ASCII_WORD_RUN_RE = re.compile("[0-9a-z]*")


def _ascii_word_end(form: str, at: int) -> int:
    return _ASCII_WORD_RUN_RE.match(form, at).end()


def _phrase_start(form: str, at: int, cores: Sequence[str], wild: Sequence[bool]) -> int:
    """From the start of a match's last word back to its first word's start:
    over each gap, then over the word (a wildcard's word to its start)."""
    for core, is_wild in zip(cores[-2::-1], wild[-2::-1]):
        while at > 0 and form[at - 1].isascii() and not form[at - 1].isalnum():
            at -= 1
        if is_wild:
            while at > 0 and _is_word_char(form, at - 1):
                at -= 1
            if not form.startswith(core, at):
                return -1  # the wildcard's prefix was inside its word
        else:
            at -= len(core)
    return at


def _same_word(norm: str, i: int, j: int) -> bool:
    """Whether characters i and j (adjacent) of normalised text are in one word."""
    a, b = norm[i], norm[j]
    if a.isascii() and b.isascii():
        return a.isalnum() and b.isalnum()
    return bool(TOKEN_RE.fullmatch(a + b))


class Unreadable(Exception):
    """A field this scan does not read (characters beyond U+FFFF, or letters
    whose accent folding is not one character): the pure-Python scan does."""
