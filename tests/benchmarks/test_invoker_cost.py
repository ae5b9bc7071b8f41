"""benchmarks/invoker_cost.py: each kind of step is run and its cost per
element printed. No time is asserted (shared machines are noisy)."""
import re
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_each_kind_of_step_is_measured():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.invoker_cost", "--elements", "2000", "--steps", "2",
                           "--repeat", "1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kinds = re.findall(r"^invoker cost: (fast|window and timestamp|side input) +[\d.]+ CPU s, +-?[\d.]+ us an element",
                       proc.stdout, re.M)
    assert kinds == ["fast", "window and timestamp", "side input"], proc.stdout
    assert re.search(r"^invoker cost: 2,000 elements, 2 steps of each kind, Beam 2\.\d+", proc.stdout, re.M)
