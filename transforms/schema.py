"""The data contract, pinned in one place: the pyarrow schema of each output.

The README documents these columns one by one; analysts rely on the names and
types. The `date` partition column comes from the folder name (Hive style) and
is not stored inside the files.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa

SCHEMA_VERSION = "5"
TIMESTAMP = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.string())
MATCHES = pa.list_(pa.struct([
    pa.field("topic", pa.string()),
    pa.field("term", pa.string()),
    pa.field("field", pa.string()),
    pa.field("offset", pa.int32()),
]))


def _schema(fields, kind, pandas_dtypes=None):
    """`pandas_dtypes` (column -> pandas dtype name) go into the pandas
    metadata of the files, which plain `pd.read_parquet` follows: "Int32"
    keeps a column with nulls an integer column (without it pandas makes it
    float64), "boolean" a flag column a flag."""
    metadata = {b"newswatch.kind": kind.encode(), b"newswatch.schema_version": SCHEMA_VERSION.encode()}
    if pandas_dtypes:
        metadata[b"pandas"] = _pandas_metadata(pa.schema(fields), pandas_dtypes)
    return pa.schema(fields, metadata=metadata)


def _pandas_metadata(schema: pa.Schema, dtypes: dict) -> bytes:
    # The subset of pyarrow's own pandas metadata that its to_pandas reads:
    # columns not listed keep their default conversion.
    columns = [{"name": name, "field_name": name, "pandas_type": str(schema.field(name).type),
                "numpy_type": dtype, "metadata": None} for name, dtype in dtypes.items()]
    return json.dumps({"index_columns": [], "column_indexes": [], "columns": columns,
                       "creator": {"library": "newswatch"}}).encode()


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

# The entry archive (transforms/archive.py, version 5): every parsed entry,
# matched or not, duplicates included, with its identity and the fields the
# topic matcher and the language stage read, so `newswatch retag` can replay
# the stages after parse with other rules. title, summary and content are null
# when the run archived identities only (`--archive-text none`); an entry with
# an empty title has "" there. entry_index is the entry's position in its
# feed document, dedup's tie-breaker.
# Its columns are the stories' own (same names and types), so a replayed
# entry is a story again without conversion.
ENTRIES_SCHEMA = _schema([
    *(STORIES_SCHEMA.field(name) for name in (
        "story_id", "url", "canonical_url", "feed_link", "guid", "title", "summary", "content",
        "authors", "tags", "published_at", "updated_at", "fetched_at", "feed_url", "feed_title",
        "source", "content_hash")),
    pa.field("entry_index", pa.int32()),
    STORIES_SCHEMA.field("run_id"),
], "entries")

# The Hive partition `date=YYYY-MM-DD` of every output folder, read as a date.
PARTITION_SCHEMA = pa.schema([pa.field("date", pa.date32())])

# For readers (pipeline.dataset): the stories columns plus the `date`
# partition. A folder that also holds files written before a column existed
# (version 1 had no `matches`/`topics_version`, version 2 no
# `cluster_id`/`cluster_size`, version 3 no `feed_link`) reads whole with it,
# older rows with nulls;
# without it pyarrow takes the columns of whichever file it opens first.
STORIES_DATASET_SCHEMA = STORIES_SCHEMA.append(PARTITION_SCHEMA.field("date"))

# Version 4 added error_category, feed_title, parse_warning and
# parse_warning_detail; `error` stays as it was ("category: detail").
# Version 5 added parser ("fast", "feedparser" or "json"; null when nothing was parsed).
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
    pa.field("error_category", pa.string()),
    pa.field("feed_title", pa.string()),
    pa.field("parse_warning", pa.bool_()),
    pa.field("parse_warning_detail", pa.string()),
    pa.field("parser", pa.string()),
], "fetches", {"status": "Int32", "parse_warning": "boolean"})

# Version 4 added error_category (the category of `reason`).
ERRORS_SCHEMA = _schema([
    pa.field("stage", pa.string()),
    pa.field("feed_url", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("excerpt", pa.string()),
    pa.field("entry_key", pa.string()),
    pa.field("occurred_at", TIMESTAMP),
    pa.field("run_id", pa.string()),
    pa.field("error_category", pa.string()),
], "errors")

# One row per finished run (version 4): pipeline/summary.py's table as data.
# The counters are those of summary.ROWS, by their counter names.
RUN_COUNTERS = (
    "fetch_attempts", "fetch_ok", "fetch_not_modified", "fetch_failed", "fetch_skipped",
    "feeds_ok", "feeds_failed", "entries", "dead_letters_entries", "fields_truncated",
    "duplicates", "seen_before", "unmatched", "matched", "rules_language_detections",
    "cluster_reprints", "rows_written_stories", "rows_written_fetches", "rows_written_errors",
    "rows_written_entries",
)
COUNTS = pa.map_(pa.string(), pa.int64())
RUNS_SCHEMA = _schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("started_at", TIMESTAMP),
    pa.field("finished_at", TIMESTAMP),
    pa.field("elapsed_s", pa.float64()),
    pa.field("runner", pa.string()),
    pa.field("mode", pa.string()),
    pa.field("output", pa.string()),
    *[pa.field(name, pa.int64()) for name in RUN_COUNTERS],
    pa.field("matched_by_topic", COUNTS),
    pa.field("stories_by_language", COUNTS),
    pa.field("state_seen_identities", pa.int64()),
    pa.field("topics_rules", pa.int32()),
    pa.field("topics_version", pa.string()),
    pa.field("reconciles", pa.bool_()),
    pa.field("notes", STRINGS),
], "runs")


FETCHES_DATASET_SCHEMA = FETCHES_SCHEMA.append(PARTITION_SCHEMA.field("date"))
ERRORS_DATASET_SCHEMA = ERRORS_SCHEMA.append(PARTITION_SCHEMA.field("date"))
RUNS_DATASET_SCHEMA = RUNS_SCHEMA.append(PARTITION_SCHEMA.field("date"))
ENTRIES_DATASET_SCHEMA = ENTRIES_SCHEMA.append(PARTITION_SCHEMA.field("date"))


def partition_date(when: datetime) -> str:
    """The Hive partition value: the UTC date, YYYY-MM-DD."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.date().isoformat()
