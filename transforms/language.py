"""Language stage: ISO 639-1 code of each kept story, with langdetect.

Runs after dedup and topic matching (detection costs about a millisecond a
story), with langdetect's method and profiles (transforms/langdetect_fast.py:
the same answers, faster), seeded, so the same text always gets the same
answer. A story whose topic rules needed its language (`language:ko`)
arrives with it already detected, by the same function, and keeps it.
"""
from __future__ import annotations

import re

import apache_beam as beam
from langdetect.lang_detect_exception import LangDetectException

from transforms import metrics
from transforms.langdetect_fast import FastDetector
from transforms.records import Story

UNDETERMINED = "und"
MIN_LETTERS = 12        # below this langdetect guesses at random
MIN_PROBABILITY = 0.50  # below this the text is mixed or undecidable
MAX_CHARS = 2000        # the first paragraphs decide; more only costs time
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def load_detector(seed: int = 0) -> FastDetector:
    """langdetect's detector with all its profiles loaded (~0.3 s, ~60 MB:
    call once per process), seeded."""
    return FastDetector(seed)


_DETECTORS: dict = {}


def shared_detector(seed: int = 0) -> FastDetector:
    """load_detector's detector, loaded once per process and seed: a
    process that runs many pipelines (`newswatch retag`, a replay per run)
    loads the profiles once. Its only state after loading is a memo of
    words' n-grams; every detection seeds its own random draws."""
    detector = _DETECTORS.get(seed)
    if detector is None:
        detector = _DETECTORS[seed] = load_detector(seed)
    return detector


def language_text(story: Story) -> str:
    return " ".join(part for part in (story.title, story.summary, story.content) if part)[:MAX_CHARS]


def detect_language(text: str, detector: FastDetector) -> str:
    """ISO 639-1 code of `text`, or "und" when too short or undecidable."""
    if len(_LETTER.findall(text)) < MIN_LETTERS:
        return UNDETERMINED
    try:
        best = detector.probabilities(text)
    except LangDetectException:
        return UNDETERMINED
    if not best or best[0].prob < MIN_PROBABILITY:
        return UNDETERMINED
    # langdetect says zh-cn / zh-tw; the column holds ISO 639-1 codes.
    return best[0].lang.split("-")[0]


class _DetectLanguageFn(beam.DoFn):
    def __init__(self):
        self._detector = None

    def setup(self):
        self._detector = shared_detector()  # once per process

    def process(self, story: Story):
        language = story.language or detect_language(language_text(story), self._detector)
        metrics.counter(f"language_{language}").inc()
        yield story.replace(language=language)


class DetectLanguage(beam.PTransform):
    """PCollection[Story] -> PCollection[Story] with `language` set."""

    def expand(self, stories):
        return stories | "Detect" >> beam.ParDo(_DetectLanguageFn())
