"""benchmarks/stage_memory.py: RSS around each stage of one in-process run,
with the process's allocators or the libraries'. No size is asserted."""
import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from transforms.process_memory import ENVIRONMENT, SWITCH

# What an earlier in-process run in this pytest process set is not the
# libraries' defaults: the runs start from an environment without it.
CLEAN = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT and name != SWITCH}

pytestmark = [pytest.mark.bench]


def test_every_stage_of_a_run_is_recorded_and_each_allocator_choice_kept_beside_the_other(tmp_path):
    saved = tmp_path / "stage_memory.json"
    for allocators in ("tuned", "default"):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.stage_memory", "--entries", "400",
                               "--allocators", allocators, "--save", str(saved)],
                              cwd=ROOT, env=CLEAN, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"400 entries, allocators {allocators}" in proc.stdout
    result = json.loads(saved.read_text())
    assert set(result) == {"tuned", "default"}
    assert result["tuned"]["arrow_pool"] == "system" and result["default"]["arrow_pool"] != "system"
    for run in result.values():
        steps = [stage["steps"] for stage in run["stages"]]
        assert any(s.startswith("Fetch, Parse") for s in steps), steps
        assert "ArchiveEntries" in steps and any("DetectLanguage" in s for s in steps), steps
        for stage in run["stages"]:
            assert 0 < stage["before_mb"] <= stage["peak_mb"] and stage["after_mb"] > 0, stage
        assert run["peak_mb"] >= max(stage["peak_mb"] for stage in run["stages"]) > run["start_mb"] > 0


@pytest.mark.parametrize("allocators, env, named", [
    ("default", {"MALLOC_ARENA_MAX": "2"}, "MALLOC_ARENA_MAX"),
    ("tuned", {"MALLOC_ARENA_MAX": "8"}, "MALLOC_ARENA_MAX"),
    ("tuned", {SWITCH: "default"}, SWITCH),
])
def test_allocators_are_not_measured_where_the_environment_already_set_others(tmp_path, allocators, env, named):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.stage_memory", "--entries", "400",
                           "--allocators", allocators, "--save", str(tmp_path / "r.json")],
                          cwd=ROOT, env={**CLEAN, **env}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and named in proc.stderr
    assert not (tmp_path / "r.json").exists()
