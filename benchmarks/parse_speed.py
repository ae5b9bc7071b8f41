"""Entries per second of feedparser, the fast parse path alone and `--parser
auto` (the fast path, feedparser for what it refuses) on the same bytes, in
one process, measured in turns in the same run; ratios against feedparser.

The documents are the real news feeds of ../shared/corpora/realfeeds (or any
folder of feed files given with --corpus). The fast path alone is timed on
the documents it accepts, against feedparser on those same documents; auto
against feedparser on all of them. A run whose entry counts differ between
the paths reports no figure.

    python -m benchmarks.parse_speed [--corpus DIR] [--rounds 5] [--write]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import List, Optional, Tuple

from transforms.fast_parse import Refused, read_fast
from transforms.parse import open_feed, read_feed

ROOT = Path(__file__).resolve().parents[1]
REALFEEDS = ROOT.parent / "shared" / "corpora" / "realfeeds"
RESULT = ROOT / "benchmarks" / "results" / "parse_speed.json"
HEADERS = {"content-type": "application/xml"}
COMMAND = "python -m benchmarks.parse_speed --write"


def load(corpus: Path) -> List[Tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(corpus.iterdir())
            if p.is_file() and p.suffix in (".xml", ".rdf", ".atom", ".rss")]


def _feedparser(documents) -> int:
    return sum(len(read_feed(body, HEADERS)["entries"]) for _, body in documents)


def _fast(documents) -> int:
    return sum(len(read_fast(body, HEADERS).entries) for _, body in documents)


def _auto(documents) -> int:
    return sum(sum(1 for _ in open_feed(body, HEADERS).entries) for _, body in documents)


def best_of_turns(rounds: int, *jobs) -> List[float]:
    """The fastest CPU time of each job, run in turns so that noise from a
    shared machine falls on all of them alike."""
    best = [float("inf")] * len(jobs)
    for _ in range(rounds):
        for i, job in enumerate(jobs):
            start = time.process_time()
            job()
            best[i] = min(best[i], time.process_time() - start)
    return best


def measure(corpus: Optional[str] = None, rounds: int = 5) -> dict:
    folder = Path(corpus) if corpus else REALFEEDS
    if not folder.is_dir():   # a fresh clone has no ../shared: nothing to measure, nothing wrong
        return {"skipped": f"corpus not found: {folder}"}
    documents = load(folder)
    accepted = []
    for name, body in documents:
        try:
            read_fast(body, HEADERS)
        except Refused:
            continue
        accepted.append((name, body))
    entries, entries_accepted = _feedparser(documents), _feedparser(accepted)
    # A fast wrong answer is not a result.
    if _auto(documents) != entries or _fast(accepted) != entries_accepted:
        raise SystemExit("parse_speed: the paths give different entry counts; no figure reported")
    fp_all, fp_accepted, fast, auto = best_of_turns(
        rounds, lambda: _feedparser(documents), lambda: _feedparser(accepted),
        lambda: _fast(accepted), lambda: _auto(documents))
    return {
        "corpus": folder.name, "documents": len(documents), "accepted": len(accepted),
        "entries": entries, "entries_accepted": entries_accepted, "rounds": rounds,
        "feedparser_per_s": entries / fp_all,
        "fast_per_s": entries_accepted / fast,
        "auto_per_s": entries / auto,
        "fast_ratio": fp_accepted / fast,    # on the documents the fast path accepts
        "auto_ratio": fp_all / auto,         # on all of them
        "command": COMMAND,
    }


def describe(r: dict) -> str:
    return (f"parse speed on {r['documents']} {r['corpus']} documents ({r['entries']:,} entries): "
            f"feedparser {r['feedparser_per_s']:,.0f} entries/s; fast path alone "
            f"{r['fast_per_s']:,.0f}/s on the {r['accepted']} it accepts ({r['fast_ratio']:.1f}x feedparser "
            f"on those); auto {r['auto_per_s']:,.0f}/s ({r['auto_ratio']:.1f}x)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help=f"folder of feed files (default {REALFEEDS})")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"write the result to {RESULT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    result = measure(args.corpus, args.rounds)
    if "skipped" in result:
        raise SystemExit(f"parse_speed: {result['skipped']}")
    print(describe(result))
    if args.write:
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
