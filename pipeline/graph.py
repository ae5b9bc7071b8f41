"""Graph assembly: the one function that wires the stages together.

Batch and (later) streaming runs differ only in the source of FeedSource
elements handed in; every stage after it is the same transform.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import apache_beam as beam

from transforms.dedup import DedupStories
from transforms.fetch import FetchFeeds, FetchSettings
from transforms.language import DetectLanguage
from transforms.parse import DEAD_LETTERS, FETCH_LOG, ParseFeeds
from transforms.records import FeedSource
from transforms.sink import ERRORS, FETCHES, STORIES, WritePartitions
from transforms.topics import MatchTopics, Topic


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the Beam options; validated before use."""

    feeds: Tuple[FeedSource, ...]
    topics: Tuple[Topic, ...]
    output: str
    run_id: str
    fetch: FetchSettings = field(default_factory=FetchSettings)
    shards: int = 1


def build_graph(feeds: beam.PCollection, config: RunConfig) -> Dict[str, beam.PCollection]:
    """Fetch -> Parse -> Dedup -> Match topics -> Language -> Parquet.

    `feeds` is a PCollection[FeedSource]; returns the written-file PCollections.
    """
    fetched = feeds | "Fetch" >> FetchFeeds(config.fetch)
    parsed = fetched | "Parse" >> ParseFeeds(config.run_id)
    stories = (
        parsed.stories
        | "Dedup" >> DedupStories()
        | "MatchTopics" >> MatchTopics(list(config.topics))
        | "DetectLanguage" >> DetectLanguage()
    )
    return {
        "stories": stories | "WriteStories" >> WritePartitions(
            config.output, STORIES, config.run_id, config.shards),
        "fetches": parsed[FETCH_LOG] | "WriteFetches" >> WritePartitions(
            config.output, FETCHES, config.run_id),
        "errors": parsed[DEAD_LETTERS] | "WriteErrors" >> WritePartitions(
            config.output, ERRORS, config.run_id),
    }


def build_batch_pipeline(pipeline: beam.Pipeline, config: RunConfig) -> Dict[str, beam.PCollection]:
    """A batch run: the feed list is read once."""
    feeds = pipeline | "FeedList" >> beam.Create(list(config.feeds))
    return build_graph(feeds, config)
