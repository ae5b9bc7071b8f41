"""Graph assembly: the one function that wires the stages together.

Batch and streaming runs differ in their source of FetchResults (the feed
list fetched once, or polled on every tick with per-feed state in Beam) and
in how often they commit what they wrote to the state files under _state/
(once at the end of a batch run; every output window in a streaming job,
which also remembers what it wrote in keyed state with a TTL). Both start
from the same state (SeenBefore), and every stage in between is the same
transform.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, Optional, Tuple

import apache_beam as beam
from apache_beam.transforms import window
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from transforms import phases
from transforms.archive import ArchiveEntries
from transforms.cluster import AssignClusters, cluster_records
from transforms.dedup import DedupAcrossPolls, DedupStories, OncePerTTL
from transforms.feedstate import FeedState, Politeness
from transforms.fetch import FetchFeeds, FetchSettings
from transforms.hosts import HostPoliteness
from transforms.language import DetectLanguage
from transforms.parse import DEAD_LETTERS, FETCH_LOG, ParseFeeds
from transforms.poll import PollFeeds
from transforms.records import FeedSource
from transforms.seen import REFRESH, SeenBefore, seen_records
from transforms.sink import ERRORS, FETCHES, STORIES, WritePartitions
from transforms.state.commit import CommitState, CommitWindows
from transforms.state.lease import LeaseHandle
from transforms.state.store import DEFAULT_LOOKBACK_DAYS, SeenRecord
from transforms.topics import KeepMatched, TagTopics, Topic
from transforms.windowing import arrival_windows


@dataclass(frozen=True)
class StreamingSettings:
    """How a streaming run polls, remembers and windows."""

    poll_interval_s: float = 300.0
    duration_s: Optional[float] = None        # None: until the job is stopped
    window_s: float = 300.0                   # FixedWindows of arrival time: output files, commits
    dedup_ttl_s: float = 7 * 24 * 3600.0      # how long keyed state remembers a written story
    hosts: HostPoliteness = field(default_factory=HostPoliteness)   # per-host limits of polling


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the Beam options; validated before use."""

    feeds: Tuple[FeedSource, ...]
    topics: Tuple[Topic, ...]
    output: str
    run_id: str
    fetch: FetchSettings = field(default_factory=FetchSettings)
    shards: int = 1
    archive_shards: int = 1   # files per date partition of the entry archive
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    lookback: timedelta = timedelta(days=DEFAULT_LOOKBACK_DAYS)
    politeness: Politeness = field(default_factory=Politeness)
    # What earlier runs left for each feed (feed URL -> FeedState).
    feed_states: Tuple[Tuple[str, FeedState], ...] = ()
    streaming: Optional[StreamingSettings] = None
    # The output's lease held for this run: checked before every commit,
    # renewed on streaming ticks, released by the commit when nobody waits.
    lease: Optional[LeaseHandle] = None
    release_lease: bool = False
    # Syndication clusters (transforms/cluster.py); off: cluster_id and cluster_size are null.
    clusters: bool = True
    # The entry archive (transforms/archive.py): "full", "none" (identities
    # only), or None when the run keeps no archive (--no-archive).
    archive_text: Optional[str] = "full"
    # The topics file as given, stored under OUT/_rules/ before the run
    # (transforms/rules_archive.py); empty: the topics came from code.
    topics_file: bytes = b""
    # transforms.parse.PARSERS: "auto" (the fast path, feedparser behind it) or "feedparser".
    parser: str = "auto"


def build_graph(fetched: beam.PCollection, config: RunConfig) -> Dict[str, beam.PCollection]:
    """Parse -> Tag topics -> Dedup -> Seen before [-> Dedup across polls] ->
    Keep matched -> Language -> Clusters -> Parquet; then the state of what was written,
    committed once every file it vouches for is written: once at the end in
    batch, for every window in streaming.

    `fetched` is a PCollection[FetchResult]; returns the written-file
    PCollections and `state` (the committed run id, or window units).
    """
    streaming = config.streaming
    if phases.pause_requested(phases.FETCH):
        fetched = fetched | "PauseAfterFetch" >> beam.Map(phases.passing(phases.FETCH))
    parsed = fetched | "Parse" >> ParseFeeds(config.run_id, sketch=config.clusters, parser=config.parser)
    fetch_log, dead_letters = parsed[FETCH_LOG], parsed[DEAD_LETTERS]
    if phases.pause_requested(phases.PARSE):
        fetch_log = fetch_log | "PauseAfterParse" >> beam.Map(phases.passing(phases.PARSE))
    if streaming:
        # Files by arrival (the poll tick each element carries), partitions
        # by publication (sink.py): see transforms/windowing.py.
        fetch_log = fetch_log | "FetchWindows" >> arrival_windows(streaming.window_s)
        dead_letters = dead_letters | "ErrorWindows" >> arrival_windows(streaming.window_s)
    entries = parsed.stories
    if streaming:
        entries = entries | "EntryWindows" >> arrival_windows(streaming.window_s)
    written = {
        "fetches": fetch_log | "WriteFetches" >> WritePartitions(
            config.output, FETCHES, config.run_id, lease=config.lease),
        "errors": dead_letters | "WriteErrors" >> WritePartitions(
            config.output, ERRORS, config.run_id, lease=config.lease),
    }
    if config.archive_text is not None:
        # Every parsed entry, before dedup and matching drop any (retag reads it).
        written["entries"] = entries | "ArchiveEntries" >> ArchiveEntries(
            config.output, config.run_id, config.archive_text, config.archive_shards,
            lease=config.lease)
    feed_states = fetched | "FeedStates" >> beam.Map(lambda r: (r.feed_url, r.feed_state))
    return build_story_stages(parsed.stories, config, feed_states, written)


