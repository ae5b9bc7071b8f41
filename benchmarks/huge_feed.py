"""One huge RSS 2.0 feed, written to a file: what a user's 200,000-item,
118 MB feed looked like.

    python -m benchmarks.huge_feed OUT.xml [--items 200000] [--seed 7]

Items are news-like (title, link, guid, pubDate, a description of a few
hundred characters of HTML), a few of them (one in MATCH_EVERY) carry a
sentence that matches seeds/topics.yaml, so the run writes rows. The file is
written item by item (never held in memory) and is the same for the same
items and seed. Nothing is stored in the repository: `make bench` writes it
into a temporary folder (benchmarks/huge_bench.py).
"""
from __future__ import annotations

import argparse
import html
import random
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import NamedTuple

from benchmarks.phrasebook import LANGUAGES

MATCH_EVERY = 1000           # one item in this many matches the seed topics
BASE_TIME = datetime(2026, 11, 2, tzinfo=timezone.utc)
_WRITE_EVERY = 500           # items buffered per write


class HugeFeed(NamedTuple):
    """What was written: the file's size, its items and how many match."""

    path: str
    bytes: int
    items: int
    matching: int


def _item(serial: int, rng: random.Random, neutral, matching) -> str:
    words = rng.choice(neutral).split()
    title = " ".join(words[: rng.randint(6, 12)]).rstrip(".,") + f" ({serial})"
    sentences = [rng.choice(neutral) for _ in range(rng.randint(2, 5))]
    if serial % MATCH_EVERY == 0:
        sentences.insert(1, matching[serial // MATCH_EVERY % len(matching)])
    description = html.escape("<p>" + " ".join(sentences) + "</p>", quote=False)
    link = f"https://news.example.com/{serial % 97:02d}/story-{serial}.html"
    published = format_datetime(BASE_TIME - timedelta(seconds=37 * serial), usegmt=True)
    return (f"<item><title>{html.escape(title, quote=False)}</title><link>{link}</link>"
            f"<guid isPermaLink=\"false\">urn:example:story:{serial}</guid>"
            f"<pubDate>{published}</pubDate>"
            f"<description>{description}</description></item>\n")


def write(path: str, items: int = 200_000, seed: int = 7) -> HugeFeed:
    """Writes the feed to `path`; returns its size and counts."""
    rng = random.Random(seed)
    _, neutral, matching = LANGUAGES["en"]
    size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        head = ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>"
                "<title>Example Wire (everything)</title><link>https://news.example.com/</link>"
                "<description>Every story of the day</description>\n")
        size += handle.write(head)
        batch = []
        for serial in range(1, items + 1):
            batch.append(_item(serial, rng, neutral, matching))
            if len(batch) == _WRITE_EVERY:
                size += handle.write("".join(batch))
                batch = []
        size += handle.write("".join(batch) + "</channel></rss>\n")
    # ASCII only (LANGUAGES["en"]), so characters are bytes.
    return HugeFeed(path, size, items, items // MATCH_EVERY)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    feed = write(args.out, args.items, args.seed)
    print(f"{feed.path}: {feed.items:,} items, {feed.bytes / 1e6:,.1f} MB, {feed.matching:,} matching")
    return 0


if __name__ == "__main__":
    sys.exit(main())
