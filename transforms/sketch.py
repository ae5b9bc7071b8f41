"""Story sketches for syndication clusters: what two reprints of one wire
story share, in 256 bytes (pure functions; transforms/cluster.py uses them).

A reprint keeps the lead of the wire story and changes the rest: another
headline, a dateline or byline in front, paragraphs cut from the bottom, the
outlet's footer added, a word fixed here and there. So a story is sketched by
its LEAD, not its whole text:

1. The text is the body: `content` where the feed carries it, else `summary`
   (a lead-only summary is then the beginning of another outlet's full text).
   The headline is left out: outlets rewrite it, and a short headline would
   let unrelated stories match.
2. Tokens: casefolded words; in Chinese, Japanese and Korean each character
   is a token of its own (their words are not separated by spaces, or in
   Korean not reliably). Only the first MAX_TOKENS are read: a story longer
   than that is sketched by its first part and still clusters.
3. Shingles: every run of SHINGLE consecutive tokens, hashed to 64 bits.
   Word 5-shingles rarely recur between texts written independently, even
   about one event with the same names, so two outlets' own reports of one
   event share almost none.
4. Boilerplate out: a shingle found in many items of one feed document
   (bylines, "Read more", newsletter pitches, footers) is dropped from that
   document's sketches (`boilerplate`), so that stories of one outlet are
   not linked by what the outlet adds to all of them.
5. The lead: the first LEAD_SHINGLES distinct shingles left. Cutting the
   bottom changes nothing here unless it cuts into the lead; a dateline
   shifts the window by a few shingles.
6. MinHash of the lead: NUM_PERM minimums of multiply-shift hashes. Fewer
   than MIN_SHINGLES shingles (empty, one-word or all-boilerplate texts):
   no sketch, and the story never clusters.

Two sketches are the same story when the shorter lead is mostly CONTAINED in
the longer (`same_story`): containment, not Jaccard, because a summary that
is the first two sentences of another outlet's full text is a reprint with a
Jaccard of ~0.4. The containment is estimated from the MinHash Jaccard and
the two set sizes, so it is the same whether the other sketch was made in
this run or read back from _state/ a week later.
"""
from __future__ import annotations

import itertools
import math
import re
import unicodedata
import zlib
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

SHINGLE = 5             # tokens per shingle
MAX_TOKENS = 160        # tokens read from the start of a body: the size cap
MAX_SCAN = 100_000      # characters looked at for them, at most
LEAD_SHINGLES = 40      # distinct shingles in a sketch, at most
MIN_SHINGLES = 8        # fewer: no sketch (the story is its own cluster)
NUM_PERM = 64           # MinHash functions (bytes per sketch: 4 * NUM_PERM)
SKETCH_CHUNK = 256      # texts whose shingles are hashed in one pass
BANDS, ROWS = 32, 2     # LSH: a candidate shares all ROWS values of some band
# A reprint: at least half of the shorter lead is in the longer, and at least
# this many shingles are shared (a bound on the estimate's noise).
MIN_CONTAINMENT = 0.5
MIN_SHARED = 6.0
# Boilerplate: a shingle in at least this many items of one feed document,
# and in at least this share of them (why 2: docs/clusters.md).
BOILERPLATE_MIN_ITEMS = 2
BOILERPLATE_SHARE = 0.01

assert BANDS * ROWS == NUM_PERM

# Han, Hiragana, Katakana, Hangul (syllables and jamo), CJK compatibility forms.
_CJK = ("\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf"
        "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff")
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_MASK64 = (1 << 64) - 1

# Fixed, seeded hash functions: sketches must compare across runs and hosts.
_rng = np.random.Generator(np.random.PCG64(20261203))
_PERM_A = _rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_PERM_B = _rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
_POSITION = _rng.integers(1, 2**63, SHINGLE, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)
del _rng


class Sketch(NamedTuple):
    """A story's lead, summarised: MinHash signature and its set size."""

    signature: bytes    # NUM_PERM little-endian uint32 minimums
    shingles: int       # distinct shingles it summarises

    def values(self) -> np.ndarray:
        return np.frombuffer(self.signature, dtype="<u4")


def clustering_text(summary: Optional[str], content: Optional[str]) -> str:
    """The body a story is sketched by: its full text if it has one, else its summary."""
    return content or summary or ""


def tokens(text: str) -> List[str]:
    """The first MAX_TOKENS tokens: casefolded words, CJK characters one by one."""
    return _first_tokens(text, _tokens_of_head)


