"""The field scan on Hyperscan: every term of every topic found in one pass
of compiled automata over each field.

It meets the FieldScan contract of scan/__init__.py and finds exactly what
the pure-Python scan (python_scan.py) finds (the tests run both on real,
generated and adversarial texts and compare every match; the benchmark
refuses to report if they differ). The matcher uses it whenever the
`hyperscan` package imports, and the pure-Python scan otherwise, or for a
field this scan does not read (it raises FieldNotScannable).

- A field in Latin-1 (most Western news, once curly quotes and dashes count
  as the separators they are) is read as bytes: normalised by a byte table,
  every separator a space, runs of spaces collapsed, a space before and
  after. Every term is then a literal, its words between spaces, so a hit is
  a whole-word match with no Python check, in one scan per form (plain, and
  accent-folded by another byte table). Places are offsets in that collapsed
  form, mapped back to the text only for the matches reported.
- Any other field (Korean, Japanese, Cyrillic ...) is scanned as UTF-8:
  one-word terms as literals (unspaced ones match inside words), checked to
  be whole words at their Latin edges, and at the edges of their run of
  unspaced text where a term asks for it (<북>); several-word terms in a
  collapsed copy, checked word by word against the text's own words.

Patterns are literals, for Hyperscan's literal compiler (it takes ~10,000
in well under a second, where phrases as regexes with gaps between their
words take minutes for a few thousand similar ones), except phrases with a
wildcard before their last word, which are few. Several-word terms are looked
for in a "collapsed" copy of the text, its words joined by single spaces, and
mapped back to the text by word number.

Hyperscan refuses a pattern of more than 16,000 bytes, and its compile time
grows with the patterns (regexes most): the rules reach this scan inside
limits.py's limits, checked when they compile: a rule the config check accepted
builds here too.
"""
from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

from transforms.topics.query import Key, piece_core, piece_edges, piece_matches
from transforms.topics.text import (
    TOKEN_RE,
    UNSPACED_RE,
    bmp_classes,
    bmp_word_re,
    char_class,
    fold_accents_uncached,
    has_astral,
    is_unspaced,
    length_changing_re,
    normalize,
    offset_mapper,
    word_re,
)

if TYPE_CHECKING:  # for annotations: scan/__init__.py imports this module
    from transforms.topics.scan import Occurrence

try:
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None

AVAILABLE = hyperscan is not None

# What follows a pattern's last word.
_FREE = 0         # unspaced text: terms match inside words (0: collect tests it as false)
_END_WORD = 1     # a Latin word: the next character must not be a word character
_EXTEND = 2       # a wildcard: the match goes on to the end of the word
_END_RUN = 3      # an unspaced term ending its word (北>): the next character is not unspaced
# What precedes a pattern's first character (_WordPattern.check_start).
_ANY = 0          # unspaced text: anything
_LATIN_START = 1  # a Latin word: the character before must not be a word character
_RUN_START = 2    # an unspaced term starting its word (<北): the character before is not unspaced


@functools.lru_cache(maxsize=1)
def _regexes() -> dict:
    words, unspaced = bmp_classes()
    fold = fold_accents_uncached  # the whole BMP would only flush fold_accents' cache
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
        "unfoldable": re.compile(f"[{char_class(odd)}]") if odd else None,
        "foldable": re.compile(f"[{char_class(sorted(foldable))}]"),
        "fold_table": foldable,
    }


def _latin1_folding() -> bytes:
    """A bytes.translate table folding Latin-1 letters' accents as
    text.fold_accents does; a letter whose folding is not one Latin-1
    letter ("æ" -> "ae") becomes 0xFF, which nothing else does ("ÿ" folds
    to "y")."""
    fold = fold_accents_uncached
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


def _in_run(form: str, i: int) -> bool:
    """Whether character i is of a script written without spaces: the run
    of such characters is one word (text.TOKEN_RE), so an unspaced term
    with word edges may not touch one."""
    return UNSPACED_RE.match(form, i) is not None


# ------------------------------------------------------------------ patterns
# (literals where they can be; see the module docstring)


def _hs_literal(data: bytes) -> str:
    return "".join("\\x%02x" % b for b in data)


# Latin-1 bytes with every byte that is not a letter or digit a space
# (Latin-1 has no combining marks: a word character is what isalnum() says).
_LATIN1_SPACED = bytes(c if chr(c).isalnum() else 0x20 for c in range(256))
# UTF-8 bytes with every ASCII byte that is not a letter or digit a space.
_ASCII_SPACED = bytes(c if c >= 0x80 or chr(c).isalnum() else 0x20 for c in range(256))


