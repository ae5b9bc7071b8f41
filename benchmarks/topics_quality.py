"""Topic rule quality on Korean, Japanese and Chinese news (issue 18):
precision and recall of the `dprk` and `dprk_mentions` rules per language,
for the rules before issue 18 and the new ones, in one run.

    python -m benchmarks.topics_quality [--new PATH] [--random-only]

The evaluation set is benchmarks/topics_eval (labels.tsv, LABELLING.md): title
and lead of each item, labelled `about` North Korea, `mentions` it, or `not`.
Its texts are the publishers' and are rebuilt locally (see
benchmarks/topics_eval/build.py); without them this prints how to rebuild
them and exits 0, so `make bench-topics` still runs on a fresh clone.

Each item is matched as a story whose title is the item's title and whose
summary is its lead (an RSS description is a lead). Three figures per rule
set and language:

- dprk, strict: `about` items are the positives; a `mentions` item the rule
  takes counts against its precision.
- dprk, mentions aside: the same with the `mentions` items left out of the
  count. A rule that sees a headline and a lead cannot always tell a story
  that names North Korea in passing from one about it; the labels draw that
  line by reading (LABELLING.md calls it the least certain one).
- dprk_mentions: `about` and `mentions` are the positives.

"old" is the rules as they were before issue 18 (RULES_BEFORE, below: the
Korean, Japanese and Chinese terms of seeds/topics.yaml then); "new" is
seeds/topics.yaml (or --new). English is measured by
tests/seeds/test_dprk_rule.py.

Three rounds of the set are scored apart (LABELLING.md, "Three rounds"):
"tuning" (labels.tsv), the items the new rules were written against;
"review" (review.tsv), drawn after the first rules, whose mistakes on it
changed them; and "heldout" (heldout.tsv), drawn after the final rules and
never used to change them. The held-out figures are the ones to trust. The
Chinese archive had no story about North Korea left after the first round,
so the later Chinese rounds only show what the rules leave alone.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from transforms.topics import Topic, TopicMatcher

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEEDS = os.path.join(ROOT, "seeds", "topics.yaml")
LANGS = ("ko", "ja", "zh")
TARGET_PRECISION, TARGET_RECALL = 0.97, 0.92  # issue 18, per language, dprk

# seeds/topics.yaml before issue 18: the rules the new ones are measured against.
RULES_BEFORE = [
    Topic("dprk_mentions", " ".join("""
        "North Korea*" OR "N Korea*" OR DPRK OR "Democratic People's Republic of Korea"
        OR Pyongyang OR "Kim Jong-un" OR "Kim Yo-jong" OR "Kim Jong-il" OR "Kim Il-sung"
        OR KCNA OR "Korean Central News Agency" OR "Rodong Sinmun" OR Yongbyon OR Punggye-ri
        OR 북한 OR 김정은 OR 김여정 OR 조선중앙통신 OR 조선민주주의인민공화국
        OR 北朝鮮 OR 金正恩 OR 金与正 OR 平壌 OR 朝鮮中央通信
        OR 朝鲜 OR 北韓 OR 平壤 OR 金與正
        OR "Северн* Коре*" OR КНДР OR Пхеньян* OR северокорейск* OR "Ким Чен Ын*"
        OR "Corée du Nord" OR nord-coréen*
        OR Nordkorea* OR Pjöngjang
        OR "Corea del Norte" OR norcorean* OR Pionyang
        OR "Coreia do Norte" OR norte-corean*
        OR "Corea del Nord" OR nordcorean*""".split()), fold_accents=True),
    Topic("dprk", "title:topic:dprk_mentions OR summary:topic:dprk_mentions "
                  "OR ATLEAST/3 topic:dprk_mentions"),
]


@dataclass(frozen=True)
class Score:
    """Counts of one rule on one language's items."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        taken = self.true_positives + self.false_positives
        return self.true_positives / taken if taken else float("nan")

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else float("nan")

    def __str__(self) -> str:
        def figure(value: float) -> str:
            return "n/a" if value != value else f"{value:.3f}"  # nan: nothing taken, or nothing wanted

        return (f"P {figure(self.precision)} R {figure(self.recall)} "
                f"({self.true_positives} hits, {self.false_positives} wrong, {self.false_negatives} missed)")


def _score(taken: Sequence[bool], labels: Sequence[str], positive: set, ignored: set = frozenset()) -> Score:
    tp = fp = fn = 0
    for is_taken, label in zip(taken, labels):
        if label in ignored:
            continue
        if label in positive:
            tp += is_taken
            fn += not is_taken
        else:
            fp += is_taken
    return Score(tp, fp, fn)


def score(rules: Sequence[Topic], items) -> Dict[str, Score]:
    """The three figures of the module docstring for one rule set."""
    matcher = TopicMatcher(rules)
    dprk, mentions, labels = [], [], []
    for item in items:
        found = {name for name, _ in matcher.match(item.title, item.lead, "")}
        dprk.append("dprk" in found)
        mentions.append("dprk_mentions" in found)
        labels.append(item.label)
    return {
        "dprk, strict": _score(dprk, labels, {"about"}),
        "dprk, mentions aside": _score(dprk, labels, {"about"}, {"mentions"}),
        "dprk_mentions": _score(mentions, labels, {"about", "mentions"}),
    }


