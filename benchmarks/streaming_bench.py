"""Streaming polling: does fetching keep up with the poll interval?

N feeds spread over H loopback hosts (127.0.0.2, 127.0.0.3, ...: all of
127.0.0.0/8 is loopback on Linux), each answering after a fixed latency, are
polled by a bounded `newswatch run --streaming` on the DirectRunner
(multi_processing, 2 workers) for a few polls. The servers run in this
process and log every request; the pipeline runs in a child process.

    python -m benchmarks.streaming_bench [--feeds 2000] [--hosts 50] [--latency 0.1]
        [--interval 10] [--polls 3] [--host-gap 0.1] [--compare-with CHECKOUT]

Reported per design: the polling lag (a request's start against its poll's
due time, run start + k x interval, the run start read from the run id in the
output's file names; the i-th request of a feed belongs to its i-th poll, as
every feed answers 200 without validators), p50/p95/max over every poll and
over the polls due once the pipeline was fetching (due after the run's first
request: start-up makes the first polls late for everyone, whatever the design);
fetches per second; whether fetching keeps up (every feed polled at every
tick, and every poll due once running less than one interval late); files
written per window and rows per file. `--compare-with CHECKOUT` runs the same
benchmark with another checkout's code (e.g. `git worktree add /tmp/base
bc0c7df`) in the same run; per-host options are passed only to a checkout
that has them.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]
MP_FLAGS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
FEED = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Desk {n}</title>'
        '<item><title>Pyongyang report {n}</title><link>https://desk.example.org/{n}</link>'
        '<guid>g-{n}</guid><pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item></channel></rss>')
TOPICS = "topics:\n  - name: dprk\n    query: Pyongyang\n"


def quantile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_start(out: Path) -> float:
    """The run's start (its first tick's due time) from the run id in the file names."""
    name = next((out / "fetches").rglob("*.parquet")).name
    run_id = name.split("-w")[0]                       # 20261203T141031784Z
    start = datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    return start.timestamp() + int(run_id[15:18]) / 1000


def files_per_window(out: Path) -> Dict[str, dict]:
    """{table: {"windows", "files_per_window", "rows_per_file"}} from the output."""
    import pyarrow.parquet as pq

    report = {}
    for table in ("stories", "fetches", "errors"):
        folder = out / table
        # Window files only: a run also leaves an empty schema file where a kind has none.
        files = ([p for p in folder.rglob("*.parquet") if not p.name.startswith(".") and "-w" in p.name]
                 if folder.exists() else [])
        by_window = collections.Counter(p.name.split("-w")[1].split("-")[0] for p in files)
        rows = [pq.read_metadata(p).num_rows for p in files]
        report[table] = {
            "windows": len(by_window),
            "files_per_window": sorted(by_window.values()),
            "rows_per_file": {"min": min(rows, default=0), "median": statistics.median(rows) if rows else 0,
                              "max": max(rows, default=0)},
        }
    return report


def has_option(checkout: Path, option: str) -> bool:
    """Does this checkout's `newswatch run` know `option`?"""
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--help"], cwd=str(checkout),
                          env=dict(os.environ, PYTHONPATH=str(checkout)), capture_output=True, text=True)
    return option in proc.stdout