def build_story_stages(parsed: beam.PCollection, config: RunConfig, feed_states: beam.PCollection,
                       written: Dict[str, beam.PCollection], prepared: bool = False) -> Dict[str, beam.PCollection]:
    """The stages after parse, for a live run and for `newswatch retag`
    (pipeline/retag.py), which replays archived entries through them:
    Tag topics -> Dedup -> Seen before [-> Dedup across polls] -> Keep
    matched -> Language -> Clusters -> stories/ under config.output; then
    the state commit under config.output/_state (seen and cluster records,
    and `feed_states`), once the story files and every PCollection of files
    in `written` are written.

    `parsed` is a PCollection[Story] as the parse stage gives it (sketched
    unless clusters are off); with `prepared` (batch only), the stories are
    already tagged and deduplicated within the run (retag's preparation:
    topics.StoryTagger, then dedup.dedup_stories) and the stages start at
    SeenBefore. Returns `written` with "stories" and "state" added.
    """
    streaming = config.streaming
    if prepared:
        if streaming:
            raise ValueError("prepared stories are replayed as batch steps")
        deduped = parsed
    else:
        # Tagged before dedup so unmatched stories cross dedup as their
        # identities only (transforms/unmatched.py); dropped after it, so which
        # copy of a story is kept, and the counts by reason, are as if matching
        # came after dedup.
        tagged = parsed | "TagTopics" >> TagTopics(config.topics, cut_unmatched=False)
        if streaming:
            # Within one poll the preferred copy wins (as in batch).
            tagged = tagged | "PerPoll" >> beam.WindowInto(window.FixedWindows(streaming.poll_interval_s))
        deduped = tagged | "Dedup" >> DedupStories(compact_unmatched=True)
    # What committed runs and windows wrote (within the lookback) is loaded
    # once per worker: a streaming job starts from what earlier jobs and
    # batch runs wrote, as a batch run does.
    fresh = deduped | "SeenBefore" >> SeenBefore(config.output, config.run_id, config.started_at, config.lookback)
    new = fresh.new
    if streaming:
        # Across polls of this job, keyed state remembers what was written for the TTL.
        new = (new
               | "Global" >> beam.WindowInto(window.GlobalWindows())
               | "DedupAcrossPolls" >> DedupAcrossPolls(streaming.dedup_ttl_s))
    stories = (
        new
        | "KeepMatched" >> KeepMatched(config.topics)
        | "DetectLanguage" >> DetectLanguage()
    )
    if streaming:
        stories = stories | "StoryWindows" >> arrival_windows(streaming.window_s)
    if config.clusters:
        stories = stories | "Clusters" >> AssignClusters(
            config.output, config.run_id, config.started_at, config.lookback,
            ttl_s=streaming.dedup_ttl_s if streaming else None)
        if streaming:  # clustered in the global window, after the job's earlier windows
            stories = stories | "ClusteredWindows" >> arrival_windows(streaming.window_s)
    written = {
        "stories": stories | "WriteStories" >> WritePartitions(
            config.output, STORIES, config.run_id, config.shards, lease=config.lease),
        **written,
    }
    refresh = fresh[REFRESH]
    if streaming:
        # The state loaded at start does not change while the job runs, so a
        # long-lived item would ask for its refresh on every poll: once per TTL.
        refresh = (refresh
                   | "RefreshGlobal" >> beam.WindowInto(window.GlobalWindows())
                   | "RefreshKey" >> beam.Map(lambda r: (r.key.hex(), r)).with_output_types(Tuple[str, SeenRecord])
                   | "RefreshOnce" >> OncePerTTL(streaming.dedup_ttl_s, "seen_refresh_repeats",
                                                 "seen_refresh_forgotten")
                   | "RefreshWindows" >> arrival_windows(streaming.window_s))
    remembered = (
        (stories | "SeenRecords" >> beam.FlatMap(seen_records), refresh)
        | "AllSeenRecords" >> beam.Flatten()
    )
    clusters = stories | "ClusterRecords" >> beam.FlatMap(cluster_records)
    if streaming:
        written["state"] = (remembered, feed_states, clusters) | "CommitWindows" >> CommitWindows(
            config.output, config.run_id, config.lookback,
            windowing=arrival_windows(streaming.window_s), after=list(written.values()),
            lease=config.lease)
        return written
    written["state"] = (remembered, feed_states, clusters) | "CommitState" >> CommitState(
        config.output, config.run_id, config.started_at, config.lookback,
        after=list(written.values()), lease=config.lease, release_lease=config.release_lease)
    return written


def build_batch_pipeline(pipeline: beam.Pipeline, config: RunConfig) -> Dict[str, beam.PCollection]:
    """A batch run: the feed list is read once, each feed with its remembered state."""
    states = dict(config.feed_states)
    feeds = pipeline | "FeedList" >> beam.Create(
        [(feed, states.get(feed.url, FeedState())) for feed in config.feeds])
    fetched = feeds | "Fetch" >> FetchFeeds(config.fetch, config.politeness)
    return build_graph(fetched, config)


def build_streaming_pipeline(pipeline: beam.Pipeline, config: RunConfig) -> Dict[str, beam.PCollection]:
    """A streaming run: the feed list polled every poll interval, from the
    run's start until its duration (if any) has passed."""
    streaming = config.streaming
    start = config.started_at.timestamp()
    stop = start + streaming.duration_s if streaming.duration_s is not None else MAX_TIMESTAMP
    fetched = pipeline | "Poll" >> PollFeeds(
        config.feeds, start, stop, streaming.poll_interval_s, config.fetch, config.politeness,
        initial=config.feed_states, hosts=streaming.hosts, lease=config.lease)
    return build_graph(fetched, config)
