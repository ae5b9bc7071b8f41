"""transforms/langdetect_fast.py against langdetect itself, its oracle.

The detector must give langdetect's answer, bit for bit: the same languages
with the same probabilities, and the same refusal (no features) on every
story text of the three corpora in ../shared/corpora, of seeds/, of a
generated corpus and on texts made to reach each branch of langdetect's
n-gram buffer and cleaning (capitalised words, text mostly in another
script, URLs and e-mail addresses, Vietnamese and Romanian letters, text
past langdetect's 10,000 characters).
"""
from __future__ import annotations

from typing import List

import pytest
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from tests.support.corpus_stories import stories_by_document
from tests.support.paths import CORPORA
from transforms.langdetect_fast import FastDetector, cleaned_text
from transforms.language import UNDETERMINED, detect_language, language_text, load_detector, shared_detector

EDGE_TEXTS = [
    "",
    "   ",
    "1234 5678 !!!",
    "NATO and the USA met the UN in NEW YORK on Monday",
    "IAEA: DPRK Missile Test Condemned By G7 And EU Leaders",
    "North Korea fired a missile, see https://example.org/a?b=c&d=e#f or mail press@example.org now",
    "Triều Tiên phóng tên lửa đạn đạo ra biển Nhật Bản, theo Bộ Quốc phòng Hàn Quốc",
    "Coreea de Nord a lansat o rachetă; ședința consiliului de securitate și țările vecine",
    "北朝鮮が弾道ミサイルを発射、日本海に落下か NHK News Web English words here",
    "북한, 동해상으로 탄도미사일 발사 합동참모본부 Joint Chiefs of Staff said",
    "Северная Корея запустила баллистическую ракету в сторону Японского моря",
    "كوريا الشمالية تطلق صاروخا باليستيا باتجاه بحر اليابان",
    "朝鲜向朝鲜半岛东部海域发射一枚弹道导弹 韩国联合参谋本部表示",
    "Nordkorea hat erneut eine ballistische Rakete abgefeuert, meldet Südkoreas Generalstab. " * 200,
    "a" * 50,
    "ÀÉÎÕÜ àéîõü ÇÑ çñ ß Æ Ø Å æ ø å",
    "Ẩ Ệ ỗ ử ự abc 北朝",        # its Latin letters dropped only if Latin Extended Additional counts
    "北朝鮮 ミサイル ab",
    "Ha\u0300 No\u0323i, Hue\u0301 va\u0300 Sa\u0300i Go\u0300n",   # a letter and a combining mark, joined
    "Pyongyang    fired   [twice]   ^_^ `quoted` at dawn",
    "x" * 10_005 + " tail words past the limit",
]


def _reference_factory() -> DetectorFactory:
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0
    return factory


@pytest.fixture(scope="module")
def reference() -> DetectorFactory:
    return _reference_factory()


@pytest.fixture(scope="module")
def fast() -> FastDetector:
    return FastDetector(seed=0)


def _answer(detect) -> object:
    try:
        return [(language.lang, language.prob) for language in detect()]
    except LangDetectException as error:
        return ("refused", error.code)


def _langdetect(factory: DetectorFactory, text: str) -> object:
    def detect():
        detector = factory.create()
        detector.append(text)
        return detector.get_probabilities()
    return _answer(detect)


def _corpus_texts() -> List[str]:
    """language_text of every story of the corpora, seeds/ and a generated
    corpus (title, summary and content joined, as the language stage reads
    them), and each field alone."""
    texts = set()
    for stories in stories_by_document():
        for story in stories:
            texts.add(language_text(story))
            texts.update(part for part in (story.title, story.summary, story.content) if part)
    return sorted(texts)


def test_the_matrix_holds_langdetect_s_profiles_exactly(reference, fast):
    assert fast.langlist == reference.langlist
    assert fast.rows.keys() == reference.word_lang_prob_map.keys()
    for word, weights in reference.word_lang_prob_map.items():
        assert fast.weights(word) == weights, word


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_edge_texts_get_langdetect_s_answer(reference, fast, text):
    assert _answer(lambda: fast.probabilities(text)) == _langdetect(reference, text)


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_the_ngrams_are_langdetect_s(reference, fast, text):
    detector = reference.create()
    detector.append(text)
    detector.cleaning_text()
    assert fast.ngrams(detector.text) == detector._extract_ngrams()


@pytest.mark.slow
def test_every_corpus_text_gets_langdetect_s_answer(reference, fast):
    texts = _corpus_texts()
    assert len(texts) > (3000 if CORPORA.is_dir() else 500)
    different = [text[:80] for text in texts
                 if _answer(lambda: fast.probabilities(text)) != _langdetect(reference, text)]
    assert different == []
    uncleaned = []
    for text in texts:
        detector = reference.create()
        detector.append(text)
        detector.cleaning_text()
        if cleaned_text(text) != detector.text:
            uncleaned.append(text[:80])
    assert uncleaned == []


def test_another_seed_draws_as_langdetect_does_with_it():
    text = "Nordkorea feuert Rakete ab; Japan protestiert scharf gegen den Test"
    factory = _reference_factory()
    factory.seed = 11
    assert _answer(lambda: FastDetector(seed=11).probabilities(text)) == _langdetect(factory, text)


def test_a_factory_seeds_every_detection_afresh(fast):
    text = "Nordkorea feuert Rakete ab; Japan protestiert scharf gegen den Test"
    first = _answer(lambda: fast.probabilities(text))
    fast.probabilities("Another text altogether, in English, to move any state")
    assert _answer(lambda: fast.probabilities(text)) == first


def test_the_stage_s_detection_uses_it():
    assert shared_detector() is shared_detector()
    assert detect_language("North Korea fired a ballistic missile into the sea, Seoul said.",
                           load_detector()) == "en"
    assert detect_language("too short", load_detector()) == UNDETERMINED


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_the_cleaned_text_is_langdetect_s(reference, text):
    detector = reference.create()
    detector.append(text)
    detector.cleaning_text()
    assert cleaned_text(text) == detector.text


def test_the_memos_stay_bounded_and_change_no_answer(reference, monkeypatch):
    import transforms.langdetect_fast as module

    monkeypatch.setattr(module, "WORD_MEMO", 5)
    monkeypatch.setattr(module, "CHAR_MEMO", 8)
    monkeypatch.setattr(module, "_NORMALISED", module._Normalised())
    fast = FastDetector()
    long_word = "北朝鮮が弾道ミサイルを発射日本海に落下か韓国軍合同参謀本部"
    for text in [*EDGE_TEXTS, long_word]:
        detector = reference.create()
        detector.append(text)
        detector.cleaning_text()
        assert fast.ngrams(detector.text) == detector._extract_ngrams()
        assert len(module._NORMALISED) <= 8 and len(fast._words) <= 5
    assert module._NORMALISED and fast._words
    assert max(map(len, fast._words)) <= module.MEMO_WORD_CHARS < len(long_word)   # a clause is not remembered
    assert fast.ngrams(long_word) == fast.ngrams(long_word)
