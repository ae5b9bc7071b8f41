"""Where does the pipeline's memory go? Resident memory around each stage of
one in-process run on the benchmark corpus.

    python -m benchmarks.stage_memory --entries 100000 [--allocators default] \
        [--save benchmarks/results/stage_memory.json]

The DirectRunner in-process runs one stage (the steps Beam fused between two
shuffles) at a time, each as one bundle, on the calling thread. For every
stage this records the process's RSS when it starts, its peak while it runs
(a thread samples every 20 ms) and RSS when it ends, through the runner's
`FnApiRunner._execute_bundle` (Beam 2.77's name; the tool fails if it
changes). A stage is named by the top-level steps it runs.

`--allocators default` runs with pyarrow's and glibc's defaults instead of
transforms/process_memory.py's settings, to compare (NEWSWATCH_ALLOCATORS=
default). Either choice refuses to run where the environment already sets
the allocators otherwise, since glibc reads them when the process starts.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from typing import List

import psutil
import pyarrow as pa

from benchmarks import corpus, local
from benchmarks.run import TOPICS
from benchmarks.served_corpus import served_feed_list
from benchmarks.verify import Verdict, check_stories
from pipeline.config import load_topic_definitions
from tests.support.feedserver import FeedServer

SAMPLE_S = 0.02
MB = 1e6


class StageMemory:
    """RSS before, at the peak of and after each stage the runner executes."""

    def __init__(self):
        self.process = psutil.Process()
        self.stages: List[dict] = []
        self.peak = self.process.memory_info().rss
        self._stage_peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_S):
            rss = self.process.memory_info().rss
            self._stage_peak = max(self._stage_peak, rss)
            self.peak = max(self.peak, rss)

    def __enter__(self):
        from apache_beam.runners.portability.fn_api_runner import fn_runner

        self._runner, self._original = fn_runner.FnApiRunner, fn_runner.FnApiRunner._execute_bundle
        recorder = self

        def execute_bundle(runner, context, bundle_context, bundle_input):
            before = recorder.process.memory_info().rss
            recorder._stage_peak, started = before, time.monotonic()
            try:
                return recorder._original(runner, context, bundle_context, bundle_input)
            finally:
                after = recorder.process.memory_info().rss
                stage_peak = max(recorder._stage_peak, after)
                recorder.peak = max(recorder.peak, stage_peak)
                recorder.stages.append({
                    "steps": stage_steps(bundle_context.stage),
                    "before_mb": round(before / MB), "peak_mb": round(stage_peak / MB),
                    "after_mb": round(after / MB), "seconds": round(time.monotonic() - started, 1)})

        self._runner._execute_bundle = execute_bundle
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self._runner._execute_bundle = self._original


def stage_steps(stage) -> str:
    """The top-level steps of a fused stage, in order: "Fetch, Parse, ..."."""
    names = []
    for transform in stage.transforms:
        top = transform.unique_name.split("/", 1)[0]
        if top and not top.startswith("ref_") and top not in names:
            names.append(top)
    return ", ".join(names) or stage.name[:60]


def save(path: str, result: dict) -> None:
    """Keep `result` in the JSON file at `path` under its allocators
    ("tuned", "default"), beside the other's."""
    saved = {}
    if os.path.exists(path):
        with open(path) as handle:
            saved = json.load(handle)
    saved[result["allocators"]] = result
    with open(path, "w") as handle:
        json.dump(saved, handle, indent=1, sort_keys=True)
        handle.write("\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--allocators", choices=("tuned", "default"), default="tuned",
                        help="default: pyarrow's and glibc's, not transforms/process_memory.py's")
    parser.add_argument("--save", help="write the result here as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, force=True)
    from transforms import process_memory

    # glibc reads its settings when the process starts: measure only what
    # the label says.
    if args.allocators == "default":
        inherited = sorted(name for name in process_memory.ENVIRONMENT if name in os.environ)
    else:
        inherited = sorted(name for name, value in process_memory.ENVIRONMENT.items()
                           if os.environ.get(name, value) != value)
        if os.environ.get(process_memory.SWITCH, "tuned") != "tuned":
            inherited.append(process_memory.SWITCH)
    if inherited:
        print(f"stage_memory: --allocators {args.allocators} with {', '.join(inherited)} set otherwise: "
              "start it from an environment without them", file=sys.stderr)
        return 2
    if args.allocators == "default":
        os.environ[process_memory.SWITCH] = "default"
    work = tempfile.mkdtemp(prefix="newswatch-stage-memory-")
    try:
        truth = corpus.write(corpus.CorpusSpec(entries=args.entries), load_topic_definitions(str(TOPICS)), work)
        with FeedServer() as server:
            feeds = served_feed_list(server, work, 0.0, os.path.join(work, "feeds.txt"))
            out = os.path.join(work, "out")
            from pipeline.cli import main as newswatch

            start_mb = round(psutil.Process().memory_info().rss / MB)
            with StageMemory() as memory:
                code = newswatch(["run", "--feeds", feeds, "--topics", str(TOPICS), "--output", out, "--quiet",
                                  "--runner", "DirectRunner", *local.cli_flags()])
        if code != 0:
            print(f"newswatch exited {code}", file=sys.stderr)
            return 1
        verdict = check_stories(Verdict(), os.path.join(out, "stories"), truth)
        if not verdict.ok:
            print(f"wrong output: {verdict.why()}", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.stage_memory " + " ".join(argv if argv is not None else sys.argv[1:]),
        "entries": args.entries, "allocators": args.allocators,
        "arrow_pool": pa.default_memory_pool().backend_name,
        "start_mb": start_mb, "peak_mb": round(memory.peak / MB), "stages": memory.stages,
    }
    print(f"{args.entries:,} entries, allocators {args.allocators}: RSS {start_mb:,} MB before the run, "
          f"peak {result['peak_mb']:,} MB")
    print(f"{'before':>7} {'peak':>7} {'after':>7} {'s':>6}  stage (top-level steps)")
    for stage in memory.stages:
        if stage["peak_mb"] - stage["before_mb"] >= 10 or stage["seconds"] >= 1:
            print(f"{stage['before_mb']:>7,} {stage['peak_mb']:>7,} {stage['after_mb']:>7,} "
                  f"{stage['seconds']:>6.1f}  {stage['steps']}")
    if args.save:
        save(args.save, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
