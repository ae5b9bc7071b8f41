"""Fetch throughput: N feeds from a local server that answers each request
after a fixed latency, through the FetchFeeds transform on the DirectRunner,
against one-at-a-time fetching measured in the same run.

    python -m benchmarks.fetch_throughput [--feeds 200] [--latency 0.2]
"""
from __future__ import annotations

import argparse
import logging
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.summary import read_counters
from tests.feedserver import FeedServer
from transforms.fetch import FetchFeeds, FetchSettings, fetch_feed
from transforms.records import FeedSource

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>
<item><title>Item {n}</title><link>https://example.org/{n}</link></item></channel></rss>"""


def measure(feeds: int, latency: float, sequential_sample: int = 10) -> dict:
    # The server is on 127.0.0.1: lift the address guard for it.
    settings = FetchSettings(allow_private_addresses=True)
    with FeedServer() as server:
        for n in range(feeds):
            server.add(f"/feed/{n}.xml", FEED.format(n=n), delay_s=latency)
        sources = [FeedSource(server.url(f"/feed/{n}.xml")) for n in range(feeds)]

        start = time.perf_counter()
        for source in sources[:sequential_sample]:
            assert fetch_feed(source, settings).ok
        sequential_per_feed = (time.perf_counter() - start) / sequential_sample

        start = time.perf_counter()
        p = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
        _ = p | beam.Create(sources) | FetchFeeds(settings)
        result = p.run()
        result.wait_until_finish()
        pipeline_s = time.perf_counter() - start
        ok = read_counters(result).get("fetch_ok", 0)
    if ok != feeds:  # a fast wrong answer is not a result
        raise SystemExit(f"fetch benchmark: only {ok} of {feeds} feeds fetched; no figure reported")
    return {
        "feeds": feeds,
        "latency_s": latency,
        "pipeline_s": pipeline_s,
        "feeds_per_s": feeds / pipeline_s,
        "sequential_s_estimate": sequential_per_feed * feeds,
        "speedup": sequential_per_feed * feeds / pipeline_s,
        "max_in_flight": server.max_in_flight,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    r = measure(args.feeds, args.latency)
    print(f"fetch: {r['feeds']} feeds at {r['latency_s']:.2f} s latency: {r['pipeline_s']:.1f} s "
          f"({r['feeds_per_s']:.0f} feeds/s, up to {r['max_in_flight']} in flight); one at a time "
          f"~{r['sequential_s_estimate']:.0f} s -> {r['speedup']:.1f}x")
    return r


if __name__ == "__main__":
    main()
