"""Text normalisation (transforms/topics/text.py): what queries and stories
both go through, and the tables both field scans build on."""
import random
import re
import unicodedata

from transforms.topics.text import (
    TOKEN_RE,
    char_class,
    find_words,
    fold_accents,
    fold_accents_uncached,
    length_changing_re,
    normalize,
    offset_mapper,
    tokenize,
)


def test_latin1_byte_table_normalises_as_nfkc_and_case_folding_do():
    def full(text):
        return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())

    for c in range(256):
        assert normalize(chr(c)) == full(chr(c)), hex(c)
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(chr(rng.randrange(256)) for _ in range(rng.randint(1, 40)))
        assert normalize(text) == full(text), repr(text)


def test_tokens_nfkc_casefold_and_word_runs():
    assert tokenize("Kim Jong-un's ＤＰＲＫ Straße") == ["kim", "jong", "un", "s", "dprk", "strasse"]
    assert tokenize("#north_korea") == ["north", "korea"]
    assert tokenize("DPRK는 미사일을") == ["dprk", "는", "미사일을"]


def test_fast_word_split_agrees_with_token_re():
    # find_words lists TOKEN_RE's classes out as bitmaps; every character
    # must fall on the same side, alone and between letters.
    for cp in range(0x10000):
        if not 0xD800 <= cp < 0xE000:
            text = normalize(f"ab{chr(cp)}c {chr(cp)}")
            assert find_words(text) == TOKEN_RE.findall(text), hex(cp)
    for text in ("a\U0001d400b 𠀀북한", "x\u0301\U0001d165y", "ÄÖÜ ＤＰＲＫ"):
        assert find_words(normalize(text)) == TOKEN_RE.findall(normalize(text))


def test_char_class_writes_runs_as_ranges_and_matches_exactly_its_characters():
    assert char_class("abcx") == "a-cx"
    chars = ["-", "]", "^", "a", "b", "é", "\\"]
    rx = re.compile(f"[{char_class(sorted(chars))}]")
    assert [ch for ch in map(chr, range(0x300)) if rx.fullmatch(ch)] == sorted(chars)


def test_uncached_accent_folding_folds_as_the_cached_one():
    for word in ("corée", "pjöngjang", "ærø", "łódź", "ё", "ガス", "north", "straße"):
        assert fold_accents_uncached(word) == fold_accents(word), word
    assert fold_accents_uncached("corée") == "coree" and fold_accents_uncached("ærø") == "aero"


def test_length_changing_characters_are_where_offsets_part():
    rx = length_changing_re(False)
    assert [ch for ch in "aßé…ﬁ½Ⅻ" if rx.match(ch)] == ["ß", "…", "ﬁ", "½", "Ⅻ"]
    text = "Straße… ﬁnal"
    to_text = offset_mapper(text, normalize(text))
    assert normalize(text) == "strasse... final"
    assert [to_text(normalize(text).index(w)) for w in ("strasse", "final")] == [0, 8]
