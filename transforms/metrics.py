"""The pipeline's counters: one namespace, which the run summary
(pipeline/summary.py) queries; every stage declares its counters here.

A counter is a Beam counter (what Dataflow's console and the run summary
show) that also tells transforms/live_counts.py, so a local run can print
its progress before the job ends (pipeline/progress.py)."""
from apache_beam.metrics import Metrics

from transforms import live_counts

NAMESPACE = "newswatch"


class Counter:
    """A Beam counter in the pipeline's namespace, counted live as well."""

    def __init__(self, name: str):
        self.name = name
        self._beam = Metrics.counter(NAMESPACE, name)

    def inc(self, n: int = 1) -> None:
        self._beam.inc(n)
        live_counts.add(self.name, n)

    def dec(self, n: int = 1) -> None:
        self.inc(-n)


def counter(name: str) -> Counter:
    """A Beam counter in the pipeline's namespace."""
    return Counter(name)


def distribution(name: str):
    """A Beam distribution in the pipeline's namespace."""
    return Metrics.distribution(NAMESPACE, name)
