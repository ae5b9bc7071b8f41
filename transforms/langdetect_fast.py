"""langdetect's detection, faster, with the same answers to the last bit.

langdetect (1.0.9, pinned in setup.py) spends a detection in Python loops:
over the text's characters (cleaning it, then normalising each and building
its n-grams), and over seven trials of up to a thousand steps, each step
multiplying 55 language probabilities one by one by the weights of an
n-gram drawn at random. Here the characters go through regular expressions
and str.translate, a detector remembers the n-grams of short words, and a
step is one in-place numpy multiply. What decides the answer is done the
way langdetect does it:

| step | how it stays equal |
|---|---|
| the profiles | read from langdetect's files in its order (os.listdir), each weight computed as DetectorFactory.add_profile computes it; one matrix, not a list per n-gram |
| cleaning the text | cleaned_text: Detector.append and cleaning_text as regular expressions |
| the n-grams | word_ngrams: the NGram buffer restarts after a space, so each word gives the same n-grams wherever it is; a detector remembers them for short words |
| the random draws | one `random.Random` seeded as langdetect seeds it, drawn in the same order (`gauss` per trial; per step `_randbelow(len(ngrams))`, which is what `choice` draws) |
| a step: p[i] *= weight + w[i] | the sum made once per trial for each n-gram drawn, the product element by element: the same two IEEE operations |
| normalising every fifth step | Python's `sum` over the list (numpy sums pairwise, which rounds differently), then one division per element; the largest quotient taken as max / sum (division by a positive number keeps the order) |
| averaging the trials, sorting | element by element; langdetect's `Language` and its sort |

`tests/transforms/test_langdetect_fast.py` holds it to langdetect on every
text of the corpora: the same cleaned text, n-grams, languages and
probabilities.
"""
from __future__ import annotations

import json
import os
import random
import re
from typing import Dict, List, Tuple

import numpy as np
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.language import Language
from langdetect.utils.ngram import NGram

TRIALS = 7   # Detector.n_trial, set in its __init__
_SPACES = re.compile(" {2,}")
_LATIN = re.compile("[A-z]")                  # langdetect's 'A' <= ch <= 'z', brackets and all
_FROM_U0300 = re.compile("[\u0300-\U0010ffff]")
MAX_TEXT_LENGTH = 10_000                      # Detector.max_text_length, set in its __init__


def cleaned_text(text: str) -> str:
    """What langdetect's Detector.append then cleaning_text leave of a text,
    with regular expressions where they loop over characters: URLs and
    e-mail addresses blanked, Vietnamese marks joined to their letters, the
    first 10,000 characters kept, runs of spaces made one; then, when
    characters from U+0300 up outnumber the ASCII letters more than two to
    one, those letters dropped. (Its cleaning_text also means to spare the
    Latin Extended Additional block from that count, but compares the
    block's number with its name, so it never does; nor does this.)"""
    text = NGram.normalize_vi(Detector.MAIL_RE.sub(" ", Detector.URL_RE.sub(" ", text)))
    text = _SPACES.sub(" ", text[:MAX_TEXT_LENGTH])
    if len(_LATIN.findall(text)) * 2 < len(_FROM_U0300.findall(text)):
        text = _LATIN.sub("", text)
    return text


CHAR_MEMO = 65_536     # characters normalised once per process, before it starts again
WORD_MEMO = 20_000     # words whose n-grams a detector remembers, before it starts again
MEMO_WORD_CHARS = 24   # longer "words" (a clause of Chinese or Japanese) are not remembered


class _Normalised(dict):
    """code point -> NGram.normalize of its character, for str.translate:
    each character is normalised once, not once per sighting."""

    def __missing__(self, code: int) -> str:
        if len(self) >= CHAR_MEMO:   # text made of every code point there is stays bounded
            self.clear()
        normal = self[code] = NGram.normalize(chr(code))
        return normal


_NORMALISED = _Normalised()


def word_ngrams(word: str, known) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """The known n-grams langdetect's NGram buffer gives for one normalised
    word (no spaces), and those it gives for the space after it. The buffer
    restarts after every space, so a word's n-grams do not depend on what
    came before it: after each character its 1-, 2- and 3-gram (the 3-gram
    from the word's second character on, the 2- and 3-gram reaching back to
    the space before the word), none after a capital that follows a
    capital; after the space that ends it, its last character and last two
    with that space."""
    padded = " " + word
    inside: List[str] = []
    last_upper = False
    for k, ch in enumerate(word, 1):
        upper = ch.isupper()
        if not (upper and last_upper):
            grams = (ch, padded[k - 1:k + 1], padded[k - 2:k + 1]) if k > 1 else (ch, padded[:2])
            inside.extend(gram for gram in grams if gram in known)
        last_upper = upper
    after = tuple(gram for gram in (word[-1] + " ", padded[-2:] + " ") if gram in known)
    return tuple(inside), after


def _profile_files(directory: str) -> List[str]:
    # os.listdir's order, as DetectorFactory.load_profile takes it: the
    # order of the languages, which the sums and ties depend on.
    return [os.path.join(directory, name) for name in os.listdir(directory)]


