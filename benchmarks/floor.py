"""The floor: feedparser.parse alone on the same bytes, with the arguments
the pipeline's parse stage passes. No conversion to stories, no dedup, no
matching, no writing: the least any feed pipeline in Python has to spend.

Feeds are fetched a chunk at a time with urllib, untimed; only the parse
calls are timed (wall and CPU), with no fetch running meanwhile. Nothing of
Beam or of the project is imported, so peak RSS is feedparser's and the bodies'.

    python -m benchmarks.floor --feeds FEEDS [--every K]

With --every K only every K-th feed of the list is fetched and parsed: the
floor is a cost per entry, and a large corpus's sample gives it as well as
the whole at a fraction of the benchmark's time.

Prints one JSON line: entries, documents, parse_wall_s, parse_cpu_s.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import time
import urllib.request

import feedparser


def _fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read(), {k.lower(): v for k, v in response.getheaders()}
    except OSError:
        return None, None


def run(feeds_path: str, every: int = 1, concurrency: int = 32) -> dict:
    with open(feeds_path, encoding="utf-8") as handle:
        urls = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    urls = urls[::every]
    entries = documents = failed = 0
    wall = cpu = 0.0
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        step = 2 * concurrency
        for start in range(0, len(urls), step):
            for body, headers in list(pool.map(_fetch, urls[start:start + step])):
                if body is None:
                    failed += 1
                    continue
                w, c = time.perf_counter(), time.process_time()
                parsed = feedparser.parse(io.BytesIO(body), response_headers=headers,
                                          sanitize_html=False, resolve_relative_uris=False)
                cpu += time.process_time() - c
                wall += time.perf_counter() - w
                entries += len(parsed.entries)
                documents += 1
    return {"entries": entries, "documents": documents, "failed_feeds": failed,
            "parse_wall_s": wall, "parse_cpu_s": cpu}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", required=True)
    parser.add_argument("--every", type=int, default=1, help="parse every K-th feed only")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.feeds, args.every)))


if __name__ == "__main__":
    main()
