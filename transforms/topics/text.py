"""Text normalisation shared by queries and stories.

Both sides go through the same steps, so a query term and the story text meet
in one form: Unicode NFKC (full-width ＤＰＲＫ -> dprk, ligatures split), case
folding (Straße -> strasse), then word tokens. Accent folding (Corée -> coree)
is optional per topic and applied token by token, so folded and unfolded
token lists stay aligned. Offsets found in the normalised text are mapped back
to the story's own text for the `matches` column.

Both field scans (scan/python_scan.py, scan/hyperscan_scan.py) split and map
text with what is here, so that they find the same words at the same
offsets: word_re/find_words, offset_mapper, and the tables the Hyperscan scan
builds its own from (bmp_classes, char_class, length_changing_re,
fold_accents_uncached).
"""
from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from typing import Callable, Iterable, List, Optional, Tuple

# Scripts written without spaces between words: Hangul (particles attach to
# nouns: 북한의, 북한은), kana and Han, Thai, Lao, Khmer, Myanmar. Terms in
# them match inside longer runs of text instead of as whole words.
_UNSPACED_RANGES = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"  # Hangul
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\U00020000-\U0003ffff"  # Han extensions B and later
)
UNSPACED_RE = re.compile(f"[{_UNSPACED_RANGES}]")


def char_class(chars: Iterable[str]) -> str:
    """The characters (in code point order) as the body of a regex class,
    runs of consecutive code points written as ranges: "abcx" -> "a-cx"."""
    ranges: list = []
    for ch in chars:
        cp = ord(ch)
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)


def _mark_ranges() -> str:
    """Combining marks (Unicode category M) outside the unspaced scripts, as
    a regex class body. Python's \\w leaves them out, which would cut Hindi
    or Bengali words at every vowel sign."""
    return char_class(chr(cp) for cp in range(0x300, 0x30000)
                      if unicodedata.category(chr(cp))[0] == "M" and not UNSPACED_RE.match(chr(cp)))


# A word is a run of letters, digits and combining marks (no "_"), so
# hyphens, apostrophes and underscores separate words. Unspaced scripts form
# runs of their own, so "DPRK는" gives "dprk" and "는".
TOKEN_RE = re.compile(f"(?:[^\\W_{_UNSPACED_RANGES}]|[{_mark_ranges()}])+|[{_UNSPACED_RANGES}]+")

# Joiners inside a written word: "Jong-un", "People's". A query word with
# them also matches the joined spelling ("Jongun", "Peoples").
JOINERS = "-\u2010\u2011\u2012\u2013\u2014\u2212'\u2018\u2019\u02bc"


def _full_normalize(text: str) -> str:
    """normalize() the long way, for any text (and for one character)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _latin1_tables():
    """For text in Latin-1 (most Western news): a bytes.translate table that
    normalises it character for character, and the bytes whose
    normalisation is not one Latin-1 character (ß -> ss, ½ -> 1⁄2, µ -> μ,
    ¨ -> space and a combining mark), which the table cannot handle.
    Latin-1 has no combining marks, so nothing composes across characters."""
    table = bytearray(range(256))
    odd = bytearray()
    for c in range(0x80, 0x100):
        folded = _full_normalize(chr(c))
        if len(folded) == 1 and folded <= "\xff":
            table[c] = ord(folded)
        else:
            odd.append(c)
    for c in range(0x41, 0x5B):
        table[c] = c + 0x20
    return bytes(table), bytes(b for b in range(256) if b not in odd)


_LATIN1_NORMALIZE, _LATIN1_SIMPLE = _latin1_tables()


def latin1_simple(text: str) -> Optional[bytes]:
    """`text` in Latin-1 if normalisation maps each of its characters to one
    Latin-1 character (offsets do not move), else None."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return None if data.translate(None, _LATIN1_SIMPLE) else data


def normalize(text: str) -> str:
    """NFKC, case folding, NFKC again (case folding can un-normalise)."""
    if text.isascii():
        return text.lower()
    data = latin1_simple(text)
    if data is not None:  # the same, by a byte table: ~25x faster
        return data.translate(_LATIN1_NORMALIZE).decode("latin-1")
    return _full_normalize(text)


def tokenize(text: str) -> List[str]:
    """Normalised word tokens of `text`; queries and stories share this."""
    return find_words(normalize(text))


_ASCII_WORD_RE = re.compile("[0-9a-z]+")  # TOKEN_RE on normalised (lower-case) ASCII


@functools.lru_cache(maxsize=1)
def bmp_classes() -> Tuple[str, str]:
    """(word characters, unspaced characters) of the Basic Multilingual
    Plane, as TOKEN_RE and UNSPACED_RE define them, each the body of a regex
    class (char_class): the characters of a word of a spaced script, and
    those of a run of an unspaced one. Built once per process (~0.1 s)."""
    words, unspaced = [], []
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue  # surrogates
        ch = chr(cp)
        if UNSPACED_RE.match(ch):
            unspaced.append(ch)
        elif TOKEN_RE.fullmatch(ch):
            words.append(ch)
    return char_class(words), char_class(unspaced)