# What a hit of a pattern means, one class per kind of pattern. Frozen
# dataclasses with slots rather than NamedTuples: the scans read them once a
# hit, and reading three slots costs a few ns where unpacking a NamedTuple
# costs ~50 (a tuple subclass takes the slow unpacking path).


@dataclass(frozen=True, slots=True)
class _Latin1Pattern:
    """A term in the collapsed Latin-1 form (_Latin1Patterns)."""

    key: Key
    trailing_wild: bool    # the occurrence runs on to the end of its last word
    length: Optional[int]  # the literal's bytes (a literal hit reports its end only); None: a regex


@dataclass(frozen=True, slots=True)
class _WordPattern:
    """A one-word term in UTF-8 text (_Utf8Patterns.singles)."""

    key: Key
    length: int         # characters of the word, less a trailing "*" and word edges
    check_start: int    # what precedes its first character: _ANY, _LATIN_START or _RUN_START
    tail: int           # what follows its last character: _FREE, _END_WORD, _EXTEND or _END_RUN


@dataclass(frozen=True, slots=True)
class _PhrasePattern:
    """A several-word term in the collapsed UTF-8 form (_Utf8Patterns)."""

    key: Key
    length: Optional[int]  # the literal's bytes (a literal hit reports its end only); None: a regex


class _Patterns:
    """One Hyperscan database and, per pattern id, what a hit means."""

    def __init__(self, entries: Sequence[Tuple[bytes, object]], literal: bool):
        self.meta = [meta for _, meta in entries]
        self.db = None
        if entries:
            self.db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            patterns = [p for p, _ in entries]
            if literal:
                self.db.compile(expressions=patterns, ids=list(range(len(patterns))), literal=True)
            else:
                self.db.compile(expressions=patterns, ids=list(range(len(patterns))),
                                flags=hyperscan.HS_FLAG_SOM_LEFTMOST)

    def scan(self, data: bytes) -> List[Tuple[int, int, int]]:
        """(pattern id, start, end) byte offsets of every match; the start
        only from a regex database (literal ones report ends alone)."""
        hits: list = []
        if self.db is not None:
            append = hits.append
            self.db.scan(data, match_event_handler=lambda i, a, b, flags, ctx: append((i, a, b)))
        return hits


def _wild_inside(pieces: Sequence[str]) -> bool:
    """Whether a wildcard stands before the last word (the pattern is then a
    regex, not a literal)."""
    return any(p.endswith("*") for p in pieces[:-1])


def _split_keys(keys: Sequence[Key]):
    """(one-word keys, several-word keys, several-word keys with a wildcard
    before their last word)."""
    singles = [k for k in keys if len(k.pieces) == 1]
    phrases = [k for k in keys if len(k.pieces) > 1 and not _wild_inside(k.pieces)]
    wild = [k for k in keys if len(k.pieces) > 1 and _wild_inside(k.pieces)]
    return singles, phrases, wild


class _Latin1Patterns:
    """The keys that can occur in Latin-1 text (most Western news), for its
    collapsed form: every byte that is not a letter or digit a space, the
    words joined by single spaces, a space before and after. A term is then
    a literal, its words between spaces, and a hit a whole-word match."""

    def __init__(self, keys: Sequence[Key]):
        keys = [k for k in keys if max(max(p) for p in k.pieces) <= "\xff"]
        literals, regexes = [], []
        for key in keys:
            pieces = key.pieces
            trailing_wild = pieces[-1].endswith("*")
            if not _wild_inside(pieces):
                pattern = b" " + b" ".join(p.rstrip("*").encode("latin-1") for p in pieces)
                pattern += b"" if trailing_wild else b" "
                literals.append((pattern, _Latin1Pattern(key, trailing_wild, len(pattern))))
            else:  # a wildcard before the last word: a regex (few)
                words = [_hs_literal(p.rstrip("*").encode("latin-1")) + ("[^ ]*" if p.endswith("*") else "")
                         for p in pieces[:-1]]
                words.append(_hs_literal(pieces[-1].rstrip("*").encode("latin-1")))
                pattern = "\\x20" + "\\x20".join(words) + ("" if trailing_wild else "\\x20")
                regexes.append((pattern.encode(), _Latin1Pattern(key, trailing_wild, None)))
        self.literals = _Patterns(literals, literal=True)
        self.regexes = _Patterns(regexes, literal=False)

    def collect(self, collapsed: bytes, occurrences: dict) -> None:
        """Occurrences as offsets in `collapsed`, from a word's first letter
        to the space after its last."""
        for patterns in (self.literals, self.regexes):
            if patterns.db is None:
                continue
            meta = patterns.meta

            def on_hit(i, a, b, flags, context):
                # Straight into `occurrences`, _add inlined: no list of hits
                # and no call in between (this is the hottest loop of the matcher).
                pattern = meta[i]
                length = pattern.length
                start = (b - length if length is not None else a) + 1  # after the leading space
                end = collapsed.find(b" ", b) if pattern.trailing_wild else b - 1
                key = pattern.key
                found = occurrences.get(key)
                if found is None:
                    occurrences[key] = [(start, end)]
                else:
                    found.append((start, end))

            patterns.db.scan(collapsed, match_event_handler=on_hit)


