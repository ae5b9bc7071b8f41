"""The plain-Python baseline: the work of the pipeline in one loop, as a user
would write it without Beam.

Same feed list, same fetch code (a thread pool of the same size, since nobody
fetches thousands of feeds one at a time), the same parsing, identity and dedup
rules (dedup_stories is the in-memory twin of DedupStories), the same topic
matcher, langdetect on the kept stories only, the same syndication clusters
(sketched at parse, assign_clusters is the in-memory twin of AssignClusters),
one pyarrow write of the stories, and the entry archive the pipeline writes
by default: every parsed entry with its text, one file per UTC fetch date,
with the archive's columns, compression and row groups.

    python -m benchmarks.baseline --feeds FEEDS --topics TOPICS --output OUT [--parser auto]

`--parser auto` is the `baseline-fast` contestant of `make bench`: the same
loop with the fast parse path (transforms/fast_parse.py).

Prints one JSON line: entries, duplicates, unmatched, written, archived,
failed feeds.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import local
from pipeline.config import load_feed_list, load_topic_definitions
from transforms.cluster import assign_clusters
from transforms.dedup import dedup_stories
from transforms.fast_parse import PARSERS
from transforms.fetch import fetch_feed
from transforms.language import detect_language, language_text, load_detector
from transforms.parse import parse_fetch
from transforms.schema import STORIES_SCHEMA, partition_date
from transforms.sink import ENTRIES, ROW_GROUP_ROWS, records_to_batch, to_row
from transforms.topics import TopicMatcher, tag_story


def run(feeds_path: str, topics_path: str, output: str, run_id: str = "baseline",
        concurrency: int = 32, parser: str = "feedparser") -> dict:
    sources = load_feed_list(feeds_path)
    matcher = TopicMatcher(load_topic_definitions(topics_path))
    fetch = functools.partial(fetch_feed, settings=local.fetch_settings(concurrency=concurrency))
    stories, failed, bad_entries = [], 0, 0
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        # A few rounds of fetches in flight at a time, so bodies do not pile up.
        step = 4 * concurrency
        for start in range(0, len(sources), step):
            for fetched in pool.map(fetch, sources[start:start + step]):
                parsed = parse_fetch(fetched, run_id, parser=parser)
                failed += not parsed.ok
                bad_entries += sum(1 for d in parsed.dead_letters if d.stage == "parse_entry")
                stories.extend(parsed.stories)
    entries = len(stories) + bad_entries
    os.makedirs(output, exist_ok=True)
    archived = write_archive(stories, output)
    kept, duplicates = dedup_stories(stories)
    del stories
    detector = load_detector()

    def detect(story):
        return detect_language(language_text(story), detector)

    matched = []
    for story in kept:
        # As MatchTopics: rules with `language:` conditions may detect early.
        tagged = tag_story(story, matcher, detect if matcher.needs_language else None)
        if tagged is not None:
            tagged.language = tagged.language or detect(tagged)
            matched.append(tagged)
    rows = [to_row(story, STORIES_SCHEMA) for story in assign_clusters(matched)]
    pq.write_table(pa.Table.from_pylist(rows, schema=STORIES_SCHEMA),
                   os.path.join(output, "stories.parquet"), compression="zstd")
    return {"entries": entries, "duplicates": duplicates, "unmatched": len(kept) - len(rows),
            "written": len(rows), "archived": archived, "failed_feeds": failed, "dead_letters": bad_entries}


def write_archive(stories, output: str) -> int:
    """Every parsed entry as the pipeline's entry archive keeps it (its
    columns, zstd at its level, its row groups), one file per UTC fetch date
    in OUT/entries/date=<date>/, rows in parse order, one row group in
    memory at a time; returns the rows written."""
    by_date = {}
    for story in stories:
        by_date.setdefault(partition_date(story.fetched_at), []).append(story)
    for date, group in sorted(by_date.items()):
        folder = os.path.join(output, ENTRIES.name, f"date={date}")
        os.makedirs(folder, exist_ok=True)
        with pq.ParquetWriter(os.path.join(folder, "baseline.parquet"), ENTRIES.schema, compression="zstd",
                              compression_level=ENTRIES.compression_level) as writer:
            for start in range(0, len(group), ROW_GROUP_ROWS):
                writer.write_batch(records_to_batch(group[start:start + ROW_GROUP_ROWS], ENTRIES.schema))
    return len(stories)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", required=True)
    parser.add_argument("--topics", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--parser", choices=PARSERS, default="feedparser",
                        help="feedparser alone (default), or auto: the fast path, feedparser behind it")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.feeds, args.topics, args.output, parser=args.parser)))


if __name__ == "__main__":
    main()
