"""Story sketches (transforms/sketch.py): which texts are copies of one wire
story, whatever each outlet did to it, and which are not.

Every text here is made up for these tests (tests/support/reprints.py).
"""
import collections
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from tests.support.reprints import (CHINESE, FOOTER, JAPANESE, KOREAN, KOREAN_OTHER, MUSEUM,
                                    MUSEUM_OWN_REPORT, SHIP, SHIP_OWN_REPORT, alone, lead, linked_pairs,
                                    reprint, unrelated_stories)
from transforms.sketch import MAX_TOKENS, clustering_text, document_sketches, same_story, sketch_document, tokens

# -- tokens ------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("북한이 미사일을 발사했다", ["북", "한", "이", "미", "사", "일", "을", "발", "사", "했", "다"]),
    ("北朝鮮がミサイルを発射", ["北", "朝", "鮮", "が", "ミ", "サ", "イ", "ル", "を", "発", "射"]),
    ("朝鲜发射弹道导弹", ["朝", "鲜", "发", "射", "弹", "道", "导", "弹"]),
    # Latin words in CJK text stay words
    ("G7 정상회의, Tokyo에서", ["g7", "정", "상", "회", "의", "tokyo", "에", "서"]),
])
def test_korean_japanese_and_chinese_are_tokenised_by_characters(text, expected):
    assert tokens(text) == expected


def test_latin_text_is_tokenised_by_casefolded_words():
    assert tokens("The Coast-Guard said: 19 crew, all SAFE.") == ["the", "coast", "guard", "said", "19",
                                                                 "crew", "all", "safe"]


def test_full_width_and_half_width_forms_tokenise_alike():
    assert tokens("ＰＹＯＮＧＹＡＮＧ　ｆｉｒｅｄ　２　ﾐｻｲﾙｽﾞ") == tokens("Pyongyang fired 2 ミサイルズ")
    assert tokens("ｶﾞｿﾘﾝ価格") == tokens("ガソリン価格") == ["ガ", "ソ", "リ", "ン", "価", "格"]
    wide = SHIP.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}).replace(" ", "\u3000")
    assert wide != SHIP and same_story(alone(wide), alone(SHIP))


def test_chinese_text_without_spaces_has_a_sketch():
    # split on spaces it would be one token: no shingle at all
    assert " " not in CHINESE and alone(CHINESE) is not None and alone(JAPANESE) is not None


# -- bad input ---------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   ", "Pyongyang", "Pyongyang.", "— ... —", "북한", "<p></p>"])
def test_empty_and_one_word_texts_have_no_sketch(text):
    assert alone(text) is None
    assert document_sketches([text, text, SHIP])[:2] == [None, None]


def test_empty_and_one_word_texts_never_cluster():
    assert not same_story(alone(""), alone(""))
    assert not same_story(alone("Pyongyang"), alone("Pyongyang"))
    assert not same_story(None, alone(SHIP))


def test_a_story_longer_than_the_size_cap_is_sketched_by_its_first_part_and_still_clusters():
    filler = " ".join(unrelated_stories(400, seed=5))
    huge = (SHIP + " " + filler)[:50_000]
    assert len(huge) == 50_000
    assert len(tokens(huge)) == MAX_TOKENS                    # the cap: only the first part is read
    assert tokens(huge) == tokens(huge[:5_000])
    assert alone(huge) == alone(huge[:5_000])
    # its lead-only reprint (a summary-only feed, with a dateline) is the same story
    assert same_story(alone(huge), alone(reprint(lead(SHIP), keep=1.0, footer="")))
    # and so is a full copy whose tail differs after the first paragraphs
    other_tail = (SHIP + " " + " ".join(unrelated_stories(400, seed=6)))[:60_000]
    assert same_story(alone(huge), alone(other_tail))


def test_a_body_is_looked_at_only_as_far_as_the_scan_limit():
    # no words in the first MAX_SCAN characters: no sketch, and no scan of the megabytes behind them
    assert tokens("." * 2_000_000 + SHIP) == []


# -- boilerplate -------------------------------------------------------------
def test_fifty_unrelated_stories_with_one_footer_stay_apart():
    stories = unrelated_stories(50)
    assert all(19 <= len(s.split()) <= 34 for s in stories)
    assert len(FOOTER.split()) == 40
    in_feed = [f"{s} {FOOTER}" for s in stories]

    sketches = document_sketches(in_feed)                     # one feed document
    assert all(s is not None for s in sketches)               # each still has its own text
    assert linked_pairs(sketches) == []
    # Control: sketched one by one, without the document's boilerplate step,
    # the footer links them (this test can fail).
    assert len(linked_pairs([alone(t) for t in in_feed])) >= 5
    # ... and without the footer they were apart to begin with
    assert linked_pairs([alone(t) for t in stories]) == []