def _add(occurrences: dict, key: Key, start: int, end: int) -> None:
    """Append the occurrence (start, end) of `key` to `occurrences`."""
    found = occurrences.get(key)
    if found is None:
        occurrences[key] = [(start, end)]
    else:
        found.append((start, end))


class _Utf8Patterns:
    """All keys, for any text as UTF-8 bytes. One-word keys are looked for
    as they are (unspaced terms match inside words), and checked to be
    whole words at their Latin edges; several-word keys in the collapsed
    form, then checked word by word in the text."""

    def __init__(self, keys: Sequence[Key]):
        singles, phrases, wild = _split_keys(keys)
        entries = []
        for key in singles:
            piece = key.pieces[0]
            core = piece_core(piece)
            if is_unspaced(core):
                must_start, must_end = piece_edges(piece)
                start = _RUN_START if must_start else _ANY
                tail = _END_RUN if must_end else _FREE
            else:
                start, tail = _LATIN_START, _EXTEND if piece.endswith("*") else _END_WORD
            entries.append((core.encode("utf-8"), _WordPattern(key, len(core), start, tail)))
        self.singles = _Patterns(entries, literal=True)
        entries = []
        for key in phrases:
            for variant in _spellings(key.pieces):
                entries.append((variant, _PhrasePattern(key, len(variant))))
        self.phrases = _Patterns(entries, literal=True)
        entries = []
        for key in wild:
            pieces = key.pieces
            parts = []
            for i, piece in enumerate(pieces):
                if i:
                    same = is_unspaced(pieces[i - 1]) == is_unspaced(piece)
                    parts.append("\\x20" if same else "\\x20?")
                parts.append(_hs_literal(piece.rstrip("*").encode("utf-8")))
                if piece.endswith("*") and i < len(pieces) - 1:
                    parts.append("[^\\x20]*")
            entries.append(("".join(parts).encode(), _PhrasePattern(key, None)))
        self.wild_phrases = _Patterns(entries, literal=False)

    def collect(self, form: str, occurrences: dict) -> None:
        """Occurrences in `form` (words_form() or folded_form() output)."""
        data = form.encode("utf-8")
        hits = self.singles.scan(data)
        if hits:
            n = len(form)
            to_char = _char_offsets(data, [b for _, _, b in hits]) if len(data) != n else None
            meta = self.singles.meta
            for i, _, b in hits:
                pattern = meta[i]
                if to_char is not None:
                    b = to_char[b]
                a = b - pattern.length
                check = pattern.check_start
                if check and a and (_is_word_char(form, a - 1) if check == _LATIN_START
                                    else _in_run(form, a - 1)):
                    continue
                tail = pattern.tail
                if tail:  # not _FREE (most unspaced terms): one test for them
                    if tail == _END_WORD:
                        if b < n and _is_word_char(form, b):
                            continue
                    elif tail == _EXTEND:
                        b = _word_end(form, b)
                    elif b < n and _in_run(form, b):  # _END_RUN
                        continue
                _add(occurrences, pattern.key, a, b)
        if self.phrases.db is None and self.wild_phrases.db is None:
            return
        collapsed = b" " + b" ".join(data.translate(_ASCII_SPACED).split()) + b" "
        meta = self.phrases.meta
        hits = [(meta[i].key, b - meta[i].length, b) for i, _, b in self.phrases.scan(collapsed)]
        meta = self.wild_phrases.meta
        hits += [(meta[i].key, a, b) for i, a, b in self.wild_phrases.scan(collapsed)]
        if not hits:
            return
        seen = set()
        for key, a, b in hits:
            start = _from_collapsed(collapsed, form, a, False)
            end = _from_collapsed(collapsed, form, b, True)
            if (key, start, end) in seen or not _words_match(form, start, end, key.pieces):
                continue
            seen.add((key, start, end))
            if key.pieces[-1].endswith("*"):
                end = _word_end(form, end)  # a trailing wildcard's word runs on
            _add(occurrences, key, start, end)


