"""Seen-story lookup at scale: the state of 1,000,000 remembered stories
(3 identities each: guid, URL, text) read from OUT/_state/seen and turned into
the SeenIndex every worker holds, against a plain Python set of the same
digests measured in the same run.

    python -m benchmarks.seen_lookup [--stories 1000000]
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import resource
import tempfile
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from transforms.seen import last_seen
from transforms.sink import write_parquet_atomically
from transforms.state.store import SEEN_SCHEMA, StateStore, key_digest
from transforms.records import Story

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
KEYS_PER_STORY = 3


def rss_mb() -> float:
    """Current resident memory of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_state(output: str, stories: int, runs: int = 32) -> np.ndarray:
    """`runs` per-run seen files holding `stories` x 3 random identities, as
    a month of runs would leave them before compaction. Returns the digests."""
    rng = np.random.default_rng(0)
    digests = rng.integers(0, 256, size=(stories * KEYS_PER_STORY, 16), dtype=np.uint8)
    store = StateStore(output)
    for run, part in enumerate(np.array_split(digests, runs)):
        n = len(part)
        seen_at = NOW - timedelta(days=29) + timedelta(hours=run * 20)
        table = pa.table({
            "key": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(part.tobytes())]),
            "story_id": pa.array([None] * n, pa.string()),
            "seen_at": pa.array([seen_at] * n, SEEN_SCHEMA.field("seen_at").type),
            "run_id": pa.array([f"run-{run:03d}"] * n),
            "committed_at": pa.array([seen_at] * n, SEEN_SCHEMA.field("committed_at").type),
        }, schema=SEEN_SCHEMA)
        write_parquet_atomically(f"{store.root}/seen/run-{run:03d}.parquet", table)
    return digests


def measure(stories: int, probes: int = 100_000) -> dict:
    with tempfile.TemporaryDirectory() as out:
        digests = write_state(out, stories)
        state_mb = sum(os.path.getsize(os.path.join(out, "_state", "seen", f))
                       for f in os.listdir(os.path.join(out, "_state", "seen"))) / 2**20
        present = [bytes(d) for d in digests[:: max(1, len(digests) // probes)][:probes]]
        absent = [key_digest(f"url:https://example.org/new/{i}") for i in range(probes)]
        del digests
        gc.collect()

        before = rss_mb()
        start = time.perf_counter()
        index = StateStore(out).load_seen("bench", NOW, timedelta(days=30))
        load_s = time.perf_counter() - start
        load_rss = rss_mb() - before   # the index plus Arrow's buffers and libraries
        assert len(index) == stories * KEYS_PER_STORY, len(index)

        start = time.perf_counter()
        found = sum(index.last_seen(k) is not None for k in present + absent)
        lookup_us = (time.perf_counter() - start) / (2 * probes) * 1e6
        if found != probes:  # a fast wrong answer is not a result
            raise SystemExit(f"seen benchmark: {found} hits for {probes} remembered keys")

        story = Story(story_id="x", url="https://example.org/a", canonical_url="https://example.org/a",
                      guid="g", title="A title", summary="Some text.", content="", feed_url="f",
                      content_hash="h", fetched_at=NOW)
        start = time.perf_counter()
        for _ in range(20_000):
            last_seen(story, index)
        story_us = (time.perf_counter() - start) / 20_000 * 1e6

        # Baseline: the same digests in a Python set (what "load it into a set" costs).
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        keys = index.hi.astype(">u8").tobytes()
        lows = index.lo.astype(">u8").tobytes()
        baseline = {keys[i:i + 8] + lows[i:i + 8] for i in range(0, len(keys), 8)}
        set_build_s = time.perf_counter() - start
        set_rss = rss_mb() - before
        start = time.perf_counter()
        hits = sum(k in baseline for k in present + absent)
        set_lookup_us = (time.perf_counter() - start) / (2 * probes) * 1e6
        assert hits == probes
    return {"stories": stories, "identities": stories * KEYS_PER_STORY, "state_mb": state_mb,
            "load_s": load_s, "index_mb": index.nbytes / 2**20, "load_rss_mb": load_rss,
            "lookup_us": lookup_us, "story_us": story_us, "set_build_s": set_build_s,
            "set_rss_mb": set_rss, "set_lookup_us": set_lookup_us,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    r = measure(args.stories)
    print(f"seen: {r['stories']:,} stories = {r['identities']:,} identities in "
          f"{r['state_mb']:.0f} MB of state files; read + index {r['load_s']:.1f} s (RSS "
          f"+{r['load_rss_mb']:.0f} MB while loading); index {r['index_mb']:.0f} MB vs the same "
          f"digests in a Python set {r['set_rss_mb']:.0f} MB ({r['set_rss_mb'] / r['index_mb']:.1f}x); "
          f"lookup {r['lookup_us']:.1f} us per identity, {r['story_us']:.0f} us per story "
          f"(set: {r['set_lookup_us']:.2f} us); peak RSS of the process {r['peak_rss_mb']:.0f} MB")
    return r


if __name__ == "__main__":
    main()
