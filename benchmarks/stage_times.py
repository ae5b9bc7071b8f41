"""Where a run's wall time goes, stage by stage, in-process and with two
multi_processing workers: `newswatch run` on the benchmark corpus, each run
in a child process that records when the runner starts each fused stage (the
FnApiRunner's own "Running bundle for stage" log line). A stage lasts until
the next one starts; the last until the command line returns.

    python -m benchmarks.stage_times --entries 100000 --write

A stage is named by the top-level transforms fused into it (pipeline/graph.py's
labels). "start-up" is from the command line's import to the first stage:
configuration, state and the graph; the workers start in the first stage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from benchmarks import corpus, local
from benchmarks.run import MP_FLAGS, RESULTS, ROOT, TOPICS
from benchmarks.served_corpus import served_feed_list
from pipeline.config import load_topic_definitions
from tests.support.feedserver import FeedServer

MODES = {"in-process": [], "two workers": MP_FLAGS}

# The child: the command line's main() with a handler on the runner's log.
CHILD = r"""
import json, logging, sys, time
started = time.perf_counter()
stages = []

class Stages(logging.Handler):
    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Running bundle for stage "):
            stages.append((time.perf_counter() - started, message[len("Running bundle for stage "):].split("\n")[0]))

log = logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner")
log.setLevel(logging.DEBUG)
log.addHandler(Stages(logging.DEBUG))
log.propagate = False
from pipeline.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "wall_s": time.perf_counter() - started, "stages": stages}))
"""

# A transform of ours as the runner names it inside a fused stage:
# "ref_AppliedPTransform_Dedup-Winners-..." or "(Dedup/Winners/.../Read)".
_TRANSFORM = re.compile(r"(?:ref_AppliedPTransform_|\()([A-Z][A-Za-z0-9]+)(?:[-/]([A-Z][A-Za-z0-9]+))?")


def stage_label(stage: str) -> str:
    """The first transform of a fused stage (two levels: "Dedup/Winners"),
    then the other top-level transforms fused into it, in the runner's order."""
    found = _TRANSFORM.findall(stage)
    if not found:
        return stage[:60]
    top, sub = found[0]
    names = [f"{top}/{sub}" if sub else top]
    for name, _ in found[1:]:
        if name != top and name not in names:
            names.append(name)
    return " + ".join(names)


def _same_stage(a: str, b: str) -> bool:
    # Within a stage the runner may list fused transforms in another order.
    first_a, *rest_a = a.split(" + ")
    first_b, *rest_b = b.split(" + ")
    return first_a == first_b and sorted(rest_a) == sorted(rest_b)


def run_once(feeds: str, out: str, flags: List[str]) -> dict:
    """One `newswatch run` in a child process: its wall time and each
    stage's (label, start, seconds)."""
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-c", CHILD, "run", "--feeds", feeds, "--topics", str(TOPICS),
                           "--output", out, "--runner", "DirectRunner", "--quiet", *local.cli_flags(), *flags],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    found = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"code": proc.returncode}
    if found["code"] != 0:
        raise RuntimeError(f"newswatch run exited {found['code']}: {proc.stderr[-2000:]}")
    starts = found["stages"]
    ends = [at for at, _ in starts[1:]] + [found["wall_s"]]
    return {"wall_s": found["wall_s"],
            "start_up_s": starts[0][0] if starts else found["wall_s"],
            "stages": [(stage_label(stage), at, end - at) for (at, stage), end in zip(starts, ends)]}


def summarise(runs: Dict[str, List[dict]]) -> dict:
    """Medians by mode: the wall, start-up and each stage (matched by its
    place in the run: both modes run the same fused graph)."""
    out = {"modes": {}, "stages": []}
    for mode, done in runs.items():
        out["modes"][mode] = {"wall_s": statistics.median(r["wall_s"] for r in done),
                              "start_up_s": statistics.median(r["start_up_s"] for r in done)}
    # Every run of either mode (a stage run as more than one bundle would
    # be logged twice) must have run the same stages, in the same order.
    labels = [[label for label, *_ in run["stages"]] for done in runs.values() for run in done]
    if any(len(found) != len(labels[0]) or not all(map(_same_stage, found, labels[0])) for found in labels):
        raise RuntimeError(f"the runs ran different stages: {labels}")
    for index, label in enumerate(labels[0]):
        out["stages"].append({"stage": label, **{
            mode: statistics.median(r["stages"][index][2] for r in done) for mode, done in runs.items()}})
    return out


def render(summary: dict, context: dict) -> str:
    one, two = MODES
    lines = [f"stage times, {context['entries']:,} entries, {context['date']}: {context['command']}",
             f"{'stage':<58} {one:>11} {two:>12} {'gain':>6}"]
    rows = [("start-up", summary["modes"][one]["start_up_s"], summary["modes"][two]["start_up_s"])]
    rows += [(s["stage"], s[one], s[two]) for s in summary["stages"]]
    rows += [("the whole run", summary["modes"][one]["wall_s"], summary["modes"][two]["wall_s"])]
    for label, a, b in rows:
        short = label if len(label) <= 58 else label[:55] + "..."
        lines.append(f"{short:<58} {a:>9.2f} s {b:>10.2f} s {a / b if b else 0:>5.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=1, help="runs of each mode, in turns (medians)")
    parser.add_argument("--write", action="store_true",
                        help="keep the result as benchmarks/results/stage_times.json")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.entries < 1:
        parser.error("--runs and --entries must be >= 1")
    work = tempfile.mkdtemp(prefix="newswatch-stages-")
    runs: Dict[str, List[dict]] = {mode: [] for mode in MODES}
    try:
        folder = os.path.join(work, "corpus")
        corpus.write(corpus.CorpusSpec(entries=args.entries), load_topic_definitions(str(TOPICS)), folder)
        with FeedServer() as server:
            feeds = served_feed_list(server, folder, 0.02, os.path.join(work, "feeds.txt"))
            for turn in range(args.runs):
                for mode, flags in MODES.items():
                    runs[mode].append(run_once(feeds, os.path.join(work, "out"), flags))
                    print(f"run {turn + 1} {mode}: {runs[mode][-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    context = {"entries": args.entries, "runs": args.runs,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": "python -m benchmarks.stage_times " + " ".join(argv if argv is not None else sys.argv[1:])}
    summary = {**context, **summarise(runs)}
    print(render(summary, context))
    if args.write:
        Path(RESULTS, "stage_times.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
