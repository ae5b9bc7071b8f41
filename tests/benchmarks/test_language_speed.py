"""The language detection benchmark (benchmarks/language_speed.py) at a tiny
scale: both detectors are measured on the same texts, their answers are
checked equal, the profiles' load is measured in fresh processes, and it has
its rows in `make bench` (benchmarks/run.py). No speed is asserted here."""
import pytest

from benchmarks import language_speed, run

pytestmark = [pytest.mark.bench]


def test_both_detectors_are_measured_on_the_same_texts():
    r = language_speed.measure(entries=100, rounds=1)
    generated = r["corpora"]["generated"]
    assert generated["texts"] >= 100
    assert generated["langdetect_ms"] > 0 and generated["fast_ms"] > 0 and generated["speedup"] > 0
    for detector in ("langdetect", "fast"):
        assert r["load"][detector]["peak_added_mb"] >= r["load"][detector]["added_mb"] > 0 < r["load"][detector]["load_s"]
    assert r["command"] == language_speed.COMMAND
    lines = run._component_lines({"language": r})
    assert any("language detection, generated" in line and "the same answers" in line for line in lines)
    assert "language profiles loaded" in lines[-1]
    assert "language" in run.COMPONENTS


def test_detectors_that_disagree_give_no_figure():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    from transforms.langdetect_fast import FastDetector

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0
    other_seed = FastDetector(seed=1)   # draws differently: different probabilities
    texts = ["North Korea fired a ballistic missile into the sea off its east coast, Seoul said."]
    with pytest.raises(SystemExit, match="disagree"):
        language_speed.measure_texts(texts, 1, factory, other_seed)
