"""The pipeline's counters: one namespace, which the run summary
(pipeline/summary.py) queries; every stage declares its counters here."""
from apache_beam.metrics import Metrics

NAMESPACE = "newswatch"


def counter(name: str):
    """A Beam counter in the pipeline's namespace."""
    return Metrics.counter(NAMESPACE, name)


def distribution(name: str):
    """A Beam distribution in the pipeline's namespace."""
    return Metrics.distribution(NAMESPACE, name)