def _tokens_of_head(head: str) -> List[str]:
    # NFKC first: full-width Latin and half-width katakana become their usual forms.
    folded = unicodedata.normalize("NFKC", head).casefold()
    return _TOKEN.findall(folded, 0, len(folded))


def _first_tokens(text: str, read: Callable[[str], list]) -> list:
    # Read a slice that usually holds MAX_TOKENS tokens, and more only when it
    # does not (long words, runs of punctuation): a 1 MB body costs no more
    # than its first part.
    limit = MAX_TOKENS * 8
    while True:
        found = read(text[:min(limit, MAX_SCAN)])
        if len(found) > MAX_TOKENS or limit >= min(len(text), MAX_SCAN):
            return found[:MAX_TOKENS]
        limit *= 4


# The quick reading of a head, `_words`: tokens() as UTF-8 bytes, with no
# NFKC and no regex walk over the words, for a head made of ASCII, SEPARATORS
# and LETTERS only; any other character (CJK, a combining mark, a symbol NFKC
# spells with letters, like the trade mark sign) sends the head to tokens'
# own reading. SEPARATORS: common punctuation and spaces, non-word characters
# that NFKC and casefold keep non-word and that join nothing around them.
SEPARATORS = ("\u00a0\u00a1\u00a3\u00a5\u00a7\u00a9\u00ab\u00ad\u00ae\u00b0\u00b7\u00bb\u00bf"
              "\u2002\u2003\u2009\u200a\u200b\u2010\u2011\u2012\u2013\u2014\u2015\u2018\u2019"
              "\u201a\u201c\u201d\u201e\u2020\u2022\u2026\u202f\u2032\u2039\u203a\u20ac")


def _plain_letters() -> str:
    """Latin, Greek and Cyrillic letters that NFKC keeps as they are and
    whose casefold is word characters NFKC keeps too: for such text,
    casefolding alone gives what tokens() reads."""
    found = []
    for first, last in ((0xC0, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x1E00, 0x1EFF)):
        for code in range(first, last + 1):
            letter = chr(code)
            folded = letter.casefold()
            if (unicodedata.normalize("NFKC", letter) == letter
                    and unicodedata.normalize("NFKC", folded) == folded
                    and re.fullmatch(r"[^\W_]+", folded)):
                found.append(letter)
    return "".join(found)


LETTERS = _plain_letters()
_UNSURE = re.compile("[^\\x00-\\x7f" + re.escape(LETTERS + SEPARATORS) + "]")
_SEPARATOR = re.compile("[" + re.escape(SEPARATORS) + "]")
# ASCII letters lowercased, digits kept, every other ASCII byte a space;
# UTF-8 bytes of LETTERS (0x80 and up) kept.
_WORD_BYTES = bytes((c + 32 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c >= 128)
                    else 32 for c in range(256))


def _words_of_head(head: str) -> list:
    if not head.isascii():
        if _UNSURE.search(head) is not None:
            return _tokens_of_head(head)
        head = _SEPARATOR.sub(" ", head.casefold())
    return head.encode("utf-8").translate(_WORD_BYTES).split()


def _words(text: str) -> list:
    """tokens(text), each as its UTF-8 bytes where the head reads quickly
    (see SEPARATORS), else as str: word ids are the same either way."""
    return _first_tokens(text, _words_of_head)


def word_id(word: str) -> int:
    """A token's id, the same in every process and run (shingles hash these)."""
    return zlib.crc32(word.encode("utf-8", "surrogatepass"))


class _WordIds(dict):
    """Token (str, or its UTF-8 bytes) -> its id, the CRC-32 of its UTF-8,
    remembered: news text repeats its words, and a lookup made from C (map
    over __getitem__) costs a fraction of encoding and hashing each token
    again. Emptied when full, so it holds at most WORD_IDS_MAX words."""

    def __missing__(self, word) -> int:
        if len(self) >= WORD_IDS_MAX:
            self.clear()
        value = self[word] = zlib.crc32(word) if type(word) is bytes else word_id(word)
        return value


WORD_IDS_MAX = 50_000
# One memo for str tokens, one for the quick reading's bytes: an ASCII word
# and its bytes hash alike, and a dict of both would compare str with bytes.
_WORD_IDS, _BYTE_IDS = _WordIds(), _WordIds()


def shingles(text: str) -> np.ndarray:
    """64-bit hashes of the text's shingles, in text order (with repeats)."""
    return shingles_of([text])[0]


