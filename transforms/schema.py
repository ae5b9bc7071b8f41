"""The data contract, pinned in one place: the pyarrow schema of each output.

The README documents these columns one by one; analysts rely on the names and
types. The `date` partition column comes from the folder name (Hive style) and
is not stored inside the files.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

SCHEMA_VERSION = "4"
TIMESTAMP = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.string())
MATCHES = pa.list_(pa.struct([
    pa.field("topic", pa.string()),
    pa.field("term", pa.string()),
    pa.field("field", pa.string()),
    pa.field("offset", pa.int32()),
]))


def _schema(fields, kind):
    return pa.schema(fields, metadata={b"newswatch.kind": kind.encode(),
                                       b"newswatch.schema_version": SCHEMA_VERSION.encode()})


STORIES_SCHEMA = _schema([
    pa.field("story_id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("canonical_url", pa.string()),
    pa.field("feed_link", pa.string()),
    pa.field("guid", pa.string()),
    pa.field("title", pa.string()),
    pa.field("summary", pa.string()),
    pa.field("content", pa.string()),
    pa.field("authors", STRINGS),
    pa.field("tags", STRINGS),
    pa.field("published_at", TIMESTAMP),
    pa.field("updated_at", TIMESTAMP),
    pa.field("fetched_at", TIMESTAMP),
    pa.field("feed_url", pa.string()),
    pa.field("feed_title", pa.string()),
    pa.field("source", pa.string()),
    pa.field("language", pa.string()),
    pa.field("topics", STRINGS),
    pa.field("matched_terms", STRINGS),
    pa.field("matches", MATCHES),
    pa.field("topics_version", pa.string()),
    pa.field("content_hash", pa.string()),
    pa.field("run_id", pa.string()),
    pa.field("cluster_id", pa.string()),
    pa.field("cluster_size", pa.int32()),
], "stories")

# The Hive partition `date=YYYY-MM-DD` of every output folder, read as a date.
PARTITION_SCHEMA = pa.schema([pa.field("date", pa.date32())])

# For readers (pipeline.dataset): the stories columns plus the `date`
# partition. A folder that also holds files written before a column existed
# (version 1 had no `matches`/`topics_version`, version 2 no
# `cluster_id`/`cluster_size`, version 3 no `feed_link`) reads whole with it,
# older rows with nulls;
# without it pyarrow takes the columns of whichever file it opens first.
STORIES_DATASET_SCHEMA = STORIES_SCHEMA.append(PARTITION_SCHEMA.field("date"))

FETCHES_SCHEMA = _schema([
    pa.field("feed_url", pa.string()),
    pa.field("final_url", pa.string()),
    pa.field("status", pa.int32()),
    pa.field("bytes", pa.int64()),
    pa.field("elapsed_s", pa.float64()),
    pa.field("entry_count", pa.int32()),
    pa.field("error", pa.string()),
    pa.field("fetched_at", TIMESTAMP),
    pa.field("run_id", pa.string()),
    pa.field("skipped_until", TIMESTAMP),
], "fetches")

ERRORS_SCHEMA = _schema([
    pa.field("stage", pa.string()),
    pa.field("feed_url", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("excerpt", pa.string()),
    pa.field("entry_key", pa.string()),
    pa.field("occurred_at", TIMESTAMP),
    pa.field("run_id", pa.string()),
], "errors")


FETCHES_DATASET_SCHEMA = FETCHES_SCHEMA.append(PARTITION_SCHEMA.field("date"))
ERRORS_DATASET_SCHEMA = ERRORS_SCHEMA.append(PARTITION_SCHEMA.field("date"))


def partition_date(when: datetime) -> str:
    """The Hive partition value: the UTC date, YYYY-MM-DD."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.date().isoformat()
