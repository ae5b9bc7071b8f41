"""pipeline/dofn_signatures.py: Beam reads each function's signature once
per process, reads the same signature as without the memo, and a run
applies it before it builds its pipeline."""
import functools
import inspect
import types
from collections import Counter

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.transforms import core

from pipeline import dofn_signatures
from pipeline.cli import main
from tests.support.paths import ROOT


@pytest.fixture
def unmemoized(monkeypatch):
    """Beam's own reading in place for the test (a run earlier in this
    process may have memoized it), and put back after it."""
    original = getattr(core.get_signature, "unmemoized", core.get_signature)
    monkeypatch.setattr(core, "get_signature", original)
    return original


class Stamp(beam.DoFn):
    def process(self, element, stamp=beam.DoFn.TimestampParam, *, extra=1):
        yield element, stamp, extra


def plain(a, b=2, *rest, c, **more):
    return a


def test_each_function_is_read_once_and_read_as_beam_reads_it(unmemoized):
    dofn_signatures.memoize()
    read = core.get_signature
    assert read is not unmemoized and read.unmemoized is unmemoized
    assert read(plain) == inspect.signature(plain) and read(plain) is read(plain)
    # A bound method shares its function's reading, without `self`.
    first, second = Stamp().process, Stamp().process
    assert read(first) is read(second) == inspect.signature(first)
    assert list(read(first).parameters) == ["element", "stamp", "extra"]
    assert read(Stamp.process) == inspect.signature(Stamp.process) != read(first)
    dofn_signatures.memoize()
    assert core.get_signature is read


def test_other_callables_go_to_beams_reading_each_time(unmemoized):
    dofn_signatures.memoize()
    read = core.get_signature
    for func in (functools.partial(plain, 1), len, Stamp):
        assert read(func) == unmemoized(func)
        assert read(func) is not read(func)   # not kept: such keys could be unhashable or short-lived


@pytest.mark.slow
def test_a_run_reads_each_functions_signature_once(unmemoized, monkeypatch, tmp_path):
    reads = Counter()

    def counted(func):   # Beam's reading, counted per function
        if isinstance(func, (types.FunctionType, types.MethodType)):
            reads[getattr(func, "__func__", func)] += 1
        return unmemoized(func)

    monkeypatch.setattr(core, "get_signature", counted)
    out = tmp_path / "out"
    assert main(["run", "--feeds", str(ROOT / "seeds" / "feeds.opml"), "--topics",
                 str(ROOT / "seeds" / "topics.yaml"), "--output", str(out),
                 "--runner", "DirectRunner", "--quiet"]) == 0
    assert len(pd.read_parquet(out / "stories")) > 0
    assert len(reads) > 20 and max(reads.values()) == 1, reads.most_common(3)
