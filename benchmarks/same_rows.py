"""Same rows before and after a change: the check for refactors that must not
change behaviour.

    python -m benchmarks.same_rows --base REV [--entries N]
    make same-rows BASE=REV

Runs `newswatch run` twice on the same input, once in a checkout of REV (a
temporary git worktree) and once in this working tree, and compares every
row they write to stories/, fetches/, errors/ and the entry archive,
entries/. The input is the bundled
seeds/ (what `make run` reads) and a generated benchmark corpus
(benchmarks/corpus.py, seeded) served over HTTP on 127.0.0.1. Both runs read
the same copy of the input, so feed URLs and paths are equal.

Ignored, because they differ between any two runs by design: run_id,
fetched_at, occurred_at and elapsed_s (clock readings), and file names.
Rows are compared sorted, as pandas reads them back. Exit 0 when every
dataset is identical, 1 with the first differences otherwise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from benchmarks import corpus
from benchmarks.run import ROOT, TOPICS
from benchmarks.served_corpus import served_feed_list
from pipeline.config import load_topic_definitions
from tests.support.feedserver import FeedServer

DATASETS = ("stories", "fetches", "errors", "entries")
CLOCK_COLUMNS = ("run_id", "fetched_at", "occurred_at", "elapsed_s")


def run_pipeline(checkout: Path, feeds: str, topics: str, out: str) -> None:
    """`newswatch run` as the code of `checkout` does it, in a process of its own."""
    cmd = [sys.executable, "-m", "pipeline", "run", "--feeds", feeds, "--topics", topics,
           "--output", out, "--run-id", "same-rows", "--runner", "DirectRunner",
           "--allow-private-addresses"]
    env = dict(os.environ, PYTHONPATH=str(checkout))
    proc = subprocess.run(cmd, cwd=str(checkout), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"run in {checkout} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def comparable(out: str, dataset: str) -> Optional[pd.DataFrame]:
    """A dataset's rows without clock readings, in a stable order; None if absent."""
    folder = os.path.join(out, dataset)
    if not os.path.isdir(folder):
        return None
    frame = pd.read_parquet(folder)
    frame = frame.drop(columns=[c for c in CLOCK_COLUMNS if c in frame.columns])
    if frame.empty:
        return frame.reset_index(drop=True)
    frame = frame.map(lambda v: repr(v.tolist()) if hasattr(v, "tolist") else v)
    # Sorting on every column's text gives one order for equal rows too.
    order = frame.map(repr).apply(lambda row: "\x1f".join(row), axis=1).sort_values().index
    return frame.loc[order].reset_index(drop=True)


def differences(base_out: str, new_out: str) -> List[str]:
    """What differs between two outputs, dataset by dataset (empty: the same)."""
    problems = []
    for dataset in DATASETS:
        before, after = comparable(base_out, dataset), comparable(new_out, dataset)
        if before is None and after is None:
            continue
        if before is None or after is None:
            problems.append(f"{dataset}: only {'after' if before is None else 'before'} has it")
            continue
        if list(before.columns) != list(after.columns):
            problems.append(f"{dataset}: columns {list(before.columns)} -> {list(after.columns)}")
            continue
        if len(before) != len(after):
            problems.append(f"{dataset}: {len(before)} rows -> {len(after)}")
            continue
        unequal = before.ne(after) & ~(before.isna() & after.isna())
        for column in before.columns[unequal.any()]:
            row = unequal.index[unequal[column]][0]
            problems.append(f"{dataset}.{column}: {unequal[column].sum()} rows differ, first "
                            f"{before.at[row, column]!r} -> {after.at[row, column]!r}")
    return problems


def worktree(base: str, into: str) -> Path:
    """A checkout of `base` (a git revision) at `into`."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", into, base],
                   check=True, capture_output=True, text=True)
    return Path(into)


def compare(base: str, entries: int, work: str, log=print) -> Dict[str, List[str]]:
    """Runs both checkouts on the seeds and on a corpus of `entries`; the
    differences per input."""
    checkout = worktree(base, os.path.join(work, "base"))
    try:
        inputs = {"seeds": shutil.copytree(ROOT / "seeds", os.path.join(work, "seeds"))}
        topics = str(TOPICS)
        result = {}
        truth = corpus.write(corpus.CorpusSpec(entries=entries),
                             load_topic_definitions(topics), os.path.join(work, "corpus"))
        log(f"corpus: {truth.entries:,} entries in {truth.documents:,} documents")
        with FeedServer() as server:
            inputs["corpus"] = served_feed_list(server, os.path.join(work, "corpus"), 0.0,
                                                os.path.join(work, "corpus-feeds.txt"))
            for name, source in inputs.items():
                feed_list = os.path.join(source, "feeds.opml") if name == "seeds" else source
                outs = {}
                for side, code in (("before", checkout), ("after", ROOT)):
                    outs[side] = os.path.join(work, f"out-{name}-{side}")
                    run_pipeline(code, feed_list, topics, outs[side])
                result[name] = differences(outs["before"], outs["after"])
                rows = len(pd.read_parquet(os.path.join(outs["after"], "stories")))
                log(f"{name}: {rows} stories; " + ("same rows" if not result[name]
                                                   else f"{len(result[name])} differences"))
        return result
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)],
                       capture_output=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare with (e.g. HEAD, main~3)")
    parser.add_argument("--entries", type=int, default=5_000, help="benchmark corpus size (default 5,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="same-rows-") as work:
        result = compare(args.base, args.entries, work)
    for name, problems in result.items():
        for problem in problems:
            print(f"{name}: {problem}")
    same = not any(result.values())
    print("same rows" if same else "DIFFERENT rows")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
