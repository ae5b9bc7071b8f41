"""The labelled evaluation set for syndication clusters (issue 14), built
from the real feeds in ../shared/corpora/realfeeds; benchmarks/cluster_eval.py
scores it.

    python -m benchmarks.cluster_set        # what the set holds

Nothing of the publishers' text is kept in the repository: the set is
rebuilt from ../shared at every run, the same way every time (seeded), and
only ids, links and labels live here (benchmarks/cluster_real_reprints.tsv).

Every item passes the project's own parser (transforms.parse.parse_fetch on
the feed document's bytes), which also sketches each document's items
(transforms.cluster.DocumentSketcher: where an outlet's boilerplate is
found), so items reach the clustering as they do in a run. The set holds:

1. The real feeds as published (47 documents with items, ~1,300 items).
   Each item is a story of its own, except the real reprints found by
   reading (AP, Reuters and AFP stories on ABC News, NPR, Japan Today,
   Al-Monitor, Dawn and NDTV: cluster_real_reprints.tsv) and items a feed
   repeats (under one guid, link, or title and text).
2. Synthetic reprints. Real stories with at least BASE_WORDS words of body
   are run again by made-up outlets (OUTLETS), each one feed document, with
   the issue's edit model: headline rewrites (prefix, outlet suffix, cut,
   reworded), bottom trims to 30-90 % (at a sentence end where one is near),
   datelines, bylines, the outlet's own footer on every item (shared
   boilerplate), word edits (substitutions, typos, dropped or added words),
   and mixes: full-text outlets carry the body in content:encoded, summary-
   only outlets carry only its lead. A few reprints copy title and text
   verbatim (what exact dedup already merges). One outlet is the issue's
   boilerplate case: 50 unrelated stories, each a short lead plus the same
   40-word footer. One is an aggregator that carries 15 stories twice (two
   copies of one story in one feed document must still be found). Gold: a
   reprint belongs to its original's story.
3. Hard negatives: outlets' own reports of one event (same facts, names and
   often the same quotes, written independently), found in the real feeds
   and labelled with an `event` in the TSV (Peru's president removed, the
   Strait of Hormuz closure, Navalny's poisoning, Jesse Jackson's death ...).
   Reprints of them carry the event too, so the synthetic part multiplies
   these pairs: a reprint of AP's Peru story and one of MercoPress's must
   stay apart.

A feed document is full-text when most of its items carry content:encoded
(or Atom content); the scores are reported for summary-only and full-text
documents apart.
"""
from __future__ import annotations

import argparse
import collections
import csv
import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

from transforms.parse import parse_fetch
from transforms.records import FetchResult, Story
from transforms.sketch import clustering_text

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
REALFEEDS = CORPORA / "realfeeds"
LABELS = Path(__file__).with_name("cluster_real_reprints.tsv")
SEED = 14
FETCHED_AT = datetime(2026, 3, 1, tzinfo=timezone.utc)
BASE_WORDS = 30          # words of body a real story needs to be reprinted
TRIM_WORDS = 60          # words of body a story needs to be cut from the bottom
REPRINTS = {0: 0.25, 1: 0.30, 2: 0.25, 3: 0.12, 4: 0.08}   # reprints per base story: weights
MAX_ITEMS = 200          # per synthetic document (transforms.parse.SKETCH_BATCH: one batch)
VERBATIM_SHARE = 0.04    # reprints that copy title and text exactly
STRESS_ITEMS = 50


def available() -> bool:
    """Whether ../shared/corpora/realfeeds is there to build the set from."""
    return REALFEEDS.is_dir()


# ------------------------------------------------------------------ outlets
# Made-up outlets; their footers, bylines and tails are our own words.

@dataclass(frozen=True)
class Outlet:
    name: str
    domain: str
    full_text: bool
    footer: str = ""              # after every item's body: the outlet's boilerplate
    byline: str = ""              # "named" (a reporter), "credit" (a bottom credit line), or a fixed line
    dateline: float = 0.0         # share of items with a dateline before the body
    lead: str = "sentences"       # summary-only: "sentences" or "words" (cut, with an ellipsis)
    lead_words: Tuple[int, int] = (25, 45)
    tail: str = ""                # summary-only: after the lead ({title}, {name} filled in)


