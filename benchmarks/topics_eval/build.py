"""Rebuild the texts of the Korean / Japanese / Chinese evaluation set.

    python -m benchmarks.topics_eval.build --source ko=PATH --source ja=PATH --source zh=PATH \
        --source zh-2411=PATH

PATH is a git directory holding the public archive (a bare mirror or a clone):

    ko       https://github.com/terajh/tera-rss                (branch gh-pages, with its history)
    ja       https://github.com/groundcobra009/japan-news-frontpage-index
    zh       https://github.com/agora0/2511
    zh-2411  https://github.com/agora0/2411                    (the Chinese items of the held-out round)

e.g. `git clone --bare --branch gh-pages https://github.com/terajh/tera-rss ko.git`.
Each archive is read at the commit pinned in sources.ARCHIVES; the build
fails with a clear message when that commit is not in PATH. Archives left out
are skipped (an existing cache for them is kept). The texts go to
benchmarks/topics_eval/.cache/items.jsonl (git-ignored); labels.tsv says which
items belong to the set and how each was labelled, and must match exactly.

    python -m benchmarks.topics_eval.build --select --source ... --out FILE

draws the set again (seeded, deterministic) and writes the candidate list
(lang, source, id, stratum, screen) that labels.tsv was made from: how the
set was sampled, kept runnable for review. It does not touch labels.tsv.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Sequence, Tuple

from . import screen
from .sources import ARCHIVES, Item, SourceError, read

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, ".cache")
CACHE = os.path.join(CACHE_DIR, "items.jsonl")
LABELS = os.path.join(HERE, "labels.tsv")
REVIEW = os.path.join(HERE, "review.tsv")
HELDOUT = os.path.join(HERE, "heldout.tsv")

SEED = 18  # issue 18

# Random part of the set: how many items to draw from each section (ko, ja)
# or publisher (zh, whose feeds mostly carry no section).
QUOTAS: Dict[str, Dict[str, int]] = {
    "ko": {"politics": 380, "society": 350, "economy": 420, "world": 350, "sports": 200,
           "culture": 200, "it": 50, "opinion": 50},
    "ja": {"politics": 100, "world": 120, "society": 100, "economy": 80, "local": 80, "front": 100,
           "sports": 60, "news": 60},
    "zh": {"rthk": 150, "cna": 150, "aj": 80, "kyodo": 80, "dw": 40, "bbc": 40, "chosun": 40, "nyt": 20},
}
# Enriched part: extra items (not in the random part) whose title or lead
# carries a North Korea word ("nk") or a look-alike ("trap").
ENRICH: Dict[str, Tuple[int, int]] = {"ko": (300, 100), "ja": (150, 50), "zh": (150, 50)}
# A second "nk" draw, made after the first labelling pass showed too few
# Japanese and Chinese stories about North Korea for a recall figure; it has
# its own random stream so the items drawn before it are unchanged.
ENRICH_MORE: Dict[str, int] = {"ja": 100, "zh": 100}


def _stratum_key(item: Item) -> str:
    return item.raw_section if item.lang == "zh" else item.section


def _enriched(lang: str, rest: Sequence[Item], rng: random.Random, n_nk: int,
              n_trap: int) -> List[Tuple[Item, str]]:
    """The enriched part of a draw: `n_nk` items of `rest` with a North Korea
    word, then `n_trap` with a look-alike (screen.enrich)."""
    kinds = {i.id: screen.enrich(lang, i.title + " " + i.lead) for i in rest}
    chosen = []
    for kind, n in (("nk", n_nk), ("trap", n_trap)):
        group = [i for i in rest if kinds[i.id] == kind]
        chosen += [(item, f"enriched-{kind}") for item in rng.sample(group, min(n, len(group)))]
    return chosen


def select(lang: str, items: Sequence[Item]) -> List[Tuple[Item, str]]:
    """The seeded draw: (item, stratum) with stratum 'random' or 'enriched-nk' /
    'enriched-trap'. Korean items without a lead are not eligible (the set is
    of headlines WITH leads); an item whose title repeats an earlier one is
    skipped (the same story in two feeds)."""
    rng = random.Random(f"{SEED}-{lang}")
    pool: List[Item] = []
    titles = set()
    for item in sorted(items, key=lambda i: (i.date, i.id)):
        if lang == "ko" and not item.lead:
            continue
        if not item.title or item.title in titles:
            continue
        titles.add(item.title)
        pool.append(item)
    by_stratum: Dict[str, List[Item]] = defaultdict(list)
    for item in pool:
        by_stratum[_stratum_key(item)].append(item)
    chosen: List[Tuple[Item, str]] = []
    taken = set()
    for key, quota in QUOTAS[lang].items():
        group = by_stratum.get(key, [])
        for item in rng.sample(group, min(quota, len(group))):
            chosen.append((item, "random"))
            taken.add(item.id)
    n_nk, n_trap = ENRICH[lang]
    rest = [i for i in pool if i.id not in taken]
    chosen += _enriched(lang, rest, rng, n_nk, n_trap)
    if ENRICH_MORE.get(lang):
        more_rng = random.Random(f"{SEED}-{lang}-more")
        taken = {item.id for item, _ in chosen}
        group = [i for i in rest if screen.enrich(lang, i.title + " " + i.lead) == "nk" and i.id not in taken]
        for item in more_rng.sample(group, min(ENRICH_MORE[lang], len(group))):
            chosen.append((item, "enriched-nk"))
    chosen.sort(key=lambda pair: (pair[1] != "random", pair[0].date, pair[0].id))
    return chosen


# Later rounds, each drawn from the same archives leaving out every item and
# title of the rounds before it, and labelled before the rules were run on it:
# review.tsv after the first rules (their mistakes on it changed the rules),
# heldout.tsv after the final ones (never used to change them).
LATER_ROUNDS = ("review", "heldout")
LATER_QUOTAS: Dict[str, Tuple[int, int, int]] = {  # random, enriched-nk, enriched-trap
    "ko": (600, 150, 50), "ja": (250, 120, 30), "zh": (200, 160, 40)}
# The random stream of each round ("heldout" is the review round's: it was
# drawn as the held-out part before its use changed the rules).
_ROUND_STREAM = {"review": "heldout", "heldout": "heldout-2"}


def select_later(lang: str, items: Sequence[Item], labelled: Iterable[str],
                 round_name: str) -> List[Tuple[Item, str]]:
    """A later round's draw: like select(), with its own random stream, over
    the items whose id and title are in no earlier round (`labelled` ids)."""
    labelled = set(labelled)
    by_id = {i.id: i for i in items}
    titles = {by_id[i].title for i in labelled if i in by_id}
    rng = random.Random(f"{SEED}-{lang}-{_ROUND_STREAM[round_name]}")
    pool: List[Item] = []
    for item in sorted(items, key=lambda i: (i.date, i.id)):
        if item.id in labelled or (lang == "ko" and not item.lead):
            continue
        if not item.title or item.title in titles:
            continue
        titles.add(item.title)
        pool.append(item)
    n_random, n_nk, n_trap = LATER_QUOTAS[lang]
    chosen = [(item, "random") for item in rng.sample(pool, min(n_random, len(pool)))]
    taken = {item.id for item, _ in chosen}
    rest = [i for i in pool if i.id not in taken]
    chosen += _enriched(lang, rest, rng, n_nk, n_trap)
    chosen.sort(key=lambda pair: (pair[1] != "random", pair[0].date, pair[0].id))
    return chosen


# ------------------------------------------------------------------ labels.tsv

def read_labels(path: str = LABELS) -> List[Dict[str, str]]:
    """labels.tsv: '#' comment lines, a header line, then one row per item."""
    rows: List[Dict[str, str]] = []
    header: List[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cells = line.split("\t")
            if not header:
                header = cells
                continue
            rows.append(dict(zip(header, cells)))
    return rows


def build(sources: Dict[str, str], labels_paths: Sequence[str] = (LABELS, REVIEW, HELDOUT),
          cache: str = CACHE) -> Dict[str, int]:
    labels = [row for path in labels_paths if os.path.exists(path) for row in read_labels(path)]
    # by archive (the `source` column), whose items each label names
    wanted: Dict[str, Dict[str, Dict[str, str]]] = defaultdict(dict)
    for row in labels:
        wanted[row["source"]][row["id"]] = row
    rebuilt = {ARCHIVES[key].key for key in sources}
    kept: Dict[Tuple[str, str], dict] = {}
    if os.path.exists(cache):  # archives not rebuilt now keep their cached rows
        with open(cache, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if rec["source"] not in rebuilt:
                    kept[(rec["lang"], rec["id"])] = rec
    counts = {}
    for key, path in sources.items():
        archive = ARCHIVES[key]
        items = {i.id: i for i in read(key, path)}
        missing = [i for i in wanted[archive.key] if i not in items]
        if missing:
            raise SourceError(f"{key}: {len(missing)} labelled items are not in {path} "
                              f"(first: {missing[0]})")
        for item_id in wanted[archive.key]:
            kept[(archive.lang, item_id)] = items[item_id].to_json()
        counts[key] = len(wanted[archive.key])
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    order = {(r["lang"], r["id"]): n for n, r in enumerate(labels)}
    tmp = cache + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for key in sorted(kept, key=lambda k: order.get(k, len(order))):
            fh.write(json.dumps(kept[key], ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, cache)
    return counts


def _parse_sources(values: Iterable[str]) -> Dict[str, str]:
    out = {}
    for value in values:
        lang, sep, path = value.partition("=")
        if not sep or lang not in ARCHIVES:
            raise SystemExit(f"--source wants ARCHIVE=PATH with ARCHIVE one of {', '.join(ARCHIVES)}: {value!r}")
        out[lang] = path
    return out


def main(argv: Sequence[str] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.topics_eval.build",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", action="append", default=[], metavar="LANG=PATH",
                    help="git directory of the archive for LANG (ko, ja, zh); repeatable")
    ap.add_argument("--select", action="store_true", help="draw the candidate list instead of building")
    ap.add_argument("--select-later", choices=LATER_ROUNDS,
                    help="draw that later round's candidate list (with texts, for labelling) instead of building")
    ap.add_argument("--out", default=os.path.join(CACHE_DIR, "candidates.tsv"),
                    help="where --select writes its list")
    args = ap.parse_args(argv)
    sources = _parse_sources(args.source)
    if not sources:
        ap.error("give at least one --source LANG=PATH")
    try:
        if args.select_later:
            out = (args.out if args.out != ap.get_default("out")
                   else os.path.join(CACHE_DIR, f"{args.select_later}_candidates.jsonl"))
            earlier = (LABELS, REVIEW, HELDOUT)[:1 + LATER_ROUNDS.index(args.select_later)]
            labelled = defaultdict(set)
            for path in earlier:
                for row in read_labels(path):
                    labelled[row["lang"]].add(row["id"])
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            with open(out, "w", encoding="utf-8") as fh:
                for key, path in sources.items():
                    lang = ARCHIVES[key].lang
                    chosen = select_later(lang, read(key, path), labelled[lang], args.select_later)
                    for item, stratum in chosen:
                        rec = item.to_json()
                        rec["stratum"] = stratum
                        rec["screen"] = "hit" if screen.broad(lang, item.title + " " + item.lead) else "miss"
                        fh.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
                    c = Counter(s for _, s in chosen)
                    print(f"{lang}: {len(chosen)} items {dict(c)}")
            print(f"wrote {out}")
            return 0
        if args.select:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w", encoding="utf-8") as fh:
                fh.write("lang\tsource\tid\tstratum\tscreen\tsection\n")
                for lang, path in sources.items():
                    if ARCHIVES[lang].lang != lang:
                        continue  # the first round was drawn from each language's first archive
                    chosen = select(lang, read(lang, path))
                    for item, stratum in chosen:
                        hit = "hit" if screen.broad(lang, item.title + " " + item.lead) else "miss"
                        fh.write(f"{lang}\t{item.source}\t{item.id}\t{stratum}\t{hit}\t{item.section}\n")
                    c = Counter(s for _, s in chosen)
                    print(f"{lang}: {len(chosen)} items {dict(c)}")
            print(f"wrote {args.out}")
            return 0
        counts = build(sources)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for lang, n in counts.items():
        print(f"{lang}: {n} items")
    print(f"wrote {CACHE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
