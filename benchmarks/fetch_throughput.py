"""Fetch throughput: N feeds from a local server that answers each request
after a fixed latency, through the FetchFeeds transform on the DirectRunner,
against one-at-a-time fetching measured in the same run.

    python -m benchmarks.fetch_throughput [--feeds 1000] [--latency 0.1]

The server runs in this process; the pipeline runs in a child process, as a
remote server and a pipeline would not share one interpreter (and its GIL).
feeds/s counts the pipeline's time, Beam's start-up included (interpreter
start-up and imports not); the steady rate is the requests' own, from the
first to the last arrival at the server.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]
FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>
<item><title>Item {n}</title><link>https://example.org/{n}</link></item></channel></rss>"""


def measure(feeds: int, latency: float, sequential_sample: int = 10, concurrency: int = 0) -> dict:
    """concurrency 0: the FetchSettings default."""
    from benchmarks import local
    from transforms.fetch import fetch_feed
    from transforms.records import FeedSource

    with FeedServer() as server, tempfile.TemporaryDirectory() as work:
        for n in range(feeds):
            server.add(f"/feed/{n}.xml", FEED.format(n=n), delay_s=latency)
        urls = [server.url(f"/feed/{n}.xml") for n in range(feeds)]

        settings = local.fetch_settings()
        start = time.perf_counter()
        for url in urls[:sequential_sample]:
            assert fetch_feed(FeedSource(url), settings).ok
        sequential_per_feed = (time.perf_counter() - start) / sequential_sample
        server.max_in_flight = 0
        first_request = len(server.requests)

        listing = os.path.join(work, "feeds.txt")
        Path(listing).write_text("\n".join(urls) + "\n")
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.fetch_throughput", "--fetch-only", listing,
             "--concurrency", str(concurrency)],
            cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True, text=True, timeout=600)
        arrivals = sorted(r.time for r in server.requests[first_request:])
    if child.returncode != 0:
        raise SystemExit(f"fetch benchmark failed: {child.stderr.strip()[-500:]}")
    report = json.loads(child.stdout.strip().splitlines()[-1])
    if report["fetched_ok"] != feeds:  # a fast wrong answer is not a result
        raise SystemExit(f"fetch benchmark: only {report['fetched_ok']} of {feeds} feeds fetched; "
                         "no figure reported")
    pipeline_s = report["pipeline_s"]
    return {
        "feeds": feeds,
        "latency_s": latency,
        "pipeline_s": pipeline_s,
        "feeds_per_s": feeds / pipeline_s,
        "steady_feeds_per_s": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0,
        "concurrency": report["concurrency"],
        "sequential_s_estimate": sequential_per_feed * feeds,
        "speedup": sequential_per_feed * feeds / pipeline_s,
        "max_in_flight": server.max_in_flight,
    }


def fetch_only(listing: str, concurrency: int = 0) -> dict:
    """Create | FetchFeeds on the DirectRunner over the URLs in `listing`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from benchmarks import local
    from pipeline.summary import read_counters
    from transforms.fetch import FetchFeeds
    from transforms.records import FeedSource

    sources = [FeedSource(u) for u in Path(listing).read_text().split()]
    settings = local.fetch_settings(**({"concurrency": concurrency} if concurrency else {}))
    start = time.perf_counter()
    p = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    _ = p | beam.Create(sources) | FetchFeeds(settings)
    result = p.run()
    result.wait_until_finish()
    return {"pipeline_s": time.perf_counter() - start,
            "fetched_ok": read_counters(result).get("fetch_ok", 0), "concurrency": settings.concurrency}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=0, help="fetches in flight (default: the product's)")
    parser.add_argument("--fetch-only", metavar="LIST", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    if args.fetch_only:
        print(json.dumps(fetch_only(args.fetch_only, args.concurrency)))
        return None
    r = measure(args.feeds, args.latency, concurrency=args.concurrency)
    print(f"fetch: {r['feeds']} feeds at {r['latency_s']:.2f} s latency: {r['pipeline_s']:.1f} s "
          f"({r['feeds_per_s']:.0f} feeds/s, {r['steady_feeds_per_s']:.0f}/s once started, "
          f"up to {r['max_in_flight']} in flight); one at a time "
          f"~{r['sequential_s_estimate']:.0f} s -> {r['speedup']:.1f}x")
    return r


if __name__ == "__main__":
    main()
