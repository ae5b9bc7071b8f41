"""Commit stage: the batch pipeline's last step writes the run's state
(transforms.state.store.StateStore.commit) once every output file is written.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

import apache_beam as beam

from transforms.state.store import StateStore


class _CommitStateFn(beam.DoFn):
    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta):
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback

    def process(self, _, seen, feeds, *written):
        StateStore(self.output).commit(self.run_id, datetime.now(timezone.utc), seen, feeds,
                                       self.as_of, self.lookback)
        yield self.run_id


class CommitState(beam.PTransform):
    """(PCollection[SeenRecord], PCollection[(feed_url, FeedState)]) -> the run id, once.

    Runs as the last stage of the pipeline, after every PCollection in `after`
    (the files written) is complete: side inputs make the runner finish them
    first. Being a pipeline stage, it also commits on Dataflow, where the
    launcher that built the job does not wait for it. Retried, it rewrites
    the same files.
    """

    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta,
                 after: Sequence = ()):
        super().__init__()
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback
        self.after = list(after)

    def expand(self, inputs):
        seen, feeds = inputs
        return (
            seen.pipeline
            | "Once" >> beam.Create([None])
            | "Commit" >> beam.ParDo(
                _CommitStateFn(self.output, self.run_id, self.as_of, self.lookback),
                beam.pvalue.AsList(seen), beam.pvalue.AsList(feeds),
                *[beam.pvalue.AsList(done) for done in self.after])
        )
