"""`newswatch retag`: archived entries replayed through the stages after
parse with other topic rules, into a named view (pipeline/views.py;
docs/retag.md).

What a live run wrote depends on what the runs before it wrote: dedup
across runs (SeenBefore) and clusters read the state that earlier runs
committed, and that state holds only what matched. So the replay goes run by
run, in the order the runs committed, each one a Beam pipeline made of the
live graph's own stage chain (pipeline.graph.build_story_stages) with the
run's original run id, start time (for the lookback) and fetch times; its
state is the view's own, under the generation folder, so the live state is
never read or written. A streaming job is replayed window unit by window
unit, each as a batch step.

Two halves:

- planning (`survey_archive`, `plan_units`): which commit units, in which
  order, from which entries files. `plan_units` is pure (plain records in,
  a RetagPlan out) and is tested without Beam; `survey_archive` gathers
  its input with pyarrow: the runs/ rows, the committed units in
  _state/seen, the open markers, and run id, fetch time and whether the
  text was kept of each archived entry in the partitions of the range only.
- the replay, in two steps. The preparation (`prepare_units`), one Beam
  pipeline for all units, does what does not depend on earlier runs: each
  unit's archived rows read (`unit_stories`), tagged, sketched again per
  feed document as the parse stage does, and deduplicated within the unit,
  into a file per unit under the generation's _prepared/. Then each unit,
  in commit order, is a Beam pipeline from those stories through
  build_story_stages from SeenBefore on (`replay_unit`).
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import dofn_signatures
from transforms.archive import TEXT_FIELDS, story_from_entry_row

_log = logging.getLogger(__name__)

# A point where a test can stop a retag (transforms/phases.py): every unit is
# replayed into the new generation, the pointer is not written yet.
PUBLISHING = "retag-publishing"
# ... and one where it has read the view's pointer, before the survey.
POINTER_READ = "retag-pointer-read"
# ... and one where every unit is prepared, none replayed yet.
UNITS_PREPARED = "retag-units-prepared"

# `<run_id>-w<window start>-p<pane>-<shard>.parquet`: a streaming job's file
# of one window pane (transforms.sink.window_tag); `<run_id>-<shard>.parquet`
# a batch run's.
_TAGGED_FILE = re.compile(r"^(?P<unit>(?P<run_id>.+)-(?P<tag>w(?P<start>\d{8}T\d{6}Z)-p(?P<pane>\d+)))-\d{3,}\.parquet$")
_UNIT = re.compile(r"^(?P<run_id>.+)-w(?P<start>\d{8}T\d{6}Z)-p(?P<pane>\d+)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class RetagRefused(Exception):
    """Nothing can be re-tagged as asked (no output, no archive in the
    range, entries archived without text): one line, exit 2."""


class UnreadableEntries(IOError):
    """An entries file in the range that cannot be read: the retag fails (exit 1)."""


# ---------------------------------------------------------------- planning (pure)

@dataclass(frozen=True)
class EntryGroup:
    """The archived entries of one run in one entries file."""

    path: str                  # the file, as the reader's filesystem names it
    run_id: str
    unit: Optional[str]        # the window unit named by the file, for a streaming job's file
    rows: int
    first_fetched: datetime
    last_fetched: datetime
    without_text: int          # rows archived with --archive-text none


@dataclass(frozen=True)
class RunRecord:
    """What the output says about one run: its runs/ row, or its open marker."""

    run_id: str
    started_at: Optional[datetime]
    mode: str = "batch"        # "batch" or "streaming"
    finished: bool = True      # a runs/ row exists (False: only an open marker)
    window_s: Optional[float] = None   # a streaming job's window length, from its open marker
    archived_nothing: bool = False     # its runs/ row counts parsed entries but none archived (--no-archive)


@dataclass(frozen=True)
class ReplayUnit:
    """One commit unit to replay: a batch run, or one window pane of a streaming job."""

    unit: str                  # the commit unit: the run id, or `<run_id>-w<start>-p<pane>`
    run_id: str                # the run id its rows carry
    started_at: datetime       # what the live run's lookback counted from
    files: Tuple[str, ...]     # entries files holding its rows
    # Rows of the unit in files that name no unit (compaction's merged
    # files): those of `run_id` fetched in [since, until).
    window: Optional[Tuple[datetime, Optional[datetime]]] = None
    rows: int = 0              # archived entries (those of merged files estimated by time)
    order: Tuple = ()

    @property
    def streaming(self) -> bool:
        return self.unit != self.run_id


@dataclass
class RetagPlan:
    units: List[ReplayUnit]
    skipped: Dict[str, str] = field(default_factory=dict)   # unit or run -> why
    without_text: Dict[str, int] = field(default_factory=dict)   # run -> entries archived without text
    partitions: List[str] = field(default_factory=list)     # entries partition folders read
    entries: int = 0
    warnings: List[str] = field(default_factory=list)       # where the view may differ from a live run

    @property
    def run_ids(self) -> List[str]:
        return sorted({u.run_id for u in self.units})


ARCHIVED_NOTHING = "archived nothing (run with --no-archive): its stories are not in the view"


def plan_units(groups: Sequence[EntryGroup], runs: Dict[str, RunRecord],
               committed: Iterable[str], cutoff: Optional[datetime] = None,
               bounds: Tuple[Optional[datetime], Optional[datetime]] = (None, None)) -> RetagPlan:
    """Which commit units to replay, in which order, from which files.

    `groups`: the archived entries of the range, per file and run;
    `runs`: the runs/ rows and open markers by run id; `committed`: the
    commit units in _state/seen. A unit committed when

    - its unit id is in `committed` (a batch run, a window pane), or its
      job's run id is (recovery commits a killed job's remaining windows
      under the job's run id), or the run has a runs/ row;
    - or no open marker names its run and its entries were all fetched
      before `cutoff` (now less the lookback): state compaction prunes
      commit rows older than that, and a run without a marker either
      committed or was rolled forward by the next run.

    Units run in the order they committed: batch runs by start, a job's
    panes by window. Runs of `runs` started within `bounds` that archived
    nothing (--no-archive) are listed as skipped, with a warning: the runs
    after them may differ from the live ones in what they saw before.
    """
    committed = set(committed)
    by_run: Dict[str, List[EntryGroup]] = defaultdict(list)
    for group in groups:
        by_run[group.run_id].append(group)
    units: List[ReplayUnit] = []
    skipped: Dict[str, str] = {}
    without_text: Dict[str, int] = {}

    def pruned(run_groups, record) -> bool:
        marker_open = record is not None and not record.finished
        return (cutoff is not None and not marker_open
                and max(g.last_fetched for g in run_groups) < cutoff)

    for run_id, run_groups in sorted(by_run.items()):
        record = runs.get(run_id)
        job_units = {u for u in committed if _unit_run(u) == run_id}
        tagged = {g.unit for g in run_groups if g.unit is not None}
        first = min(g.first_fetched for g in run_groups)
        started = record.started_at if record is not None and record.started_at is not None else first
        no_text = sum(g.without_text for g in run_groups)
        if no_text:
            without_text[run_id] = no_text
        streaming = bool(tagged or job_units) or (record is not None and record.mode == "streaming")
        if not streaming:
            if run_id in committed or (record is not None and record.finished) or pruned(run_groups, record):
                units.append(ReplayUnit(run_id, run_id, started, tuple(sorted(g.path for g in run_groups)),
                                        rows=sum(g.rows for g in run_groups), order=(started, run_id)))
            else:
                skipped[run_id] = "not committed (running, or killed and not yet recovered)"
            continue
        finished = (record is not None and record.finished) or run_id in committed
        known = sorted(tagged | job_units, key=lambda u: (_unit_start(u), u))
        merged = [g for g in run_groups if g.unit is None]
        starts = sorted({_unit_start(u) for u in known})
        window_s = record.window_s if record is not None and record.window_s else _window_length(starts)
        for unit in known:
            mine = [g for g in run_groups if g.unit == unit]
            if unit not in committed and not finished and not (mine and pruned(mine, record)):
                skipped[unit] = "window not committed (the job is running, or was killed)"
                continue
            start = _unit_start(unit)
            later = [s for s in starts if s > start]
            end = later[0] if later else None
            if end is None and not finished and window_s is not None:
                # The job goes on (or was killed): its later windows are not committed.
                end = start + timedelta(seconds=window_s)
            first_pane = unit == min((u for u in known if _unit_start(u) == start), key=_pane)
            window = (start, end) if first_pane and merged else None
            files = [g.path for g in mine]
            files += [g.path for g in merged if window is not None and _overlaps(g, start, end)]
            rows = sum(g.rows for g in mine)
            if files:
                units.append(ReplayUnit(unit, run_id, started, tuple(sorted(files)), window, rows,
                                        order=(start, unit)))
        if merged and not finished and known:
            last_end = max(starts) + timedelta(seconds=window_s) if window_s is not None else None
            if last_end is None or any(g.last_fetched >= last_end for g in merged):
                skipped[f"{run_id} (merged entries after its last committed window)"] = (
                    "windows not committed (the job is running, or was killed)")
        if merged and not known:
            if finished or pruned(merged, record):
                # Only merged files, no unit known: the job's rows as one unit.
                units.append(ReplayUnit(run_id, run_id, started, tuple(sorted(g.path for g in merged)),
                                        rows=sum(g.rows for g in merged), order=(started, run_id)))
            else:
                skipped[run_id] = "windows not committed (the job is running, or was killed)"
    warnings: List[str] = []
    start, end = bounds
    for run_id, record in sorted(runs.items()):
        if run_id in by_run or not record.archived_nothing or record.started_at is None:
            continue
        if (start is None or record.started_at >= start) and (end is None or record.started_at < end):
            skipped[run_id] = ARCHIVED_NOTHING
            warnings.append(f"run {run_id} archived nothing: the units replayed after it may write "
                            "stories it wrote, and seen-before may differ from the live runs after it")
    units.sort(key=lambda u: u.order)
    return RetagPlan(units, skipped, without_text, entries=sum(u.rows for u in units), warnings=warnings)


def _window_length(starts: Sequence[datetime]) -> Optional[float]:
    """A job's window length as its window starts show it: the smallest
    gap between two (windows with no entries leave larger gaps)."""
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    return min(gaps) if gaps else None


def _unit_run(unit: str) -> Optional[str]:
    found = _UNIT.match(unit)
    return found.group("run_id") if found else None


def _unit_start(unit: str) -> datetime:
    found = _UNIT.match(unit)
    return datetime.strptime(found.group("start"), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def _pane(unit: str) -> int:
    return int(_UNIT.match(unit).group("pane"))


def _overlaps(group: EntryGroup, start: datetime, end: Optional[datetime]) -> bool:
    return group.last_fetched >= start and (end is None or group.first_fetched < end)


# ---------------------------------------------------------------- survey (pyarrow)

def survey_archive(output: str, since=None, until=None) -> Tuple[List[EntryGroup], Dict[str, RunRecord],
                                                                 set, List[str]]:
    """plan_units' input, read from OUT with pyarrow: the entry groups of
    the partitions that meet [since, until) (only those are opened; rows
    outside the range are left out), the runs, the committed units, and the
    partition folders read.

    The open markers, runs/ and the committed units are read before the
    entries files are listed: a run or window commits only after all its
    entries files are written, so every unit seen as committed here has all
    its files in the listing that follows."""
    from pipeline import dataset

    runs = _run_records(output)
    committed = set(dataset.committed_units(output))
    fs, files, bounds = dataset.entry_files(output, since, until)
    groups: List[EntryGroup] = []
    for path in files:
        try:
            groups.extend(_groups_of_file(fs, path, bounds))
        except (pa.ArrowException, OSError) as exc:
            raise UnreadableEntries(f"entries file {path} is unreadable: {' '.join(str(exc).split())}") from None
    partitions = sorted({path.rsplit("/", 2)[-2] for path in files})
    return groups, runs, committed, partitions


def _groups_of_file(fs, path: str, bounds) -> List[EntryGroup]:
    parquet = pq.ParquetFile(fs.open_input_file(path))
    table = parquet.read(columns=["run_id", "fetched_at"])
    no_text = _without_text_mask(parquet)
    keep = _in_bounds(table.column("fetched_at"), bounds)
    name = path.rsplit("/", 1)[-1]
    tagged = _TAGGED_FILE.match(name)
    groups = []
    run_ids = table.column("run_id").to_numpy(zero_copy_only=False)
    fetched = pc.cast(table.column("fetched_at"), pa.int64()).to_numpy()
    for run_id in sorted(set(run_ids[keep].tolist())):
        mine = keep & (run_ids == run_id)
        unit = tagged.group("unit") if tagged and tagged.group("run_id") == run_id else None
        groups.append(EntryGroup(path, run_id, unit, int(mine.sum()), _micros_time(fetched[mine].min()),
                                 _micros_time(fetched[mine].max()), int((no_text & mine).sum())))
    return groups


def _without_text_mask(parquet: pq.ParquetFile):
    """Rows whose title, summary and content are all null (archived with
    --archive-text none). The text columns are read only for row groups
    whose statistics say the title has nulls."""
    import numpy as np

    names = parquet.schema_arrow.names
    mask = np.zeros(parquet.metadata.num_rows, dtype=bool)
    title = names.index("title")
    offset = 0
    for index in range(parquet.metadata.num_row_groups):
        group = parquet.metadata.row_group(index)
        stats = group.column(title).statistics
        if stats is None or not stats.has_null_count or stats.null_count > 0:
            texts = parquet.read_row_group(index, columns=list(TEXT_FIELDS))
            empty = None
            for name in TEXT_FIELDS:
                nulls = pc.is_null(texts.column(name)).to_numpy(zero_copy_only=False)
                empty = nulls if empty is None else empty & nulls
            mask[offset:offset + group.num_rows] = empty
        offset += group.num_rows
    return mask


def _in_bounds(times: pa.ChunkedArray, bounds):
    import numpy as np

    start, end = bounds
    values = pc.cast(times, pa.int64()).to_numpy()
    keep = np.ones(len(values), dtype=bool)
    if start is not None:
        keep &= values >= _micros(start)
    if end is not None:
        keep &= values < _micros(end)
    return keep


def _run_records(output: str) -> Dict[str, RunRecord]:
    from pipeline import dataset

    records: Dict[str, RunRecord] = {}
    for run_id, body in dataset.run_markers(output).items():
        window = body.get("window_s")
        records[run_id] = RunRecord(run_id, _marker_time(body.get("started_at")), finished=False,
                                    window_s=float(window) if isinstance(window, (int, float)) else None)
    runs = dataset.read_runs(output, columns=["run_id", "started_at", "mode", "entries", "rows_written_entries"])
    for row in runs.itertuples(index=False):
        started = row.started_at.to_pydatetime() if row.started_at is not None and str(row.started_at) != "NaT" else None
        parsed = 0 if _missing(row.entries) else int(row.entries)
        archived = 0 if _missing(row.rows_written_entries) else int(row.rows_written_entries)
        records[row.run_id] = RunRecord(row.run_id, started, row.mode or "batch", finished=True,
                                        archived_nothing=parsed > 0 and archived == 0)
    return records


def _missing(value) -> bool:
    return value is None or str(value) in ("nan", "NaT", "<NA>", "None")


def _marker_time(text) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except (ValueError, AttributeError):
        return None


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def _micros_time(value) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


# ---------------------------------------------------------------- the replay

@dataclass(frozen=True)
class UnitSource:
    """What unit_stories needs inside the pipeline to read one unit."""

    output: str
    unit: ReplayUnit
    bounds: Tuple[Optional[datetime], Optional[datetime]]
    sketch: bool
    # The unit's feed documents are split into `shards` parts by a hash of
    # the document (feed URL and fetch time), so that reading and sketching
    # spread over the workers; this part is `shard`.
    shard: int = 0
    shards: int = 1


def unit_stories(source: UnitSource, tag: Callable) -> Iterator:
    """The stories the parse stage gave for one unit's entries, from the
    archive, passed through `tag` (the story, or a copy to keep): rows of
    the unit's run (and window) in range, each feed document's rows in
    feed order and sketched together, SKETCH_BATCH at a time, as
    transforms.parse.iter_parse_fetch does. Only the stories `tag` gave a
    topic get their sketch (clusters read no other), so a document none of
    whose stories matched is not sketched; every story of a sketched
    document still counts towards its boilerplate."""
    from pipeline import dataset
    from transforms.cluster import DocumentSketcher
    from transforms.parse import SKETCH_BATCH

    dofn_signatures.memoize()   # in a worker process, for the stages after this one
    unit = source.unit
    fs, _ = dataset.resolve(source.output)
    rows = []
    for path in unit.files:
        name = path.rsplit("/", 1)[-1]
        tagged = _TAGGED_FILE.match(name)
        # A merged file holds many runs: only this run's rows are decoded.
        table = pq.read_table(path, filesystem=fs, filters=[("run_id", "=", unit.run_id)])
        keep = pc.equal(table.column("run_id"), unit.run_id)
        start, end = source.bounds
        if tagged is None and unit.window is not None:
            start = max(start, unit.window[0]) if start is not None else unit.window[0]
            if unit.window[1] is not None:
                end = min(end, unit.window[1]) if end is not None else unit.window[1]
        elif tagged is not None and tagged.group("unit") != unit.unit:
            continue
        times = table.column("fetched_at")
        if start is not None:
            keep = pc.and_(keep, pc.greater_equal(times, pa.scalar(start, times.type)))
        if end is not None:
            keep = pc.and_(keep, pc.less(times, pa.scalar(end, times.type)))
        table = table.filter(keep)
        if source.shards > 1:
            table = table.filter(pa.array(_document_shards(table, source.shards) == source.shard))
        rows.extend(table.to_pylist())
    documents: Dict[Tuple, List[dict]] = defaultdict(list)
    for row in rows:
        documents[(row["feed_url"], row["fetched_at"])].append(row)
    for key in sorted(documents, key=lambda k: (k[1], k[0])):
        stories = [story_from_entry_row(row) for row in sorted(documents[key], key=lambda r: r["entry_index"] or 0)]
        tagged = [tag(story) for story in stories]
        wanted = [bool(story.topics) for story in tagged]
        if source.sketch and any(wanted):
            sketcher = DocumentSketcher()
            for at in range(0, len(stories), SKETCH_BATCH):
                sketcher(stories[at:at + SKETCH_BATCH], wanted[at:at + SKETCH_BATCH])
            for story, kept in zip(stories, tagged):
                if kept.topics:
                    kept.sketch = story.sketch
        yield from tagged


def _document_shards(table: pa.Table, shards: int):
    """The shard of each row: a stable hash of its feed document (feed URL
    and fetch time), so a document's rows meet in one shard whatever file
    they were archived in."""
    import zlib

    import numpy as np

    urls = table.column("feed_url").to_pylist()
    times = pc.cast(table.column("fetched_at"), pa.int64()).to_pylist()
    return np.fromiter((zlib.crc32(f"{u}\0{t}".encode("utf-8", "surrogatepass")) % shards
                        for u, t in zip(urls, times)), dtype=np.int64, count=len(urls))


def preparation_parts(beam_args: Sequence[str]) -> int:
    """How many parts a unit's reading and sketching is split into: one per
    local worker, threads of multi_threading included."""
    from pipeline.config import local_workers

    return local_workers(beam_args, threads=True)


PREPARED = "_prepared"   # below the generation: the prepared units, removed before publishing


def prepared_path(folder: str, number: int, shard: Optional[int] = None) -> str:
    """The prepared stories of unit `number`, or of one part of it."""
    return f"{folder}/u{number:06d}" + ("" if shard is None else f"-{shard:03d}") + ".pickle"


def _dump(path: str, stories: List) -> None:
    import pickle

    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as handle:
        pickle.dump(stories, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load_prepared(path: str) -> List:
    import pickle

    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return pickle.load(handle)


class _PreparePartFn:
    """One part of one unit: its stories read, tagged as StoryTagger tags
    them (unmatched ones cut by without_text) and sketched (unit_stories).
    A unit in one part is finished here (_finish_unit); otherwise the part
    is written to the prepared folder and (unit number, path) yielded, for
    _merge_unit."""

    def __init__(self, topics: tuple, folder: str, languages: bool):
        self.topics, self.folder, self.languages = topics, folder, languages
        self._tagger = None

    def __getstate__(self):
        return {**self.__dict__, "_tagger": None}   # the compiled rules stay in their process

    def __call__(self, part):
        from transforms import process_gc
        from transforms.topics import StoryTagger

        number, source = part
        if self._tagger is None:   # once per worker's copy of the function
            process_gc.in_worker()   # before a worker's first work (transforms/process_gc.py)
            self._tagger = StoryTagger(self.topics)
        stories = list(unit_stories(source, self._tagger))
        if source.shards == 1:
            _finish_unit(self.folder, number, stories, self.languages)
            return
        path = prepared_path(self.folder, number, source.shard)
        _dump(path, stories)
        yield number, path


def _merge_unit(folder: str, languages: bool, keyed) -> Iterator[str]:
    """A unit's parts joined and finished."""
    from transforms.paths import delete_files

    number, parts = keyed
    parts = sorted(parts)
    # In unit_stories' order (documents by fetch time and feed, entries in
    # feed order), whatever part a document fell in: of two equally preferred
    # copies dedup keeps the first, as the live run and the in-process replay do.
    stories = sorted((story for path in parts for story in load_prepared(path)),
                     key=lambda story: (story.fetched_at, story.feed_url, story.entry_index))
    _finish_unit(folder, number, stories, languages)
    delete_files(parts)
    yield prepared_path(folder, number)