class FastDetector:
    """langdetect's profiles as one matrix (one row per n-gram, one column
    per language): `probabilities(text)` is what `factory.create();
    append(text); get_probabilities()` gives with langdetect's own
    DetectorFactory loaded from the same profiles and seed. Its numbers are
    computed as DetectorFactory.add_profile computes them. Its only state
    after loading is the memo of words' n-grams: safe to share in a process."""

    def __init__(self, seed: int = 0, directory: str = PROFILES_DIRECTORY):
        files = _profile_files(directory)
        self.seed = seed
        self.langlist: List[str] = []
        self.rows: Dict[str, int] = {}   # n-gram -> its row
        rows, columns, values = [], [], []
        for path in files:
            if os.path.basename(path).startswith(".") or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as f:
                profile = json.load(f)
            column = len(self.langlist)
            self.langlist.append(profile["name"])
            n_words = profile["n_words"]
            for word, count in profile["freq"].items():
                row = self.rows.setdefault(word, len(self.rows))
                if 1 <= len(word) <= NGram.N_GRAM:
                    rows.append(row)
                    columns.append(column)
                    values.append(1.0 * count / n_words[len(word) - 1])
        self._matrix = np.zeros((len(self.rows), len(self.langlist)))
        self._matrix[rows, columns] = values
        self._uniform = np.full(len(self.langlist), 1.0 / len(self.langlist))
        self._names = list(self.rows)    # row -> n-gram
        # normalised word -> the rows of word_ngrams (the ints held by self.rows, shared)
        self._words: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {}

    def weights(self, word: str) -> List[float]:
        """The row of one n-gram: DetectorFactory.word_lang_prob_map[word]."""
        return self._matrix[self.rows[word]].tolist()

    def ngram_rows(self, cleaned: str) -> List[int]:
        """The rows of the n-grams langdetect draws from in a cleaned text
        (cleaned_text), in its order: the text normalised as NGram
        normalises it, cut at spaces, each word's n-grams (word_ngrams,
        remembered for words of up to MEMO_WORD_CHARS characters)."""
        words = cleaned.translate(_NORMALISED).split(" ")
        out: List[int] = []
        last = len(words) - 1
        for i, word in enumerate(words):
            if not word:
                continue
            grams = self._words.get(word)
            if grams is None:
                inside, after = word_ngrams(word, self.rows)
                grams = (tuple(self.rows[g] for g in inside), tuple(self.rows[g] for g in after))
                if len(word) <= MEMO_WORD_CHARS:
                    if len(self._words) >= WORD_MEMO:
                        self._words.clear()
                    self._words[word] = grams
            out.extend(grams[0])
            if i < last:   # a space follows
                out.extend(grams[1])
        return out

    def ngrams(self, cleaned: str) -> List[str]:
        """Detector._extract_ngrams of a cleaned text."""
        return [self._names[row] for row in self.ngram_rows(cleaned)]

    def forget_words(self) -> None:
        """Empties the memo of words' n-grams."""
        self._words.clear()

    def probabilities(self, text: str) -> List[Language]:
        """langdetect's get_probabilities() of `text`: the languages above
        its threshold, most probable first. Raises LangDetectException when
        the text has no n-gram langdetect knows, as langdetect does."""
        ngrams = self.ngram_rows(cleaned_text(text))
        if not ngrams:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        return self._sorted(self._average_of_trials(ngrams))

    def _average_of_trials(self, ngrams: List[int]) -> np.ndarray:
        matrix = self._matrix
        draw = random.Random()
        draw.seed(self.seed)
        # choice(seq) is seq[_randbelow(len(seq))], without its call; _randbelow is
        # private to random, so the corpus test holds it to langdetect's draws
        below, count = draw._randbelow, len(ngrams)   # count > 0: probabilities() checks
        conv, limit = Detector.CONV_THRESHOLD, Detector.ITERATION_LIMIT
        average = np.zeros(len(self.langlist))
        for _ in range(TRIALS):
            prob = self._uniform.copy()
            alpha = Detector.ALPHA_DEFAULT + draw.gauss(0.0, 1.0) * Detector.ALPHA_WIDTH
            weight = alpha / Detector.BASE_FREQ
            factors: Dict[int, np.ndarray] = {}   # row -> weight + the row, for the n-grams drawn
            step = 0
            while True:
                row = ngrams[below(count)]
                factor = factors.get(row)
                if factor is None:
                    factor = factors[row] = weight + matrix[row]
                prob *= factor
                if step % 5 == 0:
                    values = prob.tolist()
                    total = sum(values)
                    if total == 0.0:
                        raise ZeroDivisionError("float division by zero")   # as langdetect would
                    prob /= total
                    if max(values) / total > conv or step >= limit:
                        break
                step += 1
            average += prob / TRIALS
        return average

    def _sorted(self, average: np.ndarray) -> List[Language]:
        result = [Language(lang, p) for lang, p in zip(self.langlist, average.tolist())
                  if p > Detector.PROB_THRESHOLD]
        result.sort(reverse=True)
        return result
