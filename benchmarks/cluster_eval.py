"""Syndication clusters scored on the labelled set of benchmarks/cluster_set.py,
against exact dedup as it is today and plain MinHash-LSH, in one run.

    python -m benchmarks.cluster_eval [--seed 14] [--results benchmarks/results]   (make bench-clusters)

Methods, each given the items of every feed document of the set:

- new clustering: what a run does. Exact copies are dropped first
  (transforms.dedup), then the kept stories are clustered
  (transforms.cluster.assign_clusters, with the sketches the parser made per
  feed document); a dropped copy belongs to the cluster of the copy kept.
- new clustering, two runs: the same stories in two runs (split in
  preference order), the second against the first's sketches read back as
  a ClusterIndex, as _state/clusters is between runs: it must agree.
- exact dedup (today): stories are one only when they share a dedup
  identity (guid in one feed, canonical URL, normalised title and text).
- plain MinHash-LSH, the baseline: word 5-shingles of the whole text
  (title, summary and content), 128 permutations, datasketch's MinHashLSH
  at Jaccard threshold 0.5; every item joins the items its LSH query
  returns (as datasketch is used for near-duplicate removal).

Scores: adjusted Rand index and pairwise precision / recall over all items,
over the items of summary-only documents and of full-text documents (their
pairs among themselves), and the pairs that mix the two. Counted apart:
boilerplate merges (two different stories of one feed document put in one
cluster: what an outlet adds to all its items is the one thing they share,
and the set's 50-story footer outlet is one such document), same-event
merges (the hard negatives: two outlets' own reports of one event), and the
real reprints of the real feeds found.

Targets (issue 14): ARI at least 0.10 above plain MinHash-LSH, pairwise
precision at least 0.98, no boilerplate merge. Missed targets are printed
(as the other benchmarks do); a harness that disagrees with itself (the
two-run clustering differs from the one-run, dedup's groups are not
dedup_stories') exits with an error instead of a figure.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from benchmarks import cluster_set
from transforms import sketch as sketches
from transforms.cluster import assign_clusters, cluster_records
from transforms.dedup import KEY_KINDS, dedup_key, dedup_stories, entry_handle, preference
from transforms.state.cluster_index import ClusterIndex
from transforms.state.store import CLUSTER_STATE_SCHEMA

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_ARI_GAIN = 0.10
TARGET_PRECISION = 0.98
TARGET_BOILERPLATE_MERGES = 0
BASELINE_SHINGLE, BASELINE_PERM, BASELINE_THRESHOLD = 5, 128, 0.5
METHODS = {
    "new": "new clustering",
    "new_two_runs": "new clustering, two runs",
    "dedup": "exact dedup (today)",
    "minhash": "plain MinHash-LSH (baseline)",
}


# ------------------------------------------------------------------ methods
# Each returns one cluster label per item of the set (any hashable labels).

def dedup_groups(stories: Sequence) -> List[str]:
    """The copy each story is merged into by exact dedup (its own handle when
    kept): dedup_stories' passes, remembering who absorbed whom."""
    handles = [entry_handle(s) for s in stories]
    if len(set(handles)) != len(handles):
        raise SystemExit("cluster eval: two items of the set share an entry handle")
    owner = {h: h for h in handles}
    kept = list(stories)
    for kind in KEY_KINDS:
        best: Dict[str, object] = {}
        keys = []
        for story in kept:
            key = dedup_key(story, kind) or "self:" + entry_handle(story)
            keys.append(key)
            if key not in best or preference(story) < preference(best[key]):
                best[key] = story
        for story, key in zip(kept, keys):
            if best[key] is not story:
                owner[entry_handle(story)] = entry_handle(best[key])
        kept = list(best.values())
    expected, _ = dedup_stories(stories)
    if {entry_handle(s) for s in expected} != {entry_handle(s) for s in kept}:
        raise SystemExit("cluster eval: the dedup groups here are not what dedup_stories keeps")

    def root(h):
        while owner[h] != h:
            h = owner[h]
        return h

    return [root(h) for h in handles]


