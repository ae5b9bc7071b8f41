"""benchmarks/gc_cost.py: runs in each garbage-collector mode (the three of
MODES), in turns, each timing and counting its collections. No time is
asserted (shared machines are noisy)."""
import os
import re
import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from transforms.process_gc import SWITCH

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_each_mode_is_run_and_its_collections_timed():
    env = {name: value for name, value in os.environ.items() if name != SWITCH}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gc_cost", "--entries", "400", "--runs", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    medians = re.findall(r"^median (freeze|freeze700|default) +\(400 entries, 1 runs\): CPU ([\d.]+) s, "
                         r"full collections ([\d.]+) s", proc.stdout, re.M)
    assert [mode for mode, _, _ in medians] == ["freeze", "freeze700", "default"], proc.stdout
    assert all(float(cpu) > float(full) >= 0 for _, cpu, full in medians)
    young = dict(re.findall(r"^(freeze|freeze700|default) +CPU .*passes by generation \[(\d+), \d+, \d+\]$",
                            proc.stdout, re.M))
    assert set(young) == {"freeze", "freeze700", "default"}, proc.stdout
    # freeze700 and default at Python's threshold, freeze at process_gc's, many times larger
    assert int(young["freeze700"]) > 5 * int(young["freeze"]) > 0, proc.stdout
    assert int(young["default"]) > 5 * int(young["freeze"]), proc.stdout
