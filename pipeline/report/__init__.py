"""`newswatch report`: what an output holds, as one HTML page and CSV files.

    from pipeline import report
    tables = report.build("output", since="2021-09-01")
    report.write_html(tables, "report.html", output="output")
    report.write_csv(tables, "tables/")

Reads only through pipeline.dataset; the tables are built by
pipeline/report/tables.py, the page by pipeline/report/render.py (which
needs matplotlib: the `report` extra).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from pipeline import dataset
from pipeline.report.tables import ReportTables, build_tables

STORY_COLUMNS = ["story_id", "title", "url", "source", "language", "topics", "published_at", "fetched_at",
                 "feed_url", "feed_title", "date"]
MATCH_COLUMNS = ["story_id", "topic", "term", "field"]


class NothingToReport(Exception):
    """The output holds no stories, fetches or dead letters in the range."""


# The steps of build(), for a progress line (pipeline.progress).
BUILD_STEPS = ("stories", "matches", "fetches", "errors", "tables")


def build(output, since=None, until=None, silent_days: float = 3.0, top: int = 10,
          newest: int = 10, step_done: Callable[[str], None] = lambda step: None) -> ReportTables:
    """The report's tables for OUT, stories by published_at and fetches by
    fetched_at within [since, until). Raises FileNotFoundError for a missing
    output, NothingToReport when it holds nothing in the range. Calls
    `step_done(name)` after each of BUILD_STEPS."""
    stories = dataset.read_stories(output, since=since, until=until, columns=STORY_COLUMNS)
    step_done("stories")
    matches = dataset.read_matches(output, since=since, until=until)[MATCH_COLUMNS]
    step_done("matches")
    fetches = dataset.read_fetches(output, since=since, until=until)
    step_done("fetches")
    errors = dataset.read_errors(output, since=since, until=until, columns=["feed_url", "occurred_at"])
    step_done("errors")
    if stories.empty and fetches.empty and errors.empty:
        raise NothingToReport(f"{output} holds no stories, fetches or dead letters"
                              + (f" from {since}" if since else "") + (f" until {until}" if until else ""))
    # "Silent for N days" counts back from the latest fetch or story read.
    tables = build_tables(stories, matches, fetches, errors, silent_days=silent_days, top=top, newest=newest)
    step_done("tables")
    return tables


def write_html(tables: ReportTables, path, output: str, since=None, until=None) -> Path:
    """The page at `path`, written whole or not at all."""
    from pipeline.report.render import render_html

    page = render_html(tables, str(output), since=_text(since), until=_text(until),
                       generated_at=datetime.now(timezone.utc))
    return _write(Path(path), page)


def write_csv(tables: ReportTables, folder) -> list:
    """Each table as FOLDER/<name>.csv (UTF-8, times in ISO 8601 with their UTC offset); the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.named().items():
        written.append(_write(folder / f"{name}.csv", frame.to_csv(index=False)))
    return written


def _write(path: Path, text: str) -> Path:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def _text(value) -> Optional[str]:
    return None if value is None else str(value)
