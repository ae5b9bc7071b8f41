"""The run summary: Beam metric counters as a table, and their reconciliation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

NAMESPACE = "newswatch"

# (stage, counter, label) in the order a reader follows the data.
ROWS = [
    ("fetch", "fetch_attempts", "fetch attempts"),
    ("fetch", "fetch_ok", "fetched ok"),
    ("fetch", "fetch_not_modified", "not modified (304)"),
    ("fetch", "fetch_failed", "fetch failed"),
    ("parse", "feeds_ok", "feeds ok"),
    ("parse", "feeds_failed", "feeds failed"),
    ("parse", "entries", "entries"),
    ("parse", "dead_letters_entries", "entries dead-lettered"),
    ("parse", "fields_truncated", "text fields truncated"),
    ("dedup", "duplicates", "duplicates dropped"),
    ("topics", "unmatched", "unmatched dropped"),
    ("topics", "matched", "matched"),
    ("topics", "rules_language_detections", "language needed by rules"),
    ("write", "rows_written_stories", "stories written"),
    ("write", "rows_written_fetches", "fetch rows written"),
    ("write", "rows_written_errors", "dead letters written"),
]


@dataclass
class RunSummary:
    counters: Dict[str, int]
    run_id: str
    output: str
    elapsed_s: float
    runner: str = "DirectRunner"
    notes: list = field(default_factory=list)

    @classmethod
    def from_result(cls, result, config, elapsed_s: float, runner: str) -> "RunSummary":
        from transforms.topics import compile_rules, topics_version

        version = topics_version(compile_rules(config.topics))
        return cls(read_counters(result), config.run_id, config.output, elapsed_s, runner,
                   notes=[f"topics: {len(config.topics)} rules, topics_version {version}"])

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)

    @property
    def written(self) -> int:
        return self.get("rows_written_stories")

    def checks(self) -> List[Tuple[str, int, Dict[str, int]]]:
        """(what, total, parts): each total must equal the sum of its parts.

        entries: every entry parsed ends written, dropped or dead-lettered;
        fetch attempts: every attempt ends ok, not modified or failed; and one
        output row per attempt, one dead letter per failed feed or entry.
        """
        g = self.get
        return [
            ("entries", g("entries"), {"duplicates": g("duplicates"), "unmatched": g("unmatched"),
                                       "written": self.written,
                                       "dead-lettered": g("dead_letters_entries")}),
            ("fetch attempts", g("fetch_attempts"), {"ok": g("fetch_ok"),
                                                     "not modified": g("fetch_not_modified"),
                                                     "failed": g("fetch_failed")}),
            ("fetch rows", g("rows_written_fetches"), {"attempts": g("fetch_attempts")}),
            ("dead letters", g("rows_written_errors"), {"failed feeds": g("feeds_failed"),
                                                        "failed entries": g("dead_letters_entries")}),
        ]

    @property
    def reconciles(self) -> bool:
        return all(total == sum(parts.values()) for _, total, parts in self.checks())

    def render(self) -> str:
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
            terms = " + ".join(f"{name} {value:,}" for name, value in parts.items())
            lines.append(f"reconcile: {what} {total:,} = {terms} -> {verdict}")
        lines += self.notes
        return "\n".join(lines)


def read_counters(result) -> Dict[str, int]:
    """Counter totals by name (summed over steps), committed where the runner has them."""
    from apache_beam.metrics.metric import MetricsFilter

    totals: Dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        try:
            value = counter.committed
        except Exception:
            value = None
        if value is None:
            value = counter.attempted or 0
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value)
    return totals
