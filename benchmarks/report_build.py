"""`newswatch report` at scale: an output of N generated stories (the real
stories schema, 8 topics, 30 days, 80 feeds, 4 files a day as drip runs
leave them) with the fetches of a 15-minute schedule over the same month
(80 feeds x 96 runs x 30 days: 230,400 rows, 200/304/failures) and a few
dead letters, then the report on it, timed in steps:

- read:   pipeline.dataset's read_stories, read_matches, read_fetches, read_errors;
- tables: pipeline/report/tables.py;
- html:   the page with its charts (pipeline/report/render.py);
- csv:    the CSV files.

    python -m benchmarks.report_build [--stories 100000] [--save benchmarks/results/report_build.json]

The target (issue 15): the report on 100,000 stories in under 30 s, read to
page. The figure is a benchmark's, never a test's assert. Generation is not
timed. Peak RSS is the process's (VmHWM), generation included.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schema import ERRORS_SCHEMA, FETCHES_SCHEMA, STORIES_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 30.0
DAYS, FEEDS, RUNS_PER_DAY, FILES_PER_DAY = 30, 80, 96, 4
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
TOPICS = ["dprk", "dprk_mentions", "missile_tests", "elections", "climate", "markets", "health", "cyber"]
TERMS = {topic: [f"{topic}-term-{i}" for i in range(6)] for topic in TOPICS}
LANGUAGES = ["en", "en", "en", "en", "fr", "de", "ko", "ja", "es", "zh"]
FIELDS = ["title", "summary", "content"]
WORDS = ("the minister said on tuesday that talks would resume after the holiday while analysts "
         "expected markets to react to the statement and officials declined to comment").split()


def generate(out: Path, stories: int, seed: int = 15) -> Dict[str, int]:
    """Write OUT/stories, OUT/fetches and OUT/errors; the row counts."""
    rng = np.random.default_rng(seed)
    feeds = [f"https://feeds.example{i % 40}.org/feed-{i}.xml" for i in range(FEEDS)]
    sources = [f"publisher{i}.example.com" for i in range(200)]
    span_us = DAYS * 86_400_000_000
    published = np.sort(rng.integers(0, span_us, stories))
    feed_of = rng.integers(0, FEEDS - 5, stories)            # the last 5 feeds write nothing: silent
    source_of = (feed_of * 2 + rng.integers(0, 2, stories)) % len(sources)
    topic_counts = rng.choice([1, 1, 1, 2, 2, 3], stories)
    words = np.array(WORDS, dtype=object)
    files = 0
    for day in range(DAYS):
        lo, hi = np.searchsorted(published, [day * 86_400_000_000, (day + 1) * 86_400_000_000])
        folder = out / "stories" / f"date={(START + timedelta(days=day)).date().isoformat()}"
        folder.mkdir(parents=True)
        for part, rows in enumerate(np.array_split(np.arange(lo, hi), FILES_PER_DAY)):
            table = _stories(rng, rows, published, feed_of, source_of, topic_counts, feeds, sources, words)
            pq.write_table(table, folder / f"run-{day:02d}-{part}-000.parquet")
            files += 1
    fetch_rows = _fetches(rng, out, feeds)
    _errors(out, feeds)
    return {"stories": stories, "story_files": files, "fetches": fetch_rows, "feeds": FEEDS}


def _stories(rng, rows, published, feed_of, source_of, topic_counts, feeds, sources, words) -> pa.Table:
    n = len(rows)
    when = [START + timedelta(microseconds=int(us)) for us in published[rows]]
    topics, matches = [], []
    for count in topic_counts[rows]:
        chosen = list(rng.choice(TOPICS, count, replace=False))
        topics.append(chosen)
        matches.append([{"topic": t, "term": TERMS[t][int(rng.integers(0, 6))], "field": FIELDS[int(rng.integers(0, 3))],
                         "offset": int(rng.integers(0, 500))} for t in chosen for _ in range(int(rng.integers(1, 3)))])
    title_words = rng.integers(0, len(words), (n, 10))
    titles = [" ".join(words[w]) for w in title_words]
    summary = " ".join(WORDS * 3)
    content = " ".join(WORDS * 40)
    ids = [f"{int(i):032x}" for i in rows]
    urls = [f"https://{sources[int(s)]}/story/{i}" for s, i in zip(source_of[rows], rows)]
    columns = {
        "story_id": ids, "url": urls, "canonical_url": urls, "guid": ids, "title": titles,
        "summary": [summary] * n, "content": [content] * n, "authors": [["A. Writer"]] * n, "tags": [[]] * n,
        "published_at": when, "updated_at": [None] * n, "fetched_at": [w + timedelta(minutes=7) for w in when],
        "feed_url": [feeds[int(f)] for f in feed_of[rows]], "feed_title": [f"Feed {int(f)}" for f in feed_of[rows]],
        "source": [sources[int(s)] for s in source_of[rows]],
        "language": [LANGUAGES[int(i)] for i in rng.integers(0, len(LANGUAGES), n)],
        "topics": topics, "matched_terms": [[m["term"] for m in ms] for ms in matches], "matches": matches,
        "topics_version": ["bench"] * n, "content_hash": ids, "run_id": ["bench"] * n,
        "cluster_id": [None] * n, "cluster_size": [None] * n, "feed_link": urls,
    }
    return _table(columns, STORIES_SCHEMA, n)


def _fetches(rng, out: Path, feeds: List[str]) -> int:
    """A 15-minute schedule: each feed fetched every run; most answers 200 or
    304, 3 feeds always failing, a few failures elsewhere."""
    total = 0
    for day in range(DAYS):
        runs = [START + timedelta(days=day, minutes=15 * r) for r in range(RUNS_PER_DAY)]
        n = len(runs) * len(feeds)
        status = rng.choice([200, 304, 304, 304], n).astype(np.int32)
        error = np.full(n, None, dtype=object)
        flaky = rng.random(n) < 0.01
        status[flaky], error[flaky] = 503, "http_status: HTTP 503"
        feed_index = np.tile(np.arange(len(feeds)), len(runs))
        broken = feed_index >= len(feeds) - 3
        status[broken], error[broken] = 404, "http_status: HTTP 404"
        table = _table({
            "feed_url": [feeds[int(i)] for i in feed_index], "final_url": [feeds[int(i)] for i in feed_index],
            "status": status, "bytes": rng.integers(2_000, 200_000, n), "elapsed_s": rng.random(n),
            "entry_count": np.where(status == 200, 30, 0).astype(np.int32), "error": error,
            "fetched_at": [when for when in runs for _ in feeds], "run_id": [f"run-{day}-{r}" for r in range(len(runs))
                                                                             for _ in feeds],
            "skipped_until": [None] * n,
            "error_category": [None if e is None else e.split(": ", 1)[0] for e in error],
            "feed_title": [f"Feed {int(i)}" for i in feed_index],
            "parse_warning": [False if st == 200 else None for st in status.tolist()],
        }, FETCHES_SCHEMA, n)
        folder = out / "fetches" / f"date={(START + timedelta(days=day)).date().isoformat()}"
        folder.mkdir(parents=True)
        for part, chunk in enumerate(np.array_split(np.arange(n), FILES_PER_DAY)):
            pq.write_table(table.take(pa.array(chunk)), folder / f"run-{day:02d}-{part}-000.parquet")
        total += n
    return total


def _table(columns: dict, schema: pa.Schema, rows: int) -> pa.Table:
    """The columns in `schema`; a column the generator does not make (one a
    later schema version adds) is null, as in a file written before it."""
    return pa.table({f.name: columns[f.name] if f.name in columns else pa.nulls(rows, f.type) for f in schema},
                    schema=schema)


def _errors(out: Path, feeds: List[str]) -> None:
    when = START + timedelta(days=DAYS - 1)
    table = _table({"stage": ["fetch"] * 3, "feed_url": feeds[-3:], "reason": ["http_status: HTTP 404"] * 3,
                    "excerpt": [""] * 3, "entry_key": [None] * 3, "occurred_at": [when] * 3,
                    "run_id": ["run-last"] * 3, "error_category": ["http_status"] * 3}, ERRORS_SCHEMA, 3)
    folder = out / "errors" / f"date={when.date().isoformat()}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "run-last-000.parquet")


def measure(out: Path, pages: Path) -> Dict[str, float]:
    """Seconds of each step of the report on `out`."""
    from pipeline import dataset, report
    from pipeline.report.tables import build_tables

    seconds = {}
    started = time.perf_counter()
    stories = dataset.read_stories(out, columns=report.STORY_COLUMNS)
    matches = dataset.read_matches(out)[report.MATCH_COLUMNS]
    fetches = dataset.read_fetches(out)
    errors = dataset.read_errors(out, columns=["feed_url", "occurred_at"])
    seconds["read"] = time.perf_counter() - started
    mark = time.perf_counter()
    tables = build_tables(stories, matches, fetches, errors)
    seconds["tables"] = time.perf_counter() - mark
    mark = time.perf_counter()
    report.write_html(tables, pages / "report.html", output=str(out))
    seconds["html"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started      # read to page: the target
    mark = time.perf_counter()
    report.write_csv(tables, pages / "csv")
    seconds["csv"] = time.perf_counter() - mark
    seconds["page_bytes"] = (pages / "report.html").stat().st_size
    seconds["matches"] = len(matches)
    return seconds


def peak_rss_mib() -> Optional[float]:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def render(result: dict) -> str:
    s, n = result["seconds"], result["counts"]
    verdict = "meets" if s["total"] < result["target_s"] else "misses"
    lines = [
        f"report on {n['stories']:,} stories ({n['story_files']} files, {DAYS} days, {len(TOPICS)} topics, "
        f"{int(s['matches']):,} matches) and {n['fetches']:,} fetch rows of {n['feeds']} feeds:",
        f"  read      {s['read']:7.2f} s   (pipeline.dataset: stories, matches, fetches, errors)",
        f"  tables    {s['tables']:7.2f} s",
        f"  html      {s['html']:7.2f} s   (2 charts; page {s['page_bytes'] / 1024:,.0f} KiB)",
        f"  total     {s['total']:7.2f} s   read to page: {verdict} the target of < {result['target_s']:g} s",
        f"  csv       {s['csv']:7.2f} s   (8 files, besides)",
    ]
    if result.get("peak_rss_mib"):
        lines.append(f"  peak RSS  {result['peak_rss_mib']:7.0f} MiB (generation included)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=100_000, help="stories generated (default 100,000)")
    parser.add_argument("--save", metavar="JSON",
                        help="also write the figures there (benchmarks/results/report_build.json is shown "
                             "in docs/performance.md)")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="newswatch-report-bench-"))
    try:
        out = work / "out"
        if out.exists():
            shutil.rmtree(out)
        started = time.perf_counter()
        counts = generate(out, args.stories)
        generated_s = time.perf_counter() - started
        pages = work / "pages"
        pages.mkdir(exist_ok=True)
        seconds = measure(out, pages)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": "python -m benchmarks.report_build" + (f" --stories {args.stories}"
                                                                 if args.stories != 100_000 else ""),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "counts": counts, "generated_s": round(generated_s, 2),
              "seconds": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in seconds.items()},
              "target_s": TARGET_S, "peak_rss_mib": peak_rss_mib()}
    print(render(result))
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
