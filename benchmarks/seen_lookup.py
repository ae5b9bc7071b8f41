"""Seen-story lookup at scale: the state of N remembered stories (3
identities each: guid, URL, text; real story ids) as a month of runs leaves
it in OUT/_state/seen (28 runs merged by a compaction, 4 runs since), loaded
into the SeenIndex every worker process holds. Each load runs in a child
process of its own, which reports its time and its peak RSS (VmHWM):

- mapped:  the compaction's digest file memory-mapped + the 4 newer files;
- parquet: the same state without the digest file (every file read, row
  group by row group: what a reader does when the digest file is missing);

and, against them, a plain Python set of the same digests (measured in the
same run, up to 1,000,000 stories). The compaction itself is timed too.

    python -m benchmarks.seen_lookup [--stories 1000000]
    python -m benchmarks.seen_lookup --stories 10000000    # the target: < 1.5 GB, < 15 s
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from transforms.sink import write_parquet_atomically
from transforms.state.store import SEEN, SEEN_SCHEMA, StateStore, key_digest

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=30)
KEYS_PER_STORY = 3
RUNS, COMPACTED_RUNS = 32, 28
SET_BASELINE_UP_TO = 1_000_000   # stories; a Python set of 30M digests would take ~3.5 GB
TARGET_STORIES, TARGET_PEAK_MB, TARGET_LOAD_S = 10_000_000, 1.5e9 / 2**20, 15.0   # "1.5 GB" as benchmarks.run reads it
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def vm_mb(field: str) -> float:
    """VmRSS / VmHWM (peak) of this process, MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def story_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """n story ids shaped as transforms.identity makes them (32 hex digits)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    text = np.empty((n, 32), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def write_run(store: StateStore, run: int, stories: int, rng: np.random.Generator) -> np.ndarray:
    """One run's seen file as StateStore.commit writes it (sorted by key, a
    commit row at the end); returns every 30th of its keys as probes."""
    n = stories * KEYS_PER_STORY
    keys = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    ids = story_ids(rng, stories).take(pa.array(np.repeat(np.arange(stories), KEYS_PER_STORY)))
    order = np.argsort(keys[:, :8].copy().view(">u8")[:, 0], kind="stable")
    keys, ids = keys[order], ids.take(pa.array(order))
    at = NOW - timedelta(days=29) + timedelta(hours=run * 20)
    at_us = pa.array(np.full(n + 1, (at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)))
    run_id = f"run-{run:03d}"
    table = pa.table({
        "key": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n + 1, [
            pa.py_buffer(np.packbits(np.r_[np.ones(n, bool), False], bitorder="little").tobytes()),
            pa.py_buffer(keys.tobytes() + bytes(16))]),
        "story_id": pa.concat_arrays([ids, pa.nulls(1, pa.string())]),
        "seen_at": at_us.cast(SEEN_SCHEMA.field("seen_at").type),
        "run_id": pa.array([run_id] * (n + 1)),
        "committed_at": at_us.cast(SEEN_SCHEMA.field("committed_at").type),
    }, schema=SEEN_SCHEMA)
    write_parquet_atomically(f"{store.root}/{SEEN}/{run_id}.parquet", table)
    return keys[::30].copy()


def in_child(function: str, *args) -> dict:
    """benchmarks.seen_lookup.<function>(*args) in a fresh process: its json result."""
    code = ("import json, logging; logging.basicConfig(level=logging.ERROR, force=True); "
            f"import benchmarks.seen_lookup as m; print(json.dumps(m.{function}(*{args!r})))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"seen benchmark: {function} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_compact(out: str) -> dict:
    before = vm_mb("VmHWM")
    start = time.perf_counter()
    StateStore(out).compact(SEEN, NOW, LOOKBACK)
    return {"s": time.perf_counter() - start, "peak_mb": vm_mb("VmHWM"), "before_mb": before}


def child_load(out: str, probes_file: str, with_set: bool) -> dict:
    """Loads the index as a worker's setup() does, then checks and times lookups."""
    from transforms.records import Story
    from transforms.seen import last_seen

    probes = np.load(probes_file)
    present = [bytes(k) for k in probes]
    absent = [key_digest(f"url:https://example.org/new/{i}") for i in range(len(present))]
    r = {"before_mb": vm_mb("VmHWM")}
    start = time.perf_counter()
    index = StateStore(out).load_seen("bench", NOW, LOOKBACK)
    r.update(load_s=time.perf_counter() - start, peak_mb=vm_mb("VmHWM"), rss_mb=vm_mb("VmRSS"),
             identities=len(index), index_mb=index.nbytes / 2**20)

    start = time.perf_counter()
    found = sum(index.last_seen(k) is not None for k in present + absent)
    r["lookup_us"] = (time.perf_counter() - start) / (2 * len(present)) * 1e6
    r["found"], r["probes"] = found, len(present)
    story = Story(story_id="x", url="https://example.org/a", canonical_url="https://example.org/a",
                  guid="g", title="A title", summary="Some text.", content="", feed_url="f",
                  content_hash="h", fetched_at=NOW)
    start = time.perf_counter()
    for _ in range(20_000):
        last_seen(story, index)
    r["story_us"] = (time.perf_counter() - start) / 20_000 * 1e6
    if with_set:   # the baseline: the same digests in a Python set
        hi, lo = index.identities()[:2] if hasattr(index, "identities") else (index.hi, index.lo)
        rss = vm_mb("VmRSS")
        start = time.perf_counter()
        his, los = hi.astype(">u8").tobytes(), lo.astype(">u8").tobytes()
        baseline = {his[i:i + 8] + los[i:i + 8] for i in range(0, len(his), 8)}
        r["set_build_s"] = time.perf_counter() - start
        r["set_rss_mb"] = vm_mb("VmRSS") - rss
        start = time.perf_counter()
        r["set_hits"] = sum(k in baseline for k in present + absent)
        r["set_lookup_us"] = (time.perf_counter() - start) / (2 * len(present)) * 1e6
    r["end_peak_mb"] = vm_mb("VmHWM")
    return r


