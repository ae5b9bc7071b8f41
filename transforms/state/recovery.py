"""Recovery of interrupted runs: a run that holds the lease finishes the
business of every run whose marker is still open before it starts its own.

A marker still open while we hold the lease belongs to a run that can no
longer write: it was killed, its disk filled up, or it lost its lease. It may
have died in any phase: fetching or parsing (nothing written), writing its
files (some whole story files visible, none half-written: files appear by
rename), committing its state (its seen and feeds files partly written), or
after its commit (no marker left: nothing to do).

We roll such a run forward rather than back: its whole story files stay, and
the identities of their stories are committed under its run id as if it had
finished, with no feed state. So

- no story it wrote is written again (the next SeenBefore knows them all);
- no row is hidden or lost: removing its files instead would lose the stories
  that have since left their feeds, and hide the rest until refetched;
- the feeds it fetched are fetched again from the validators of the last
  committed run, so whatever it did not get to write comes back as new;
- the clusters of its stories are remembered too, with sketches made again
  from the rows' text (each feed's rows as one document), so tomorrow's
  reprint still joins them.

A streaming job's files carry window units (`<run_id>-w<start>-p<pane>`): the
units it committed are left alone and only the others are folded in.
The fold is idempotent (a later commit of a run id supersedes an earlier one),
so a recovery that is itself interrupted is redone by the next run.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, List, Set

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms import identity
from transforms.paths import list_files
from transforms.sketch import clustering_text, document_sketches
from transforms.state.cluster_index import ClusterRecord
from transforms.state.store import SeenRecord, StateStore, key_digest

_log = logging.getLogger(__name__)

_IDENTITY_COLUMNS = ["story_id", "canonical_url", "feed_link", "feed_url", "guid", "title", "summary", "content",
                     "content_hash", "fetched_at", "cluster_id"]


@dataclass(frozen=True)
class RecoveredRun:
    """One interrupted run folded into the state."""

    run_id: str
    files: int        # its story files read
    stories: int      # stories in them, now remembered as written

    def note(self) -> str:
        return (f"recovered interrupted run {self.run_id}: its {self.stories:,} stories in "
                f"{self.files:,} files are kept and remembered; its feeds are fetched again")


def run_story_files(output: str, run_id: str) -> List[str]:
    """The story files of a batch run (`<run_id>-<shard>.parquet`) and of a
    streaming job's window panes (`<run_id>-w<start>-p<pane>-<shard>.parquet`)."""
    exact = re.compile(rf"{re.escape(run_id)}(-w\d{{8}}T\d{{6}}Z-p\d+)?-\d{{3,}}\.parquet")
    paths = list_files(output, "stories", "date=*", f"{run_id}-*.parquet")
    return sorted(p for p in paths if exact.fullmatch(p.rsplit("/", 1)[-1]))


def unit_of(path: str) -> str:
    """The commit unit a story file belongs to: the run id, or its window unit."""
    return path.rsplit("/", 1)[-1][: -len(".parquet")].rsplit("-", 1)[0]


def story_seen_records(rows: Iterable[dict]) -> List[SeenRecord]:
    """The identities under which written story rows are remembered: the
    same keys as transforms.seen.seen_keys computes from a Story."""
    records = []
    for row in rows:
        has_text = bool(row["title"] or row["summary"] or row["content"])
        for kind, value in identity.remembered_keys(row["canonical_url"], row.get("feed_link"),
                                                    row["feed_url"], row["guid"], has_text,
                                                    row["content_hash"]):
            records.append(SeenRecord(key_digest(f"{kind}:{value}"), row["story_id"], row["fetched_at"]))
    return records


def story_cluster_records(rows: Iterable[dict]) -> List[ClusterRecord]:
    """The cluster records of written story rows that carry a cluster_id
    (files of schema version 3 or later), each feed's rows sketched together."""
    by_feed = {}
    for row in rows:
        if row.get("cluster_id"):
            by_feed.setdefault(row["feed_url"], []).append(row)
    records = []
    for feed_rows in by_feed.values():
        made = document_sketches([clustering_text(r["summary"], r["content"]) for r in feed_rows])
        records.extend(ClusterRecord(r["story_id"], r["cluster_id"], m.signature, m.shingles, r["fetched_at"])
                       for r, m in zip(feed_rows, made) if m is not None)
    return records


def _read_rows(path: str) -> List[dict]:
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        parquet = pq.ParquetFile(handle)
        columns = [c for c in _IDENTITY_COLUMNS if c in parquet.schema_arrow.names]
        return parquet.read(columns=columns).to_pylist()


def recover_interrupted(store: StateStore, own_run_id: str, now: datetime,
                        lookback: timedelta) -> List[RecoveredRun]:
    """Rolls forward every run with an open marker other than `own_run_id`
    (whose re-run replaces its files instead). Call while holding the lease."""
    interrupted = sorted(r for r in store.open_runs() if r != own_run_id)
    if not interrupted:
        return []
    committed: Set[str] = set(store.seen_commits())
    recovered = []
    for run_id in interrupted:
        files = [p for p in run_story_files(store.output, run_id)
                 if unit_of(p) == run_id or unit_of(p) not in committed]
        rows = []
        for path in files:
            rows.extend(_read_rows(path))
        store.commit(run_id, now, story_seen_records(rows), [], now, lookback,
                     story_cluster_records(rows))
        _log.warning("recovered interrupted run %s: %d stories in %d files", run_id, len(rows), len(files))
        recovered.append(RecoveredRun(run_id, len(files), len(rows)))
    return recovered
