"""The Korean / Japanese / Chinese evaluation set of issue 18.

    from benchmarks.topics_eval import load
    items = load("ko")          # or "ja", "zh", or None for all
    held = load("ko", split="heldout")
    items[0].title, items[0].lead, items[0].label   # label: about / mentions / not

labels.tsv, review.tsv and heldout.tsv (committed) say which items belong to the set and
how each was labelled by reading; the texts are the publishers' and are not committed.
They are rebuilt from the public archives into .cache/items.jsonl by

    python -m benchmarks.topics_eval.build --source ko=PATH --source ja=PATH --source zh=PATH

(see build.py and SOURCES.md). `load` reads that cache and fails with the
command to run when it is missing or does not cover the requested languages.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(_HERE, ".cache", "items.jsonl")
LABELS = os.path.join(_HERE, "labels.tsv")
REVIEW = os.path.join(_HERE, "review.tsv")
HELDOUT = os.path.join(_HERE, "heldout.tsv")
# "tuning": the items the rules were written against; "review": drawn after
# the first rules, whose mistakes on it changed them; "heldout": drawn after
# the final rules, never used to change one (LABELLING.md, "Three rounds").
SPLITS = {"tuning": LABELS, "review": REVIEW, "heldout": HELDOUT}

LANGS = ("ko", "ja", "zh")
LABEL_VALUES = ("about", "mentions", "not")

BUILD_HINT = (
    "python -m benchmarks.topics_eval.build "
    "--source ko=<git dir of github.com/terajh/tera-rss, gh-pages history> "
    "--source ja=<git dir of github.com/groundcobra009/japan-news-frontpage-index> "
    "--source zh=<git dir of github.com/agora0/2511> "
    "--source zh-2411=<git dir of github.com/agora0/2411>"
)


class CacheMissing(FileNotFoundError):
    """The texts have not been rebuilt on this machine."""


@dataclass(frozen=True)
class LabelledItem:
    lang: str
    source: str
    id: str
    url: str
    date: str
    section: str
    publisher: str
    title: str
    lead: str
    label: str       # about / mentions / not
    stratum: str     # random / enriched-nk / enriched-trap
    read: bool       # False: a screen miss labelled `not` without being read
    note: str

    @property
    def text(self) -> str:
        """Title and lead as one string (what a headline rule sees)."""
        return f"{self.title}\n{self.lead}" if self.lead else self.title


def load(lang: Optional[str] = None, cache: str = CACHE, labels: Optional[str] = None,
         split: str = "tuning") -> List[LabelledItem]:
    """Every item of one split of the set (or of one language of it), in the
    order of its labels file (`labels`, when given, names the file)."""
    from .build import read_labels  # imported here: `python -m ...build` must not find it loaded

    if lang is not None and lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS} or None, not {lang!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, not {split!r}")
    labels = labels or SPLITS[split]
    wanted = [lang] if lang else list(LANGS)
    if not os.path.exists(cache):
        raise CacheMissing(f"{cache} is missing: the texts are rebuilt from public archives with\n  {BUILD_HINT}")
    texts = {}
    with open(cache, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts[(rec["lang"], rec["id"])] = rec
    out: List[LabelledItem] = []
    missing = []
    for row in read_labels(labels):
        if row["lang"] not in wanted:
            continue
        rec = texts.get((row["lang"], row["id"]))
        if rec is None:
            missing.append(row["lang"])
            continue
        out.append(LabelledItem(
            lang=row["lang"], source=row["source"], id=row["id"], url=rec["url"], date=rec["date"],
            section=rec["section"], publisher=rec["publisher"], title=rec["title"], lead=rec["lead"],
            label=row["label"], stratum=row["stratum"], read=row["read"] == "yes",
            note=row.get("note", ""),
        ))
    if missing:
        langs = ", ".join(sorted(set(missing)))
        raise CacheMissing(f"{len(missing)} labelled items ({langs}) are not in {cache}; rebuild with\n  {BUILD_HINT}")
    return out