def test_only_the_wanted_sketches_are_made_and_all_texts_count_towards_the_boilerplate():
    in_feed = [f"{s} {FOOTER}" for s in unrelated_stories(50)]
    wanted = [k % 10 == 0 for k in range(50)]
    found, dropped = sketch_document(in_feed, wanted=wanted)
    every, every_dropped = sketch_document(in_feed)
    assert [s for s, w in zip(found, wanted) if not w] == [None] * 45
    assert [s for s, w in zip(found, wanted) if w] == [s for s, w in zip(every, wanted) if w]
    assert list(dropped) == list(every_dropped)
    # Control: the five wanted texts alone would not have found the footer.
    assert [s for s, w in zip(found, wanted) if w] != sketch_document([t for t, w in zip(in_feed, wanted) if w])[0]


def test_a_shared_byline_and_newsletter_pitch_in_front_does_not_link_stories():
    header = ("By the Coastal Times staff | Updated five minutes ago | Read more: sign up for our morning "
              "newsletter and get the news that matters in your inbox before breakfast.")
    in_feed = [f"{header} {s}" for s in unrelated_stories(20, seed=1)]
    assert linked_pairs(document_sketches(in_feed)) == []
    assert len(linked_pairs([alone(t) for t in in_feed])) >= 100     # control: every pair


def test_a_feed_repeating_one_text_under_500_ids_links_no_unrelated_items():
    # A broken feed: 500 ids, each a different short item with the same long
    # story pasted behind it.
    intros = unrelated_stories(500, seed=3)
    assert len(set(intros)) == 500
    in_feed = [f"{intro} {SHIP}" for intro in intros]
    assert linked_pairs(document_sketches(in_feed)) == []
    # Control: sketched alone, the pasted story chains them into big groups.
    assert len(linked_pairs([alone(t) for t in in_feed])) >= 500


def test_boilerplate_is_found_per_feed_document_not_across_unrelated_feeds():
    # The wire story in a document of otherwise different stories is not boilerplate
    docs = document_sketches([SHIP] + unrelated_stories(30, seed=2))
    assert same_story(docs[0], alone(reprint(SHIP)))