def measure(new_path: Optional[str] = None, random_only: bool = False,
            cache: Optional[str] = None, split: str = "tuning") -> Optional[dict]:
    """{lang: {"old": figures, "new": figures, "items": n}} for one split, or
    None without the texts (`cache`: where they are, if not where build.py
    puts them)."""
    from benchmarks.topics_eval import CACHE, CacheMissing, load
    from pipeline.config import load_topics

    new = load_topics(new_path or SEEDS)
    out = {}
    for lang in LANGS:
        try:
            items = load(lang, cache=cache or CACHE, split=split)
        except CacheMissing as exc:
            print(f"topics quality: skipped, the evaluation texts are not on this machine: {exc}")
            return None
        if random_only:
            items = [i for i in items if i.stratum == "random"]
        out[lang] = {"items": len(items), "old": score(RULES_BEFORE, items), "new": score(new, items)}
    return out


SPLITS = ("tuning", "review", "heldout")
SPLIT_TITLES = {
    "tuning": "tuning round (labels.tsv: the rules were written against it)",
    "review": "review round (review.tsv: drawn after the first rules; their mistakes on it changed them)",
    "heldout": "held-out round (heldout.tsv: drawn after the final rules, never used to change them)",
}


def to_json(results: Dict[str, dict]) -> dict:
    """{split: {lang: {"items": n, "old"/"new": {figure: [tp, fp, fn]}}}}."""
    return {split: {lang: {"items": r["items"],
                           **{side: {fig: [sc.true_positives, sc.false_positives, sc.false_negatives]
                                     for fig, sc in r[side].items()} for side in ("old", "new")}}
                    for lang, r in by_lang.items()}
            for split, by_lang in results.items()}


def from_json(data: dict) -> Dict[str, dict]:
    return {split: {lang: {"items": r["items"],
                           **{side: {fig: Score(*counts) for fig, counts in r[side].items()}
                              for side in ("old", "new")}}
                    for lang, r in by_lang.items()}
            for split, by_lang in data.items()}


def render(results: Dict[str, dict], rules: str = "seeds/topics.yaml") -> str:
    """The figures of every split, as `make bench-topics` prints them."""
    lines = [f"new rules: {rules}; old: the rules before issue 18; "
             f"target for dprk: P >= {TARGET_PRECISION}, R >= {TARGET_RECALL}"]
    for split, by_lang in results.items():
        lines.append("")
        lines.append(SPLIT_TITLES.get(split, split))
        for lang, r in by_lang.items():
            lines.append(f"  {lang} ({r['items']:,} items)")
            for figure in r["old"]:
                old, new = r["old"][figure], r["new"][figure]
                lines.append(f"    {figure:<21} old {old}  |  new {new}")
            lines.append(f"    dprk target, new rules: mentions aside {verdict(r['new']['dprk, mentions aside'])} "
                         f"(the measure fixed with the labels); strict {verdict(r['new']['dprk, strict'])}")
    return "\n".join(lines)


def verdict(score: Score) -> str:
    """Whether a dprk figure meets the issue-18 target."""
    if score.true_positives + score.false_negatives == 0:
        return "has no positives"
    met = score.precision >= TARGET_PRECISION and score.recall >= TARGET_RECALL
    return "met" if met else "NOT met"


def match_cost(new_path: Optional[str] = None, repeat: int = 7, cache: Optional[str] = None) -> Optional[dict]:
    """CPU seconds to match every item of every round with the old North
    Korea rules and with the new ones (their dprk topics only, the part
    issue 18 changed), alternating, the fastest of `repeat` passes each."""
    from benchmarks.topics_eval import CACHE, CacheMissing, SPLITS as FILES, load
    from pipeline.config import load_topics

    try:
        items = [i for split, path in FILES.items() if os.path.exists(path)
                 for i in load(cache=cache or CACHE, split=split)]
    except CacheMissing:
        return None
    new = [t for t in load_topics(new_path or SEEDS) if t.name in ("dprk_mentions", "dprk")]
    best = {"old": float("inf"), "new": float("inf")}
    for _ in range(repeat):
        for side, rules in (("old", RULES_BEFORE), ("new", new)):
            matcher = TopicMatcher(rules)
            matcher.match("warm-up", "", "")
            start = time.process_time()
            for item in items:
                matcher.match(item.title, item.lead, "")
            best[side] = min(best[side], time.process_time() - start)
    return {"items": len(items), "old_s": best["old"], "new_s": best["new"]}


def cost_line(cost: Optional[dict]) -> str:
    """match_cost() as the benchmark prints it ('' without a figure)."""
    if not cost:
        return ""
    return (f"\n\nmatching every item of the rounds ({cost['items']:,}) with the dprk rules, CPU seconds, "
            f"fastest of 7: old {cost['old_s']:.2f}, new {cost['new_s']:.2f} ({cost['new_s'] / cost['old_s']:.2f}x)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", help="the new rules (default: seeds/topics.yaml)")
    parser.add_argument("--random-only", action="store_true",
                        help="only the random part of the set (not the items added for being likely "
                             "hits or traps): figures closer to the feeds as they are")
    parser.add_argument("--save", metavar="JSON",
                        help="also write the figures there (make bench-topics: benchmarks/results/"
                             "topics_quality.json, shown in docs/performance.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    results = {}
    from benchmarks.topics_eval import SPLITS as FILES

    for split in SPLITS:
        if not os.path.exists(FILES[split]):
            continue
        figures = measure(args.new, args.random_only, split=split)
        if figures is None:
            return 0
        results[split] = figures
    part = " (random part of the set)" if args.random_only else ""
    rules = os.path.relpath(args.new or SEEDS, ROOT)
    cost = match_cost(args.new)
    text = render(results, rules) + cost_line(cost)
    print(f"topics quality{part}:")
    print("\n".join("topics quality: " + line if line else "" for line in text.splitlines()))
    if args.save:
        import json
        from datetime import datetime, timezone
        payload = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "rules": rules,
                   "random_only": args.random_only, "splits": to_json(results), "match_cost": cost}
        with open(args.save, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
