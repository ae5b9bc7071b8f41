"""The streaming benchmark's harness (not its timings): a tiny run reports
every field, accounts for every poll, and reads the output's files."""
import pytest

from benchmarks import streaming_bench

pytestmark = [pytest.mark.bench, pytest.mark.integration, pytest.mark.slow]


def test_a_tiny_run_reports_lag_throughput_and_files():
    r = streaming_bench.measure(feeds=20, hosts=4, latency=0.05, interval=3.0, polls=2,
                                host_gap=0.05, multi_processing=False)
    assert r["fetches"] == 40 and r["missed_polls"] == 0
    assert set(r["lag_s"]) == set(r["lag_once_running_s"]) == {"p50", "p95", "max"}
    assert r["lag_s"]["p50"] <= r["lag_s"]["p95"] <= r["lag_s"]["max"]
    # polls due after the first request: none when start-up outlasts a tiny run
    assert 0 <= r["polls_once_running"] <= 40 and r["start_up_s"] > 0
    assert r["lag_s"]["p50"] >= 0 and len(r["lag_max_by_poll_s"]) == 2
    assert r["fetches_per_s"] > 0 and r["max_in_flight_per_host"] <= 2
    assert r["host_gap_s"] == 0.05 and isinstance(r["keeps_up"], bool)
    fetches = r["files"]["fetches"]
    assert fetches["windows"] >= 1 and sum(fetches["files_per_window"]) >= 1
    assert fetches["rows_per_file"]["max"] >= 1
    assert r["files"]["stories"]["rows_per_file"]["max"] >= 1     # each feed's one story
    text = streaming_bench.render(r)
    assert "keeps up:" in text and "lag, every poll" in text and "files/window" in text
