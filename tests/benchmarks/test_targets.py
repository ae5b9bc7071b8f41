"""benchmarks.run.targets: issue 17's targets, judged from one run's results."""
from benchmarks.run import Result, targets

MB = 1_000_000


def result(contestant, cpu_s, wall_s=None, rss_mb=500, machine=None):
    return Result(size=100_000, contestant=contestant, entries=100_000, rows=10, wall_s=wall_s or cpu_s,
                  cpu_s=cpu_s, peak_rss=rss_mb * MB, machine_speedup=machine)


def judged(results):
    return {label: (value, verdict) for label, value, _, verdict in targets(results, None, None)}


def test_the_pipeline_must_beat_both_plain_loops():
    rows = judged([result("baseline", 200), result("baseline-fast", 120), result("pipeline", 110, rss_mb=650)])
    assert rows["pipeline CPU per entry / plain loop with feedparser"] == ("0.55x", "met")
    assert rows["pipeline CPU per entry / plain loop with the fast parser"] == ("0.92x", "met")
    assert rows["peak RSS, pipeline, in-process"][1] == "met"
    rows = judged([result("baseline", 200), result("baseline-fast", 80), result("pipeline", 130, rss_mb=750)])
    assert rows["pipeline CPU per entry / plain loop with feedparser"] == ("0.65x", "NOT MET")
    assert rows["pipeline CPU per entry / plain loop with the fast parser"] == ("1.62x", "NOT MET")
    assert rows["peak RSS, pipeline, in-process"][1] == "NOT MET"        # 700 MB in-process


def test_two_workers_are_judged_only_where_the_machine_gives_1_7x():
    pipe = result("pipeline", 100, wall_s=100)
    slow = judged([pipe, result("pipeline-mp", 120, wall_s=80, rss_mb=1400, machine=1.8)])
    assert slow["multi_processing x2 / in-process throughput"][1].startswith("NOT MET")
    assert slow["peak RSS, pipeline, multi_processing x2"][1] == "met"   # 1.5 GB with two workers
    fast = judged([pipe, result("pipeline-mp", 120, wall_s=60, machine=1.8)])
    assert fast["multi_processing x2 / in-process throughput"][1].startswith("met")
    busy = judged([pipe, result("pipeline-mp", 120, wall_s=80, machine=1.5)])
    assert busy["multi_processing x2 / in-process throughput"][1].startswith("not judged")


def test_the_two_workers_line_splits_the_shortfall_into_added_cpu_and_idle_workers():
    from benchmarks.run import two_workers_line

    one = result("pipeline", 188, wall_s=189)
    two = result("pipeline-mp", 236, wall_s=141)
    two.cpu_by_role = {"main": 16.0, "worker 1": 115.0, "worker 2": 105.0}
    line = two_workers_line([one, two])
    assert "CPU 1.26x the in-process run's 188 s" in line
    assert "(main process 16 s, workers 115 + 105 s)" in line
    assert "workers busy 78% of the 141 s wall" in line and "feed server" not in line
    one.harness_cpu_s, two.harness_cpu_s = 4.3, 4.5   # the benchmark's feed server shares the cores
    assert line + ("; the benchmark's own process (feed server, sampling) took 4.5 s of CPU during it "
                   "(4.3 s during the in-process run)") == two_workers_line([one, two])
    two.cpu_by_role = {"main": 236.0}      # no worker processes seen: no line
    assert two_workers_line([one, two]) is None
    assert two_workers_line([one]) is None


def test_with_repeats_the_workers_line_takes_cpu_by_process_and_wall_from_one_repeat():
    # Three repeats of the two-worker run; the last on a loaded machine. The
    # line must use the repeat of median wall time for both its CPU by
    # process and its wall time, never one repeat's CPU over another's wall.
    from benchmarks.measure import Measurement
    from benchmarks.run import _summarise, two_workers_line
    from benchmarks.verify import Verdict

    def repeat(wall, main, w1, w2):
        m = Measurement(wall_s=wall, cpu_s=main + w1 + w2, peak_rss=MB, peak_processes=3,
                        cpu_by_role={"main": main, "worker 1": w1, "worker 2": w2},
                        returncode=0, stdout="", stderr="")
        return (m, Verdict(rows=10), 100_000, wall, main + w1 + w2)

    two = _summarise(100_000, "pipeline-mp", None, [repeat(141, 16, 115, 105), repeat(120, 14, 100, 98),
                                                     repeat(200, 20, 150, 130)])
    assert two.wall_s == 141 and two.roles_wall_s == 141
    line = two_workers_line([result("pipeline", 188, wall_s=189), two])
    assert "(main process 16 s, workers 115 + 105 s)" in line
    assert "workers busy 78% of the 141 s wall" in line
