"""Where does the pipeline's time go? cProfile of one in-process run on the
benchmark corpus (or of the plain-Python baseline, to compare).

    python -m benchmarks.profile --entries 10000 [--baseline [--parser auto]] [--top 40] [--save out.pstats]
    python -m benchmarks.profile --retag DIR [--top 40]

`--retag DIR` profiles `newswatch retag` (in-process) of the archive that
`python -m benchmarks.retag_throughput --runs 3 --modes in_process --work DIR`
generated, instead of a run. Both print, after the top functions, the
shares of the CPU by area (`AREAS`: where each function's own time lives).

The DirectRunner in-process executes every stage on the calling thread, so
one cProfile sees all of it. Its clock is the wall clock: while a call lets
the interpreter go (a Hyperscan scan, lxml, hashing), another thread's
Python work counts for that call. So the feeds are served from a child
process (benchmarks/served_corpus.py: `served_elsewhere`), as `make bench`
serves them to contestants that are processes of their own. The fetch
stage's threads (reading responses, the address guard) stay in the
profiled process, as they are part of the run. For multi_processing
workers use py-spy on the worker processes instead:
`py-spy record --subprocesses -o profile.svg -- python -m pipeline run ...`.
"""
from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import shutil
import sys
import tempfile
from typing import Optional

from benchmarks import corpus, local
from benchmarks.run import TOPICS
from benchmarks.served_corpus import served_elsewhere
from benchmarks.verify import Verdict, check_stories
from pipeline.config import load_topic_definitions


# Where a function's own time counts, by the file it is in: the first
# area whose marker the file name contains (Beam first: it has its own
# transforms/ folder).
AREAS = (
    ("Beam (bundles, coders, the runner)", ("apache_beam/",)),
    ("language detection (langdetect's method)", ("langdetect/", "transforms/langdetect_fast", "transforms/language.py")),
    ("topic matching", ("transforms/topics/", "hyperscan")),
    ("sketching and clusters", ("transforms/sketch", "transforms/cluster")),
    ("seen-before, dedup, state", ("transforms/seen", "transforms/dedup", "transforms/unmatched", "transforms/state/")),
    ("parsing feeds (feedparser, lxml)", ("feedparser/", "transforms/fast_parse", "lxml")),
    ("entries to stories (HTML to text, URLs, dates, hash, ids)",
     ("transforms/parse.py", "transforms/html_text", "transforms/identity", "transforms/dates",
      "transforms/publisher", "transforms/records")),
    ("the entry archive (rows from and to stories)", ("pipeline/retag.py", "transforms/archive.py")),
    ("our other modules", ("/transforms/", "/pipeline/")),
    ("pyarrow (reading, writing Parquet)", ("pyarrow/",)),
    ("imports", ("<frozen importlib", "importlib/")),
)


OTHER = "Python's library and built-ins, for the rest"


def _own_area(function) -> str:
    file_name, _, name = function
    for area, markers in AREAS:
        if any(marker in file_name for marker in markers):
            return area
    if file_name == "~" and "pickle" in name:
        return "pickling (prepared files, Beam's pickled values)"
    return OTHER


def cpu_by_area(stats: pstats.Stats) -> dict:
    """Each function's own time by area; the time of Python's library and
    built-ins (a regex, str.encode, dataclasses.replace) goes to the areas
    of their callers, up to a few calls up: a function's own time in the
    shares cProfile recorded of it per caller, and further up the time
    spent in the caller per its own caller (its cumulative time there, which
    holds the work it asked for, where its own time would count calls). A
    caller already on the way up is a recursion: the time goes to the
    outer callers."""
    totals: dict = {}

    def areas_of(function, depth: int, path: frozenset, index: int) -> Optional[dict]:
        """`function`'s time as shares by area (summing to 1); None when every
        caller is on `path`. `index` 2 reads the callers' own times, 3 their
        cumulative ones."""
        area = _own_area(function)
        callers = stats.stats[function][4] if function in stats.stats else {}
        if area != OTHER or depth == 0 or not callers:
            return {area: 1.0}
        path = path | {function}
        found = [(areas_of(caller, depth - 1, path, 3), timing[index])
                 for caller, timing in callers.items() if caller not in path]
        found = [(shares, weight) for shares, weight in found if shares is not None]
        if not found:
            return None
        whole = sum(weight for _, weight in found)
        result: dict = {}
        for shares, weight in found:
            part = weight / whole if whole > 0 else 1 / len(found)
            for name, share in shares.items():
                result[name] = result.get(name, 0.0) + share * part
        return result

    for function, (_, _, own, _, _) in stats.stats.items():
        for area, share in (areas_of(function, 4, frozenset(), 2) or {OTHER: 1.0}).items():
            totals[area] = totals.get(area, 0.0) + own * share
    return totals


def print_areas(stats: pstats.Stats) -> None:
    totals = cpu_by_area(stats)
    whole = sum(totals.values()) or 1.0
    print(f"\nCPU by area (own time of the functions; {whole:.1f} s profiled)")
    for area, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {area:<58} {seconds:>8.1f} s {seconds / whole:>6.1%}")


def report(profiler: cProfile.Profile, args) -> None:
    """The top functions, the CPU by area, and the raw stats if asked for."""
    stats = pstats.Stats(profiler)
    if args.save:
        stats.dump_stats(args.save)
    stats.sort_stats(args.sort).print_stats(args.top)
    print_areas(stats)


def profile_retag(folder: str, profiler: cProfile.Profile) -> int:
    from pipeline.cli import main as newswatch

    return profiler.runcall(newswatch, [
        "retag", "--topics", os.path.join(folder, "b.yaml"), "--output", os.path.join(folder, "out"),
        "--name", "profiled", "--replace", "--runner", "DirectRunner", "--quiet"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--baseline", action="store_true", help="profile the baseline instead")
    parser.add_argument("--parser", choices=("feedparser", "auto"), default="feedparser",
                        help="the baseline's parser: feedparser (its default) or auto (`baseline, fast parser`)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--save", help="write the raw pstats here")
    parser.add_argument("--retag", metavar="DIR", help="profile a retag of this generated archive instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, force=True)
    if args.retag:
        profiler = cProfile.Profile()
        code = profile_retag(args.retag, profiler)
        if code != 0:
            print(f"newswatch retag exited {code}", file=sys.stderr)
            return 1
        report(profiler, args)
        return 0

    work = tempfile.mkdtemp(prefix="newswatch-profile-")
    try:
        truth = corpus.write(corpus.CorpusSpec(entries=args.entries),
                             load_topic_definitions(str(TOPICS)), work)
        feeds, out = os.path.join(work, "feeds.txt"), os.path.join(work, "out")
        with served_elsewhere(work, feeds):
            profiler = cProfile.Profile()
            if args.baseline:
                from benchmarks import baseline

                profiler.runcall(baseline.run, feeds, str(TOPICS), out, parser=args.parser)
                stories = os.path.join(out, "stories.parquet")
            else:
                from pipeline.cli import main as newswatch

                code = profiler.runcall(newswatch, [
                    "run", "--feeds", feeds, "--topics", str(TOPICS), "--output", out,
                    "--runner", "DirectRunner", *local.cli_flags()])
                if code != 0:
                    print(f"newswatch exited {code}", file=sys.stderr)
                    return 1
                stories = os.path.join(out, "stories")
        verdict = check_stories(Verdict(), stories, truth)
        print(f"output: {verdict.rows} rows, {'ok' if verdict.ok else verdict.why()}")
        report(profiler, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
