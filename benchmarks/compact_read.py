"""Reading 30 days of a 15-minute schedule before and after `newswatch compact`.

    python -m benchmarks.compact_read [--days 30] [--interval 15] [--save benchmarks/results/compact_read.json]

Generates the output such a schedule leaves: one stories file (a few rows)
and one fetches file (a row per feed) per run in its day's partition, with
the real schemas (transforms/schema.py) and made-up text. Then times reading
all stories and fetches three ways, before and after compaction (the median
of --repeat reads each):

- pandas: pd.read_parquet on OUT/stories and OUT/fetches;
- reader: pipeline.dataset.read_stories and read_fetches;
- DuckDB: SELECT * over OUT/<kind>/*/*.parquet, to an Arrow table.

Target (issue 15): at least 10x faster after compaction. The rows read
before and after must be the same count, or the run fails.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Dict

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schema import FETCHES_SCHEMA, STORIES_SCHEMA

TARGET = 10.0
WORDS = ("ministry", "talks", "border", "report", "council", "market", "weather", "election", "trade",
         "summit", "energy", "court", "vote", "budget", "harbour", "rail", "health", "school")


def generate(out: Path, days: int, interval_min: int, feeds: int = 48, stories_per_run: int = 3,
             seed: int = 7) -> Dict[str, int]:
    """The files of days * 24 * 60 / interval_min batch runs ending yesterday (UTC)."""
    rng = random.Random(seed)
    start = datetime.combine(datetime.now(timezone.utc).date() - timedelta(days=days),
                             datetime.min.time(), tzinfo=timezone.utc)
    runs = days * 24 * 60 // interval_min
    feed_urls = [f"https://feeds{n % 7}.example.org/news/{n}.xml" for n in range(feeds)]
    rows = {"stories": 0, "fetches": 0, "files": 0}
    for n in range(runs):
        at = start + timedelta(minutes=interval_min * n)
        run_id = at.strftime("%Y%m%dT%H%M%S000Z")
        folder = f"date={at.date().isoformat()}"
        stories = []
        for i in range(stories_per_run):
            words = " ".join(rng.choice(WORDS) for _ in range(160))
            published = at - timedelta(minutes=rng.randrange(0, 14))
            feed = rng.choice(feed_urls)
            stories.append({
                "story_id": f"{n:05d}{i:02d}{rng.getrandbits(48):012x}", "url": f"{feed}#{n}-{i}",
                "canonical_url": f"{feed}#{n}-{i}", "guid": f"{n}-{i}", "title": words[:80],
                "summary": words[:400], "content": words, "authors": ["desk"], "tags": ["world"],
                "published_at": published, "updated_at": None, "fetched_at": at, "feed_url": feed,
                "feed_title": "Example", "source": feed.split("/")[2], "language": "en",
                "topics": ["world"], "matched_terms": ["talks"],
                "matches": [{"topic": "world", "term": "talks", "field": "title", "offset": 0}],
                "topics_version": "bench", "content_hash": f"{rng.getrandbits(64):016x}", "run_id": run_id,
                "cluster_id": None, "cluster_size": None})
        fetches = [{"feed_url": url, "final_url": url, "status": 304 if rng.random() < 0.6 else 200,
                    "bytes": rng.randrange(0, 200_000), "elapsed_s": rng.random(), "entry_count": 20,
                    "error": None, "fetched_at": at, "run_id": run_id, "skipped_until": None}
                   for url in feed_urls]
        for kind, records, schema in (("stories", stories, STORIES_SCHEMA), ("fetches", fetches, FETCHES_SCHEMA)):
            table = pa.Table.from_pylist(_known(records, schema), schema=schema)
            target = out / kind / folder
            target.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target / f"{run_id}-000.parquet", compression="zstd")
            rows[kind] += table.num_rows
            rows["files"] += 1
    return rows


def _known(records, schema):
    """Only the schema's columns: a schema version that adds columns gets nulls."""
    return [{name: record.get(name) for name in schema.names} for record in records]


def readers(out: Path) -> Dict[str, Callable[[], int]]:
    import duckdb
    import pandas as pd

    from pipeline import dataset

    def with_pandas():
        return len(pd.read_parquet(out / "stories")) + len(pd.read_parquet(out / "fetches"))

    def with_reader():
        return len(dataset.read_stories(out)) + len(dataset.read_fetches(out))

    def with_duckdb():
        con = duckdb.connect()
        try:
            return sum(con.sql(f"SELECT * FROM read_parquet('{out / kind}/*/*.parquet', "
                               f"hive_partitioning = true)").to_arrow_table().num_rows for kind in ("stories", "fetches"))
        finally:
            con.close()

    return {"pandas": with_pandas, "reader": with_reader, "duckdb": with_duckdb}


def time_reads(out: Path, repeat: int) -> Dict[str, dict]:
    timed = {}
    for name, read in readers(out).items():
        seconds, rows = [], None
        for _ in range(repeat):
            began = time.perf_counter()
            rows = read()
            seconds.append(time.perf_counter() - began)
        timed[name] = {"seconds": statistics.median(seconds), "rows": rows}
    return timed


def count_files(out: Path) -> int:
    return sum(1 for p in out.rglob("*.parquet") if "_state" not in p.parts)


def measure(days: int, interval_min: int, repeat: int, work: Path) -> dict:
    from pipeline.compact import compact

    out = work / "out"
    began = time.perf_counter()
    rows = generate(out, days, interval_min)
    generated_s = time.perf_counter() - began
    files_before = count_files(out)
    before = time_reads(out, repeat)
    began = time.perf_counter()
    report = compact(str(out))
    compact_s = time.perf_counter() - began
    files_after = count_files(out)
    after = time_reads(out, repeat)
    for name in before:
        if before[name]["rows"] != after[name]["rows"]:
            raise SystemExit(f"compact_read: {name} read {before[name]['rows']} rows before and "
                             f"{after[name]['rows']} after compaction")
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "days": days, "interval_min": interval_min, "runs": days * 24 * 60 // interval_min,
        "stories": rows["stories"], "fetches": rows["fetches"], "generate_s": round(generated_s, 1),
        "files_before": files_before, "files_after": files_after, "compact_s": round(compact_s, 2),
        "compacted_rows": report.rows, "repeat": repeat,
        "reads": {name: {"before_s": round(before[name]["seconds"], 3), "after_s": round(after[name]["seconds"], 3),
                         "rows": before[name]["rows"],
                         "speedup": round(before[name]["seconds"] / max(after[name]["seconds"], 1e-9), 1)}
                  for name in before},
        "target": TARGET,
    }


def render(result: dict) -> str:
    lines = [f"{result['days']} days of a {result['interval_min']}-minute schedule: {result['runs']} runs, "
             f"{result['stories']} stories and {result['fetches']} fetch rows",
             f"files: {result['files_before']} before, {result['files_after']} after compact "
             f"({result['compact_s']:.1f} s to compact)",
             "",
             f"{'read all stories + fetches':28} {'before':>9} {'after':>9} {'speedup':>8}"]
    for name, read in result["reads"].items():
        mark = "ok" if read["speedup"] >= result["target"] else f"below {result['target']:g}x"
        lines.append(f"{name:28} {read['before_s']:8.3f}s {read['after_s']:8.3f}s {read['speedup']:7.1f}x  {mark}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=15, help="minutes between runs (default 15)")
    parser.add_argument("--repeat", type=int, default=3, help="reads timed per reader and state (median)")
    parser.add_argument("--save", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="compact-read-"))
    try:
        result = measure(args.days, args.interval, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(result))
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(r["speedup"] >= TARGET for r in result["reads"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