OUTLETS = (
    Outlet("Harbor Courier", "harborcourier.example", True,
           footer=("Copyright 2026 Harbor Courier. All rights reserved. This material may not be "
                   "published, broadcast, rewritten or redistributed without permission. Sign up for "
                   "the Morning Brief newsletter to get the top stories of the day in your inbox."),
           byline="named", dateline=0.5),
    Outlet("Valley Ledger", "valleyledger.example", True,
           footer=("Support independent local journalism: subscribe today for unlimited access to "
                   "every story, the daily e-edition and all of our newsletters. Already a subscriber? "
                   "Log in to keep reading. Questions about your account? Call customer care any day."),
           dateline=0.3),
    Outlet("Metro Dispatch", "metrodispatch.example", True,
           footer=("Follow Metro Dispatch on social media for breaking news alerts, and download our "
                   "app for live coverage, photo galleries and video from around the world. Have a "
                   "news tip? Send it to our newsroom, confidentially if you prefer."),
           byline="By Metro Dispatch staff and wire reports", dateline=0.6),
    Outlet("Northern Star", "northernstar.example", True,
           footer=("This article was produced with reporting from wire services. Read more world "
                   "news on our website, and listen to our daily podcast for analysis of the biggest "
                   "stories of the week. Comments on this story are closed."),
           byline="named", dateline=0.2),
    Outlet("Global Digest", "globaldigest.example", True, byline="credit", dateline=0.8),
    Outlet("Capital Brief", "capitalbrief.example", False, lead="sentences", tail="Read more »"),
    Outlet("Pacific Digest", "pacificdigest.example", False, lead="words", lead_words=(22, 34)),
    Outlet("Evening Post", "eveningpost.example", False, lead="sentences",
           tail="The post {title} appeared first on {name}."),
    Outlet("Continental News", "continentalnews.example", False, lead="words", lead_words=(40, 60),
           tail="Continue reading..."),
    Outlet("Wire Roundup", "wireroundup.example", False, lead="sentences", dateline=1.0),
)
# An aggregator: other outlets' leads, a few stories twice (two outlets' copies
# of one wire story in one feed document: what per-document boilerplate must
# not take for an outlet's own phrases).
AGGREGATOR = Outlet("World Aggregator", "worldaggregator.example", False, lead="words",
                    lead_words=(30, 50), dateline=0.5)
AGGREGATOR_TWICE, AGGREGATOR_ONCE = 15, 30
# The boilerplate case: unrelated stories, each a short lead and the same 40-word footer.
STRESS_OUTLET = Outlet(
    "Footer Weekly", "footerweekly.example", False, lead="words", lead_words=(15, 25),
    footer=("Footer Weekly brings you the stories that matter from around the world, every day of "
            "the week. Become a member to read without limits, join our reader events and support "
            "all of our reporters. Thank you for reading Footer Weekly."))

