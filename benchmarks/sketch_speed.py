"""Sketching a feed document's stories for syndication clusters
(transforms/sketch.py `sketch_document`) against reference readings kept
here (the definitions, a text at a time), on the same texts, in turns in
one process.

The reference reads each text with `tokens()` (NFKC, casefold and the token
regex), hashes the document's shingles in one pass as sketch_document
does, finds the boilerplate with a numpy unique per text and takes each
text's MinHash with `sketch()`, one text at a time. `sketch_document` reads
a plain head (ASCII, plain letters, common punctuation) with one
bytes.translate and split, and finds the boilerplate and the MinHashes of
all the document's texts in a few numpy passes. The texts: the sketched
body (`clustering_text`) of every story of a generated corpus
(benchmarks/corpus.py) and of the real news feeds of
../shared/corpora/realfeeds when present, a feed document at a time. Both
must give every text the same sketch, or no figure is reported. Each timed
round starts with no word id remembered.

    python -m benchmarks.sketch_speed [--entries 4000] [--rounds 5] [--write]
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.parse_speed import REALFEEDS, best_of_turns
from transforms import sketch as sk

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "sketch_speed.json"
COMMAND = "python -m benchmarks.sketch_speed --write"


def reference_document(texts: Sequence[str]) -> List[Optional[sk.Sketch]]:
    """sketch_document(texts)[0] by the reference readings (module docstring)."""
    words = [sk.tokens(t) for t in texts]
    ids = np.fromiter(map(sk._WORD_IDS.__getitem__, itertools.chain.from_iterable(words)), dtype=np.uint64,
                      count=sum(map(len, words)))
    mixed = shingle_hashes(ids)   # one pass over the document's tokens; windows across two texts left out below
    hashed, start = [], 0
    for count in map(len, words):
        hashed.append(mixed[start:start + count - sk.SHINGLE + 1] if count >= sk.SHINGLE
                      else np.zeros(0, dtype=np.uint64))
        start += count
    present = [np.unique(h) for h in hashed if len(h)]
    dropped = np.zeros(0, dtype=np.uint64)
    if len(present) >= sk.BOILERPLATE_MIN_ITEMS:
        values, counts = np.unique(np.concatenate(present), return_counts=True)
        dropped = values[counts >= max(sk.BOILERPLATE_MIN_ITEMS, math.ceil(sk.BOILERPLATE_SHARE * len(texts)))]
    return [sk.sketch(h, dropped) for h in hashed]


def shingle_hashes(ids: np.ndarray) -> np.ndarray:
    """The hash of each window of SHINGLE word ids, by the definition."""
    n = len(ids) - sk.SHINGLE + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = np.zeros(n, dtype=np.uint64)
        for k in range(sk.SHINGLE):
            mixed += ids[k:k + n] * sk._POSITION[k]
    return sk._finalise(mixed)


def generated_documents(entries: int) -> List[List[str]]:
    from benchmarks import corpus
    from benchmarks.run import TOPICS
    from pipeline.config import load_topic_definitions

    documents, _ = corpus.build(corpus.CorpusSpec(entries=entries), load_topic_definitions(str(TOPICS)))
    return _bodies_of([body for _, body in documents])


def realfeed_documents() -> List[List[str]]:
    paths = sorted(p for p in REALFEEDS.iterdir() if p.suffix in (".xml", ".rdf", ".atom", ".rss"))
    return _bodies_of([p.read_bytes() for p in paths])


def _bodies_of(bodies: List[bytes]) -> List[List[str]]:
    from tests.support.fetched import fetched
    from transforms.parse import parse_fetch

    return [[sk.clustering_text(s.summary, s.content) for s in parse_fetch(fetched(body)).stories]
            for body in bodies]


def measure_documents(documents: List[List[str]], rounds: int) -> dict:
    def cold(read):
        sk._WORD_IDS.clear()   # a fresh worker remembers no word
        sk._BYTE_IDS.clear()
        return [read(texts) for texts in documents]

    ours = lambda texts: sk.sketch_document(texts)[0]   # noqa: E731
    # A fast wrong answer is not a result.
    if cold(reference_document) != cold(ours):
        raise SystemExit("sketch_speed: the two readings give different sketches; no figure reported")
    texts = sum(map(len, documents))
    quick = sum(1 for texts_ in documents for text in texts_ if _read_quickly(text))
    slow_s, fast_s = best_of_turns(rounds, lambda: cold(reference_document), lambda: cold(ours))
    return {"documents": len(documents), "texts": texts, "quick_share": quick / texts,
            "reference_us": slow_s / texts * 1e6, "ours_us": fast_s / texts * 1e6, "ratio": fast_s / slow_s}


def _read_quickly(text: str) -> bool:
    words = sk._words(text)
    return bool(words) and type(words[0]) is bytes


def measure(entries: int = 4000, rounds: int = 5) -> dict:
    corpora: Dict[str, dict] = {"generated": measure_documents(generated_documents(entries), rounds)}
    corpora["realfeeds"] = (measure_documents(realfeed_documents(), rounds) if REALFEEDS.is_dir()
                            else {"skipped": f"corpus not found: {REALFEEDS}"})
    from benchmarks.run import machine

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
            "entries": entries, "rounds": rounds, "corpora": corpora, "command": COMMAND}


def describe(r: dict) -> List[str]:
    return [f"{name}: skipped: {c['skipped']}" if "skipped" in c else
            f"{name}: {c['texts']:,} texts in {c['documents']:,} documents: the reference readings "
            f"{c['reference_us']:.1f} us a text, sketch_document {c['ours_us']:.1f} us ({c['ratio']:.2f}x); "
            f"{c['quick_share']:.0%} of the texts read the quick way; the same sketches"
            for name, c in r["corpora"].items()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=4000, help="entries of the generated corpus")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"write the result to {RESULT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    result = measure(args.entries, args.rounds)
    print("\n".join(describe(result)))
    if args.write:
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
