"""What the entry archive costs: disk per 100,000 archived entries (text
kept, and identities only) and the pipeline's CPU and peak RSS with the
archive on vs off, on the same generated corpus (benchmarks/corpus.py), in
the same run.

    python -m benchmarks.archive_cost --entries 100000 --save benchmarks/results/archive_cost.json
    make bench-archive

`newswatch run` runs as a child process three times over the corpus, served
from 127.0.0.1 as in `make bench` (benchmarks/run.py): with --no-archive, with
the archive (--archive-text full, the default) and with --archive-text none,
each measured from outside (benchmarks/measure.py). With --repeat, the runs
alternate and each figure is the median. The generated corpus is made of a
small phrasebook and compresses far better than news does, so disk is also
measured on the real feeds of ../shared/corpora/realfeeds (when present):
their entries parsed and archived as a run writes them (entry_row, the
archive's schema and zstd level), scaled to 100,000 entries. Every run must reconcile, write the
corpus's stories, and the two archiving runs must archive every entry;
otherwise there are no figures (exit 1).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional

TARGET_CPU_RATIO = 1.15      # pipeline CPU, archive on / off (issue 16)
TARGET_RSS_RATIO = 1.3       # peak RSS of an in-process run, archive on / off
PER = 100_000                # disk is stated per this many entries
# name: the flags that make the run
VARIANTS = {"off": ["--no-archive"], "full": ["--archive-text", "full"], "none": ["--archive-text", "none"]}


def variant_names(text: str) -> List[str]:
    """--variants: known names only, and "full" among them, since the
    targets are on the archive with text; an error (exit 2) before any run
    rather than a run that cannot report what it measured."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variant {', '.join(unknown)}; choose from {','.join(VARIANTS)}")
    if "full" not in names:
        raise argparse.ArgumentTypeError("must include full (the targets are on the archive with text)")
    return names


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def archive_bytes(out: str) -> int:
    """Bytes of the visible archive files under OUT/entries."""
    total = 0
    for folder, _, files in os.walk(os.path.join(out, "entries")):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files
                     if f.endswith(".parquet") and not f.startswith("."))
    return total


def check_run(name: str, m, out: str, truth) -> List[str]:
    """Why a run's figures cannot be used (empty: they can)."""
    from benchmarks.measure import tail
    from benchmarks.verify import Verdict, check_counts, check_stories, pipeline_counts
    from pipeline.dataset import read_entries

    if m.stopped or m.returncode != 0:
        return [m.stopped or f"exit code {m.returncode}: " + " | ".join(tail(m.stderr, 3))]
    verdict = Verdict()
    entries, duplicates, reconciled = pipeline_counts(m.stdout)
    if not reconciled or "MISMATCH" in m.stdout:
        verdict.problems.append("run summary does not reconcile")
    check_counts(verdict, truth, entries, duplicates)
    check_stories(verdict, os.path.join(out, "stories"), truth)
    archived = len(read_entries(out, columns=["story_id"])) if os.path.isdir(os.path.join(out, "entries")) else 0
    expected = 0 if name == "off" else truth.entries
    if archived != expected:
        verdict.problems.append(f"{name}: {archived:,} entries archived, expected {expected:,}")
    return [f"{name}: {p}" for p in verdict.problems]


