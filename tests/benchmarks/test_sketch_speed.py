"""The sketching benchmark (benchmarks/sketch_speed.py) at a tiny scale:
both readings are measured on the same documents and their sketches are
checked equal first. No speed is asserted here."""
import pytest

from benchmarks import sketch_speed
from tests.support.reprints import KOREAN, MUSEUM, SHIP

pytestmark = [pytest.mark.bench]


def test_both_readings_are_measured_on_the_same_documents():
    r = sketch_speed.measure(entries=100, rounds=1)
    generated = r["corpora"]["generated"]
    assert generated["texts"] >= 100 and generated["documents"] >= 2
    assert generated["reference_us"] > 0 and generated["ours_us"] > 0 and generated["ratio"] > 0
    assert 0 < generated["quick_share"] <= 1
    assert r["date"] and "cores" in r["machine"]
    assert f"{generated['texts']:,} texts in {generated['documents']:,} documents" in sketch_speed.describe(r)[0]


def test_the_reference_is_the_sketch_of_each_text_by_the_definitions():
    from tests.transforms.test_sketch import _boilerplate_by_definition, _shingles_from_word_ids
    from transforms import sketch as sk
    texts = [MUSEUM, SHIP, KOREAN, "", MUSEUM.upper(), "short text", SHIP]
    hashes = [_shingles_from_word_ids(t) for t in texts]
    dropped = _boilerplate_by_definition(hashes)
    assert len(dropped) and sketch_speed.reference_document(texts) == [sk.sketch(h, dropped) for h in hashes]


def test_readings_that_disagree_give_no_figure(monkeypatch):
    monkeypatch.setattr(sketch_speed, "reference_document", lambda texts: [None] * len(texts))
    with pytest.raises(SystemExit, match="different sketches"):
        sketch_speed.measure_documents([[MUSEUM, SHIP]], 1)
