"""Entry archive: every parsed entry, kept so history can be re-tagged.

A run keeps only the stories its topic rules matched; feeds carry only their
last few dozen items. So that a new or corrected rule can be applied to the
past (`newswatch retag`), every entry the parse stage produced is also written
to OUT/entries/date=<UTC date of fetched_at>/<run_id>-<shard>.parquet
(schema.ENTRIES_SCHEMA): matched or not, duplicates included, before any
stage that drops or changes it. The archive holds what the stages after parse
read: the story identity (ids, links, content hash), the text the matcher and
the language stage read (title, summary, content, tags, authors, source), the
dates, and the entry's position in its feed, dedup's tie-breaker.

`entry_row` and `story_from_entry_row` are each other's inverse on those
fields, so replaying an archived entry through the stages after parse gives
what the live run's stages were given. Text kept: "full" (the default) or
"none" (identities only: title, summary and content are null, and such rows
cannot be re-tagged on their text).
"""
from __future__ import annotations

from typing import Optional

import apache_beam as beam

from transforms.records import Story
from transforms.schema import ENTRIES_SCHEMA
from transforms.sink import ENTRIES, WritePartitions
from transforms.state.lease import LeaseHandle

TEXT_FULL, TEXT_NONE = "full", "none"
ARCHIVE_TEXT = (TEXT_FULL, TEXT_NONE)
TEXT_FIELDS = ("title", "summary", "content")


def entry_row(story: Story, text: str = TEXT_FULL) -> dict:
    """The archive row of a parsed entry (a dict of ENTRIES_SCHEMA's columns)."""
    row = {name: getattr(story, name) for name in ENTRIES_SCHEMA.names}
    if text == TEXT_NONE:
        for name in TEXT_FIELDS:
            row[name] = None
    return row


def story_from_entry_row(row: dict, run_id: Optional[str] = None) -> Story:
    """The Story the parse stage gave for an archived entry, as the stages
    after parse see it. `run_id` replaces the archived one (a replay writes
    under its own id). A row archived without text gets empty text; a row
    of an older archive file (schema version before 5) lacks columns, read
    as nulls. `row` may come from pyarrow (to_pylist) or from a pandas frame."""
    values = {name: _plain(row.get(name)) for name in ENTRIES_SCHEMA.names}
    for name in TEXT_FIELDS:
        if values[name] is None:
            values[name] = ""
    values["authors"] = [] if values["authors"] is None else [str(a) for a in values["authors"]]
    values["tags"] = [] if values["tags"] is None else [str(t) for t in values["tags"]]
    values["entry_index"] = int(values["entry_index"] or 0)
    if run_id is not None:
        values["run_id"] = run_id
    return Story(**values)


def _plain(value):
    """A value as pyarrow's to_pylist gives it, also from a row of a pandas
    frame (pipeline.dataset.read_entries): NaT and NaN are None, a Timestamp
    a datetime (NaT is truthy: `published_at or fetched_at` would take it)."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        return None if value != value else value.to_pydatetime()
    if isinstance(value, float) and value != value:
        return None
    return value


def identities_only(story: Story) -> Story:
    """The story as an archive without text keeps it (entry_row with TEXT_NONE)."""
    return story.replace(**{name: None for name in TEXT_FIELDS})


class ArchiveEntries(beam.PTransform):
    """PCollection[Story] (parse's output) -> PCollection[str] of the archive
    files written, one per UTC fetch date and shard."""

    def __init__(self, output: str, run_id: str, text: str = TEXT_FULL, shards: int = 1,
                 lease: Optional[LeaseHandle] = None):
        super().__init__()
        if text not in ARCHIVE_TEXT:
            raise ValueError(f"archive text must be one of {ARCHIVE_TEXT}, not {text!r}")
        self.output, self.run_id, self.text = output, run_id, text
        self.shards, self.lease = shards, lease

    def expand(self, stories):
        # The writer reads ENTRIES_SCHEMA's columns from each Story by
        # attribute, as entry_row does; the stages after parse replace a
        # story rather than change it, so what it buffers is what parse gave.
        if self.text == TEXT_NONE:
            stories = stories | "IdentitiesOnly" >> beam.Map(identities_only)
        return stories | "WriteEntries" >> WritePartitions(self.output, ENTRIES, self.run_id, self.shards,
                                                           lease=self.lease)
