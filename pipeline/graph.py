"""Graph assembly: the one function that wires the stages together.

Batch and (later) streaming runs differ only in the source of (FeedSource,
FeedState) elements handed in; every stage after it is the same transform.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, Tuple

import apache_beam as beam

from transforms.dedup import DedupStories
from transforms.feedstate import FeedState, Politeness
from transforms.fetch import FetchFeeds, FetchSettings
from transforms.language import DetectLanguage
from transforms.parse import DEAD_LETTERS, FETCH_LOG, ParseFeeds
from transforms.records import FeedSource
from transforms.seen import REFRESH, SeenBefore, seen_records
from transforms.sink import ERRORS, FETCHES, STORIES, WritePartitions
from transforms.state import DEFAULT_LOOKBACK_DAYS, CommitState
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
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    lookback: timedelta = timedelta(days=DEFAULT_LOOKBACK_DAYS)
    politeness: Politeness = field(default_factory=Politeness)
    # What earlier runs left for each feed (feed URL -> FeedState).
    feed_states: Tuple[Tuple[str, FeedState], ...] = ()


def build_graph(feeds: beam.PCollection, config: RunConfig) -> Dict[str, beam.PCollection]:
    """Fetch -> Parse -> Dedup -> Seen before -> Match topics -> Language -> Parquet,
    then the run's state, committed once every file is written.

    `feeds` is a PCollection[(FeedSource, FeedState)]; returns the written-file
    PCollections and `state` (the run id, once committed).
    """
    fetched = feeds | "Fetch" >> FetchFeeds(config.fetch, config.politeness)
    parsed = fetched | "Parse" >> ParseFeeds(config.run_id)
    fresh = (
        parsed.stories
        | "Dedup" >> DedupStories()
        | "SeenBefore" >> SeenBefore(config.output, config.run_id, config.started_at, config.lookback)
    )
    stories = (
        fresh.new
        | "MatchTopics" >> MatchTopics(list(config.topics))
        | "DetectLanguage" >> DetectLanguage()
    )
    written = {
        "stories": stories | "WriteStories" >> WritePartitions(
            config.output, STORIES, config.run_id, config.shards),
        "fetches": parsed[FETCH_LOG] | "WriteFetches" >> WritePartitions(
            config.output, FETCHES, config.run_id),
        "errors": parsed[DEAD_LETTERS] | "WriteErrors" >> WritePartitions(
            config.output, ERRORS, config.run_id),
    }
    remembered = (
        (stories | "SeenRecords" >> beam.FlatMap(seen_records), fresh[REFRESH])
        | "AllSeenRecords" >> beam.Flatten()
    )
    feed_states = fetched | "FeedStates" >> beam.Map(lambda r: (r.feed_url, r.feed_state))
    written["state"] = (remembered, feed_states) | "CommitState" >> CommitState(
        config.output, config.run_id, config.started_at, config.lookback,
        after=list(written.values()))
    return written


def build_batch_pipeline(pipeline: beam.Pipeline, config: RunConfig) -> Dict[str, beam.PCollection]:
    """A batch run: the feed list is read once, each feed with its remembered state."""
    states = dict(config.feed_states)
    feeds = pipeline | "FeedList" >> beam.Create(
        [(feed, states.get(feed.url, FeedState())) for feed in config.feeds])
    return build_graph(feeds, config)
