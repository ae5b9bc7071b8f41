"""`newswatch retag` throughput: archived entries re-tagged per second.

    python -m benchmarks.retag_throughput [--runs 100] [--entries-per-run 10000] [--base-runs 3]
                                          [--modes in_process multi_processing_2] [--work DIR]
                                          [--save benchmarks/results/retag_throughput.json]

The archive is generated directly as Parquet, not through the pipeline:
benchmarks/corpus.py's feeds (realistic text in six languages, repeats
across polls, syndicated and wire copies), poll k of every feed being run
k's fetch of it, each document parsed by the parse stage's own function
(transforms.parse.iter_parse_fetch) and written as the run's entries file
(transforms.archive.entry_row, ENTRIES_SCHEMA), plus the run's row in
OUT/runs/ (what makes it a committed run for the replay). Runs are spread
evenly over `days` days. Parsing costs ~3 ms an entry, so with
`--base-runs B` only B runs are parsed and the others derived from them
with pyarrow (`derive`: run k is base run k mod B at run k's time, its
stories made new in every cycle of B runs, its text unchanged), which makes
1,000,000 entries in minutes rather than an hour. Then `newswatch retag` with other rules, timed as
a child process, in-process (DirectRunner) and with 2 workers
(multi_processing), with the part of the wall time the preparation took
(every run read, sketched, tagged and deduplicated in one pipeline, before
the runs are replayed one by one); and the same command on a one-run,
one-feed archive: the fixed cost of a retag of one run (its preparation and
its replay), so the figure can be read as fixed cost + cost per entry.
Generation is not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import corpus
from transforms.archive import entry_row
from transforms.parse import iter_parse_fetch
from transforms.records import FetchResult, Story
from transforms.schema import ENTRIES_SCHEMA, partition_date
from transforms.sink import ENTRIES, file_name, partition_dir, write_run_row

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 10, 1, tzinfo=timezone.utc)
# The rules the live runs had (A) and the new ones (B): B adds topics.
RULES_A = [("dprk", '"North Korea" OR Pyongyang OR 북한 OR 北朝鮮 OR 朝鲜')]
RULES_B = RULES_A + [("missile_tests", "(missile OR missiles OR 미사일 OR ミサイル) AND (test OR fired OR launch)"),
                     ("markets", "market OR markets OR stocks OR 주식 OR 株価")]
FLUSH_ROWS = 5000


def topics_yaml(rules) -> str:
    return "topics:\n" + "".join(f"  - name: {name}\n    query: {json.dumps(query, ensure_ascii=False)}\n"
                                 for name, query in rules)


def generate(out: Path, runs: int, entries_per_run: int, days: float = 30.0, seed: int = 16,
             run_times: Optional[Sequence[datetime]] = None) -> Dict[str, int]:
    """Writes OUT/entries (a file per run and fetch day) and OUT/runs (a row
    per run): `runs` runs of about `entries_per_run` entries each, run k at
    run_times[k] (default: evenly over `days` days from START). Returns counts."""
    times = list(run_times) if run_times is not None else [
        START + timedelta(days=days * k / max(runs, 1)) for k in range(runs)]
    assert len(times) == runs
    spec = corpus.CorpusSpec(entries=runs * entries_per_run, items_per_feed=50, polls=runs, seed=seed)
    writer = corpus._Writer(spec, RULES_A)
    truth = corpus.GroundTruth()
    buffers: Dict[int, List[dict]] = {k: [] for k in range(runs)}
    writers: Dict[int, pq.ParquetWriter] = {}
    counts = {"entries": 0, "documents": 0, "runs": runs}

    def flush(run: int) -> None:
        if not buffers[run]:
            return
        if run not in writers:
            folder = partition_dir(str(out), ENTRIES.name, partition_date(times[run]))
            os.makedirs(folder, exist_ok=True)
            writers[run] = pq.ParquetWriter(os.path.join(folder, file_name(run_id(run), 0)), ENTRIES_SCHEMA,
                                            compression="zstd", compression_level=ENTRIES.compression_level)
        writers[run].write_table(pa.Table.from_pylist(buffers[run], schema=ENTRIES_SCHEMA))
        buffers[run] = []

    for path, data in corpus._documents(spec, writer, truth):
        poll = int(path.rsplit("/p", 1)[1].split(".")[0])
        url = f"https://feeds.example.org{path.rsplit('/p', 1)[0]}.xml"
        kind = "application/atom+xml" if path.endswith(".atom") else "application/rss+xml"
        fetched = FetchResult(feed_url=url, final_url=url, status=200, headers={"content-type": kind},
                              body=data, elapsed_s=0.1, fetched_at=times[poll] + timedelta(seconds=1))
        for record in iter_parse_fetch(fetched, run_id(poll), sketch=False):
            if isinstance(record, Story):
                buffers[poll].append(entry_row(record))
                counts["entries"] += 1
        counts["documents"] += 1
        if len(buffers[poll]) >= FLUSH_ROWS:
            flush(poll)
    for run in range(runs):
        flush(run)
        if run in writers:
            writers[run].close()
        write_run_row(str(out), {"run_id": run_id(run), "started_at": times[run], "mode": "batch",
                                 "finished_at": times[run] + timedelta(minutes=1), "runner": "DirectRunner",
                                 "output": str(out)})
    return counts


def derive(base: Path, out: Path, runs: int, days: float = 30.0) -> Dict[str, int]:
    """A large archive from a small generated one (`base`, from generate),
    without parsing again: run k is base run k mod B (B base runs) moved to
    run k's time, its entries made new stories in every cycle of B runs
    (story id, guid, links, title and content hash carry the cycle), so
    repeats and syndicated copies within a cycle stay as the corpus made
    them, and the text (what the rules match and the sketches read) is the
    base run's. Writes OUT/entries and OUT/runs as generate does."""
    import pyarrow.compute as pc

    from pipeline import dataset

    base_runs = dataset.read_runs(base, columns=["run_id", "started_at"]).sort_values("run_id")
    tables = {}
    for number, row in enumerate(base_runs.itertuples(index=False)):
        tables[number] = (row.started_at.to_pydatetime(),
                          pq.read_table(sorted((base / ENTRIES.name).rglob(f"{row.run_id}-*.parquet"))[0],
                                        schema=ENTRIES_SCHEMA))
    times = [START + timedelta(days=days * k / max(runs, 1)) for k in range(runs)]
    counts = {"entries": 0, "runs": runs, "base_runs": len(tables)}
    for k in range(runs):
        started, table = tables[k % len(tables)]
        cycle = k // len(tables)
        shift = pa.scalar(times[k] - started, pa.duration("us"))
        columns = {}
        for name in ENTRIES_SCHEMA.names:
            column = table.column(name)
            if cycle and name in ("story_id", "guid", "content_hash"):
                column = pc.binary_join_element_wise(column, pa.scalar(f"~c{cycle}"), "")
            elif cycle and name in ("url", "canonical_url", "feed_link"):
                column = pc.binary_join_element_wise(column, pa.scalar(f"/c{cycle}"), "")
            elif cycle and name == "title":
                column = pc.binary_join_element_wise(column, pa.scalar(f" ({cycle})"), "")
            elif name in ("published_at", "updated_at", "fetched_at"):
                column = pc.cast(pc.add(column, shift), ENTRIES_SCHEMA.field(name).type)
            elif name == "run_id":
                column = pa.array([run_id(k)] * len(table), pa.string())
            columns[name] = column
        derived = pa.table(columns, schema=ENTRIES_SCHEMA)
        folder = partition_dir(str(out), ENTRIES.name, partition_date(times[k]))
        os.makedirs(folder, exist_ok=True)
        pq.write_table(derived, os.path.join(folder, file_name(run_id(k), 0)), compression="zstd",
                       compression_level=ENTRIES.compression_level)
        write_run_row(str(out), {"run_id": run_id(k), "started_at": times[k], "mode": "batch",
                                 "finished_at": times[k] + timedelta(minutes=1), "runner": "DirectRunner",
                                 "output": str(out)})
        counts["entries"] += len(derived)
    return counts


