"""benchmarks/profile.py's CPU by area: a built-in's time counts where it
was called from, so a regex inside the sketcher is sketching, not "other"."""
import cProfile
import pstats

from benchmarks.profile import OTHER, cpu_by_area
from transforms.sketch import shingles


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
