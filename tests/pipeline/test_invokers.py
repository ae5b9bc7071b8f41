"""How Beam calls the DoFns of a batch run's graph (pipeline/graph.py).

Beam 2.77 calls process() its fast way (runners/common.py, SimpleInvoker)
unless the ParDo has side inputs or extra arguments, process() asks for a
parameter (its window, timestamp, pane, state) or the DoFn is stateful.
The slow way costs microseconds more a call (`python -m
benchmarks.invoker_cost`, docs/performance.md),
so a step every entry passes must not take it by accident: this test names
each step that does, with why it must.
"""
import apache_beam as beam
import pytest
from apache_beam.internal.util import ArgumentPlaceholder
from apache_beam.runners.common import DoFnSignature

from pipeline.cli import build_parser, prepare
from pipeline.graph import build_batch_pipeline
from tests.support.paths import SEEDS

# Step (full label) -> why it takes Beam's slow way of calling process.
_WRITE = "names each file by its window and pane; once a (date, shard) group"
SLOW_WAY = {
    "Dedup/KeepWinners": "the set of winners is a side input; every story passes it once",
    "Fetch/Fetch": "hands on each fetch in its window and at its timestamp; once a batch of feeds",
    "Fetch/Redistribute/ReshufflePerKey/Map(reify_metadata_default_window)": "Beam's own; once a feed",
    "Clusters/Assign": "keyed state for streaming; once a run, all stories in one group",
    "CommitState/Commit": "side inputs: waits for every file written; once a run",
    "WriteFetches/Write": _WRITE,
    "WriteErrors/Write": _WRITE,
    "WriteStories/Write": _WRITE,
    "ArchiveEntries/WriteEntries/Write": _WRITE,
}


def _slow_steps(pipeline: beam.Pipeline) -> dict:
    slow = {}

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            transform = node.transform
            if not isinstance(transform, beam.ParDo):
                return
            reasons = []
            if transform.side_inputs:
                reasons.append("side inputs")
            given = [*transform.args, *transform.kwargs.values()]   # a side input stands there as a placeholder
            if any(not isinstance(value, ArgumentPlaceholder) for value in given):
                reasons.append("arguments")
            signature = DoFnSignature(transform.fn)
            if signature.process_method.defaults or signature.process_batch_method.defaults:
                reasons.append("process parameters")
            if signature.is_stateful_dofn():
                reasons.append("state")
            if reasons:
                slow[node.full_label] = reasons

    pipeline.visit(Visitor())
    return slow


@pytest.mark.parametrize("flags", [[], ["--no-clusters"], ["--no-archive"]])
def test_only_the_named_steps_of_a_batch_run_take_the_slow_way(tmp_path, flags):
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("https://feeds.example/a.xml\n")
    args, beam_args = build_parser().parse_known_args(
        ["run", "--feeds", str(feeds), "--topics", str(SEEDS / "topics.yaml"), "--output", str(tmp_path / "out"),
         *flags])
    pipeline = beam.Pipeline(runner="DirectRunner")
    build_batch_pipeline(pipeline, prepare(args, beam_args))
    slow = _slow_steps(pipeline)
    assert set(slow) <= set(SLOW_WAY), {step: why for step, why in slow.items() if step not in SLOW_WAY}
    if not flags:   # the default run has every step: each named one is still there, and still slow
        assert set(slow) == set(SLOW_WAY)
    assert slow["Dedup/KeepWinners"] == ["side inputs"]


def test_the_writes_batch_rows_the_fast_way_only_in_the_global_window():
    from transforms.sink import STORIES, WritePartitions

    pipeline = beam.Pipeline(runner="DirectRunner")
    records = pipeline | beam.Create([])
    records | "Global" >> WritePartitions("/tmp/unused", STORIES, "r")
    records | beam.WindowInto(beam.window.FixedWindows(60)) | "Windowed" >> WritePartitions("/tmp/unused", STORIES, "r")
    slow = _slow_steps(pipeline)
    assert "Windowed/ArrowBatches" in slow and "Global/ArrowBatches" not in slow
