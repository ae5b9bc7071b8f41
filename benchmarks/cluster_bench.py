"""The cross-run cluster index at scale: 1,000,000 remembered stories in
OUT/_state/clusters, read by StateStore.load_clusters in a fresh process (as
a worker does at the start of a run): peak memory, the index's own bytes,
load time, and the cost of clustering new stories against it.

    python -m benchmarks.cluster_bench [--stories 1000000] [--new 1000]

The rows are made up but shaped like real ones: 32 runs' files over 29
days, story and cluster ids as the pipeline writes them (32 hex digits),
30 % of the stories in clusters of 2-5 members (a reprint's signature is
its original's with some values changed), MinHash values drawn as the
minimum over the sketch's shingles would be. The new stories are 30 %
reprints of remembered ones (each must join its original's cluster, or no
figure is reported) and 70 % unrelated.

`make bench` runs this as the component "clusters" (benchmarks/run.py);
the other cluster figure of the issue, CPU per entry with clustering on vs
off, is the contestant "pipeline-no-clusters" against "pipeline" there.
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
from transforms.sketch import LEAD_SHINGLES, MIN_SHINGLES, NUM_PERM
from transforms.state.store import CLUSTER_STATE_SCHEMA, StateStore

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=30)
CLUSTERED_SHARE = 0.3          # stories in clusters of 2-5
REPRINT_SHARE = 0.3            # of the new stories
CHANGED_VALUES = 0.3           # signature values a reprint does not share with its original


def _signatures(rng: np.random.Generator, shingles: np.ndarray) -> np.ndarray:
    """MinHash values as the minimum of `shingles` uniform 32-bit hashes:
    inverse CDF of the minimum, 1 - (1 - u)^(1/k)."""
    u = rng.random((len(shingles), NUM_PERM))
    values = 1.0 - np.power(1.0 - u, 1.0 / shingles[:, None])
    return np.minimum(values * 2.0**32, 2.0**32 - 1).astype("<u4")


def _reprinted(rng: np.random.Generator, signatures: np.ndarray, shingles: np.ndarray) -> np.ndarray:
    """Reprints' signatures: each original's, a share of its values drawn anew."""
    fresh = _signatures(rng, shingles)
    changed = rng.random(signatures.shape) < CHANGED_VALUES
    return np.where(changed, fresh, signatures).astype("<u4")


def _ids(rng: np.random.Generator, n: int) -> list:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8).tobytes()
    return [raw[i:i + 16].hex() for i in range(0, len(raw), 16)]


def _sizes(rng: np.random.Generator, stories: int) -> np.ndarray:
    """Cluster sizes: CLUSTERED_SHARE of the stories in clusters of 2-5, the rest alone."""
    clustered = []
    total = 0
    while total < stories * CLUSTERED_SHARE:
        size = int(rng.integers(2, 6))
        clustered.append(size)
        total += size
    sizes = np.concatenate([np.array(clustered, dtype=np.int64),
                            np.ones(max(0, stories - total), dtype=np.int64)])
    rng.shuffle(sizes)
    return sizes


def write_state(output: str, stories: int, runs: int = 32, seed: int = 0) -> dict:
    """`runs` per-run files of _state/clusters holding `stories` rows, as a
    month of runs leaves them before compaction. Returns what was written."""
    rng = np.random.default_rng(seed)
    sizes = _sizes(rng, stories)
    n = int(sizes.sum())
    shingles = np.where(rng.random(n) < 0.8, LEAD_SHINGLES,
                        rng.integers(MIN_SHINGLES, LEAD_SHINGLES + 1, n)).astype(np.int32)
    ids = _ids(rng, n)
    # Members of a cluster are consecutive rows: the first gives the cluster id,
    # the others are reprints of it.
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    signatures = _signatures(rng, shingles)
    later = first != np.arange(n)
    signatures[later] = _reprinted(rng, signatures[first[later]], shingles[later])
    cluster_ids = [ids[i] for i in first.tolist()]
    store = StateStore(output)
    bounds = np.linspace(0, n, runs + 1).astype(int)
    for run, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        seen_at = NOW - timedelta(days=29) + timedelta(hours=run * 21)
        sig = signatures[lo:hi]
        table = pa.table({
            "story_id": pa.array(ids[lo:hi], pa.string()),
            "cluster_id": pa.array(cluster_ids[lo:hi], pa.string()),
            "signature": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(4 * NUM_PERM), hi - lo, [None, pa.py_buffer(sig.tobytes())]),
            "shingles": pa.array(shingles[lo:hi], pa.int32()),
            "seen_at": pa.array([seen_at] * (hi - lo), CLUSTER_STATE_SCHEMA.field("seen_at").type),
            "run_id": pa.array([f"run-{run:03d}"] * (hi - lo)),
            "committed_at": pa.array([seen_at] * (hi - lo), CLUSTER_STATE_SCHEMA.field("committed_at").type),
        }, schema=CLUSTER_STATE_SCHEMA)
        write_parquet_atomically(f"{store.root}/clusters/run-{run:03d}.parquet", table)
    return {"stories": n, "clusters": len(sizes), "clustered_stories": int(sizes[sizes > 1].sum()),
            "signatures": signatures, "shingles": shingles, "cluster_ids": cluster_ids}


def new_stories(rng: np.random.Generator, written: dict, count: int) -> dict:
    """`count` new sketches: REPRINT_SHARE of them reprints of remembered
    stories (with the cluster each must join), the rest unrelated."""
    reprints = int(round(count * REPRINT_SHARE))
    # Reprints of full leads: a short one sits near MIN_SHARED, where the
    # estimate's noise decides (the clustering tests cover that edge).
    full = np.flatnonzero(written["shingles"] == LEAD_SHINGLES)
    sources = rng.choice(full, size=reprints, replace=False)
    shingles = np.concatenate([written["shingles"][sources],
                               np.full(count - reprints, LEAD_SHINGLES, np.int32)])
    signatures = np.concatenate([
        _reprinted(rng, written["signatures"][sources], written["shingles"][sources]),
        _signatures(rng, shingles[reprints:])])
    expected = [written["cluster_ids"][i] for i in sources.tolist()] + [""] * (count - reprints)
    return {"signatures": signatures, "shingles": shingles, "expected": expected}


# Runs in a fresh process: the index is all it holds besides the libraries.
_LOAD = r"""
import gc, json, resource, sys, time
import numpy as np
from datetime import datetime, timedelta, timezone