def real_feeds_disk(folder: Optional[Path] = None) -> Optional[dict]:
    """Archive bytes per 100,000 entries of real news feeds, text kept and
    identities only; None when the corpus folder is absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.cluster_set import REALFEEDS
    from transforms.archive import TEXT_FULL, TEXT_NONE, entry_row
    from transforms.parse import parse_fetch
    from transforms.records import FetchResult
    from transforms.sink import ENTRIES

    folder = folder or REALFEEDS
    if not folder.is_dir():
        return None
    fetched_at = datetime(2026, 3, 1, tzinfo=timezone.utc)
    stories = []
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".xml", ".atom", ".rss", ".rdf"))
    for path in paths:
        fetched = FetchResult(feed_url=f"https://feeds.example/{path.name}", final_url=f"https://feeds.example/{path.name}",
                              status=200, headers={}, body=path.read_bytes(), elapsed_s=0.0, fetched_at=fetched_at)
        stories += sorted(parse_fetch(fetched, "bench").stories, key=ENTRIES.sort_key)
    sizes = {}
    for text in (TEXT_FULL, TEXT_NONE):
        sink = pa.BufferOutputStream()
        table = pa.Table.from_pylist([entry_row(s, text) for s in stories], schema=ENTRIES.schema)
        pq.write_table(table, sink, compression="zstd", compression_level=ENTRIES.compression_level)
        sizes[text] = sink.getvalue().size
    return {"feeds": len(paths), "entries": len(stories), "bytes": sizes,
            "bytes_per_100k": {text: round(size * PER / len(stories)) for text, size in sizes.items()}}


def measure(entries: int = PER, repeat: int = 1, latency: float = 0.02, work: Optional[str] = None,
            log: Callable[[str], None] = _stderr, variants: Optional[List[str]] = None) -> dict:
    """Generates the corpus, serves it, runs every variant `repeat` times
    (alternating); returns the figures, or {"error": ...} for a wrong run.
    `variants`: the runs to make ("off" always among them), default all."""
    unknown = sorted(set(variants or ()) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}")
    from benchmarks import corpus, local
    from benchmarks.measure import run_measured
    from benchmarks.run import MIN_FREE_MEMORY, ROOT, TOPICS, _python_env, machine
    from benchmarks.served_corpus import served_feed_list
    from pipeline.config import load_topic_definitions
    from tests.support.feedserver import FeedServer

    own = work is None
    work = work or tempfile.mkdtemp(prefix="archive-cost-")
    try:
        spec = corpus.CorpusSpec(entries=entries)
        folder = os.path.join(work, "corpus")
        truth = corpus.write(spec, load_topic_definitions(str(TOPICS)), folder)
        log(f"corpus {truth.entries:,} entries in {truth.documents:,} documents, {truth.bytes / 1e6:,.0f} MB")
        chosen = {name: VARIANTS[name] for name in VARIANTS if name == "off" or name in (variants or VARIANTS)}
        runs: Dict[str, list] = {name: [] for name in chosen}
        problems: List[str] = []
        with FeedServer() as server:
            feeds = served_feed_list(server, folder, latency, os.path.join(work, "feeds.txt"))
            for attempt in range(repeat):
                for name, flags in chosen.items():
                    out = os.path.join(work, f"out-{name}-{attempt}")
                    cmd = [sys.executable, "-m", "pipeline", "run", "--feeds", feeds, "--topics", str(TOPICS),
                           "--output", out, "--run-id", "bench", "--runner", "DirectRunner",
                           *local.cli_flags(), *flags]
                    m = run_measured(cmd, cwd=str(ROOT), env=_python_env(), min_free_bytes=MIN_FREE_MEMORY)
                    wrong = check_run(name, m, out, truth)
                    problems += wrong
                    runs[name].append({"cpu_s": m.cpu_s, "wall_s": m.wall_s, "peak_rss": m.peak_rss,
                                       "archive_bytes": archive_bytes(out)})
                    log(f"{name:>4}: cpu {m.cpu_s:7.1f} s  wall {m.wall_s:7.1f} s  archive "
                        f"{runs[name][-1]['archive_bytes'] / 2**20:7.1f} MiB  {'ok' if not wrong else wrong}")
                    shutil.rmtree(out, ignore_errors=True)
        if problems:
            return {"error": "; ".join(sorted(set(problems)))}
        median = lambda name, key: statistics.median(r[key] for r in runs[name])
        cpu = {name: round(median(name, "cpu_s"), 2) for name in chosen}
        archiving = [name for name in ("full", "none") if name in chosen]
        disk = {name: int(median(name, "archive_bytes")) for name in archiving}
        return {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "command": f"python -m benchmarks.archive_cost --entries {entries} --repeat {repeat}"
                       + (f" --variants {','.join(chosen)}" if len(chosen) < len(VARIANTS) else ""),
            "entries": truth.entries, "documents": truth.documents, "corpus_bytes": truth.bytes,
            "repeat": repeat,
            "cpu_s": cpu,
            "wall_s": {name: round(median(name, "wall_s"), 2) for name in chosen},
            "peak_rss": {name: int(median(name, "peak_rss")) for name in chosen},
            "archive_bytes": disk,
            "bytes_per_100k": {name: round(disk[name] * PER / truth.entries) for name in disk},
            "cpu_ratio": {name: round(cpu[name] / cpu["off"], 3) for name in archiving},
            "target_cpu_ratio": TARGET_CPU_RATIO,
            "rss_ratio": {name: round(median(name, "peak_rss") / median("off", "peak_rss"), 3)
                          for name in archiving},
            "target_rss_ratio": TARGET_RSS_RATIO,
            "real_feeds": real_feeds_disk(),
        }
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def met(result: dict) -> bool:
    """Every target measured is met (a target on a run not made counts as
    not met: nothing says it is)."""
    if "error" in result or "full" not in result.get("cpu_ratio", {}):
        return False
    return result["cpu_ratio"]["full"] <= result["target_cpu_ratio"] \
        and result.get("rss_ratio", {}).get("full", 0) <= result.get("target_rss_ratio", 0)


def render(result: dict) -> str:
    if "error" in result:
        return f"entry archive: REFUSED, no figures: {result['error']}"
    per = lambda n: f"{result['bytes_per_100k'][n] / 2**20:,.1f} MiB"
    rss = lambda n: f"{result['peak_rss'][n] / 2**20:,.0f} MB"
    lines = [f"entry archive on {result['entries']:,} generated entries ({result['documents']:,} documents, "
             f"{result['corpus_bytes'] / 1e6:,.0f} MB of feeds); median of {result['repeat']}",
             "",
             f"{'run':<28} {'CPU s':>8} {'vs off':>7} {'wall s':>8} {'peak RSS':>9} {'vs off':>7} "
             f"{'disk per 100,000 entries':>25}",
             f"{'--no-archive':<28} {result['cpu_s']['off']:>8.1f} {'-':>7} {result['wall_s']['off']:>8.1f} "
             f"{rss('off'):>9} {'-':>7} {'-':>25}"]
    for name, label in (("full", "archive (text kept, default)"), ("none", "--archive-text none")):
        if name not in result["cpu_s"]:
            continue
        rss_ratio = f"{result['rss_ratio'][name]:>6.2f}x" if "rss_ratio" in result else f"{'':>7}"
        lines.append(f"{label:<28} {result['cpu_s'][name]:>8.1f} {result['cpu_ratio'][name]:>6.2f}x "
                     f"{result['wall_s'][name]:>8.1f} {rss(name):>9} {rss_ratio} {per(name):>25}")
    real = result.get("real_feeds")
    if real:
        lines.append(f"{'real feeds: text kept':<28} {'':>8} {'':>7} {'':>8} {'':>9} {'':>7} "
                     f"{real['bytes_per_100k']['full'] / 2**20:>21,.1f} MiB")
        lines.append(f"{'real feeds: identities only':<28} {'':>8} {'':>7} {'':>8} {'':>9} {'':>7} "
                     f"{real['bytes_per_100k']['none'] / 2**20:>21,.1f} MiB")
        lines.append(f"(real feeds: {real['entries']:,} entries of {real['feeds']} feeds in "
                     "../shared/corpora/realfeeds, archived as a run writes them, scaled to 100,000)")
    if "full" not in result["cpu_ratio"]:  # the targets are on the archive with text
        return "\n".join(lines + ["", "targets: not measured (no run with the archive on)"])
    cpu_met = result["cpu_ratio"]["full"] <= result["target_cpu_ratio"]
    lines += ["", f"target: CPU with the archive / without <= {result['target_cpu_ratio']}x: "
                  f"{result['cpu_ratio']['full']:.2f}x, {'met' if cpu_met else 'NOT MET'}"]
    if "full" in result.get("rss_ratio", {}):
        rss_met = result["rss_ratio"]["full"] <= result["target_rss_ratio"]
        lines.append(f"target: peak RSS with the archive / without <= {result['target_rss_ratio']}x: "
                     f"{result['rss_ratio']['full']:.2f}x, {'met' if rss_met else 'NOT MET'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=PER, help="corpus size (default 100,000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant, alternating (median)")
    parser.add_argument("--variants", type=variant_names, default=list(VARIANTS),
                        help=f"runs to make, comma-separated, of {','.join(VARIANTS)}; must include full "
                             "(off is always run)")
    parser.add_argument("--save", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = measure(args.entries, args.repeat, variants=args.variants)
    print(render(result))
    if args.save and "error" not in result:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met(result) else 1


if __name__ == "__main__":
    sys.exit(main())
