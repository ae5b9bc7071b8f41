"""What Beam's two ways of calling a DoFn's process cost per element, on
this machine's Beam (tests/pipeline/test_invokers.py keeps a batch run's
per-entry steps on the fast way).

    python -m benchmarks.invoker_cost --elements 100000 --steps 10

One in-process DirectRunner pipeline per kind of step: the elements, then
`--steps` steps of that kind in a row. Prints each kind's CPU per element
and step above the same pipeline without the steps (best of `--repeat`):

- fast: process(self, element), which Beam calls through its SimpleInvoker;
- window and timestamp: process asks for them (the per-window invoker);
- side input: a singleton side input (the per-window invoker as well).
"""
from __future__ import annotations

import argparse
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


class _FastFn(beam.DoFn):
    def process(self, element):
        yield element


class _WindowTimestampFn(beam.DoFn):
    def process(self, element, win=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield element


class _SideInputFn(beam.DoFn):
    def process(self, element, side):
        yield element


KINDS = {"fast": _FastFn, "window and timestamp": _WindowTimestampFn, "side input": _SideInputFn}


def pipeline_cpu(elements: int, steps: int, kind: str) -> float:
    """CPU seconds of one pipeline: `elements` through `steps` steps of `kind`."""
    started = time.process_time()
    options = PipelineOptions(["--direct_running_mode=in_memory"])
    with beam.Pipeline(runner="DirectRunner", options=options) as pipeline:
        side = beam.pvalue.AsSingleton(pipeline | "Side" >> beam.Create([0]))
        # Reshuffled, so the steps run in a stage of their own, on decoded elements.
        values = pipeline | beam.Create(range(elements)) | beam.Reshuffle()
        for step in range(steps):
            fn = KINDS[kind]()
            values = values | f"Step{step}" >> (beam.ParDo(fn, side) if kind == "side input" else beam.ParDo(fn))
    return time.process_time() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    best = lambda kind, steps: min(pipeline_cpu(args.elements, steps, kind) for _ in range(args.repeat))  # noqa: E731
    without = best("fast", 0)
    print(f"invoker cost: {args.elements:,} elements, {args.steps} steps of each kind, Beam {beam.__version__}; "
          f"the pipeline without steps {without:.2f} CPU s (best of {args.repeat})")
    for kind in KINDS:
        cpu = best(kind, args.steps)
        per = (cpu - without) / args.steps / args.elements * 1e6
        print(f"invoker cost: {kind:22s} {cpu:6.2f} CPU s, {per:5.2f} us an element a step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