def exact_dedup(evalset: cluster_set.EvalSet) -> List[str]:
    return dedup_groups([item.story for item in evalset.items])


def new_clustering(evalset: cluster_set.EvalSet, runs: int = 1) -> List[str]:
    """As a run clusters: dedup first, then the kept stories, in `runs`
    consecutive runs (each later run against the earlier ones' index)."""
    stories = [item.story for item in evalset.items]
    winner = dedup_groups(stories)
    kept = sorted((s for s, w in zip(stories, winner) if entry_handle(s) == w), key=preference)
    cluster_of: Dict[str, str] = {}
    records = []
    bounds = np.linspace(0, len(kept), runs + 1).astype(int)
    for run, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        index = ClusterIndex.from_table(_state_table(records, run)) if records else None
        for story in assign_clusters(kept[lo:hi], index):
            cluster_of[entry_handle(story)] = story.cluster_id
            records += cluster_records(story)
    return [cluster_of[w] for w in winner]


def _state_table(records, run: int) -> pa.Table:
    """The rows _state/clusters would hold for `records` (StateStore.commit's layout)."""
    at = datetime(2026, 3, 1, tzinfo=timezone.utc)
    return pa.table({
        "story_id": [r.story_id for r in records],
        "cluster_id": [r.cluster_id for r in records],
        "signature": [r.signature for r in records],
        "shingles": [r.shingles for r in records],
        "seen_at": [r.seen_at or at for r in records],
        "run_id": [f"eval-{run}"] * len(records),
        "committed_at": [at] * len(records),
    }, schema=CLUSTER_STATE_SCHEMA)


_WORD = re.compile(r"\w+")


def baseline_shingles(story) -> set:
    """Word 5-shingles of the whole text (a shorter text is one shingle)."""
    words = _WORD.findall(" ".join((story.title, story.summary, story.content)).casefold())
    if len(words) < BASELINE_SHINGLE:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + BASELINE_SHINGLE]) for i in range(len(words) - BASELINE_SHINGLE + 1)}