@functools.lru_cache(maxsize=1)
def bmp_word_re() -> "re.Pattern[str]":
    """TOKEN_RE for text without astral characters (has_astral() false),
    with both classes listed out as ranges (bmp_classes): re turns such a
    class into a bitmap (one test a character) where TOKEN_RE's own classes
    are tried range by range, ~6x slower."""
    words, unspaced = bmp_classes()
    return re.compile(f"[{words}]+|[{unspaced}]+")


def word_re(normalized: str) -> "re.Pattern[str]":
    """The fastest regex that finds the same words as TOKEN_RE in
    `normalized` (= normalize(text))."""
    if normalized.isascii():
        return _ASCII_WORD_RE
    if has_astral(normalized):
        return TOKEN_RE
    return bmp_word_re()


def find_words(normalized: str) -> List[str]:
    """TOKEN_RE.findall(normalized), by word_re."""
    return word_re(normalized).findall(normalized)


def is_unspaced(text: str) -> bool:
    return UNSPACED_RE.search(text) is not None


# Diacritics only (Latin, Greek, Cyrillic ...): the Japanese voicing marks
# (U+3099/U+309A) and Indic vowel signs are letters' parts, not accents.
_DIACRITICS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_DIACRITIC_RE = re.compile(f"[{_DIACRITICS}]")
# Letters that carry their "accent" without decomposing into base + mark.
_FOLD_LETTERS = str.maketrans({
    "ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŀ": "l",
    "æ": "ae", "œ": "oe", "þ": "th",
})


def fold_accents_uncached(token: str) -> str:
    """fold_accents() without its cache, for sweeps over many characters
    each asked about once (building tables of the whole BMP), which would
    only push the words of the stories out of the cache."""
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFD", token)
    return unicodedata.normalize("NFC", _DIACRITIC_RE.sub("", decomposed)).translate(_FOLD_LETTERS)


@functools.lru_cache(maxsize=65536)
def fold_accents(token: str) -> str:
    """`token` without accents: corée -> coree, pjöngjang -> pjongjang,
    ё -> е. Works on normalised (case-folded) tokens. Cached: news
    vocabulary repeats."""
    return fold_accents_uncached(token)


# ---------------------------------------------------------------- offsets


@functools.lru_cache(maxsize=2)
def length_changing_re(astral: bool) -> "re.Pattern[str]":
    """A regex matching one character whose normalised form is not one
    character (ß -> ss, … -> ..., ﬁ -> fi): the characters where offsets in
    normalize(text) and in text part. Those of the Basic Multilingual Plane
    only unless `astral`: re tests a character against a class's ranges
    beyond U+FFFF one by one, which would make the scan of an accented text
    ~10x slower. Built once per process (~0.1 s)."""
    chars = [
        chr(cp)
        for cp in range(0x80, 0x30000 if astral else 0x10000)
        if not 0xD800 <= cp < 0xE000 and len(_full_normalize(chr(cp))) != 1
    ]
    return re.compile(f"[{char_class(chars)}]")


def has_astral(text: str) -> bool:
    """Whether `text` has characters beyond U+FFFF."""
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def offset_mapper(original: str, normalized: str) -> Callable[[int], int]:
    """A function from an offset in `normalized` (= normalize(original)) to
    the offset of the same character in `original`."""
    if original.isascii() or (len(original) == len(normalized) and latin1_simple(original) is not None):
        return lambda offset: offset
    norm_starts: list[int] = []  # where each length-changing char begins in `normalized`
    orig_positions: list[int] = []
    lengths: list[int] = []
    shift = 0
    for m in length_changing_re(has_astral(original)).finditer(original):
        size = len(_full_normalize(m.group()))
        norm_starts.append(m.start() + shift)
        orig_positions.append(m.start())
        lengths.append(size)
        shift += size - 1
    if len(original) + shift != len(normalized):
        # Normalisation joined characters across positions (a base letter
        # and a separate combining mark): map character by character.
        return _slow_offset_mapper(original)
    if not norm_starts:
        return lambda offset: offset

    def to_original(offset: int) -> int:
        i = bisect.bisect_right(norm_starts, offset) - 1
        if i < 0:
            return offset
        end = norm_starts[i] + lengths[i]
        if offset < end:
            return orig_positions[i]
        return orig_positions[i] + 1 + (offset - end)

    return to_original


# A whitespace character, or a run of other characters.
_CHUNK_OR_SPACE_RE = re.compile(r"\s|\S+")
# A character and the combining marks after it (normalisation may join them).
_CLUSTER_RE = re.compile(f"\\S[{_DIACRITICS}]*")


def _slow_offset_mapper(original: str) -> Callable[[int], int]:
    """For text whose normalisation joins characters ("e" + U+0301 -> "é"):
    each normalised character maps to the start of the cluster (a letter and
    its combining marks) it came from, or, where clusters interact beyond
    that, to the start of its whitespace-separated chunk. Chunk by chunk, so
    a field and its chunks map the same way."""
    owners: list[int] = []
    for chunk in _CHUNK_OR_SPACE_RE.finditer(original):
        start, text = chunk.start(), chunk.group()
        size = len(normalize(text))
        mapped = []
        for cluster in _CLUSTER_RE.finditer(text):
            mapped.extend([start + cluster.start()] * len(normalize(cluster.group())))
        owners.extend(mapped if len(mapped) == size else [start] * size)
    last = max(len(original) - 1, 0)
    return lambda offset: owners[offset] if offset < len(owners) else last