def _spellings(pieces: Sequence[str]) -> List[bytes]:
    """A several-word key as literals for the collapsed form: its words
    joined by a space, or, between a Latin and an unspaced word ("DPRK는"),
    by a space or nothing."""
    variants = [b""]
    for i, piece in enumerate(pieces):
        core = piece.rstrip("*").encode("utf-8")
        if i:
            same = is_unspaced(pieces[i - 1]) == is_unspaced(piece)
            joins = [b" "] if same else [b" ", b""]
            variants = [v + j for v in variants for j in joins]
        variants = [v + core for v in variants]
    return variants


# What separates runs of characters in words_form() output (and in its
# collapsed form, where it is a space).
_GAP = "[\\x00-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]"


_BLOCK = 64
# The two kinds of text _skip_words walks: a spaced Latin-1 field (bytes),
# and words_form() output (runs between ASCII separators).
_SPACED_WORDS, _FORM_RUNS = "spaced", "form"


@functools.lru_cache(maxsize=2 * _BLOCK + 2)
def _words_re(separator: str, count: int):
    """A regex over `count` words and the separators after them."""
    if separator == _SPACED_WORDS:
        return re.compile(rb" *(?:[^ ]+ +){%d}" % count)
    return re.compile(f"{_GAP}*(?:[^{_GAP[1:-1]}]+{_GAP}+){{{count}}}")


