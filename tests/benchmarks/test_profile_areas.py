"""benchmarks/profile.py's CPU by area: a built-in's time counts where it
was called from, so a regex inside the sketcher is sketching, not "other";
and the feeds a profiled run reads are served from another process."""
import cProfile
import pstats

import pytest

from benchmarks.profile import OTHER, cpu_by_area
from transforms.sketch import shingles

pytestmark = [pytest.mark.bench]


def test_a_builtins_time_goes_to_the_area_of_its_caller():
    text = " ".join(f"word{i % 97} other{i % 31}" for i in range(20_000))
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [shingles(text) for _ in range(5)])
    stats = pstats.Stats(profiler)
    # the regex and str.encode the sketcher calls are built-ins, on their own "other"
    builtins = sum(own for (file_name, _, _), (_, _, own, _, _) in stats.stats.items() if file_name == "~")
    assert builtins > 0
    totals = cpu_by_area(stats)
    assert totals["sketching and clusters"] >= builtins
    assert totals.get(OTHER, 0.0) < 0.2 * totals["sketching and clusters"]
    assert abs(sum(totals.values()) - sum(v[2] for v in stats.stats.values())) < 1e-6


def _function_in(file_name: str, source: str, name: str, namespace: dict):
    """`name` from `source`, compiled as if it lived in `file_name` (the area
    cpu_by_area gives its own time follows the file name)."""
    exec(compile(source, file_name, "exec"), namespace)
    return namespace[name]


def test_a_builtins_time_behind_a_library_function_goes_where_the_work_was_asked():
    # Both areas call re.sub (the library's Python function), which calls the
    # compiled pattern's sub (a built-in). Topic matching asks for all the
    # work in two calls; sketching makes many calls that do next to nothing.
    # re.sub's own time is per call, so shares of it would give the
    # built-in's time to sketching; the time spent under re.sub for each
    # caller gives it to topic matching.
    import re

    namespace = {"re": re, "big": "ab " * 400_000, "small": "a"}
    many_small = _function_in("/x/transforms/sketch_probe.py",
                              "def many_small():\n    for _ in range(10000):\n        re.sub('b', 'c', small)\n",
                              "many_small", namespace)
    few_big = _function_in("/x/transforms/topics/probe.py",
                           "def few_big():\n    for _ in range(2):\n        re.sub('b', 'c', big)\n",
                           "few_big", namespace)
    profiler = cProfile.Profile()
    profiler.runcall(lambda: (many_small(), few_big()))
    stats = pstats.Stats(profiler)
    substitution = sum(own for (file_name, _, name), (_, _, own, _, _) in stats.stats.items()
                       if file_name == "~" and "'sub'" in name)
    totals = cpu_by_area(stats)
    # (the tiny calls spend some time in the built-in too: not all of it is the big calls')
    assert totals["topic matching"] >= 0.5 * substitution, (totals, substitution)
    assert abs(sum(totals.values()) - sum(v[2] for v in stats.stats.values())) < 1e-6


def test_a_recursive_library_functions_time_goes_to_its_outer_callers():
    # copy.deepcopy calls itself once per level of the value: however deep,
    # the time counts for the area that asked for the copy.
    import copy

    namespace = {"copy": copy}
    deep = _function_in("/x/transforms/sketch_probe.py",
                        "def deep():\n    for _ in range(3000):\n        copy.deepcopy([[[[[[[[1]]]]]]]])\n",
                        "deep", namespace)
    profiler = cProfile.Profile()
    profiler.runcall(deep)
    totals = cpu_by_area(pstats.Stats(profiler))
    assert totals.get(OTHER, 0.0) < 0.1 * totals["sketching and clusters"], totals



@pytest.mark.integration
def test_a_profiled_run_reads_feeds_served_by_another_process(monkeypatch):
    # cProfile's clock is the wall clock: a feed server in the profiled
    # process would count its threads' time for the calls that let the
    # interpreter go.
    import os
    import urllib.parse

    import pipeline.cli
    from benchmarks import profile
    from tests.support.feedserver import fetch_direct, listening_ports

    seen = {}

    def newswatch(argv):
        with open(argv[argv.index("--feeds") + 1]) as handle:
            urls = handle.read().split()
        seen["urls"] = len(urls)
        seen["read"] = fetch_direct(urls[0]).startswith(b"<")
        seen["port"] = urllib.parse.urlsplit(urls[0]).port
        seen["ours"] = listening_ports(os.getpid())
        return 1   # no run: profile.main stops after it

    monkeypatch.setattr(pipeline.cli, "main", newswatch)
    assert profile.main(["--entries", "100", "--top", "0"]) == 1
    assert seen["urls"] > 0 and seen["read"]
    assert seen["port"] not in seen["ours"], seen
