"""Is a contestant's output right? Checked against the corpus's ground truth
before any of its speed is reported: a fast wrong answer is not a result.

A run passes when it saw every entry, dropped exactly the copies, wrote
exactly the unique stories that match the topics, each once, under the id
of its original, and archived every entry with its title (the entry
archive a pipeline run writes by default, and the plain loops too; not
checked for another checkout's pipeline, which may predate it). Language
agreement is reported, not required (langdetect may disagree with the
language a text was written in).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional

import pyarrow.parquet as pq

from benchmarks.corpus import GroundTruth


@dataclass
class Verdict:
    rows: int = 0
    problems: List[str] = field(default_factory=list)
    language_agreement: Optional[float] = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def why(self) -> str:
        return "; ".join(self.problems)


def check_counts(verdict: Verdict, truth: GroundTruth, entries: Optional[int],
                 duplicates: Optional[int] = None) -> Verdict:
    """The contestant's own counts of entries seen and copies dropped."""
    if entries != truth.entries:
        verdict.problems.append(f"saw {entries} entries, corpus has {truth.entries:,}")
    if duplicates is not None and duplicates != truth.duplicates:
        verdict.problems.append(f"dropped {duplicates:,} copies, corpus has {truth.duplicates:,}")
    return verdict


def check_stories(verdict: Verdict, path: str, truth: GroundTruth) -> Verdict:
    """The story rows written under `path` (a Parquet file or a folder of
    Hive partitions) against the unique matching stories of the corpus."""
    try:
        table = pq.read_table(path, columns=["story_id", "language"])
    except Exception as exc:  # no output at all is a wrong answer too
        verdict.problems.append(f"cannot read stories at {path}: {str(exc).splitlines()[0][:200]}")
        return verdict
    ids = table.column("story_id").to_pylist()
    languages = table.column("language").to_pylist()
    verdict.rows = len(ids)
    expected = truth.matching
    if len(ids) != len(expected):
        verdict.problems.append(f"{len(ids):,} rows, expected {len(expected):,}")
    seen = set(ids)
    if len(seen) != len(ids):
        verdict.problems.append(f"{len(ids) - len(seen):,} story ids written twice")
    missing, extra = len(expected.keys() - seen), len(seen - expected.keys())
    if missing or extra:
        verdict.problems.append(f"{missing:,} expected stories missing, {extra:,} unexpected")
    if ids:
        agree = sum(expected.get(i) == lang for i, lang in zip(ids, languages))
        verdict.language_agreement = agree / len(ids)
    return verdict


def check_archive(verdict: Verdict, path: str, truth: GroundTruth) -> Verdict:
    """The entry archive under `path` (Hive partitions): a row for every
    entry of the corpus, each with its title (the text column every
    generated entry has), the matching stories among them."""
    try:
        table = pq.read_table(path, columns=["story_id", "title"])
    except Exception as exc:
        verdict.problems.append(f"cannot read the entry archive at {path}: {str(exc).splitlines()[0][:200]}")
        return verdict
    if table.num_rows != truth.entries:
        verdict.problems.append(f"{table.num_rows:,} entries archived, corpus has {truth.entries:,}")
    untitled = table.column("title").null_count
    if untitled:
        verdict.problems.append(f"{untitled:,} archived entries without their title")
    missing = len(truth.matching.keys() - set(table.column("story_id").to_pylist()))
    if missing:
        verdict.problems.append(f"{missing:,} matching stories not archived")
    return verdict


_RECONCILE = re.compile(r"reconcile: entries ([\d,]+) = duplicates ([\d,]+) .*-> (\w+)")


def pipeline_counts(summary: str):
    """(entries, duplicates, reconciled) from the run summary `newswatch run` prints."""
    match = _RECONCILE.search(summary)
    if not match:
        return None, None, False
    return int(match[1].replace(",", "")), int(match[2].replace(",", "")), match[3] == "ok"
