"""Cost of the parse stage's entity guard (which decodes the body as
feedparser will, then reads its prolog) against feedparser.parse of the same
bytes, measured in the same run, in turns.

    python -m benchmarks.parse_guards [--items 50] [--rounds 20]
"""
from __future__ import annotations

import argparse
import io
import time

import feedparser

from transforms.entity_guard import as_feedparser_reads, entity_hazard
from transforms.parse import read_feed

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}


def sample_feed(items: int) -> bytes:
    body = "".join(
        f"<item><title>Story {i}: talks on the peninsula resume</title>"
        f"<link>https://example.org/world/{i}</link><guid>urn:example:{i}</guid>"
        f"<description>&lt;p&gt;{'Officials met again on Tuesday to discuss the talks. ' * 60}"
        f"&lt;/p&gt;</description><pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>"
        for i in range(items))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Sample</title><link>https://example.org/</link>{body}</channel></rss>").encode()


def best_of_interleaved(rounds: int, *funcs) -> list:
    """The fastest time of each function, run in turns so that noise from a
    shared machine falls on both alike."""
    best = [float("inf")] * len(funcs)
    for _ in range(rounds):
        for i, func in enumerate(funcs):
            start = time.perf_counter()
            func()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def measure(items: int, rounds: int) -> dict:
    body = sample_feed(items)
    if len(read_feed(body, HEADERS)["entries"]) != items:  # a fast wrong answer is not a result
        raise SystemExit("parse benchmark: entries missing; no figure reported")
    parse, guard = best_of_interleaved(
        rounds,
        lambda: feedparser.parse(io.BytesIO(body), response_headers=HEADERS,
                                 sanitize_html=False, resolve_relative_uris=False),
        lambda: entity_hazard(as_feedparser_reads(body, HEADERS)))
    return {"bytes": len(body), "feedparser_ms": parse * 1000, "guard_ms": guard * 1000,
            "ratio": (parse + guard) / parse}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    r = measure(args.items, args.rounds)
    print(f"parse: {args.items}-item feed of {r['bytes'] / 1024:.0f} KiB: feedparser "
          f"{r['feedparser_ms']:.1f} ms, entity guard {r['guard_ms']:.2f} ms "
          f"-> parse with guard {r['ratio']:.3f}x")
    return r


if __name__ == "__main__":
    main()
