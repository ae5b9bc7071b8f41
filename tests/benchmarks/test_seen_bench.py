"""The seen-index benchmark (benchmarks/seen_lookup.py): state as commits
write it (real story ids), both loads measured in child processes and
checked, and its row and targets in `make bench` (benchmarks/run.py).
No speed or memory is asserted here."""
import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from benchmarks import run, seen_lookup
from transforms.state.store import StateStore

pytestmark = [pytest.mark.bench]


def test_a_benchmark_run_file_is_what_a_commit_writes(tmp_path):
    store = StateStore(str(tmp_path))
    probes = seen_lookup.write_run(store, 3, 1000, np.random.default_rng(1))
    rows = pd.read_parquet(tmp_path / "_state" / "seen" / "run-003.parquet")
    keyed = rows[rows.key.notna()]
    assert len(rows) == 3001 and len(keyed) == 3000 and rows.key.isna().sum() == 1   # + the commit row
    assert keyed.story_id.str.fullmatch(r"[0-9a-f]{32}").all()
    assert keyed.story_id.value_counts().eq(3).all() and keyed.story_id.nunique() == 1000
    assert list(keyed.key) == sorted(keyed.key)                    # sorted by key, as commit() does
    assert len(probes) == 100 and {bytes(p) for p in probes} <= set(keyed.key)
    assert (rows.seen_at == seen_lookup.NOW - timedelta(days=29) + timedelta(hours=60)).all()


@pytest.mark.slow
def test_both_loads_are_measured_and_checked_in_child_processes():
    r = seen_lookup.measure(3200, probes=200)
    assert r["identities"] == 9600 and r["mapped"] and r["parquet"]
    for load in (r["mapped"], r["parquet"]):
        # every story's 3 identities counted once, each remembered probe found, no new key
        assert load["identities"] == 3200 * seen_lookup.KEYS_PER_STORY
        assert load["found"] == load["probes"] == 200
        assert load["index_mb"] * 2**20 == 9600 * 24   # 24 bytes an identity, none held twice
    assert r["load_s"] == r["mapped"]["load_s"] and "set_rss_mb" in r
    text = seen_lookup.render(r)
    assert "digest file mapped" in text and "every file read" in text


def seen_component(stories, peak_mb, load_s):
    load = {"load_s": load_s, "peak_mb": peak_mb}
    return {"stories": stories, "story_us": 30.0, "load_s": load_s, "load_peak_mb": peak_mb,
            "index_mb": 690.0, "mapped": load, "parquet": {"load_s": 9.0, "peak_mb": 1400.0}}


def test_the_seen_row_and_its_targets_in_the_bench_table():
    big = {"seen": seen_component(10_000_000, 400.0, 1.2)}
    (line,) = run._component_lines(big)
    assert re.search(r"index of 10,000,000 stories .* loaded in 1\.2 s, peak RSS 400 MB", line)
    assert "from Parquet alone 9.0 s, 1,400 MB" in line
    rows = {label: (value, verdict) for label, value, _, verdict in run.targets([], None, None, None, big)}
    assert rows["seen index of 10,000,000 stories: peak RSS of a loading process"] == ("400 MB", "met")
    assert rows["seen index of 10,000,000 stories: load time"] == ("1.2 s", "met")
    slow = {"seen": seen_component(10_000_000, 1500.0, 20.0)}
    assert [v for _, _, _, v in run.targets([], None, None, None, slow)] == ["NOT MET", "NOT MET"]
    assert run.targets([], None, None, None, {"seen": seen_component(1_000_000, 400.0, 1.2)}) == []
    # the large scale measures the seen index at the target size
    assert run.COMPONENT_SCALES["large"]["seen"]["stories"] == seen_lookup.TARGET_STORIES