def run_id(run: int) -> str:
    return f"run{run:04d}"


def retag(out: Path, topics: Path, extra: Sequence[str] = ()) -> dict:
    """`newswatch retag` as a child process: wall seconds and what it printed."""
    command = [sys.executable, "-m", "pipeline", "retag", "--topics", str(topics), "--output", str(out),
               "--runner", "DirectRunner", "--replace", *extra]
    import resource

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"retag failed ({done.returncode}): {done.stderr[-2000:]}")
    # CPU of the command and its worker processes: on shared cores the wall
    # time says as much about the neighbours as about the retag.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The progress line of the preparation (every unit read, sketched,
    # tagged and deduplicated in one pipeline) gives its share of the wall time.
    prepared = re.search(r"newswatch: prepared \d+ units .* in ([0-9.]+) s", done.stderr)
    return {"wall_s": wall, "cpu_s": cpu, "printed": done.stdout.strip().splitlines(),
            "prepare_s": float(prepared.group(1)) if prepared else None}


MODES = {"in_process": [], "multi_processing_2": ["--direct_running_mode=multi_processing",
                                                  "--direct_num_workers=2"]}


def measure(runs: int = 100, entries_per_run: int = 10_000, work: Optional[Path] = None,
            base_runs: Optional[int] = None, base: Optional[Path] = None,
            modes: Sequence[str] = tuple(MODES)) -> dict:
    """Generates the archive (`base_runs` runs parsed from the corpus, the
    rest derived from them; or derived from an archive `base` made by
    generate earlier), then times the retag in each of `modes`."""
    from pipeline import dataset

    folder = Path(work or tempfile.mkdtemp(prefix="retag-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        out = folder / "out"
        began = time.monotonic()
        if base is None and (base_runs is None or base_runs >= runs):
            counts = generate(out, runs, entries_per_run)
        else:
            if base is None:
                base = folder / "base"
                generate(base, base_runs, entries_per_run)
            counts = derive(Path(base), out, runs)
        generated_s = time.monotonic() - began
        topics = folder / "b.yaml"
        topics.write_text(topics_yaml(RULES_B), encoding="utf-8")
        tiny = folder / "tiny"
        generate(tiny, 1, 50, seed=3)
        command = f"python -m benchmarks.retag_throughput --runs {runs} --entries-per-run {entries_per_run}"
        if counts.get("base_runs", runs) < runs:
            command += f" --base-runs {counts['base_runs']}"
        if list(modes) != list(MODES):
            command += " --modes " + " ".join(modes)
        result = {"date": datetime.now(timezone.utc).date().isoformat(),
                  "command": command + " --save benchmarks/results/retag_throughput.json",
                  "runs": runs, "entries": counts["entries"], "base_runs": counts.get("base_runs", runs),
                  "generated_s": round(generated_s, 1),
                  "python": platform.python_version(), "cpus": os.cpu_count(), "modes": {}}
        for mode in modes:
            extra = MODES[mode]
            timed = retag(out, topics, [*extra, "--name", mode])
            stories = len(dataset.read_stories(out, view=mode, columns=["story_id"]))
            fixed = retag(tiny, topics, [*extra, "--name", mode])
            result["modes"][mode] = {
                "runs": runs, "entries": counts["entries"],
                "wall_s": round(timed["wall_s"], 1), "cpu_s": round(timed["cpu_s"], 1), "stories": stories,
                "entries_per_s": round(counts["entries"] / timed["wall_s"], 1),
                "entries_per_cpu_s": round(counts["entries"] / timed["cpu_s"], 1),
                "one_unit_s": round(fixed["wall_s"], 1),
                "per_unit_s": round(timed["wall_s"] / runs, 2)}
            if timed["prepare_s"] is not None:
                result["modes"][mode]["prepare_s"] = round(timed["prepare_s"], 1)
        return result
    finally:
        if work is None:
            shutil.rmtree(folder, ignore_errors=True)


def render(result: dict) -> str:
    lines = [f"retag of {result['entries']:,} archived entries in {result['runs']} runs "
             f"(python {result['python']}, {result['cpus']} cpus)"]
    for mode, m in result["modes"].items():
        scale = "" if m.get("entries", result["entries"]) == result["entries"] else \
            f" ({m['entries']:,} entries in {m['runs']} runs)"
        lines.append(f"  {mode:<20} {m['wall_s']:>8.1f} s  {m['entries_per_s']:>9,.0f} entries/s{scale}  "
                     f"{m['per_unit_s']:>6.2f} s a run; one run of 50 entries alone {m['one_unit_s']:.1f} s; "
                     f"{m['stories']:,} stories"
                     + (f"; preparing every run {m['prepare_s']:.1f} s of it" if "prepare_s" in m else "")
                     + (f"; {m['cpu_s']:.0f} s CPU ({m['entries_per_cpu_s']:,.0f} entries per CPU second)"
                        if "cpu_s" in m else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--entries-per-run", type=int, default=10_000)
    parser.add_argument("--base-runs", type=int,
                        help="runs parsed from the corpus; the others are derived from them (default: all parsed)")
    parser.add_argument("--base", type=Path, help="derive from this archive (made by generate) instead")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--save", help="write the result as JSON here; with --modes, the modes measured "
                                       "replace theirs in an existing file, the others stay")
    parser.add_argument("--work", type=Path,
                        help="generate here and keep it (the archive in WORK/out, the new rules in "
                             "WORK/b.yaml), e.g. to profile a retag of it (docs/retag.md#cost)")
    args = parser.parse_args(argv)
    result = measure(args.runs, args.entries_per_run, work=args.work, base_runs=args.base_runs, base=args.base,
                     modes=args.modes)
    if args.save and list(args.modes) != list(MODES) and Path(args.save).exists():
        kept = json.loads(Path(args.save).read_text())
        kept.setdefault("commands", {m: kept["command"] for m in kept["modes"]})
        for mode in args.modes:
            kept["commands"][mode] = result["command"]
        kept["modes"].update(result["modes"])
        result = kept
    print(render(result))
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