def measure(checkout: Path = ROOT, feeds: int = 2000, hosts: int = 50, latency: float = 0.1,
            interval: float = 10.0, polls: int = 3, host_gap: float = 0.1, host_concurrency: int = 2,
            multi_processing: bool = True) -> dict:
    """One bounded streaming run of `checkout` against this process's servers."""
    hosts = max(1, min(hosts, 250))
    servers = [FeedServer(f"127.0.0.{2 + h}").start() for h in range(hosts)]
    try:
        urls = []
        for n in range(feeds):
            server = servers[n % hosts]
            server.add(f"/feed/{n}.xml", FEED.format(n=n), delay_s=latency)
            urls.append(server.url(f"/feed/{n}.xml"))
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            (work / "feeds.txt").write_text("\n".join(urls) + "\n")
            (work / "topics.yaml").write_text(TOPICS)
            out = work / "out"
            cmd = [sys.executable, "-m", "pipeline", "run", "--feeds", str(work / "feeds.txt"),
                   "--topics", str(work / "topics.yaml"), "--output", str(out),
                   "--allow-private-addresses", "--runner", "DirectRunner", "--streaming",
                   "--poll-interval", str(interval), "--duration", str(interval * polls),
                   "--window", str(interval)]
            politeness = has_option(checkout, "--host-gap")
            if politeness:
                cmd += ["--host-gap", str(host_gap), "--host-concurrency", str(host_concurrency)]
            if multi_processing:
                cmd += MP_FLAGS
            began = time.time()
            proc = subprocess.run(cmd, cwd=str(checkout), capture_output=True, text=True, timeout=900,
                                  env=dict(os.environ, PYTHONPATH=str(checkout), PYTHONHASHSEED="0"))
            wall = time.time() - began
            if proc.returncode != 0:
                raise SystemExit(f"streaming benchmark ({checkout}) failed: {proc.stderr.strip()[-800:]}")
            start = run_start(out)
            files = files_per_window(out)
        requests: Dict[str, List[float]] = collections.defaultdict(list)
        max_in_flight = 0
        for server in servers:
            max_in_flight = max(max_in_flight, server.max_in_flight)
            for path, began_at, _ in server.spans:
                requests[f"{server.host}{path}"].append(began_at)
    finally:
        for server in servers:
            server.stop()

    starts = sorted(t for times in requests.values() for t in times)
    first = starts[0] if starts else start
    lags, steady, missed = [], [], 0
    lag_by_poll: Dict[int, List[float]] = collections.defaultdict(list)
    for times in requests.values():
        times.sort()
        missed += max(0, polls - len(times))
        for k, at in enumerate(times[:polls]):
            lag = at - (start + k * interval)
            lags.append(lag)
            lag_by_poll[k].append(lag)
            if start + k * interval >= first:   # due once the pipeline was fetching
                steady.append(lag)
    missed += (feeds - len(requests)) * polls
    fetches = len(starts)

    def summary(values):
        return {"p50": quantile(values, 0.5), "p95": quantile(values, 0.95), "max": max(values, default=float("nan"))}

    return {
        "checkout": str(checkout),
        "commit": _commit(checkout),
        "feeds": feeds, "hosts": hosts, "latency_s": latency, "interval_s": interval, "polls": polls,
        "host_gap_s": host_gap if politeness else None,
        "host_concurrency": host_concurrency if politeness else None,
        "wall_s": wall,
        "fetches": fetches,
        "missed_polls": missed,
        "fetches_per_s": (fetches - 1) / (starts[-1] - starts[0]) if fetches > 1 else 0.0,
        "max_in_flight_per_host": max_in_flight,
        "lag_s": summary(lags),
        "start_up_s": first - start,
        "lag_once_running_s": summary(steady),
        "polls_once_running": len(steady),
        "lag_max_by_poll_s": [max(lag_by_poll[k]) for k in sorted(lag_by_poll)],
        "keeps_up": missed == 0 and bool(steady) and max(steady) < interval,
        "files": files,
    }


def _commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h"],
                          capture_output=True, text=True).stdout.strip() or "?"


def render(r: dict) -> str:
    lag, steady = r["lag_s"], r["lag_once_running_s"]
    politeness = (f"host gap {r['host_gap_s']} s, {r['host_concurrency']} per host"
                  if r["host_gap_s"] is not None else "no per-host limits")
    files = "; ".join(f"{table}: {f['windows']} windows, files/window {f['files_per_window']}, "
                      f"rows/file median {f['rows_per_file']['median']:g} (max {f['rows_per_file']['max']})"
                      for table, f in r["files"].items() if f["windows"])
    return "\n".join([
        f"{r['checkout']} ({r['commit']}): {r['feeds']} feeds on {r['hosts']} hosts, "
        f"{r['latency_s']} s latency, every {r['interval_s']:g} s x {r['polls']} polls ({politeness})",
        f"  lag, every poll:          p50 {lag['p50']:.2f} s  p95 {lag['p95']:.2f} s  max {lag['max']:.2f} s",
        f"  lag, once running:        p50 {steady['p50']:.2f} s  p95 {steady['p95']:.2f} s  max {steady['max']:.2f} s"
        f"  ({r['polls_once_running']} polls due after the first request, {r['start_up_s']:.1f} s after the start)",
        f"  worst lag by poll:        {', '.join(f'{x:.1f}' for x in r['lag_max_by_poll_s'])} s",
        f"  fetches: {r['fetches']} ({r['missed_polls']} polls missed), {r['fetches_per_s']:.0f}/s, "
        f"up to {r['max_in_flight_per_host']} in flight on one host; run {r['wall_s']:.0f} s",
        f"  keeps up: {'yes' if r['keeps_up'] else 'NO'}",
        f"  output: {files}",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=50, help="loopback hosts the feeds are spread over (<= 250)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds each answer takes")
    parser.add_argument("--interval", type=float, default=10.0, help="poll interval, seconds")
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--host-gap", type=float, default=0.1,
                        help="--host-gap for the run (default 0.1: the product's 1.0 s allows "
                             "at most one poll of feeds/hosts feeds a second per host)")
    parser.add_argument("--host-concurrency", type=int, default=2)
    parser.add_argument("--in-process", action="store_true", help="without multi_processing")
    parser.add_argument("--compare-with", metavar="CHECKOUT", type=Path,
                        help="also run another checkout (e.g. `git worktree add /tmp/base bc0c7df`)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    checkouts = [ROOT]
    if args.compare_with:
        other = args.compare_with.resolve()
        if not (other / "pipeline" / "cli.py").exists():
            parser.error(f"--compare-with {other}: not a newswatch checkout")
        checkouts.append(other)
    reports = []
    for checkout in checkouts:
        r = measure(checkout, args.feeds, args.hosts, args.latency, args.interval, args.polls,
                    args.host_gap, args.host_concurrency, multi_processing=not args.in_process)
        print(render(r), flush=True)
        reports.append(r)
    if args.json:
        print(json.dumps(reports))
    return reports


if __name__ == "__main__":
    main()
