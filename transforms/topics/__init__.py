"""Topics stage: keep the stories that match the topic rules, and say why.

The pure core lives in the modules beside this one: `text` (normalisation),
`query` (the query language), `rules` (named topics, references, version
hash), `matcher` (all topics against one story), `scan` (the field scans
the matcher reads text with: pure Python, and Hyperscan where it installs)
and `repeats` (one match for the copies of a story a worker tags).
This module adds tag_story, which applies the matcher to a Story, and the
thin Beam wrappers: TagTopics (before dedup) and KeepMatched (after it), or
both as MatchTopics.

`language:` conditions need the story's language, which the pipeline detects
after matching (about a millisecond a story). The matcher asks for it
only when a topic's other conditions leave the answer open; tag_story then
detects it on the spot and keeps it on the story, so DetectLanguage does not
run twice. Rules without `language:` never trigger detection here.
"""
from __future__ import annotations

import logging

from typing import Callable, Iterable, Optional, Tuple

import apache_beam as beam

from transforms import metrics, unmatched
from transforms.records import Match, Story
from transforms.topics.matcher import TopicMatcher
from transforms.topics.query import (
    And,
    AtLeast,
    Except,
    LanguageIs,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    SourceIs,
    Term,
    TopicRef,
    parse_query,
)
from transforms.topics.repeats import RepeatMemo, match_inputs
from transforms.topics.rules import (
    Topic,
    TopicDef,
    TopicError,
    as_topic,
    compile_rules,
    compile_topics,
    topics_version,
)
from transforms.topics.text import fold_accents, normalize, tokenize

__all__ = [
    "And", "AtLeast", "Except", "KeepMatched", "LanguageIs", "Match", "MatchTopics", "Near", "Node", "Not", "Or",
    "QuerySyntaxError", "SourceIs", "StoryTagger", "TagTopics", "Term", "Topic", "TopicError", "TopicMatcher",
    "TopicRef",
    "compile_rules", "compile_topics", "fold_accents", "normalize", "parse_query", "tag_story",
    "tokenize", "topics_version", "without_text",
]


def tag_story(story: Story, matcher: TopicMatcher,
              detect_language: Optional[Callable[[Story], str]] = None) -> Optional[Story]:
    """The story with topics, matched_terms, matches and topics_version set,
    or None if no topic matched.

    `detect_language(story)` is called at most once, and only when a
    `language:` condition needs a language the story does not have yet.
    """
    return with_matches(story, *match_story(story, matcher, detect_language), matcher.version)


def match_story(story: Story, matcher: TopicMatcher,
                detect_language: Optional[Callable[[Story], str]] = None) -> Tuple[list, Optional[str]]:
    """(the matcher's answer: each matching topic with its matches, the
    language detected on the way or None): what tag_story sets, before it
    is set on the story."""
    detected = []

    def language() -> Optional[str]:
        if story.language or detect_language is None:
            return story.language
        detected.append(detect_language(story))
        return detected[0]

    found = matcher.match(story.title, story.summary, story.content,
                          source=story.source, language=language)
    return found, (detected[0] if detected else None)


def with_matches(story: Story, found: list, detected: Optional[str], version: str) -> Optional[Story]:
    """The story with match_story's answer set, or None if no topic matched."""
    if not found:
        return None
    matches = [m for _, topic_matches in found for m in topic_matches]
    changes = dict(
        topics=[name for name, _ in found],
        matched_terms=sorted({m.term for m in matches}),
        matches=matches,
        topics_version=version,
    )
    if detected:
        changes["language"] = detected
    return story.replace(**changes)


def without_text(story: Story) -> Story:
    """A story no topic matched, cut down to what dedup and SeenBefore need
    of it.

    Topics are matched before dedup so that the ~95 % of stories no topic
    wants do not carry their text through dedup, where every story waits
    for the set of winners (most of the pipeline's memory). Such a story is still
    needed there: it may be the preferred copy of a story whose later copy
    matched, and it may have been written by an earlier run. Its identities
    (ids, URLs, guid, content hash, preference, seen keys) stay; its text,
    sketch and names go, except a one-character stub that keeps "has text"
    true, which decides whether it has a text identity (identity.dedup_keys).
    """
    stub = (story.title or story.summary or story.content)[:1]
    return story.replace(title="", summary=stub, content="", authors=[], tags=[], feed_title=None,
                         source=None, sketch=None)