def minhash_lsh(evalset: cluster_set.EvalSet) -> List[int]:
    """Plain MinHash-LSH near-duplicate grouping (datasketch): each item in
    turn queries the index, joins every item returned, and is inserted."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=BASELINE_THRESHOLD, num_perm=BASELINE_PERM)
    parent = list(range(len(evalset.items)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, item in enumerate(evalset.items):
        grams = baseline_shingles(item.story)
        if not grams:
            continue
        m = MinHash(num_perm=BASELINE_PERM)
        m.update_batch([g.encode("utf-8") for g in grams])
        for j in lsh.query(m):
            parent[find(j)] = find(i)
        lsh.insert(i, m)
    return [find(i) for i in range(len(parent))]


# ------------------------------------------------------------------ scores

def _codes(labels: Sequence) -> np.ndarray:
    return np.unique(np.asarray([str(x) for x in labels], dtype=object), return_inverse=True)[1]


def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pair_counts(gold: Sequence, pred: Sequence) -> dict:
    """Pairs of items together in gold, in pred, in both; and all pairs."""
    g, p = _codes(gold), _codes(pred)
    n = len(g)
    _, joint = np.unique(np.stack([g, p]), axis=1, return_counts=True) if n else (None, np.zeros(0))
    return {"items": n, "both": _pairs(joint), "gold": _pairs(np.bincount(g)) if n else 0,
            "pred": _pairs(np.bincount(p)) if n else 0, "all": n * (n - 1) // 2}


def scores(counts: dict) -> dict:
    """ARI and pairwise precision/recall from pair counts (Hubert and Arabie's ARI)."""
    both, gold, pred, total = counts["both"], counts["gold"], counts["pred"], counts["all"]
    expected = gold * pred / total if total else 0.0
    top = 0.5 * (gold + pred) - expected
    ari = (both - expected) / top if top else 1.0
    return {"ari": ari, "precision": both / pred if pred else 1.0,
            "recall": both / gold if gold else 1.0, "pairs_together": pred, "pairs_right": both,
            "gold_pairs": gold}


def adjusted_rand_index(gold: Sequence, pred: Sequence) -> float:
    return scores(pair_counts(gold, pred))["ari"]


def false_merges_within(groups: Sequence, gold: Sequence, pred: Sequence) -> int:
    """Pairs put together by `pred` that share a group (same feed document,
    same event) but not a gold story."""
    keys = collections.defaultdict(collections.Counter)
    for group, g, p in zip(groups, gold, pred):
        if group is not None:
            keys[(group, p)][g] += 1
    return sum(_pairs(np.array([sum(c.values())])) - _pairs(np.array(list(c.values())))
               for c in keys.values())


def evaluate(evalset: cluster_set.EvalSet, labels: Sequence) -> dict:
    items = evalset.items
    gold = [item.gold for item in items]
    full = np.array([item.full_text for item in items])
    every = pair_counts(gold, labels)
    parts = {}
    for name, mask in (("summary_only", ~full), ("full_text", full)):
        idx = np.flatnonzero(mask)
        parts[name] = pair_counts([gold[i] for i in idx], [labels[i] for i in idx])
    mixed = {k: every[k] - parts["summary_only"][k] - parts["full_text"][k]
             for k in ("both", "gold", "pred", "all")}
    result = {"all": scores(every), "summary_only": scores(parts["summary_only"]),
              "full_text": scores(parts["full_text"])}
    mixed_scores = scores(dict(mixed, items=0))
    result["mixed_pairs"] = {k: mixed_scores[k] for k in ("precision", "recall", "pairs_together",
                                                         "pairs_right", "gold_pairs")}
    real = [i for i, item in enumerate(items) if item.origin == "real"]
    result["real_feeds"] = scores(pair_counts([gold[i] for i in real], [labels[i] for i in real]))
    result["clusters"] = len(set(map(str, labels)))
    result["boilerplate_merges"] = false_merges_within([item.document for item in items], gold, labels)
    stress = cluster_set.STRESS_OUTLET.name
    result["footer_outlet_merges"] = false_merges_within(
        [item.document if item.document == stress else None for item in items], gold, labels)
    result["same_event_merges"] = false_merges_within([item.event for item in items], gold, labels)
    # The real reprints of the TSV: how many of their pairs are found.
    labelled = collections.Counter(gold[i] for i in real if gold[i].startswith("real:"))
    found = 0
    for cluster, n in labelled.items():
        members = [labels[i] for i in real if gold[i] == cluster]
        found += _pairs(np.array(list(collections.Counter(map(str, members)).values())))
    result["real_reprint_pairs"] = {"found": found,
                                    "of": sum(n * (n - 1) // 2 for n in labelled.values())}
    return result


def reprint_recall(evalset: cluster_set.EvalSet, labels: Sequence) -> Dict[str, dict]:
    """Share of synthetic reprints put with their original (the real item),
    by edit: how far trimmed, summary-only lead, dateline, footer."""
    original = {}
    for item, label in zip(evalset.items, labels):
        if item.origin == "real":
            original.setdefault(item.gold, str(label))
    buckets: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
    for item, label in zip(evalset.items, labels):
        if item.origin == "real" or item.document == cluster_set.STRESS_OUTLET.name:
            continue
        hit = int(str(label) == original[item.gold])
        edits = item.edits
        keys = ["all reprints", "full-text outlet" if item.full_text else "summary-only outlet"]
        if item.origin == "verbatim":
            keys.append("verbatim copy")
        else:
            if item.full_text:
                kept = edits.get("kept", 1.0)
                tens = int(kept * 10) * 10
                keys.append("kept 100%" if kept >= 1.0 else f"kept {tens}-{tens + 10}%")
            else:
                keys.append(f"lead cut by {edits.get('lead')}")
            if edits.get("dateline"):
                keys.append("with dateline")
            if edits.get("word_edits"):
                keys.append("with word edits")
        for key in keys:
            buckets[key][0] += hit
            buckets[key][1] += 1
    return {k: {"joined": v[0], "of": v[1], "share": v[0] / v[1]} for k, v in sorted(buckets.items())}


# ------------------------------------------------------------------ the run

def measure(seed: int = cluster_set.SEED, evalset: Optional[cluster_set.EvalSet] = None) -> dict:
    """Every method scored on the set (built from `seed` unless given)."""
    started = time.perf_counter()
    evalset = evalset or cluster_set.build(seed)
    build_s = time.perf_counter() - started
    labels, timings = {}, {}
    for name, method in (("new", lambda s: new_clustering(s)),
                         ("new_two_runs", lambda s: new_clustering(s, runs=2)),
                         ("dedup", exact_dedup), ("minhash", minhash_lsh)):
        t = time.process_time()
        labels[name] = method(evalset)
        timings[name] = time.process_time() - t
    # Cluster ids are first members' story ids: the same in one run or two.
    differs = sum(1 for a, b in zip(labels["new"], labels["new_two_runs"]) if a != b)
    if differs:
        raise SystemExit(f"cluster eval: the two-run clustering differs from the one-run on "
                         f"{differs} items: the cluster index and the run's memory disagree")
    methods = {name: dict(evaluate(evalset, labels[name]), cpu_s=timings[name]) for name in labels}
    new, base = methods["new"]["all"], methods["minhash"]["all"]
    targets = [
        ("ARI gain over plain MinHash-LSH", new["ari"] - base["ari"], f">= {TARGET_ARI_GAIN:.2f}",
         new["ari"] - base["ari"] >= TARGET_ARI_GAIN),
        ("pairwise precision", new["precision"], f">= {TARGET_PRECISION:.2f}",
         new["precision"] >= TARGET_PRECISION),
        ("boilerplate merges", methods["new"]["boilerplate_merges"], "0",
         methods["new"]["boilerplate_merges"] <= TARGET_BOILERPLATE_MERGES),
    ]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "set": evalset.describe(),
        "build_s": build_s,
        "sketch": {name: getattr(sketches, name) for name in (
            "SHINGLE", "MAX_TOKENS", "LEAD_SHINGLES", "MIN_SHINGLES", "NUM_PERM", "BANDS", "ROWS",
            "MIN_CONTAINMENT", "MIN_SHARED", "BOILERPLATE_MIN_ITEMS", "BOILERPLATE_SHARE")},
        "baseline": {"shingle": BASELINE_SHINGLE, "num_perm": BASELINE_PERM,
                     "threshold": BASELINE_THRESHOLD},
        "methods": methods,
        "reprint_recall": reprint_recall(evalset, labels["new"]),
        "targets": [{"label": l, "value": v, "goal": g, "met": bool(m)} for l, v, g, m in targets],
    }


def render(r: dict) -> str:
    """The table `make bench-clusters` prints (and docs/performance.md shows)."""
    s = r["set"]
    lines = [
        f"syndication clusters, {r['date']}: {s['items']:,} items, {s['gold_stories']:,} gold stories "
        f"({s['gold_stories_with_copies']:,} with copies, {s['gold_pairs']:,} gold pairs), seed {s['seed']}",
        f"  real feeds: {s['real_items']:,} items in {s['real_documents']} documents, "
        f"{s['real_reprint_clusters']} real reprint clusters, {s['hard_negative_events']} events "
        f"reported by several outlets ({s['hard_negative_pairs']:,} same-event pairs of different stories)",
        f"  synthetic: {s['synthetic_items']:,} reprints of {s['base_stories']:,} real stories in "
        f"{s['synthetic_documents']} outlets ({s['verbatim_copies']} verbatim), one of them 50 stories "
        f"with one 40-word footer; summary-only items {s['summary_only_items']:,}, "
        f"full-text {s['full_text_items']:,}",
        "",
    ]
    head = (f"{'method':<30} {'items':<13} {'ARI':>6} {'prec.':>6} {'recall':>6}  {'boilerplate':>11} "
            f"{'same-event':>10} {'real reprints':>14}")
    lines += [head, "-" * len(head)]
    parts = (("all", "all"), ("summary_only", "summary-only"), ("full_text", "full-text"),
             ("mixed_pairs", "mixed pairs"), ("real_feeds", "real feeds"))
    for name, label in METHODS.items():
        m = r["methods"][name]
        for n, (part, title) in enumerate(parts):
            p = m[part]
            ari = f"{p['ari']:.3f}" if "ari" in p else "-"
            line = (f"{label if n == 0 else '':<30} {title:<13} {ari:>6} {p['precision']:>6.3f} "
                    f"{p['recall']:>6.3f}")
            if n == 0:
                found = m["real_reprint_pairs"]
                line += (f"  {m['boilerplate_merges']:>11,} {m['same_event_merges']:>10,} "
                         f"{str(found['found']) + ' of ' + str(found['of']) + ' pairs':>14}")
            lines.append(line)
    k = r["sketch"]
    b = r["baseline"]
    notes = [
        f"new clustering: {k['SHINGLE']}-token shingles of the first {k['MAX_TOKENS']} tokens of the body, "
        f"boilerplate = in >= {k['BOILERPLATE_MIN_ITEMS']} items and {k['BOILERPLATE_SHARE']:.0%} of a "
        f"document's items, lead of {k['LEAD_SHINGLES']} shingles, {k['NUM_PERM']}-value MinHash, "
        f"{k['BANDS']}x{k['ROWS']} LSH bands; a reprint when containment >= {k['MIN_CONTAINMENT']} "
        f"and >= {k['MIN_SHARED']:g} shared shingles",
        f"baseline: word {b['shingle']}-shingles of title + summary + content, {b['num_perm']} "
        f"permutations, MinHashLSH threshold {b['threshold']} (datasketch)",
        "boilerplate: pairs of different stories of one feed document put in one cluster "
        f"(the 50-story footer outlet alone: {r['methods']['new']['footer_outlet_merges']} new, "
        f"{r['methods']['minhash']['footer_outlet_merges']} baseline); same-event: pairs of two "
        "outlets' own reports of one event; mixed pairs: one item of a summary-only feed, one of "
        "a full-text feed; real feeds: the feeds as published, without the synthetic reprints",
        "reprints joined with their original (new clustering): " + ", ".join(
            f"{k} {v['joined']}/{v['of']}" for k, v in r["reprint_recall"].items()),
    ]
    lines.append("")
    for note in notes:
        lines += textwrap.wrap(note, width=104, subsequent_indent="  ")
    lines += [
        "",
        "targets:",
    ]
    for t in r["targets"]:
        value = t["value"] if isinstance(t["value"], int) else f"{t['value']:.3f}"
        lines.append(f"  {t['label']:<40} {value:>8}  {t['goal']:<8} {'met' if t['met'] else 'NOT MET'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=cluster_set.SEED)
    parser.add_argument("--results", default=str(RESULTS),
                        help="folder for clusters.json and clusters.txt ('' to write nothing)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, force=True)
    if not cluster_set.available():
        print(f"cluster eval: {cluster_set.REALFEEDS} is not there; the set is built from "
              "../shared/corpora", file=sys.stderr)
        return 1
    r = measure(args.seed)
    table = render(r)
    print(table)
    if args.results:
        folder = Path(args.results)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "clusters.json").write_text(json.dumps(r, indent=1) + "\n")
        (folder / "clusters.txt").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
