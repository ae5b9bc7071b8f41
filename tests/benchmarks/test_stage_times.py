"""benchmarks/stage_times.py: a run's wall time by fused stage, in-process
and with two workers. No time is asserted (shared machines are noisy)."""
import json
import subprocess
import sys

import pytest

from benchmarks import stage_times
from tests.support.paths import ROOT

# As the FnApiRunner logs two fused stages of a run.
PARSE_STAGE = ("((((((Fetch/Redistribute/ReshufflePerKey/GroupByKey/Read)+(ref_AppliedPTransform_Fetch-"
               "Redistribute-ReshufflePerKey-FlatMap_12))+(ref_AppliedPTransform_Parse-ParseFeeds_20))"
               "+(ref_AppliedPTransform_ArchiveEntries-WriteEntries-ArrowBatches_38))+(ref_AppliedPTransform_"
               "TagTopics-Tag_44))+(ref_AppliedPTransform_Dedup-Identify_48))+(ref_PCollection_PCollection_30/Write)")
WINNERS_STAGE = ("(((ref_PCollection_PCollection_30/Read)+(ref_AppliedPTransform_Dedup-KeepWinners_70))"
                 "+(ref_AppliedPTransform_SeenBefore-Lookup_72))+(ref_AppliedPTransform_KeepMatched-Keep_75)")


def test_a_stage_is_named_by_its_first_transform_and_the_others_fused_into_it():
    assert stage_times.stage_label(PARSE_STAGE) == "Fetch/Redistribute + Parse + ArchiveEntries + TagTopics + Dedup"
    assert stage_times.stage_label(WINNERS_STAGE) == "Dedup/KeepWinners + SeenBefore + KeepMatched"
    assert stage_times._same_stage("Fetch/Redistribute + Parse + Dedup", "Fetch/Redistribute + Dedup + Parse")
    assert not stage_times._same_stage("Dedup/KeepWinners + SeenBefore", "Dedup/KeepWinners + KeepMatched")


@pytest.mark.bench
@pytest.mark.slow
def test_both_modes_are_timed_stage_by_stage(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    proc = subprocess.run([sys.executable, "-c",
                           "import sys; from benchmarks import stage_times, run; "
                           f"stage_times.RESULTS = {str(results)!r}; "
                           "sys.exit(stage_times.main(['--entries', '600', '--write']))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((results / "stage_times.json").read_text())
    modes = summary["modes"]
    assert set(modes) == {"in-process", "two workers"}
    firsts = [s["stage"].split(" + ")[0] for s in summary["stages"]]
    # the graph's stages, in the order the runner ran them
    order = ["Fetch/Redistribute", "ArchiveEntries/WriteEntries", "Dedup/Winners",
             "Dedup/KeepWinners", "Clusters/Together", "CommitState/Once"]
    assert [first for first in firsts if first in order] == order, firsts
    parse = next(s for s in summary["stages"] if s["stage"].startswith("Fetch/Redistribute"))
    assert "Parse" in parse["stage"].split(" + ") and "TagTopics" in parse["stage"].split(" + ")
    assert all(s[mode] >= 0 for s in summary["stages"] for mode in modes)
    assert "the whole run" in proc.stdout and "start-up" in proc.stdout