def _finish_unit(folder: str, number: int, stories: List, languages: bool) -> None:
    """A unit's tagged stories deduplicated as DedupStories does
    (dedup.dedup_stories, its in-memory twin: the preferred copy of each
    story wins, whatever the order), written as the unit's prepared file.
    With `languages`, the matched stories get their language here, as
    DetectLanguage would give it (it keeps a language a story has)."""
    from transforms.dedup import dedup_stories
    from transforms.language import detect_language, language_text, shared_detector

    kept, _ = dedup_stories(stories)
    if languages:
        detector = shared_detector()
        kept = [story.replace(language=detect_language(language_text(story), detector))
                if story.topics and not story.language else story for story in kept]
    _dump(prepared_path(folder, number), kept)


def prepare_units(folder: str, sources: Sequence[UnitSource], topics, beam_args: Sequence[str]) -> List[str]:
    """What does not depend on earlier runs, for every unit in one Beam
    pipeline (with multi_processing, its workers start once for them all):
    reading, sketching, topic tagging and dedup within the unit; with
    several workers, also the language of the matched stories (some of
    which seen-before then drops: extra work that pays only when spread).
    Returns the prepared file of each unit, in the order of `sources`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.topics import as_topic

    dofn_signatures.memoize()
    shards = preparation_parts(beam_args)
    parts = [(number, replace(source, shard=k, shards=shards))
             for number, source in enumerate(sources) for k in range(shards)]
    rules = tuple(as_topic(t) for t in topics)
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    # Parts, not stories, are spread over the workers: each reads, sketches
    # and tags its own feed documents, so no text crosses a shuffle; only
    # the parts' paths are grouped by unit.
    (pipeline
     | "Parts" >> beam.Create(parts)
     | "Spread" >> beam.Reshuffle()
     | "ReadSketchTag" >> beam.FlatMap(_PreparePartFn(rules, folder, shards > 1))
     | "ByUnit" >> beam.GroupByKey()
     | "JoinParts" >> beam.FlatMap(lambda keyed: _merge_unit(folder, shards > 1, keyed)))
    pipeline.run().wait_until_finish()
    return [prepared_path(folder, number) for number in range(len(sources))]


def replay_args(beam_args: Sequence[str]) -> List[str]:
    """The Beam options of a unit's replay: the DirectRunner in-process.
    What remains of a unit after preparation (seen-before, language for the
    few kept stories, clusters, writing, the commit) costs less than
    starting worker processes, which multi_processing does per pipeline;
    the preparation, nearly all the work, ran with the workers asked for."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    runner = PipelineOptions(list(beam_args)).view_as(StandardOptions).runner
    # Beam takes a runner's name in any case, with or without "Runner".
    if runner is not None and str(runner).lower().removesuffix("runner") not in (
            "direct", "switchingdirect", "bundlebaseddirect"):
        return list(beam_args)
    return [*beam_args, "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def replay_unit(root: str, source: UnitSource, prepared: str, topics, lookback: timedelta,
                beam_args: Sequence[str]) -> None:
    """Runs one unit's replay as a Beam pipeline, from its prepared stories
    (prepare_units) on: its stories and state go to `root`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.graph import RunConfig, build_story_stages

    dofn_signatures.memoize()
    unit = source.unit
    config = RunConfig(feeds=(), topics=tuple(topics), output=root, run_id=unit.unit,
                       started_at=unit.started_at, lookback=lookback, clusters=source.sketch,
                       archive_text=None)
    pipeline = beam.Pipeline(options=PipelineOptions(replay_args(beam_args)))
    stories = (pipeline
               | "Prepared" >> beam.Create([prepared])
               | "Load" >> beam.FlatMap(load_prepared))
    feed_states = pipeline | "NoFeedStates" >> beam.Create([])
    build_story_stages(stories, config, feed_states, {}, prepared=True)
    pipeline.run().wait_until_finish()


def remove_prepared(folder: str) -> None:
    """The prepared files left (all of them, after a failure), and the folder on local disk."""
    from transforms.paths import delete_files, list_files

    delete_files(list_files(folder, "*.pickle"))
    if "://" not in folder:
        try:
            os.rmdir(folder)
        except OSError:
            pass


# ---------------------------------------------------------------- the command

@dataclass
class RetagOptions:
    topics_path: str
    output: str
    since: Optional[str] = None
    until: Optional[str] = None
    name: Optional[str] = None
    replace: bool = False
    dry_run: bool = False
    lookback_days: float = 30.0
    clusters: bool = True
    quiet: bool = False


@dataclass
class RetagResult:
    lines: List[str]
    stories_path: Optional[str] = None


def prepare(options: RetagOptions):
    """The compiled rules and their text; nothing of OUT is read.
    Raises ConfigError (a topics file that does not compile, a bad name)."""
    from pipeline import config as cfg
    from pipeline.views import ViewError, check_name
    from transforms.topics import compile_rules, topics_version

    topics = cfg.load_topics(options.topics_path)
    text = cfg.read_text(options.topics_path, "topics file")
    version = topics_version(compile_rules(topics))
    if options.name is not None:
        try:
            check_name(options.name)
        except ViewError as exc:
            raise cfg.ConfigError(str(exc)) from None
    return topics, text, version


def plan(options: RetagOptions) -> RetagPlan:
    """The survey and the plan; raises RetagRefused when there is nothing
    to re-tag as asked."""
    from pipeline import dataset

    if not dataset.output_exists(options.output):
        raise RetagRefused(f"no output folder at {options.output}")
    try:
        groups, runs, committed, partitions = survey_archive(options.output, options.since, options.until)
    except ValueError as exc:
        if isinstance(exc, pa.ArrowException):
            raise
        raise RetagRefused(str(exc)) from None
    if not groups:
        span = _span_text(options)
        raise RetagRefused(f"no archived entries in {options.output}/entries{span}: runs with --no-archive, "
                           "or before the entry archive, cannot be re-tagged")
    cutoff = datetime.now(timezone.utc) - timedelta(days=options.lookback_days)
    result = plan_units(groups, runs, committed, cutoff, dataset.bounds(options.since, options.until))
    result.partitions = partitions
    replayed = {u.run_id for u in result.units}
    blind = {r: n for r, n in result.without_text.items() if r in replayed}
    if blind:
        total = sum(g.rows for g in groups if g.run_id in replayed)
        if sum(blind.values()) == total:
            raise RetagRefused(f"the entries{_span_text(options)} were archived with --archive-text none "
                               "(identities only): they cannot be re-tagged on their text")
        shown = ", ".join(sorted(blind)[:5]) + (f" and {len(blind) - 5} more" if len(blind) > 5 else "")
        raise RetagRefused(f"runs {shown} archived their entries with --archive-text none (identities only) "
                           "and cannot be re-tagged on their text; narrow --since/--until to leave them out")
    if not result.units:
        raise RetagRefused(f"no committed run in {options.output}{_span_text(options)}: "
                           + "; ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())[:3]))
    return result


def _span_text(options: RetagOptions) -> str:
    if options.since is None and options.until is None:
        return ""
    return f" between {options.since or 'the start'} and {options.until or 'the end'}"


def run_retag(options: RetagOptions, topics, topics_text: str, version: str,
              beam_args: Sequence[str], say=print) -> RetagResult:
    """The replay into a new generation and its publication (or, with
    dry_run, into a temporary folder that is then removed). Raises
    RetagRefused, views.Published."""
    import shutil
    import tempfile

    from pipeline import dataset, views
    from transforms import phases
    from transforms.paths import delete_files

    name = options.name or views.default_name(version)
    old, old_version = views.read_pointer(options.output, name)
    if old is not None and not options.replace and not options.dry_run:
        raise RetagRefused(f"view {name} exists (generation {old.generation}, made {old.created_at}): "
                           "give --replace to replace it, or another --name")
    phases.reached(POINTER_READ)
    the_plan = plan(options)
    bounds = dataset.bounds(options.since, options.until)
    lookback = timedelta(days=options.lookback_days)
    if options.dry_run:
        root = tempfile.mkdtemp(prefix="newswatch-retag-")
        generation = None
    else:
        generation = views.new_generation()
        root = views.generation_dir(options.output, name, generation)
        views.write_text(f"{root}/{views.TOPICS_FILE}", topics_text)
    say(f"newswatch: retag of {len(the_plan.units)} units ({the_plan.entries:,} archived entries, "
        f"{len(the_plan.partitions)} partitions) with topics_version {version}"
        + ("" if generation is None else f" into view {name} generation {generation}"))
    started = time.monotonic()
    prepared_folder = f"{root}/{PREPARED}"
    try:
        sources = [UnitSource(options.output, unit, bounds, options.clusters) for unit in the_plan.units]
        try:
            prepared = prepare_units(prepared_folder, sources, topics, beam_args)
            if not options.quiet:
                say(f"newswatch: prepared {len(sources)} units (read, sketched, tagged, deduplicated) "
                    f"in {time.monotonic() - started:.1f} s")
            phases.reached(UNITS_PREPARED)
            for number, (source, path) in enumerate(zip(sources, prepared), 1):
                replay_unit(root, source, path, topics, lookback, beam_args)
                delete_files([path])
                if not options.quiet:
                    say(f"newswatch: replayed {number}/{len(the_plan.units)} {source.unit.unit}")
        except Exception as error:
            # A later retag of the name that published, or a `views delete`,
            # removes this unpublished generation, files and all: the replay
            # then fails on a missing file, which is not the story to tell.
            if generation is not None and not views.exists(f"{root}/{views.TOPICS_FILE}"):
                raise views.Published(f"generation {generation} of view {name} was removed by another "
                                      "retag or a `views delete` while it was being written") from error
            raise
        remove_prepared(prepared_folder)
        new_counts = topic_counts(dataset.read_stories(root, columns=["topics"]))
        if options.dry_run:
            # the live stories of the same entries: those of the replayed runs fetched in range
            old_counts = topic_counts(dataset.read_stories(
                options.output, options.since, options.until, on=dataset.ON_RUN,
                run_id=the_plan.run_ids, columns=["topics"]))
            return RetagResult(_compare_lines(old_counts, new_counts, the_plan, version))
        phases.reached(PUBLISHING)
        if not views.exists(f"{root}/{views.TOPICS_FILE}"):
            # Another retag of this name removed this generation as superseded.
            raise views.Published(f"generation {generation} of view {name} was removed by another retag")
        pointer = views.ViewPointer(
            name=name, generation=generation, topics_version=version,
            topics_file=f"{generation}/{views.TOPICS_FILE}", topics_text=topics_text,
            source_output=options.output, since=options.since, until=options.until,
            runs=[u.unit for u in the_plan.units], skipped=the_plan.skipped,
            created_at=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            counts={"entries": the_plan.entries, "stories": new_counts.pop("", 0),
                    "by_topic": dict(sorted(new_counts.items()))},
            previous=old.generation if old is not None else None, warnings=the_plan.warnings)
        views.publish(options.output, pointer, old_version)
    finally:
        # After a failure too: the prepared files hold the matched stories' text.
        remove_prepared(prepared_folder)
        if options.dry_run:
            shutil.rmtree(root, ignore_errors=True)
    views.remove_superseded(options.output, name, generation)
    path = views.stories_dir(options.output, name, generation)
    lines = [f"newswatch: view {name}: {pointer.counts['stories']:,} stories from "
             f"{len(the_plan.units)} units ({the_plan.entries:,} entries) in {time.monotonic() - started:.1f} s"]
    lines += [f"  skipped {unit}: {why}" for unit, why in sorted(the_plan.skipped.items())]
    lines += [f"  warning: {text}" for text in the_plan.warnings]
    lines.append(path)
    return RetagResult(lines, path)


def topic_counts(frame) -> Counter:
    """Stories per topic; "" counts the stories."""
    counts = Counter()
    counts[""] = len(frame)
    for topics in frame["topics"]:
        counts.update(list(topics) if topics is not None else [])
    return counts


def _compare_lines(old: Counter, new: Counter, the_plan: RetagPlan, version: str) -> List[str]:
    lines = [f"newswatch: dry run, nothing written: {len(the_plan.units)} units, "
             f"{the_plan.entries:,} archived entries; stories per topic, now vs with topics_version {version}",
             f"  {'topic':<30} {'old':>8} {'new':>8} {'change':>8}"]
    for topic in sorted((set(old) | set(new)) - {""}):
        lines.append(f"  {topic:<30} {old.get(topic, 0):>8,} {new.get(topic, 0):>8,} "
                     f"{new.get(topic, 0) - old.get(topic, 0):>+8,}")
    lines.append(f"  {'(stories)':<30} {old.get('', 0):>8,} {new.get('', 0):>8,} "
                 f"{new.get('', 0) - old.get('', 0):>+8,}")
    lines += [f"  skipped {unit}: {why}" for unit, why in sorted(the_plan.skipped.items())]
    lines += [f"  warning: {text}" for text in the_plan.warnings]
    return lines
