"""The run summary: Beam metric counters as a table, and their reconciliation."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

from transforms.metrics import NAMESPACE

# (stage, counter, label) in the order a reader follows the data.
ROWS = [
    ("fetch", "fetch_attempts", "fetch attempts"),
    ("fetch", "fetch_ok", "fetched ok"),
    ("fetch", "fetch_not_modified", "not modified (304)"),
    ("fetch", "fetch_failed", "fetch failed"),
    ("fetch", "fetch_skipped", "not due, skipped"),
    ("parse", "feeds_ok", "feeds ok"),
    ("parse", "feeds_failed", "feeds failed"),
    ("parse", "entries", "entries"),
    ("parse", "dead_letters_entries", "entries dead-lettered"),
    ("parse", "fields_truncated", "text fields truncated"),
    ("dedup", "duplicates", "duplicates dropped"),
    ("seen", "seen_before", "seen before dropped"),
    ("topics", "unmatched", "unmatched dropped"),
    ("topics", "matched", "matched"),
    ("topics", "rules_language_detections", "language needed by rules"),
    ("cluster", "cluster_reprints", "reprints joined a cluster"),
    ("write", "rows_written_stories", "stories written"),
    ("write", "rows_written_fetches", "fetch rows written"),
    ("write", "rows_written_errors", "dead letters written"),
    ("write", "rows_written_entries", "entries archived"),
]

# (check, part) whose value checks() gives negative: shown as "- part".
SUBTRACTED = {("entries archived", "dead-lettered")}


@dataclass
class RunSummary:
    counters: Dict[str, int]
    run_id: str
    output: str
    elapsed_s: float
    runner: str = "DirectRunner"
    notes: list = field(default_factory=list)
    submitted: bool = False   # handed to a remote runner, not waited for
    streaming: bool = False   # remembers in keyed state, not in state files
    started_at: Optional[datetime] = None
    topics_rules: Optional[int] = None
    topics_version: Optional[str] = None
    # What the entry archive kept ("full", "none"), None when the run kept none.
    archive: Optional[str] = None

    @classmethod
    def from_result(cls, result, config, elapsed_s: float, runner: str) -> "RunSummary":
        from transforms.topics import compile_rules, topics_version

        version = topics_version(compile_rules(config.topics))
        return cls(read_counters(result), config.run_id, config.output, elapsed_s, runner,
                   notes=[f"topics: {len(config.topics)} rules, topics_version {version}"],
                   streaming=getattr(config, "streaming", None) is not None,
                   started_at=getattr(config, "started_at", None),
                   topics_rules=len(config.topics), topics_version=version,
                   archive=getattr(config, "archive_text", None))

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)

    @property
    def written(self) -> int:
        return self.get("rows_written_stories")

    def checks(self) -> List[Tuple[str, int, Dict[str, int]]]:
        """(what, total, parts): each total must equal the sum of its parts.

        entries: every entry parsed ends written, dropped or dead-lettered;
        fetch attempts: every attempt ends ok, not modified or failed; one
        output row per feed (attempted or skipped as not due), one dead
        letter per failed feed or entry; entries archived: every parsed entry
        but the dead-lettered ones (which have their errors/ row), or none
        with the archive off.
        """
        g = self.get
        if self.archive is None:
            archived = ("entries archived", g("rows_written_entries"), {"archive off": 0})
        else:
            archived = ("entries archived", g("rows_written_entries"),
                        {"entries": g("entries"), "dead-lettered": -g("dead_letters_entries")})
        return [
            ("entries", g("entries"), {"duplicates": g("duplicates"), "seen before": g("seen_before"),
                                       "unmatched": g("unmatched"), "written": self.written,
                                       "dead-lettered": g("dead_letters_entries")}),
            ("fetch attempts", g("fetch_attempts"), {"ok": g("fetch_ok"),
                                                     "not modified": g("fetch_not_modified"),
                                                     "failed": g("fetch_failed")}),
            ("fetch rows", g("rows_written_fetches"), {"attempts": g("fetch_attempts"),
                                                       "skipped": g("fetch_skipped")}),
            ("dead letters", g("rows_written_errors"), {"failed feeds": g("feeds_failed"),
                                                        "failed entries": g("dead_letters_entries")}),
            archived,
        ]

    @property
    def reconciles(self) -> bool:
        return self.submitted or all(total == sum(parts.values()) for _, total, parts in self.checks())

    def state_notes(self) -> list:
        notes = []
        if self.streaming:
            notes.append(f"streaming: {self.get('dedup_keys_forgotten'):,} story identities "
                         "forgotten (TTL passed, or the run ended)")
        elif not self.submitted:
            notes.append(f"state: {self.get('state_seen_identities'):,} story identities remembered")
        if self.get("state_seen_unreadable_files"):
            notes.append(f"WARNING {self.get('state_seen_unreadable_files')} seen-story state file(s) "
                         "unreadable (named in the log; moved to _state/corrupt/): the stories they "
                         "remembered were treated as new in this run")
        return notes

    def render(self) -> str:
        if self.submitted:
            return "\n".join([f"newswatch run {self.run_id}: submitted to {self.runner} in "
                              f"{self.elapsed_s:.1f} s, output {self.output}; the job commits "
                              "its state when its files are written"] + self.notes)
        lines = [f"newswatch run {self.run_id}: {self.elapsed_s:.1f} s on {self.runner}, "
                 f"output {self.output}", "", f"{'stage':<8} {'counter':<26} {'value':>9}"]
        for stage, name, label in ROWS:
            lines.append(f"{stage:<8} {label:<26} {self.get(name):>9,}")
        for prefix, stage, label in (("matched_topic_", "topics", "topic "),
                                     ("language_", "language", "")):
            for name in sorted(n for n in self.counters if n.startswith(prefix)):
                lines.append(f"{stage:<8} {label + name[len(prefix):]:<26} {self.get(name):>9,}")
        lines.append("")
        for what, total, parts in self.checks():
            verdict = "ok" if total == sum(parts.values()) else "MISMATCH"
            terms = " ".join(f"{'-' if (what, name) in SUBTRACTED else '+'} {name} {abs(value):,}"
                             for name, value in parts.items())[2:]
            lines.append(f"reconcile: {what} {total:,} = {terms} -> {verdict}")
        lines += self.notes + self.state_notes()
        return "\n".join(lines)


def run_row(summary: RunSummary, finished_at: Optional[datetime] = None) -> dict:
    """The summary as one row of OUT/runs (transforms.schema.RUNS_SCHEMA):
    every counter the table shows, by its counter name, the per-topic and
    per-language counters as maps, whether it reconciles, and its notes."""
    from transforms.schema import RUN_COUNTERS

    finished_at = finished_at or datetime.now(timezone.utc)
    by_prefix = lambda prefix: sorted((name[len(prefix):], value) for name, value in summary.counters.items()
                                      if name.startswith(prefix))
    return {
        "run_id": summary.run_id,
        "started_at": summary.started_at,
        "finished_at": finished_at,
        "elapsed_s": summary.elapsed_s,
        "runner": summary.runner,
        "mode": "streaming" if summary.streaming else "batch",
        "output": summary.output,
        **{name: summary.get(name) for name in RUN_COUNTERS},
        "matched_by_topic": by_prefix("matched_topic_"),
        "stories_by_language": by_prefix("language_"),
        "state_seen_identities": None if summary.streaming else summary.get("state_seen_identities"),
        "topics_rules": summary.topics_rules,
        "topics_version": summary.topics_version,
        "reconciles": summary.reconciles,
        "notes": list(summary.notes) + summary.state_notes(),
    }


def read_counters(result) -> Dict[str, int]:
    """Counter totals by name (summed over steps), committed where the runner
    has them; distributions by their maximum (values every worker reports)."""
    from apache_beam.metrics.metric import MetricsFilter

    # On the FnApiRunner this unwinds one nested generator per bundle the job
    # ran, whatever the filter: a job of thousands of bundles ends in a
    # RecursionError here (why a local streaming run polls in one bundle:
    # transforms/poll.py, LOCAL_RUNNERS).
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    totals: Dict[str, int] = {}
    for counter in metrics["counters"]:
        value = _committed_or_attempted(counter)
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    for dist in metrics["distributions"]:
        value = _committed_or_attempted(dist)
        if value is not None and value.count:
            name = dist.key.metric.name
            totals[name] = max(totals.get(name, 0), int(value.max))
    return totals


def _committed_or_attempted(metric):
    try:
        value = metric.committed
    except Exception:
        value = None
    return metric.attempted if value is None else value