class StoryTagger:
    """What TagTopics does to one story, outside Beam as well (`newswatch
    retag` tags a whole run's stories before its replay): the story tagged,
    or, when no topic matched, cut down by without_text (unless
    `cut_unmatched` is off). Built once per worker: it compiles the rules
    and, when a rule has a `language:` condition, loads the language
    profiles. A story whose inputs to the matcher it matched lately (text;
    site and language where rules read them) is given the same answer
    without matching it again (`repeats`); the language a rule needed
    counts in `rules_language_detections` for it as well."""

    def __init__(self, topics: tuple, cut_unmatched: bool = True):
        self.matcher = TopicMatcher(topics)
        self.cut_unmatched = cut_unmatched
        self.repeats = RepeatMemo()
        self._detect = None
        if self.matcher.needs_language:
            from transforms.language import detect_language, language_text, shared_detector

            detector = shared_detector()
            self._detections = metrics.counter("rules_language_detections")

            def detect(story: Story) -> str:
                return detect_language(language_text(story), detector)

            self._detect = detect

    def __call__(self, story: Story) -> Story:
        key = match_inputs(story, self.matcher.needs_source, self.matcher.needs_language)
        answer = self.repeats.get(key)
        if answer is None:
            answer = match_story(story, self.matcher, self._detect)
            self.repeats.put(key, answer)
        if answer[1] is not None:   # a rule needed the story's language: detected now, or for its copy
            self._detections.inc()
        tagged = with_matches(story, *answer, self.matcher.version)
        if tagged is not None:
            return tagged
        return without_text(story) if self.cut_unmatched else story


class _TagTopicsFn(beam.DoFn):
    def __init__(self, topics: tuple, cut_unmatched: bool):
        self._topics = topics  # plain dataclasses pickle small and safely
        self._cut_unmatched = cut_unmatched
        self._tagger: Optional[StoryTagger] = None

    def setup(self):
        self._tagger = StoryTagger(self._topics, self._cut_unmatched)
        logging.getLogger(__name__).info("topic matcher: %d topics, %s scan", len(self._topics),
                                         self._tagger.matcher.engine)

    def process(self, story: Story):
        yield self._tagger(story)


class _KeepMatchedFn(beam.DoFn):
    def __init__(self, names: tuple):
        self._names = names

    def setup(self):
        self._matched = metrics.counter("matched")
        self._unmatched = metrics.counter("unmatched")
        self._per_topic = {name: metrics.counter(f"matched_topic_{name}") for name in self._names}

    def start_bundle(self):
        self._unmatched_in_bundle = 0

    def process(self, story):
        if unmatched.is_unmatched(story) or not story.topics:
            self._unmatched_in_bundle += 1   # most stories: one metrics call a bundle, not one each
            return
        self._matched.inc()
        for name in story.topics:
            self._per_topic[name].inc()
        yield story

    def finish_bundle(self):
        if self._unmatched_in_bundle:
            self._unmatched.inc(self._unmatched_in_bundle)


class TagTopics(beam.PTransform):
    """PCollection[Story] -> PCollection[Story], every story: those matching
    a topic get `topics` (sorted names), `matched_terms` (distinct terms as
    written in the rules), `matches` (topic, term, field, offset) and
    `topics_version`; the others have no topics and lose their text
    (`without_text`), unless `cut_unmatched` is off: the pipeline's
    DedupStories(compact_unmatched=True), fused right after, replaces them
    with their unmatched records, so a cut-down copy would be thrown away.
    Topics are validated here, so a bad rule fails while the graph is
    built, before any work.
    """

    def __init__(self, topics: Iterable[TopicDef], cut_unmatched: bool = True, label: Optional[str] = None):
        super().__init__(label)
        self.topics = tuple(as_topic(t) for t in topics)
        self.version = topics_version(compile_rules(self.topics))
        self.cut_unmatched = cut_unmatched

    def expand(self, stories):
        return stories | "Tag" >> beam.ParDo(_TagTopicsFn(self.topics, self.cut_unmatched))


class KeepMatched(beam.PTransform):
    """PCollection[Story or unmatched record] -> the stories TagTopics gave
    a topic. Counts `matched`, `unmatched` and `matched_topic_<name>`."""

    def __init__(self, topics: Iterable[TopicDef], label: Optional[str] = None):
        super().__init__(label)
        self.names = tuple(as_topic(t).name for t in topics)

    def expand(self, stories):
        return stories | "Keep" >> beam.ParDo(_KeepMatchedFn(self.names))


class MatchTopics(beam.PTransform):
    """PCollection[Story] -> PCollection[Story] matching at least one topic
    (TagTopics then KeepMatched; the pipeline puts dedup between the two)."""

    def __init__(self, topics: Iterable[TopicDef], label: Optional[str] = None):
        super().__init__(label)
        self._tag = TagTopics(topics)
        self.topics, self.version = self._tag.topics, self._tag.version

    def expand(self, stories):
        return stories | "TagTopics" >> self._tag | "KeepMatched" >> KeepMatched(self._tag.topics)