def shingles_of(texts: Sequence[str]) -> List[np.ndarray]:
    """shingles() of each text, the same values, hashed in one pass over all
    their tokens: the items of a feed document share the numpy calls, whose
    fixed cost is paid once per call, not per item. The windows that span
    two texts are hashed too, and left out."""
    words = [_words(t) for t in texts]
    counts = [len(w) for w in words]
    total = sum(counts)
    empty = np.zeros(0, dtype=np.uint64)
    if total < SHINGLE:
        return [empty] * len(texts)
    ids = np.fromiter(itertools.chain.from_iterable(
        map((_BYTE_IDS if w and type(w[0]) is bytes else _WORD_IDS).__getitem__, w) for w in words),
        dtype=np.uint64, count=total)
    n = total - SHINGLE + 1
    with np.errstate(over="ignore"):
        mixed = np.zeros(n, dtype=np.uint64)
        for k in range(SHINGLE):
            mixed += ids[k:k + n] * _POSITION[k]
        hashed = _finalise(mixed)
    found, start = [], 0
    for count in counts:
        found.append(hashed[start:start + count - SHINGLE + 1] if count >= SHINGLE else empty)
        start += count
    return found


def _finalise(x: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser: every input bit reaches every output bit.
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def boilerplate(documents: Sequence[np.ndarray]) -> np.ndarray:
    """The shingles (sorted) that recur across the items of one feed document:
    in at least BOILERPLATE_MIN_ITEMS items and BOILERPLATE_SHARE of them."""
    if sum(1 for d in documents if len(d)) < BOILERPLATE_MIN_ITEMS:
        return np.zeros(0, dtype=np.uint64)
    values, items = _by_text(documents)
    order = np.lexsort((items, values))
    values, items = values[order], items[order]
    # One count per item a shingle is in, however often it is there.
    once = _starts(values, items)
    values = values[once]
    starts = np.flatnonzero(_starts(values))
    counts = np.diff(np.append(starts, len(values)))
    floor = max(BOILERPLATE_MIN_ITEMS, math.ceil(BOILERPLATE_SHARE * len(documents)))
    return values[starts[counts >= floor]]


def _by_text(hashes: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """All the texts' shingles in one array, and the index of each one's text."""
    return _joined(hashes), np.repeat(np.arange(len(hashes)), [len(h) for h in hashes])


def _joined(hashes: Sequence[np.ndarray]) -> np.ndarray:
    # Empty arrays left out: one of another dtype (np.array([])) would
    # change the dtype of the whole.
    return np.concatenate([h for h in hashes if len(h)] or [np.zeros(0, dtype=np.uint64)])


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Where a run of equal (key, ...) rows starts, in arrays sorted by them."""
    found = np.ones(len(keys[0]), dtype=bool)
    if len(found):
        found[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    return found


def sketch(shingle_hashes: np.ndarray, dropped: Optional[np.ndarray] = None) -> Optional[Sketch]:
    """The sketch of one text's shingles, leaving out `dropped` (boilerplate);
    None when fewer than MIN_SHINGLES remain."""
    if dropped is not None and len(dropped) and len(shingle_hashes):
        # `dropped` is sorted (boilerplate(), np.union1d): a binary search per
        # shingle, not a sort of the whole set per story as np.isin would do.
        at = np.minimum(np.searchsorted(dropped, shingle_hashes), len(dropped) - 1)
        shingle_hashes = shingle_hashes[dropped[at] != shingle_hashes]
    if len(shingle_hashes) < MIN_SHINGLES:
        return None
    distinct = list(dict.fromkeys(shingle_hashes.tolist()))[:LEAD_SHINGLES]   # first-seen order
    if len(distinct) < MIN_SHINGLES:
        return None
    lead = np.array(distinct, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashed = lead[:, None] * _PERM_A[None, :] + _PERM_B[None, :]
    minimums = (hashed >> np.uint64(32)).min(axis=0).astype("<u4")
    return Sketch(minimums.tobytes(), int(len(lead)))


def document_sketches(texts: Sequence[str]) -> List[Optional[Sketch]]:
    """Sketches of the bodies of one feed document's items, its boilerplate left out."""
    return sketch_document(texts)[0]


def sketch_document(texts: Sequence[str], known: Optional[np.ndarray] = None,
                    items: Optional[Sequence] = None,
                    wanted: Optional[Sequence[bool]] = None) -> Tuple[List[Optional[Sketch]], np.ndarray]:
    """document_sketches for one part of a document, also leaving out the
    boilerplate `known` from its earlier parts; returns the sketches and the
    boilerplate so far (for the next part). `items`: one key per text (its
    headline and body, say): an item the feed repeats counts once towards
    boilerplate, or a story served four times would lose its own text.
    `wanted`: which texts need their sketch (None for the others); every
    text still counts towards the boilerplate."""
    # A chunk at a time: shingles_of holds its texts' tokens and hashes at
    # once, and a caller may pass every row of a large feed.
    hashed = [h for at in range(0, len(texts), SKETCH_CHUNK) for h in shingles_of(texts[at:at + SKETCH_CHUNK])]
    if items is None:
        counted = hashed
    else:
        first = {}
        for h, key in zip(hashed, items):
            first.setdefault(key, h)
        counted = list(first.values())
    dropped = boilerplate(counted)
    if known is not None and len(known):
        dropped = np.union1d(dropped, known)
    return sketch_many(hashed, dropped, wanted), dropped


def sketch_many(hashes: Sequence[np.ndarray], dropped: Optional[np.ndarray] = None,
                wanted: Optional[Sequence[bool]] = None) -> List[Optional[Sketch]]:
    """[sketch(h, dropped) for h in hashes], the same values (None where not
    `wanted`): the boilerplate is left out of all the texts at once and their
    MinHashes are taken in one numpy pass, so a feed document's items share
    each call's fixed cost; only each text's first-seen lead is read in Python."""
    found: List[Optional[Sketch]] = [None] * len(hashes)
    chosen = [i for i, want in zip(range(len(hashes)), wanted if wanted is not None else [True] * len(hashes))
              if want]
    if not chosen:
        return found
    values, ends = _joined([hashes[i] for i in chosen]), np.cumsum([len(hashes[i]) for i in chosen])
    if dropped is not None and len(dropped) and len(values):
        at = np.minimum(np.searchsorted(dropped, values), len(dropped) - 1)
        kept = dropped[at] != values
        values, ends = values[kept], np.concatenate(([0], np.cumsum(kept)))[ends]
    leads, start = {}, 0
    for i, end in zip(chosen, ends.tolist()):
        if end - start >= MIN_SHINGLES:
            lead = list(dict.fromkeys(values[start:end].tolist()))[:LEAD_SHINGLES]   # first-seen order
            if len(lead) >= MIN_SHINGLES:
                leads[i] = lead
        start = end
    if not leads:
        return found
    lengths = [len(lead) for lead in leads.values()]
    lead_values = np.fromiter(itertools.chain.from_iterable(leads.values()), dtype=np.uint64, count=sum(lengths))
    with np.errstate(over="ignore"):
        hashed = lead_values[:, None] * _PERM_A[None, :]
        hashed += _PERM_B[None, :]
    hashed >>= np.uint64(32)
    minimums = np.minimum.reduceat(hashed, np.cumsum([0] + lengths[:-1]), axis=0).astype("<u4")
    for i, row, length in zip(leads, minimums, lengths):
        found[i] = Sketch(row.tobytes(), length)
    return found


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """(n, NUM_PERM) uint32 signatures -> (n, BANDS) uint64 LSH keys: one per
    band of ROWS values. Two sketches are candidates when a band's keys agree."""
    sig = np.ascontiguousarray(signatures).reshape(len(signatures), BANDS, ROWS)
    return band_keys_of_band(sig)


def band_keys_of_band(values: np.ndarray) -> np.ndarray:
    """The key of each band from its ROWS values (the last axis)."""
    values = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        keys = values[..., 0]
        for r in range(1, ROWS):
            keys = keys * _BAND_MIX + values[..., r]
    return _finalise(keys)


def similarity(a: Sketch, b: Sketch) -> Tuple[float, float]:
    """(containment of the smaller lead in the larger, shared shingles), estimated."""
    return estimate(float(np.count_nonzero(a.values() == b.values())) / NUM_PERM,
                    a.shingles, b.shingles)


def estimate(jaccard: float, size_a: int, size_b: int) -> Tuple[float, float]:
    """Containment and intersection size from a Jaccard estimate and set sizes:
    |A & B| = J (|A| + |B|) / (1 + J)."""
    shared = jaccard * (size_a + size_b) / (1.0 + jaccard)
    return min(1.0, shared / max(1, min(size_a, size_b))), shared


def is_reprint(containment: float, shared: float) -> bool:
    return containment >= MIN_CONTAINMENT and shared >= MIN_SHARED


def same_story(a: Optional[Sketch], b: Optional[Sketch]) -> bool:
    """Whether two sketched stories are copies of one text (see the module doc)."""
    if a is None or b is None:
        return False
    return is_reprint(*similarity(a, b))
