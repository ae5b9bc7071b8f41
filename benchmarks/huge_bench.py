"""The huge-feed row of `make bench`: one RSS feed of 200,000 items (120 MB,
benchmarks/huge_feed.py, written into a temporary folder) through
`newswatch run`, measured from outside (wall time, CPU, peak RSS of the
process tree). The run must see every entry and write exactly the stories
that match, or it gets no figures.

    python -m benchmarks.huge_bench [--items 200000]

Peak RSS is also given as a multiple of the feed's size, and beside the seed
run of the same `make bench` (the interpreter, Beam and our modules with
next to no data), so the part the feed itself costs shows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks import huge_feed
from benchmarks.measure import run_measured, tail
from benchmarks.verify import pipeline_counts

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ROOT / "seeds" / "topics.yaml"
ITEMS = 200_000


def measure(items: int = ITEMS, work: str = "", min_free_bytes: int = 0) -> dict:
    """Generates the feed, runs `newswatch run` on it; wall_s, cpu_s, peak_rss,
    bytes, items, rows and `error` (empty when the output is right)."""
    own = not work
    work = work or tempfile.mkdtemp(prefix="newswatch-huge-")
    try:
        feed = huge_feed.write(os.path.join(work, "huge.xml"), items=items)
        feeds = os.path.join(work, "huge-feeds.txt")
        Path(feeds).write_text(feed.path + "\n")
        out = os.path.join(work, "huge-out")
        cmd = [sys.executable, "-m", "pipeline", "run", "--feeds", feeds, "--topics", str(TOPICS),
               "--output", out, "--run-id", "bench-huge", "--runner", "DirectRunner",
               "--max-feed-bytes", str(2 * feed.bytes)]
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
        m = run_measured(cmd, cwd=str(ROOT), env=env, min_free_bytes=min_free_bytes)
        result = {"items": feed.items, "bytes": feed.bytes, "wall_s": m.wall_s, "cpu_s": m.cpu_s,
                  "peak_rss": m.peak_rss, "rows": 0, "error": ""}
        result["error"] = m.stopped or _check(m, out, feed, result)
        shutil.rmtree(out, ignore_errors=True)
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _check(m, out: str, feed: huge_feed.HugeFeed, result: dict) -> str:
    """Why the run's output is wrong ("" when it is right)."""
    if m.returncode != 0:
        return f"exit code {m.returncode}: " + " | ".join(tail(m.stderr, 3))
    entries, _, reconciled = pipeline_counts(m.stdout)
    if entries != feed.items or not reconciled:
        return f"saw {entries} entries of {feed.items:,} (summary {'reconciled' if reconciled else 'not reconciled'})"
    try:
        rows = len(pd.read_parquet(os.path.join(out, "stories"), columns=["story_id"]))
    except Exception as exc:  # no stories folder, unreadable file ...
        return f"cannot read stories: {type(exc).__name__}: {exc}"
    result["rows"] = rows
    if rows != feed.matching:
        return f"{rows:,} rows, expected {feed.matching:,}"
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=ITEMS)
    args = parser.parse_args(argv)
    result = measure(args.items)
    print(json.dumps(result))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
