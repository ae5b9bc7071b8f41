"""What the garbage collector costs a run, as the command line sets it up
(transforms/process_gc.py: the start-up heap frozen, a young pass every
YOUNG_THRESHOLD net allocations), frozen at Python's young threshold of 700, and
with Python's defaults (NEWSWATCH_GC=default): `newswatch run` in-process on
the benchmark corpus, in turns, each run in a child process that times
every collection by generation (gc.callbacks).

    python -m benchmarks.gc_cost --entries 100000 --runs 2

Prints one line per run and the medians: CPU of the run, and CPU spent in
full collections (generation 2) and in younger ones; each run's line also
gives its number of passes of each generation (young, middle, full).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from benchmarks import corpus, local
from benchmarks.run import ROOT, TOPICS
from benchmarks.served_corpus import served_feed_list
from pipeline.config import load_topic_definitions
from tests.support.feedserver import FeedServer
from transforms.process_gc import SWITCH

# The child: the command line's main() with a timer on every collection.
CHILD = r"""
import gc, json, sys, time
spent, passes, began = [0.0, 0.0, 0.0], [0, 0, 0], [0.0]
def timed(phase, info):
    # The collecting thread's own CPU: other threads may run C code meanwhile.
    if phase == "start":
        began[0] = time.thread_time()
    else:
        spent[info["generation"]] += time.thread_time() - began[0]
        passes[info["generation"]] += 1
from pipeline.cli import main
from transforms import process_gc
if {young!r} is not None:
    process_gc.YOUNG_THRESHOLD = {young!r}
gc.callbacks.append(timed)   # from where the run's CPU is counted: the import is in neither
start = time.process_time()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "cpu_s": time.process_time() - start, "full_s": spent[2], "young_s": spent[0] + spent[1],
                  "passes": passes}))
"""
# mode -> (NEWSWATCH_GC, the young threshold set after freezing; None: process_gc's own)
MODES = {"freeze": ("freeze", None), "freeze700": ("freeze", 700), "default": ("default", None)}


def run_once(feeds: str, out: str, mode: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    switch, young = MODES[mode]
    env = {**os.environ, SWITCH: switch, "PYTHONPATH": str(ROOT)}
    child = CHILD.replace("{young!r}", repr(young))
    proc = subprocess.run([sys.executable, "-c", child, "run", "--feeds", feeds, "--topics", str(TOPICS),
                           "--output", out, "--runner", "DirectRunner", "--quiet", *local.cli_flags()],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    if found["code"] != 0:
        raise RuntimeError(f"newswatch run exited {found['code']}: {proc.stderr[-2000:]}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each mode, in turns")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="newswatch-gc-")
    try:
        corpus.write(corpus.CorpusSpec(entries=args.entries), load_topic_definitions(str(TOPICS)), work)
        results = {mode: [] for mode in MODES}
        with FeedServer() as server:
            feeds = served_feed_list(server, work, 0.0, os.path.join(work, "feeds.txt"))
            for turn in range(args.runs):
                for mode in (list(MODES) if turn % 2 == 0 else list(MODES)[::-1]):
                    found = run_once(feeds, os.path.join(work, "out"), mode)
                    results[mode].append(found)
                    print(f"{mode:9} CPU {found['cpu_s']:6.1f} s, full collections {found['full_s']:5.2f} s, "
                          f"younger {found['young_s']:5.2f} s; passes by generation {found['passes']}", flush=True)
        for mode, runs in results.items():
            median = {key: statistics.median(r[key] for r in runs) for key in ("cpu_s", "full_s", "young_s")}
            print(f"median {mode:9} ({args.entries:,} entries, {len(runs)} runs): CPU {median['cpu_s']:.1f} s, "
                  f"full collections {median['full_s']:.2f} s ({median['full_s'] / median['cpu_s']:.1%}), "
                  f"younger {median['young_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