def measure(stories: int, probes: int = 100_000) -> dict:
    with tempfile.TemporaryDirectory(prefix="newswatch-seen-bench-") as out:
        store = StateStore(out)
        rng = np.random.default_rng(0)
        shares = np.array_split(np.arange(stories), RUNS)
        samples = []
        start = time.perf_counter()
        for run in range(COMPACTED_RUNS):
            samples.append(write_run(store, run, len(shares[run]), rng))
        compact = in_child("child_compact", out)
        for run in range(COMPACTED_RUNS, RUNS):
            samples.append(write_run(store, run, len(shares[run]), rng))
        write_s = time.perf_counter() - start
        sample = np.concatenate(samples)
        probes_file = os.path.join(out, "probes.npy")
        np.save(probes_file, sample[np.linspace(0, len(sample) - 1, min(probes, len(sample))).astype(int)])
        del samples, sample
        folder = Path(out, "_state", SEEN)
        state_mb = sum(p.stat().st_size for p in folder.glob("*.parquet")) / 2**20
        digests = sorted(folder.glob("*.digests"))
        with_set = stories <= SET_BASELINE_UP_TO
        mapped = in_child("child_load", out, probes_file, with_set) if digests else None
        for path in digests:   # the same state, read from Parquet alone
            path.rename(Path(out, path.name + ".aside"))
        parquet = in_child("child_load", out, probes_file, with_set and not mapped)
    main = mapped or parquet
    for name, r in (("mapped", mapped), ("parquet", parquet)):
        if r and (r["found"] != r["probes"] or r["identities"] != stories * KEYS_PER_STORY):
            raise SystemExit(f"seen benchmark ({name}): {r['found']} hits for {r['probes']} remembered keys, "
                             f"{r['identities']:,} identities")   # a fast wrong answer is not a result
    if main.get("set_hits", main["probes"]) != main["probes"]:
        raise SystemExit("seen benchmark: the Python set baseline disagrees")
    result = {"stories": stories, "identities": main["identities"], "state_mb": state_mb,
              "write_s": write_s, "compact_s": compact["s"], "compact_peak_mb": compact["peak_mb"],
              "load_s": main["load_s"], "load_peak_mb": main["peak_mb"], "start_mb": main["before_mb"],
              "index_mb": main["index_mb"], "lookup_us": main["lookup_us"], "story_us": main["story_us"],
              "mapped": mapped, "parquet": parquet}
    if "set_rss_mb" in main:
        result.update(set_build_s=main["set_build_s"], set_rss_mb=main["set_rss_mb"],
                      set_lookup_us=main["set_lookup_us"])
    return result


def render(r: dict) -> str:
    lines = [f"seen: {r['stories']:,} stories = {r['identities']:,} identities in {r['state_mb']:,.0f} MB "
             f"of state files (28 runs compacted, 4 since), written in {r['write_s']:.0f} s; "
             f"compaction {r['compact_s']:.1f} s, peak RSS {r['compact_peak_mb']:,.0f} MB"]
    for name, what in (("mapped", "digest file mapped + 4 files read"), ("parquet", "every file read")):
        x = r.get(name)
        if x:
            lines.append(f"  load, {what}: {x['load_s']:.1f} s, peak RSS {x['peak_mb']:,.0f} MB "
                         f"({x['before_mb']:,.0f} MB before loading; RSS {x['rss_mb']:,.0f} MB after); "
                         f"lookup {x['lookup_us']:.1f} us per identity, {x['story_us']:.0f} us per story")
    if "set_rss_mb" in r:
        lines.append(f"  index {r['index_mb']:,.0f} MB vs the same digests in a Python set "
                     f"{r['set_rss_mb']:,.0f} MB ({r['set_rss_mb'] / r['index_mb']:.1f}x), set lookup "
                     f"{r['set_lookup_us']:.2f} us")
    if r["stories"] >= TARGET_STORIES:
        ok = r["load_peak_mb"] < TARGET_PEAK_MB and r["load_s"] < TARGET_LOAD_S
        lines.append(f"  target at {TARGET_STORIES:,} stories: load peak < {TARGET_PEAK_MB:,.0f} MB and < "
                     f"{TARGET_LOAD_S:.0f} s: {'met' if ok else 'NOT MET'}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    r = measure(args.stories)
    print(render(r))
    return r


if __name__ == "__main__":
    main()
