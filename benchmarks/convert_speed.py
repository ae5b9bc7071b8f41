"""Entries per second of our own per-entry work, the conversion of parsed
entries to stories (transforms.parse.entry_to_story: HTML to text, content
hash, URLs, dates, authors and tags, ids), apart from the parse, against the
conversion as it was before issue 17 (benchmarks/convert_reference.py),
measured in turns in the same run.

Each corpus is parsed once (`--parser auto`, timed once); then both
conversions run over the parsed entries, `rounds` times each in turns, and
the fastest CPU time of each counts. Corpora: the generated benchmark
corpus (benchmarks/corpus.py) and the real news feeds of
../shared/corpora/realfeeds (skipped when absent). A run in which the two
conversions give different stories reports no figure.

    python -m benchmarks.convert_speed [--entries 4000] [--rounds 5] [--write]
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, List, Tuple

from benchmarks import convert_reference, corpus
from benchmarks.parse_speed import REALFEEDS, best_of_turns, load
from transforms import identity, publisher
from transforms.html_text import NAME_CAP, capped_text
from transforms.parse import UnreadableFeed, entry_to_story, open_feed

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "convert_speed.json"
TOPICS = ROOT / "seeds" / "topics.yaml"
HEADERS = {"content-type": "application/xml"}
FEED_URL = "http://127.0.0.1:8000/"
FETCHED_AT = datetime(2026, 12, 4, tzinfo=timezone.utc)
COMMAND = "python -m benchmarks.convert_speed --write"

Entry = Tuple[dict, dict]   # an entry and entry_to_story's keyword arguments for it


def parse(documents: List[Tuple[str, bytes]]) -> List[Entry]:
    """Every entry of the documents, with what transforms.parse.iter_parse_fetch
    hands entry_to_story for it."""
    entries = []
    for name, body in documents:
        try:
            opened = open_feed(body, HEADERS)
            items = list(opened.entries)
        except UnreadableFeed:
            continue
        feed_link = opened.feed.get("link")
        arguments = dict(feed_url=FEED_URL + name, base=feed_link or FEED_URL,
                         site=identity.site_host(feed_link) or identity.site_host(FEED_URL),
                         feed_title=capped_text([opened.feed.get("title")], NAME_CAP).text or None,
                         fetched_at=FETCHED_AT, run_id="bench")
        entries.extend((entry, dict(arguments, index=i)) for i, entry in enumerate(items))
    return entries


def _convert(convert: Callable, entries: List[Entry]) -> list:
    return [convert(entry, **arguments) for entry, arguments in entries]


def _convert_afresh(entries: List[Entry]) -> list:
    # What the conversion remembers (hosts) is forgotten before each round:
    # a later round would otherwise find every host already looked up.
    for remembered in (identity.url_host, publisher.redirector_host):
        remembered.cache_clear()
    return _convert(entry_to_story, entries)


def measure_corpus(documents: List[Tuple[str, bytes]], rounds: int) -> dict:
    start = time.process_time()
    entries = parse(documents)
    parse_s = time.process_time() - start
    if not entries:
        return {"skipped": "no entries"}
    # A fast wrong answer is not a result.
    if _convert(entry_to_story, entries) != _convert(convert_reference.entry_to_story, entries):
        raise SystemExit("convert_speed: the conversions give different stories; no figure reported")
    reference_s, ours_s = best_of_turns(
        rounds, lambda: _convert(convert_reference.entry_to_story, entries),
        lambda: _convert_afresh(entries))
    n = len(entries)
    return {
        "documents": len(documents), "entries": n,
        "parse_us": parse_s / n * 1e6,              # once, --parser auto
        "reference_us": reference_s / n * 1e6,
        "convert_us": ours_s / n * 1e6,
        "convert_per_s": n / ours_s,
        "ratio": ours_s / reference_s,              # conversion CPU now / before; target <= 0.5
        "share_before": reference_s / (reference_s + parse_s),
        "share_now": ours_s / (ours_s + parse_s),
    }


def measure(entries: int = 4000, rounds: int = 5, corpus_dir: str = None) -> dict:
    from pipeline.config import load_topic_definitions

    generated, _ = corpus.build(corpus.CorpusSpec(entries=entries), load_topic_definitions(str(TOPICS)))
    result = {"rounds": rounds, "command": COMMAND, "generated": measure_corpus(generated, rounds)}
    folder = Path(corpus_dir) if corpus_dir else REALFEEDS
    result["realfeeds"] = (measure_corpus(load(folder), rounds) if folder.is_dir()
                           else {"skipped": f"corpus not found: {folder}"})
    return result


def describe(r: dict) -> str:
    lines = []
    for name in ("generated", "realfeeds"):
        c = r[name]
        if "skipped" in c:
            lines.append(f"convert on {name}: skipped: {c['skipped']}")
            continue
        lines.append(f"convert on {name} ({c['entries']:,} entries): parse {c['parse_us']:,.0f} us/entry; "
                     f"conversion {c['convert_us']:,.0f} us/entry ({c['convert_per_s']:,.0f} entries/s), "
                     f"{c['ratio']:.2f}x the reference's {c['reference_us']:,.0f} us; share of parse+convert "
                     f"{c['share_before']:.0%} -> {c['share_now']:.0%}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=4000, help="entries of the generated corpus")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", help=f"folder of real feed files (default {REALFEEDS})")
    parser.add_argument("--write", action="store_true", help=f"write the result to {RESULT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    result = measure(args.entries, args.rounds, args.corpus)
    print(describe(result))
    if args.write:
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