_FIRST = ["Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kwame", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara"]
_LAST = ["Adler", "Brandt", "Costa", "Dumont", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
         "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Rahman",
         "Silva", "Tanaka", "Weber"]
_CITIES = ["WASHINGTON", "LONDON", "PARIS", "BERLIN", "TOKYO", "SEOUL", "BEIRUT", "LIMA",
           "SYDNEY", "GENEVA", "NEW DELHI", "CAIRO", "MADRID", "ROME", "NAIROBI", "OTTAWA"]
_WIRES = ["AP", "Reuters", "AFP"]
_PREFIXES = ["UPDATE: ", "Latest: ", "World: ", "In brief: ", "WATCH: "]
_FILLERS = ["also", "now", "reportedly", "still", "then"]
# Word edits a copy desk makes (both ways round).
_SUBSTITUTES = {"said": "says", "says": "said", "U.S.": "US", "US": "U.S.", "percent": "per cent",
                "Tuesday": "on Tuesday", "Monday": "on Monday", "government": "administration",
                "people": "persons", "killed": "left dead", "about": "around", "more": "over",
                "UK": "Britain", "announced": "said", "while": "whilst", "toward": "towards"}
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")


# ------------------------------------------------------------------ the set

@dataclass
class Item:
    """One parsed item of the set, with what is known about it by construction."""

    story: Story
    gold: str                 # the gold story (cluster) it belongs to
    document: str             # the feed document (outlet) it came in
    full_text: bool           # its document carries full text (content:encoded / Atom content)
    origin: str               # "real", "reprint" or "verbatim" (an exact copy)
    event: Optional[str] = None       # labelled event (hard negatives), inherited by reprints
    edits: Dict[str, object] = field(default_factory=dict)   # what a reprint changed


@dataclass
class EvalSet:
    items: List[Item]
    seed: int
    base_stories: int         # real stories that were reprinted or could have been

    def documents(self) -> Dict[str, List[int]]:
        found: Dict[str, List[int]] = collections.defaultdict(list)
        for i, item in enumerate(self.items):
            found[item.document].append(i)
        return dict(found)

    def describe(self) -> dict:
        """Counts only (no publisher text): what the set holds."""
        gold = collections.Counter(item.gold for item in self.items)
        docs = self.documents()
        origin = collections.Counter(item.origin for item in self.items)
        real_docs = {item.document for item in self.items if item.origin == "real"}
        events = collections.defaultdict(set)
        for item in self.items:
            if item.event:
                events[item.event].add(item.gold)
        labelled = {item.gold for item in self.items if item.gold.startswith("real:")}
        return {
            "seed": self.seed,
            "items": len(self.items),
            "real_items": origin["real"],
            "real_documents": len(real_docs),
            "synthetic_items": origin["reprint"] + origin["verbatim"],
            "verbatim_copies": origin["verbatim"],
            "synthetic_documents": len(docs) - len(real_docs),
            "summary_only_items": sum(1 for item in self.items if not item.full_text),
            "full_text_items": sum(1 for item in self.items if item.full_text),
            "gold_stories": len(gold),
            "gold_stories_with_copies": sum(1 for n in gold.values() if n > 1),
            "gold_pairs": sum(n * (n - 1) // 2 for n in gold.values()),
            "base_stories": self.base_stories,
            "real_reprint_clusters": sum(
                1 for g in labelled
                if sum(1 for item in self.items if item.gold == g and item.origin == "real") > 1),
            "hard_negative_events": sum(1 for stories in events.values() if len(stories) > 1),
            "hard_negative_pairs": _event_pairs(self.items),
        }


def _event_pairs(items: Sequence[Item]) -> int:
    """Pairs of items of one labelled event but different stories."""
    by_event = collections.defaultdict(collections.Counter)
    for item in items:
        if item.event:
            by_event[item.event][item.gold] += 1
    total = 0
    for stories in by_event.values():
        n = sum(stories.values())
        total += n * (n - 1) // 2 - sum(k * (k - 1) // 2 for k in stories.values())
    return total


def build(seed: int = SEED, realfeeds: Path = REALFEEDS, labels: Path = LABELS) -> EvalSet:
    """The evaluation set (the same for the same seed and corpus)."""
    if not realfeeds.is_dir():
        raise FileNotFoundError(f"{realfeeds} is not there: the set is built from ../shared/corpora")
    items = _real_items(realfeeds, labels)
    bases = _base_stories(items)
    rng = random.Random(seed)
    items += _synthetic_items(rng, bases)
    return EvalSet(items, seed, len(bases))


# ------------------------------------------------------------------ real feeds

def _fetched(feed_url: str, body: bytes, kind: str = "application/rss+xml") -> FetchResult:
    return FetchResult(feed_url=feed_url, final_url=feed_url, status=200,
                       headers={"content-type": f"{kind}; charset=utf-8"} if kind else {},
                       body=body, elapsed_s=0.0, fetched_at=FETCHED_AT)


_ITEM_TAG = re.compile(rb"<(?:item|entry)[\s>]")
_CONTENT_TAG = re.compile(rb"<(?:content:encoded|content)[\s>]")


def is_full_text(body: bytes) -> bool:
    """Whether most items of a feed document carry content:encoded or Atom content."""
    items = len(_ITEM_TAG.findall(body))
    return items > 0 and len(_CONTENT_TAG.findall(body)) * 2 >= items


def read_labels(path: Path = LABELS) -> List[dict]:
    with open(path, encoding="utf-8") as handle:
        rows = [line for line in handle if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(rows, delimiter="\t"))


def _real_items(realfeeds: Path, labels: Path) -> List[Item]:
    rows = read_labels(labels)
    by_feed: Dict[str, List[dict]] = collections.defaultdict(list)
    for row in rows:
        by_feed[row["feed"]].append(row)
    items: List[Item] = []
    matched = set()
    for path in sorted(realfeeds.glob("*.xml")):
        body = path.read_bytes()
        full = is_full_text(body)
        stories = parse_fetch(_fetched(f"corpus:realfeeds/{path.name}", body, kind="")).stories
        # A feed that repeats an item (same guid, link, or title and text) carries one story.
        first: Dict[str, str] = {}
        for index, story in enumerate(stories):
            keys = [k for k in (story.guid and "guid:" + story.guid,
                                story.canonical_url and "url:" + story.canonical_url,
                                (story.title or _body(story)) and "text:" + story.content_hash) if k]
            gold = next((first[k] for k in keys if k in first), f"{path.name}#{index}")
            event = None
            for n, row in enumerate(by_feed.get(path.name, ())):
                if row["key"] in (story.guid, story.url, story.canonical_url):
                    gold, event = "real:" + row["cluster"], row["event"] or None
                    matched.add((path.name, n))
            for k in keys:
                first.setdefault(k, gold)
            items.append(Item(story, gold, path.name, full, "real", event))
    stale = [f"{row['feed']} {row['key']}" for feed, feed_rows in by_feed.items()
             for n, row in enumerate(feed_rows) if (feed, n) not in matched]
    if stale:
        raise ValueError(f"{labels.name}: no item for {len(stale)} rows, e.g. {stale[0]}")
    return items


def _body(story: Story) -> str:
    return clustering_text(story.summary, story.content)


def _base_stories(items: Sequence[Item]) -> List[Item]:
    """One real item per gold story, with enough text to be reprinted."""
    seen, bases = set(), []
    for item in items:
        if item.gold in seen:
            continue
        seen.add(item.gold)
        if len(_body(item.story).split()) >= BASE_WORDS:
            bases.append(item)
    return bases


# ------------------------------------------------------------------ the edit model

def _sentences(text: str) -> List[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def trim_bottom(rng: random.Random, text: str) -> Tuple[str, float]:
    """The text cut from the bottom to a share of its words drawn from
    30-90 %: at the sentence end nearest that share when one falls within
    30-90 %, else mid-sentence. Returns (text, share of words kept)."""
    words = text.split()
    total = len(words)
    share = rng.uniform(0.3, 0.9)
    ends, count = [], 0
    for sentence in _sentences(text)[:-1]:
        count += len(sentence.split())
        ends.append(count)
    near = [n for n in ends if 0.3 <= n / total <= 0.9]
    keep = min(near, key=lambda n: abs(n / total - share)) if near else max(1, round(share * total))
    return " ".join(words[:keep]), keep / total


def word_edits(rng: random.Random, text: str, rate: float) -> Tuple[str, int]:
    """A copy desk's edits at `rate` per word: substitutions, typos fixed or
    made, words dropped or added. Returns (text, edits made)."""
    words = text.split()
    if len(words) < 4:
        return text, 0
    edits = max(1, round(len(words) * rate))
    for _ in range(edits):
        i = rng.randrange(len(words))
        word = words[i]
        core = word.strip(".,;:!?\"'“”‘’()")
        r = rng.random()
        if core in _SUBSTITUTES:
            words[i] = word.replace(core, _SUBSTITUTES[core], 1)
        elif r < 0.35 and len(words) > 8:
            del words[i]
        elif r < 0.7 and len(core) > 5:
            j = rng.randrange(1, len(core) - 2)
            swapped = core[:j] + core[j + 1] + core[j] + core[j + 2:]
            words[i] = word.replace(core, swapped, 1)
        else:
            words.insert(i, rng.choice(_FILLERS))
    return " ".join(words), edits


def rewrite_headline(rng: random.Random, title: str, outlet: Outlet) -> Tuple[str, str]:
    """Another outlet's headline for the story: (headline, what was done)."""
    r = rng.random()
    if r < 0.2 or not title:
        return title, "same"
    if r < 0.4:
        return rng.choice(_PREFIXES) + title, "prefix"
    if r < 0.6:
        return f"{title} {rng.choice(['|', '-'])} {outlet.name}", "suffix"
    if r < 0.8:
        if ":" in title:
            head, _, tail = title.partition(":")
            return (tail.strip() or head), "cut"
        words = title.split()
        return " ".join(words[:max(3, math.ceil(len(words) * 0.7))]), "cut"
    edited, _ = word_edits(rng, title, 0.25)
    return edited, "reworded"


def _dateline(rng: random.Random, published: datetime) -> str:
    city = rng.choice(_CITIES)
    wire = rng.choice(_WIRES)
    if rng.random() < 0.5:
        return f"{city} ({wire}) — "
    return f"{city.title()}, {published.strftime('%b')} {published.day} ({wire}) - "


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def lead_of(rng: random.Random, text: str, outlet: Outlet) -> Tuple[str, str]:
    """What a summary-only outlet carries of a body: its first sentence or
    two, or its first words cut with an ellipsis. Returns (lead, how)."""
    if outlet.lead == "sentences":
        sentences = _sentences(text)
        lead = " ".join(sentences[:rng.choice((1, 2))]) if sentences else text
        if len(lead.split()) <= 70:
            return lead, "sentences"
    lo, hi = outlet.lead_words
    words = text.split()
    n = rng.randint(lo, hi)
    if n >= len(words):
        return text, "words"
    return " ".join(words[:n]) + "…", "words"


@dataclass
class _Reprint:
    base: Item
    title: str
    summary: str
    content: str
    published: datetime
    link: str
    author: str
    origin: str
    edits: dict


def _reprint(rng: random.Random, base: Item, outlet: Outlet, n: int) -> _Reprint:
    story = base.story
    published = (story.published_at or FETCHED_AT - timedelta(days=2)) + timedelta(
        seconds=rng.uniform(600, 36 * 3600))
    slug = "-".join(re.findall(r"\w+", (story.title or "story").casefold())[:6]) or "story"
    link = f"https://{outlet.domain}/{published:%Y/%m/%d}/{slug}-{n}"
    if outlet != STRESS_OUTLET and rng.random() < VERBATIM_SHARE:
        return _Reprint(base, story.title, story.summary, story.content if outlet.full_text else "",
                        published, link, "", "verbatim", {"verbatim": True})
    edits: dict = {}
    title, edits["headline"] = rewrite_headline(rng, story.title, outlet)
    body = _body(story)
    # A full-text outlet cuts a long story; a short one (a summary-only
    # original's lead) is what it has, and it runs all of it.
    if outlet.full_text and len(body.split()) >= TRIM_WORDS and rng.random() < 0.8:
        body, edits["kept"] = trim_bottom(rng, body)
    else:
        edits["kept"] = 1.0
    if rng.random() < 0.6:
        body, edits["word_edits"] = word_edits(rng, body, rng.uniform(0.01, 0.03))
    author = ""
    if outlet.full_text:
        summary = ""
        r = rng.random()
        if r < 0.4:
            summary = (_sentences(body) or [body])[0]
        elif r < 0.7 and story.content and story.summary:
            summary = story.summary          # the original's standfirst
        if rng.random() < outlet.dateline:
            body = _dateline(rng, published) + body
            edits["dateline"] = True
        if outlet.byline == "named":
            author = _name(rng)
            body = f"By {author} " + body
            edits["byline"] = "named"
        elif outlet.byline == "credit":
            body += f" Reporting by {_name(rng)}; Editing by {_name(rng)}"
            edits["byline"] = "credit"
        elif outlet.byline:
            body = f"{outlet.byline} " + body
            edits["byline"] = "staff"
        if outlet.footer:
            body += "\n\n" + outlet.footer
            edits["footer"] = True
        return _Reprint(base, title, summary, body, published, link, author, "reprint", edits)
    lead, edits["lead"] = lead_of(rng, body, outlet)
    if rng.random() < outlet.dateline:
        lead = _dateline(rng, published) + lead
        edits["dateline"] = True
    if outlet.tail:
        lead += " " + outlet.tail.format(title=title, name=outlet.name)
        edits["footer"] = True
    if outlet.footer:
        lead += " " + outlet.footer
        edits["footer"] = True
    return _Reprint(base, title, lead, "", published, link, author, "reprint", edits)


def _paragraphs(text: str) -> str:
    """Plain text as the HTML of content:encoded: a paragraph every 2-3 sentences."""
    html = []
    for block in text.split("\n\n"):
        sentences = _sentences(block)
        for i in range(0, len(sentences), 3):
            html.append("<p>" + escape(" ".join(sentences[i:i + 3])) + "</p>")
    return "".join(html)


def render_rss(outlet: Outlet, reprints: Sequence[_Reprint]) -> bytes:
    """One outlet's feed document (RSS 2.0), newest item first."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>',
             '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
             'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>',
             f"<title>{escape(outlet.name)}</title><link>https://{outlet.domain}/</link>",
             f"<description>{escape(outlet.name)}: world news</description>"]
    for r in reprints:
        parts.append("<item>")
        parts.append(f"<title>{escape(r.title)}</title><link>{escape(r.link)}</link>")
        parts.append(f'<guid isPermaLink="true">{escape(r.link)}</guid>')
        parts.append(f"<pubDate>{format_datetime(r.published, usegmt=True)}</pubDate>")
        if r.author:
            parts.append(f"<dc:creator>{escape(r.author)}</dc:creator>")
        if r.summary:
            parts.append(f"<description>{escape(r.summary)}</description>")
        if r.content:
            parts.append(f"<content:encoded>{escape(_paragraphs(r.content))}</content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def _synthetic_items(rng: random.Random, bases: Sequence[Item]) -> List[Item]:
    order = list(bases)
    rng.shuffle(order)
    planned: Dict[Outlet, List[Item]] = {outlet: [] for outlet in OUTLETS}
    counts, weights = zip(*REPRINTS.items())
    for base in order:
        k = rng.choices(counts, weights)[0]
        room = [o for o in OUTLETS if len(planned[o]) < MAX_ITEMS]
        for outlet in rng.sample(room, min(k, len(room))):
            planned[outlet].append(base)
    planned[STRESS_OUTLET] = rng.sample(order, min(STRESS_ITEMS, len(order)))
    chosen = rng.sample(order, AGGREGATOR_TWICE + AGGREGATOR_ONCE)
    planned[AGGREGATOR] = chosen[:AGGREGATOR_TWICE] * 2 + chosen[AGGREGATOR_TWICE:]
    items: List[Item] = []
    for outlet, originals in planned.items():
        reprints = [_reprint(rng, base, outlet, n) for n, base in enumerate(originals)]
        reprints.sort(key=lambda r: r.published, reverse=True)
        body = render_rss(outlet, reprints)
        stories = parse_fetch(_fetched(f"https://{outlet.domain}/feed.xml", body)).stories
        if len(stories) != len(reprints):
            raise RuntimeError(f"{outlet.name}: {len(reprints)} items written, {len(stories)} parsed")
        by_link = {r.link: r for r in reprints}
        for story in stories:
            r = by_link[story.url]
            items.append(Item(story, r.base.gold, outlet.name, outlet.full_text, r.origin,
                              r.base.event, r.edits))
    return items


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if not available():
        print(f"cluster_set: {REALFEEDS} is not there (the set is built from ../shared/corpora)")
        return 1
    for key, value in build(args.seed).describe().items():
        print(f"{key:>26}  {value:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