def _skip_words(text, count: int, separator: str) -> int:
    """Where word number `count` of `text` starts: at C speed, by blocks of
    64 words (listing every word of a long text costs ~170 µs; a regex per
    count would compile without end)."""
    at = 0
    for _ in range(count // _BLOCK):
        at = _words_re(separator, _BLOCK).match(text, at).end()
    return _words_re(separator, count % _BLOCK).match(text, at).end()


def _from_collapsed(collapsed: bytes, form: str, at: int, end: bool) -> int:
    """A start (or an end) in the collapsed UTF-8 form as a character offset
    in `form`: the run of characters it falls in, and the characters before
    it in that run."""
    ref = at - 1 if end else at
    run = collapsed.count(b" ", 0, ref + 1) - 1
    run_start = collapsed.rfind(b" ", 0, ref + 1) + 1
    return _skip_words(form, run, _FORM_RUNS) + len(collapsed[run_start:at].decode("utf-8"))


def _words_match(form: str, start: int, end: int, pieces: Sequence[str]) -> bool:
    """Whether form[start:end] is the key's words, as the pure-Python scan
    has them: whole words at Latin edges, a wildcard's word from its start
    to its end, unspaced words as they are inside longer runs."""
    if start and not is_unspaced(pieces[0]) and _is_word_char(form, start - 1):
        return False
    last = pieces[-1]
    if not is_unspaced(last) and not last.endswith("*") and end < len(form) and _is_word_char(form, end):
        return False
    words = word_re(form).findall(form, start, end)
    if len(words) != len(pieces):
        return False
    return all(piece_matches(piece, word) for word, piece in zip(words, pieces))


def _word_end(form: str, at: int) -> int:
    if form.isascii():
        return _ASCII_WORD_RUN_RE.match(form, at).end()
    return _regexes()["word_run"].match(form, at).end()


_ASCII_WORD_RUN_RE = re.compile("[0-9a-z]*")


def _prepare_text_tables() -> None:
    """Tables built once per process: with the index, not in the first stories."""
    _regexes()
    length_changing_re(False)
    bmp_word_re()
    for count in range(_BLOCK + 1):
        _words_re(_SPACED_WORDS, count)
        _words_re(_FORM_RUNS, count)


def _char_offsets(data: bytes, offsets: Sequence[int]) -> Dict[int, int]:
    """Byte offsets in UTF-8 `data` -> character offsets (one decode in all)."""
    out, chars, at = {}, 0, 0
    for off in sorted(set(offsets)):
        chars += len(data[at:off].decode("utf-8"))
        at = off
        out[off] = chars
    return out


class FieldNotScannable(Exception):
    """A field this scan does not read (characters beyond U+FFFF, or letters
    whose accent folding is not one character): the pure-Python scan does."""


class HyperscanIndex:
    """Every term of every topic in Hyperscan databases: plain and
    accent-folded, for Latin-1 text (most Western news: offsets are bytes,
    folding a byte table) and for any text in UTF-8."""

    def __init__(self, keys: Iterable[Key]):
        if hyperscan is None:
            raise RuntimeError("the hyperscan package is not installed")
        keys = sorted(set(keys))
        plain = [k for k in keys if not k.folded]
        folded = [k for k in keys if k.folded]
        self.latin1 = (_Latin1Patterns(plain), _Latin1Patterns(folded))
        self.utf8 = (_Utf8Patterns(plain), _Utf8Patterns(folded))
        self.folding = bool(folded)
        _prepare_text_tables()

    def field_scan(self, text: str) -> Latin1FieldScan | Utf8FieldScan:
        """The keys found in one field's text; raises FieldNotScannable for
        a field the pure-Python scan must read."""
        norm = normalize(text)
        try:
            data = norm.encode("latin-1")
        except UnicodeEncodeError:  # curly quotes and dashes are separators, not letters
            words = words_form(norm)
            if words is None:
                raise FieldNotScannable from None
            try:
                data = words.encode("latin-1")
            except UnicodeEncodeError:
                return Utf8FieldScan(self, text, norm, words)
        return Latin1FieldScan(self, text, norm, data)


class _ScannedField:
    """What the two field scans of this module keep: the occurrences of the
    keys found, and the way from the normalised field back to the story's
    own text. Places are ints (offsets); what they count is the subclass's."""

    __slots__ = ("text", "norm", "found", "_occurrences", "_to_original")

    def _keep(self, occurrences: Dict[Key, List[Occurrence]]) -> None:
        for found in occurrences.values():
            found.sort()
        self._occurrences = occurrences
        self.found = frozenset(occurrences)
        self._to_original = None

    def occurrences(self, key: Key) -> List[Occurrence]:
        return self._occurrences.get(key) or []

    def first_start(self, key: Key) -> int:
        return self._occurrences[key][0][0]

    def _in_text(self, at: int) -> int:
        """An offset in the normalised field as one in the story's text."""
        if self._to_original is None:
            self._to_original = offset_mapper(self.text, self.norm)
        return self._to_original(at)


class Latin1FieldScan(_ScannedField):
    """The FieldScan of a field in Latin-1. A place is a byte (= character)
    offset in the field's collapsed form (see _Latin1Patterns), mapped back
    to the text only for the matches reported."""

    __slots__ = ("_spaced", "_collapsed")

    def __init__(self, index: HyperscanIndex, text: str, norm: str, data: bytes):
        self.text, self.norm = text, norm
        self._spaced = spaced = b" " + data.translate(_LATIN1_SPACED) + b" "
        self._collapsed = collapsed = b" " + b" ".join(spaced.split()) + b" "
        occurrences: Dict[Key, List[Occurrence]] = {}
        plain, folded_patterns = index.latin1
        plain.collect(collapsed, occurrences)
        if index.folding:
            folded = collapsed if collapsed.isascii() else collapsed.translate(_LATIN1_FOLD)
            if folded.find(b"\xff") >= 0:
                raise FieldNotScannable  # a letter that folds to two ("æ")
            folded_patterns.collect(folded, occurrences)
        self._keep(occurrences)

    def words_between(self, first: int, second: int, limit: int) -> int:
        """Words strictly between a word that ends at `first` and one that
        starts at `second`: one space apart each."""
        return max(self._collapsed.count(b" ", first, second) - 1, 0)

    def original_offset(self, place: int) -> int:
        collapsed = self._collapsed
        word = collapsed.count(b" ", 0, place + 1) - 1
        within = place - (collapsed.rfind(b" ", 0, place + 1) + 1)
        return self._in_text(_skip_words(self._spaced, word, _SPACED_WORDS) + within - 1)  # less the padding


class Utf8FieldScan(_ScannedField):
    """The FieldScan of a field in any other text. A place is a character
    offset in the normalised field (normalize(text))."""

    __slots__ = ()

    def __init__(self, index: HyperscanIndex, text: str, norm: str, words: str):
        self.text, self.norm = text, norm
        occurrences: Dict[Key, List[Occurrence]] = {}
        plain, folded_patterns = index.utf8
        plain.collect(words, occurrences)
        if index.folding:
            folded = folded_form(words)
            if folded is None:
                raise FieldNotScannable
            folded_patterns.collect(folded, occurrences)
        self._keep(occurrences)

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
        return self._in_text(place)


def _same_word(norm: str, i: int, j: int) -> bool:
    """Whether characters i and j (adjacent) of normalised text are in one word."""
    a, b = norm[i], norm[j]
    if a.isascii() and b.isascii():
        return a.isalnum() and b.isalnum()
    return bool(TOKEN_RE.fullmatch(a + b))