def rss_mb():
    with open("/proc/self/statm") as f:
        import os
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

from transforms.cluster import assign_clusters
from transforms.records import Story
from transforms.sketch import Sketch
from transforms.state.store import StateStore

output, probes = sys.argv[1], sys.argv[2]
now = datetime(2026, 3, 1, tzinfo=timezone.utc)
gc.collect()
before = rss_mb()
start = time.perf_counter()
index = StateStore(output).load_clusters("bench", now, timedelta(days=30))
load_s = time.perf_counter() - start
gc.collect()
after = rss_mb()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

data = np.load(probes)
expected = json.loads(open(probes + ".json").read())
stories = [Story(story_id=f"new-{i:06d}", url=None, canonical_url=None, guid=None, title="", summary="",
                 content="", published_at=now + timedelta(seconds=i), fetched_at=now, feed_url="bench",
                 entry_index=i, sketch=Sketch(sig.astype("<u4").tobytes(), int(k)))
           for i, (sig, k) in enumerate(zip(data["signatures"], data["shingles"]))]
start = time.perf_counter()
out = assign_clusters(stories, index)
lookup_s = time.perf_counter() - start
got = {s.story_id: s.cluster_id for s in out}
joined = sum(1 for i, e in enumerate(expected) if e and got[f"new-{i:06d}"] == e)
alone = sum(1 for i, e in enumerate(expected) if not e and got[f"new-{i:06d}"] == f"new-{i:06d}")
print(json.dumps({"remembered": len(index), "load_s": load_s, "index_mb": index.nbytes / 2**20,
                  "rss_before_mb": before, "rss_loaded_mb": after, "load_peak_rss_mb": peak,
                  "lookup_us": lookup_s / len(stories) * 1e6, "joined": joined, "alone": alone,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(stories: int = 1_000_000, new: int = 1000, runs: int = 32, seed: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        written = write_state(out, stories, runs, seed)
        write_s = time.perf_counter() - started
        folder = os.path.join(out, "_state", "clusters")
        state_mb = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) / 2**20
        probes = new_stories(np.random.default_rng(seed + 1), written, new)
        probe_file = os.path.join(out, "probes.npz")
        np.savez(probe_file, signatures=probes["signatures"], shingles=probes["shingles"])
        Path(probe_file + ".json").write_text(json.dumps(probes["expected"]))
        remembered, clusters = written["stories"], written["clusters"]
        clustered = written["clustered_stories"]
        del written
        proc = subprocess.run([sys.executable, "-c", _LOAD, out, probe_file], capture_output=True,
                              text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if proc.returncode != 0:
            raise SystemExit("cluster bench: loading the index failed: "
                             + " | ".join(proc.stderr.strip().splitlines()[-3:]))
        loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    reprints = sum(1 for e in probes["expected"] if e)
    if loaded["remembered"] != remembered:
        raise SystemExit(f"cluster bench: the index holds {loaded['remembered']:,} stories, "
                         f"{remembered:,} were written")
    if loaded["joined"] != reprints or loaded["alone"] != new - reprints:
        # a fast wrong answer is not a result
        raise SystemExit(f"cluster bench: {loaded['joined']} of {reprints} reprints joined their "
                         f"cluster and {loaded['alone']} of {new - reprints} unrelated stories "
                         "stayed alone; no figure reported")
    return dict(loaded, stories=remembered, clusters=clusters, clustered_stories=clustered,
                state_mb=state_mb, write_s=write_s, new=new, new_reprints=reprints,
                bytes_per_story=loaded["index_mb"] * 2**20 / remembered)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=1000, help="new stories clustered against the index")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    r = measure(args.stories, args.new)
    print(f"clusters: {r['stories']:,} remembered stories ({r['clustered_stories']:,} in clusters of 2-5) "
          f"in {r['state_mb']:.0f} MB of state files; load_clusters {r['load_s']:.1f} s in a fresh "
          f"process; index {r['index_mb']:.0f} MB ({r['bytes_per_story']:.0f} bytes a story); RSS "
          f"{r['rss_before_mb']:.0f} MB before, {r['rss_loaded_mb']:.0f} MB loaded, peak "
          f"{r['load_peak_rss_mb']:.0f} MB while loading")
    print(f"clusters: {r['new']:,} new stories clustered against it in {r['lookup_us']:.0f} us a story; "
          f"{r['joined']} of {r['new_reprints']} reprints joined their cluster, the others stayed alone")
    print(json.dumps({k: v for k, v in r.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
