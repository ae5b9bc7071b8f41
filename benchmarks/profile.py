"""Where does the pipeline's time go? cProfile of one in-process run on the
benchmark corpus (or of the plain-Python baseline, to compare).

    python -m benchmarks.profile --entries 10000 [--baseline] [--top 40] [--save out.pstats]

The DirectRunner in-process executes every stage on the calling thread, so
one cProfile sees all of it (fetch threads only wait on sockets). For
multi_processing workers use py-spy on the worker processes instead:
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

from benchmarks import corpus, local
from benchmarks.run import TOPICS, serve_folder
from benchmarks.verify import Verdict, check_stories
from pipeline.config import load_topic_definitions
from tests.support.feedserver import FeedServer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--baseline", action="store_true", help="profile the baseline instead")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--save", help="write the raw pstats here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, force=True)

    work = tempfile.mkdtemp(prefix="newswatch-profile-")
    try:
        truth = corpus.write(corpus.CorpusSpec(entries=args.entries),
                             load_topic_definitions(str(TOPICS)), work)
        with FeedServer() as server:
            paths = serve_folder(server, work, 0.0)
            feeds = os.path.join(work, "feeds.txt")
            with open(feeds, "w") as handle:
                handle.write("".join(server.url(p) + "\n" for p in paths))
            out = os.path.join(work, "out")
            profiler = cProfile.Profile()
            if args.baseline:
                from benchmarks import baseline

                profiler.runcall(baseline.run, feeds, str(TOPICS), out)
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
        stats = pstats.Stats(profiler)
        if args.save:
            stats.dump_stats(args.save)
        stats.sort_stats(args.sort).print_stats(args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
