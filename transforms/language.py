"""Language stage: ISO 639-1 code of each kept story, with langdetect.

Runs after dedup and topic matching (detection costs ~2.5 ms a call), on a
detector factory of our own that is seeded, so the same text always gets the
same answer. A story whose topic rules needed its language (`language:ko`)
arrives with it already detected, by the same function, and keeps it.
"""
from __future__ import annotations

import re

import apache_beam as beam

from transforms import metrics
from transforms.records import Story

UNDETERMINED = "und"
MIN_LETTERS = 12        # below this langdetect guesses at random
MIN_PROBABILITY = 0.50  # below this the text is mixed or undecidable
MAX_CHARS = 2000        # the first paragraphs decide; more only costs time
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def load_detector_factory(seed: int = 0):
    """A langdetect factory with all profiles loaded (~0.5 s: call once per worker)."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = seed  # per factory, not the library-wide class attribute
    return factory


_FACTORIES: dict = {}


def shared_detector_factory(seed: int = 0):
    """load_detector_factory's factory, loaded once per process and seed:
    a process that runs many pipelines (`newswatch retag`, a replay per
    run) loads the profiles once. The factory is read-only once loaded;
    every detection seeds its own detector from it."""
    factory = _FACTORIES.get(seed)
    if factory is None:
        factory = _FACTORIES[seed] = load_detector_factory(seed)
    return factory


def language_text(story: Story) -> str:
    return " ".join(part for part in (story.title, story.summary, story.content) if part)[:MAX_CHARS]


def detect_language(text: str, factory) -> str:
    """ISO 639-1 code of `text`, or "und" when too short or undecidable."""
    from langdetect.lang_detect_exception import LangDetectException

    if len(_LETTER.findall(text)) < MIN_LETTERS:
        return UNDETERMINED
    detector = factory.create()
    detector.append(text)
    try:
        best = detector.get_probabilities()
    except LangDetectException:
        return UNDETERMINED
    if not best or best[0].prob < MIN_PROBABILITY:
        return UNDETERMINED
    # langdetect says zh-cn / zh-tw; the column holds ISO 639-1 codes.
    return best[0].lang.split("-")[0]


class _DetectLanguageFn(beam.DoFn):
    def __init__(self):
        self._factory = None

    def setup(self):
        self._factory = shared_detector_factory()  # ~0.5 s, once per process

    def process(self, story: Story):
        language = story.language or detect_language(language_text(story), self._factory)
        metrics.counter(f"language_{language}").inc()
        yield story.replace(language=language)


class DetectLanguage(beam.PTransform):
    """PCollection[Story] -> PCollection[Story] with `language` set."""

    def expand(self, stories):
        return stories | "Detect" >> beam.ParDo(_DetectLanguageFn())
