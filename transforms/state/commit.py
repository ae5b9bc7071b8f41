"""Commit stages: the run's state (transforms.state.store.StateStore.commit)
is written once the files it vouches for are written. A batch run commits
once, as its last step (CommitState); a streaming job commits every window
pane as a unit of its own (CommitWindows).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Sequence, Tuple

import apache_beam as beam

from transforms import metrics
from transforms.sink import window_tag
from transforms.state.lease import LeaseHandle
from transforms.state.store import StateStore


class _CommitStateFn(beam.DoFn):
    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta,
                 lease: Optional[LeaseHandle], release_lease: bool):
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback
        self.lease, self.release_lease = lease, release_lease

    def process(self, _, seen, feeds, clusters, *written):
        lease = self.lease.lease() if self.lease is not None else None
        if lease is not None and self.release_lease and lease.released_by_us():
            yield self.run_id  # a retry of this stage: it committed, then released the lease
            return
        if lease is not None:
            lease.check()  # a run whose lease was taken over must not commit
        StateStore(self.output).commit(self.run_id, datetime.now(timezone.utc), seen, feeds,
                                       self.as_of, self.lookback, clusters)
        if lease is not None and self.release_lease:
            lease.release()  # nobody waits for a Dataflow batch job to end
        yield self.run_id


class CommitState(beam.PTransform):
    """(PCollection[SeenRecord], PCollection[(feed_url, FeedState)],
    PCollection[ClusterRecord]) -> the run id, once.

    Runs as the last stage of the pipeline, after every PCollection in `after`
    (the files written) is complete: side inputs make the runner finish them
    first. Being a pipeline stage, it also commits on Dataflow, where the
    launcher that built the job does not wait for it. With a `lease`, it
    commits only while the lease is still this run's (transforms.state.lease),
    and releases it if `release_lease`; retried, it rewrites the same files,
    or, once it has released the lease, finds its commit done.
    """

    def __init__(self, output: str, run_id: str, as_of: datetime, lookback: timedelta,
                 after: Sequence = (), lease: Optional[LeaseHandle] = None, release_lease: bool = False):
        super().__init__()
        self.output, self.run_id, self.as_of, self.lookback = output, run_id, as_of, lookback
        self.after = list(after)
        self.lease, self.release_lease = lease, release_lease

    def expand(self, inputs):
        seen, feeds, clusters = inputs
        return (
            seen.pipeline
            | "Once" >> beam.Create([None])
            | "Commit" >> beam.ParDo(
                _CommitStateFn(self.output, self.run_id, self.as_of, self.lookback,
                               self.lease, self.release_lease),
                beam.pvalue.AsList(seen), beam.pvalue.AsList(feeds), beam.pvalue.AsList(clusters),
                *[beam.pvalue.AsList(done) for done in self.after])
        )


# ---------------------------------------------------------------- streaming

def window_unit(run_id: str, win, pane) -> str:
    """The run id under which a streaming job commits one window pane:
    `<run_id>-w<window start>-p<pane>`, the tag of that pane's output files."""
    return f"{run_id}-{window_tag(win, pane)}"


class _CommitWindowFn(beam.DoFn):
    def __init__(self, output: str, run_id: str, lookback: timedelta, lease: Optional[LeaseHandle]):
        self.output, self.run_id, self.lookback, self.lease = output, run_id, lookback, lease
        self.windows = metrics.counter("state_windows_committed")

    def process(self, grouped, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, parts = grouped
        unit = window_unit(self.run_id, win, pane)
        now = datetime.now(timezone.utc)
        if self.lease is not None:
            self.lease.lease().check()  # retried until the job is stopped: it lost the output
        # No marker is opened for a unit: it appears whole at once (seen rows,
        # then feed rows; see transforms/state/__init__.py), so it is
        # readable as soon as it is written, while the job keeps running.
        StateStore(self.output).commit(unit, now, parts[_SEEN], parts[_FEEDS], now, self.lookback,
                                       parts[_CLUSTERS])
        self.windows.inc()
        yield unit


_SEEN, _FEEDS, _CLUSTERS, _WRITTEN = "seen", "feeds", "clusters", "written"


class CommitWindows(beam.PTransform):
    """Streaming: (PCollection[SeenRecord], PCollection[(feed_url, FeedState)],
    PCollection[ClusterRecord]) -> PCollection[str], the committed unit of each window pane.

    Every input, and every PCollection in `after` (the files written), is
    re-windowed into `windowing` (the arrival windows of the output files) and
    grouped together: a window's group fires once the watermark has passed
    its end on every input, so only after the window's files are written.
    The commit is one unit per window pane (`window_unit`), readable at once
    by other runs and jobs; a job that stops mid-window has committed
    nothing of that window (the files of it that it wrote are recovered by
    the next run: transforms.state.recovery).
    """

    def __init__(self, output: str, run_id: str, lookback: timedelta,
                 windowing: beam.PTransform, after: Sequence = (), lease: Optional[LeaseHandle] = None):
        super().__init__()
        self.output, self.run_id, self.lookback, self.lease = output, run_id, lookback, lease
        self.windowing = windowing
        self.after = list(after)

    def expand(self, inputs):
        seen, feeds, clusters = inputs
        written = (tuple(self.after) | "AllWritten" >> beam.Flatten()) if self.after else None
        parts = {_SEEN: seen, _FEEDS: feeds, _CLUSTERS: clusters}
        if written is not None:
            parts[_WRITTEN] = written
        keyed = {
            name: (pcoll
                   | f"Window{name.capitalize()}" >> self.windowing
                   | f"Key{name.capitalize()}" >> beam.Map(lambda v: ("commit", v))
                   .with_output_types(Tuple[str, Any]))
            for name, pcoll in parts.items()
        }
        return (
            keyed
            | "PerWindow" >> beam.CoGroupByKey()
            | "Commit" >> beam.ParDo(_CommitWindowFn(self.output, self.run_id, self.lookback, self.lease))
        )