# -- reprints and non-reprints -----------------------------------------------
@pytest.mark.parametrize("keep", [0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("original", [SHIP, MUSEUM], ids=["ship", "museum"])
def test_an_edited_reprint_is_the_same_story(original, keep):
    copy = reprint(original, keep=keep)
    assert copy.split()[:5] == ["VELLMAR,", "Nov.", "4", "(Coastal", "Times)"]
    assert not copy.startswith(original[:40]) and "sandbar" in copy
    assert same_story(alone(original), alone(copy))
    assert same_story(alone(copy), alone(original))               # symmetric


def test_a_reprint_with_a_byline_a_dateline_and_two_edits_in_its_lead_is_the_same_story():
    copy = reprint(MUSEUM, keep=0.4, dateline="By Lena Marsh, Northern Courier. ESTERBY, Sweden -",
                   edits=((17, "3"), (34, "roof window")))
    assert "escaped with 3 small" in copy and "through a roof window above" in copy
    assert same_story(alone(MUSEUM), alone(copy))


def test_a_lead_only_summary_and_the_full_text_are_the_same_story():
    for full in (SHIP, MUSEUM):
        summary = lead(full)
        assert 30 <= len(summary.split()) <= 60 and len(summary) < len(full) / 2
        assert same_story(alone(summary), alone(full))
        assert same_story(alone(lead(full, sentences=1)), alone(full))


def test_a_summary_cut_after_twenty_words_is_contained_in_the_full_text():
    # Many feeds cut the summary after so many characters: containment, not
    # Jaccard (16 shingles of the full text's 40 would be a Jaccard of 0.4).
    for full in (SHIP, MUSEUM):
        short = " ".join(full.split()[:20]) + " […]"
        assert same_story(alone(short), alone(full))
        assert same_story(alone(reprint(short, keep=1.0, edits=())), alone(full))


def test_two_reports_of_one_event_by_different_outlets_are_not_the_same_story():
    assert not same_story(alone(SHIP), alone(SHIP_OWN_REPORT))
    assert not same_story(alone(MUSEUM), alone(MUSEUM_OWN_REPORT))
    # nor is one outlet's lead with the other's full text
    assert not same_story(alone(lead(SHIP_OWN_REPORT)), alone(SHIP))
    # different stories altogether
    assert not same_story(alone(SHIP), alone(MUSEUM))


def test_the_headline_is_not_part_of_the_sketched_text():
    assert clustering_text("the summary", "the full text") == "the full text"
    assert clustering_text("the summary", "") == "the summary"
    assert clustering_text(None, None) == ""


def test_korean_reprint_with_a_prefix_and_a_trim_is_the_same_story():
    copy = ("[서울=한빛통신] 김민수 기자 = " + KOREAN[:len(KOREAN) // 2].replace("강풍에", "태풍에")
            + " <저작권자 한빛통신 무단 전재 및 재배포 금지>")
    assert same_story(alone(KOREAN), alone(copy))
    assert not same_story(alone(KOREAN), alone(KOREAN_OTHER))


def test_japanese_and_chinese_reprints_are_the_same_story():
    assert same_story(alone(JAPANESE), alone("【東京】" + JAPANESE[:70] + "（共同）"))
    assert same_story(alone(CHINESE), alone("新华社北京电 " + CHINESE[:60] + " 责任编辑：王明"))
    assert not same_story(alone(JAPANESE), alone(CHINESE))


def test_sketches_are_the_same_in_every_process():
    # Sketches are compared with ones read back from _state/, made by other
    # runs on other hosts: no per-process salt (Python's hash() has one).
    code = ("import sys; from transforms.sketch import shingles, sketch; "
            "sys.stdout.write(sketch(shingles(sys.stdin.read())).signature.hex())")
    made = alone(SHIP)
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", code], input=SHIP, capture_output=True, text=True,
                              cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT)),
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout == made.signature.hex()


def test_no_more_than_the_scan_limit_is_looked_at():
    from transforms.sketch import MAX_SCAN
    assert tokens("." * (MAX_SCAN + 50_000) + " hello world" * 50) == []
    assert tokens("." * (MAX_SCAN - 100) + " hello world" * 50)[:2] == ["hello", "world"]


def test_the_hash_functions_are_fixed_for_stored_sketches():
    """Sketches stored in _state/clusters must compare with tomorrow's, made by
    another numpy: the signature of a fixed text is pinned."""
    made = alone(SHIP)
    assert made.signature.hex()[:32] == "4936c4028a65a402f77d67035e22bf07"


def _shingles_from_word_ids(text):
    # The definition: each token's CRC-32, mixed over SHINGLE positions.
    import numpy as np
    from benchmarks.sketch_speed import shingle_hashes
    from transforms import sketch as sk
    return shingle_hashes(np.array([sk.word_id(w) for w in tokens(text)], dtype=np.uint64))


def test_remembered_word_ids_give_the_shingles_of_the_definition_and_stay_bounded(monkeypatch):
    import numpy as np
    from transforms import sketch as sk
    monkeypatch.setattr(sk, "WORD_IDS_MAX", 50)
    sk._WORD_IDS.clear()
    sk._BYTE_IDS.clear()
    texts = [MUSEUM, KOREAN, JAPANESE, CHINESE, "Ünïcödé wörds \ud800 lone surrogate and more words here too ok",
             MUSEUM.upper(), " ".join(f"w{i}" for i in range(300)), "Mixed 北朝鮮 " + MUSEUM]
    for text in texts * 2:   # the second pass reads remembered ids
        assert np.array_equal(sk.shingles(text), _shingles_from_word_ids(text))
        assert len(sk._WORD_IDS) <= 50 and len(sk._BYTE_IDS) <= 50
    assert all(type(w) is str for w in sk._WORD_IDS) and all(type(w) is bytes for w in sk._BYTE_IDS)
    sk._WORD_IDS.clear()
    sk._BYTE_IDS.clear()


def test_the_shingles_of_a_batch_are_each_text_s_own():
    # One pass over a document's texts: no shingle spans two texts, short
    # and empty texts have none, and the values are the definition's.
    import numpy as np
    from transforms import sketch as sk
    texts = ["", "one two three four", MUSEUM, "a b c d e", KOREAN, "x", JAPANESE, CHINESE,
             " ".join(f"w{i}" for i in range(300)), "five words make one shingle"]
    found = sk.shingles_of(texts)
    assert len(found) == len(texts)
    for text, hashes in zip(texts, found):
        assert np.array_equal(hashes, _shingles_from_word_ids(text)), text[:20]
    assert [len(h) for h in found[:4]] == [0, 0, len(sk.tokens(MUSEUM)) - 4, 1]
    assert sk.shingles_of([]) == [] and len(sk.shingles_of(["a b"])[0]) == 0
    whole = sk.sketch_document(texts)[0]
    assert whole == [sk.sketch(sk.shingles(t), sk.boilerplate([sk.shingles(u) for u in texts])) for t in texts]


def test_a_document_is_hashed_a_chunk_at_a_time_with_the_same_sketches(monkeypatch):
    from transforms import sketch as sk
    texts = [MUSEUM, "a b c d e f g h i j", KOREAN, "", MUSEUM.upper(), JAPANESE, CHINESE] * 3
    whole = sk.sketch_document(texts)
    calls = []
    batch = sk.shingles_of
    monkeypatch.setattr(sk, "shingles_of", lambda chunk: calls.append(len(chunk)) or batch(chunk))
    monkeypatch.setattr(sk, "SKETCH_CHUNK", 4)
    chunked = sk.sketch_document(texts)
    assert calls == [4, 4, 4, 4, 4, 1]
    assert chunked[0] == whole[0] and (chunked[1] == whole[1]).all()


def _word_ids(words):
    from transforms import sketch as sk
    return [sk.word_id(w) if isinstance(w, str) else sk.word_id(w.decode("utf-8")) for w in words]


# Heads the quick reading takes (ASCII, plain letters, separators) and heads
# it must leave to tokens' own reading (CJK, combining marks, symbols that
# NFKC spells with letters, İ whose casefold carries a combining dot).
QUICK_AND_NOT = [
    "Plain ASCII: it's 42x, e-mail_addresses and URLs http://example.com/a?b=c",
    "Curly “quotes”, ‘single’ ones, dashes – and — ellipses… and\u00a0no-break\u202fspaces, ·dots·, «guillemets»",
    "Großes Ärgernis über Straßenbahn in Köln; Éric à Montréal, señor Muñoz, ÇA VA",
    "Ελληνικά ΣΟΦΟΣ σοφός και Русский ТЕКСТ ёлка, Tiếng Việt có dấu, ș și ț",
    "soft\u00adhyphen and zero\u200bwidth",
    "Brand™ ﬁne ½ ℃ №5 İstanbul",
    "cafe\u0301 combining and e\u0308",
    "Mixed 北朝鮮 missile ミサイル 미사일 launch",
    "ＦＵＬＬ　ｗｉｄｔｈ ﾃｽﾄ",
    "A" * 3000 + " tail",
    "word " * 500,
    ("ascii " * 300) + "ﬁ past the head",
    "." * 1500 + " ﬁne words in a longer head",
    "",
]


@pytest.mark.parametrize("text", QUICK_AND_NOT, ids=lambda t: t[:24])
def test_the_quick_reading_gives_the_tokens_of_the_definition(text):
    from transforms import sketch as sk
    assert _word_ids(sk._words(text)) == _word_ids(tokens(text))


def test_the_quick_reading_is_taken_for_ascii_plain_letters_and_separators_only():
    from transforms import sketch as sk
    quick = [text for text in QUICK_AND_NOT if all(isinstance(w, bytes) for w in sk._words(text)) and text]
    assert quick == QUICK_AND_NOT[:5] + ["A" * 3000 + " tail", "word " * 500, ("ascii " * 300) + "ﬁ past the head"]


def test_separators_and_plain_letters_read_alike_with_and_without_nfkc():
    """What makes the quick reading right: a separator stays a non-word
    character under NFKC and casefold, a plain letter's casefold is word
    characters NFKC keeps, and NFKC joins none of them with a neighbour."""
    import unicodedata
    from transforms import sketch as sk
    for separator in sk.SEPARATORS:
        assert sk._TOKEN.findall(unicodedata.normalize("NFKC", separator).casefold()) == [], hex(ord(separator))
        assert separator.casefold() == separator
    assert len(sk.LETTERS) > 900 and "ß" in sk.LETTERS and "İ" not in sk.LETTERS and "ﬁ" not in sk.LETTERS
    neighbours = [chr(c) for c in range(32, 127)] + list(sk.SEPARATORS) + list(sk.LETTERS)
    nfkc = {c: unicodedata.normalize("NFKC", c) for c in neighbours}
    for first in sk.LETTERS + sk.SEPARATORS:
        for second in neighbours:
            assert unicodedata.normalize("NFKC", first + second) == nfkc[first] + nfkc[second], (first, second)
            assert unicodedata.normalize("NFKC", second + first) == nfkc[second] + nfkc[first], (second, first)


def _boilerplate_by_definition(hashes):
    import math
    import numpy as np
    from transforms import sketch as sk
    items = collections.Counter(value for h in hashes for value in set(h.tolist()))
    floor = max(sk.BOILERPLATE_MIN_ITEMS, math.ceil(sk.BOILERPLATE_SHARE * len(hashes)))
    if sum(1 for h in hashes if len(h)) < sk.BOILERPLATE_MIN_ITEMS:
        return np.zeros(0, dtype=np.uint64)
    return np.array(sorted(v for v, n in items.items() if n >= floor), dtype=np.uint64)


def test_boilerplate_is_what_recurs_in_enough_items_counted_once_an_item():
    import numpy as np
    from transforms import sketch as sk
    rng = np.random.default_rng(7)
    for size in (0, 1, 2, 3, 50, 250):
        hashes = [rng.integers(0, 40, rng.integers(0, 30), dtype=np.uint64) for _ in range(size)]
        assert np.array_equal(sk.boilerplate(hashes), _boilerplate_by_definition(hashes)), size
    repeated = np.array([5, 5, 5, 9], dtype=np.uint64)   # three times in one item is one item
    assert sk.boilerplate([repeated, np.array([9], dtype=np.uint64)]).tolist() == [9]


def test_sketches_of_many_texts_are_each_text_s_own_sketch():
    import numpy as np
    from transforms import sketch as sk
    texts = ["", MUSEUM, "a b c d e f g h i j k l", KOREAN, "one two three four five six", JAPANESE,
             " ".join(f"w{i}" for i in range(300)), CHINESE, MUSEUM.upper(), "x y " * 40]
    hashes = sk.shingles_of(texts)
    some = np.sort(np.unique(np.concatenate([hashes[1][::3], hashes[6][:290]])))
    for dropped in (None, np.zeros(0, dtype=np.uint64), some, np.unique(np.concatenate(hashes))):
        expected = [sk.sketch(h, dropped) for h in hashes]
        assert sk.sketch_many(hashes, dropped) == expected
        wanted = [i % 3 != 1 for i in range(len(texts))]
        assert sk.sketch_many(hashes, dropped, wanted) == [e if w else None for e, w in zip(expected, wanted)]
    assert sum(s is not None for s in sk.sketch_many(hashes, some)) >= 5
    assert sk.sketch_many([], None) == [] and sk.sketch_many(hashes, None, [False] * len(texts)) == [None] * len(texts)
    # An empty array of another dtype changes nothing (np.array([]) is float64).
    untyped = [np.array([])] + hashes[1:]
    assert sk.sketch_many(untyped, some) == [None] + [sk.sketch(h, some) for h in hashes[1:]]
    assert np.array_equal(sk.boilerplate(untyped), sk.boilerplate(hashes))
    assert sk.boilerplate(untyped).dtype == np.uint64


@pytest.mark.slow
def test_every_corpus_document_is_sketched_as_the_definition_sketches_it():
    """The quick reading of the tokens and the sketches of many texts at
    once, against tokens() and sketch() text by text, on every story of the
    corpora (tests/support/corpus_stories.py)."""
    import numpy as np
    from tests.support.corpus_stories import stories_by_document
    from tests.support.paths import CORPORA
    from transforms import sketch as sk
    documents = stories_by_document()
    texts = [[clustering_text(s.summary, s.content) for s in stories] for stories in documents]
    assert sum(map(len, texts)) > (3000 if CORPORA.is_dir() else 500)
    quick = 0
    for document in texts:
        for text in document:
            words = sk._words(text)
            quick += bool(words) and isinstance(words[0], bytes)
            assert _word_ids(words) == _word_ids(tokens(text)), text[:80]
        hashes = [_shingles_from_word_ids(text) for text in document]
        dropped = _boilerplate_by_definition(hashes)
        assert np.array_equal(sk.boilerplate(hashes), dropped)
        assert sketch_document(document)[0] == [sk.sketch(h, dropped) for h in hashes]
    assert quick > sum(map(len, texts)) / 2
