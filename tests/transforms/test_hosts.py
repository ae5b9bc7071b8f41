"""Per-host politeness rules and the streaming fetch's keys (pure, no Beam)."""
from datetime import datetime, timedelta, timezone

from transforms.feedstate import Politeness
from transforms.hosts import (HostPoliteness, HostScheduler, HostState, after_answer, host_of, is_open,
                              key_count, key_of)
from transforms.poll import bucket_feeds
from transforms.records import FeedSource

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = Politeness(base_delay_s=60, max_delay_s=3600)


# -- keys ---------------------------------------------------------------------
def test_the_number_of_keys_grows_with_the_feed_list():
    assert key_count(0) == key_count(10) == key_count(256) == 4
    assert key_count(2_000) == 32
    assert key_count(50_000) == 782
    assert key_count(100, feeds_per_key=10) == 10
    # a feed list on as many hosts as feeds (the usual case): one key per 64 feeds
    assert [key_count(n, hosts=n) for n in (100, 2_000, 50_000)] == [4, 32, 782]


def test_a_key_gets_enough_hosts_to_keep_its_pool_busy():
    # 2,000 feeds on 50 hosts: 4 keys of ~12 hosts, not 32 keys of 1-2 hosts
    assert key_count(2_000, hosts=50) == 4
    assert key_count(50_000, hosts=1_600) == 100


def test_every_feed_of_a_host_is_in_one_key_and_keys_are_spread():
    feeds = [FeedSource(f"https://site{h}.example.org/feed/{n}.xml") for h in range(300) for n in range(10)]
    groups = bucket_feeds(feeds)
    assert len(groups) > 0.8 * key_count(len(feeds), 300)   # 3,000 feeds on 300 hosts -> 19 keys
    key_by_host = {}
    for key, members in groups:
        for feed in members:
            assert key_by_host.setdefault(host_of(feed.url), key) == key
    assert sum(len(members) for _, members in groups) == len(feeds)
    assert bucket_feeds(list(reversed(feeds))) == groups          # stable, whatever the order


def test_host_of():
    assert host_of("https://News.Example.ORG:8443/rss") == "news.example.org"
    assert host_of("/data/feed.xml") == host_of("gs://bucket/feed.xml") == ""
    assert key_of("news.example.org", 7) == key_of("news.example.org", 7)


# -- host backoff ---------------------------------------------------------------
def test_a_429_with_retry_after_closes_the_host_until_then():
    after = after_answer(HostState(), 429, "http_status: 429", "120", NOW, POLICY)
    assert after.backoff_until == NOW + timedelta(seconds=120) and after.throttles == 1
    assert not is_open(after, NOW + timedelta(seconds=119)) and is_open(after, NOW + timedelta(seconds=120))


def test_a_503_without_retry_after_closes_the_host_with_a_doubling_backoff():
    once = after_answer(HostState(), 503, "http_status: 503", None, NOW, POLICY)
    assert once.backoff_until == NOW + timedelta(seconds=60)
    twice = after_answer(once, 503, "http_status: 503", None, NOW + timedelta(seconds=60), POLICY)
    assert twice.backoff_until == NOW + timedelta(seconds=180) and twice.throttles == 2
    capped = after_answer(HostState(throttles=30), 429, "http_status: 429", "999999", NOW, POLICY)
    assert capped.backoff_until == NOW + timedelta(seconds=3600)


def test_a_later_refusal_never_shortens_the_backoff_and_a_good_answer_ends_the_run():
    long = after_answer(HostState(), 429, "http_status: 429", "600", NOW, POLICY)
    assert after_answer(long, 429, "http_status: 429", "5", NOW, POLICY).backoff_until == long.backoff_until
    ok = after_answer(HostState(throttles=3), 200, None, None, NOW, POLICY)
    assert ok.throttles == 0
    # a timeout or a 500 is the feed's business, not the host's
    assert after_answer(HostState(), None, "timeout: read", None, NOW, POLICY) == HostState()
    assert is_open(after_answer(HostState(), 500, "http_status: 500", None, NOW, POLICY), NOW)


# -- scheduling ---------------------------------------------------------------------
def run_schedule(items_by_host, politeness, threads=32, duration=lambda host, item: 1.0):
    """Simulates fetches on a clock: returns [(host, item, start, end)]."""
    scheduler = HostScheduler(items_by_host, politeness)
    now, running, log = 0.0, [], []
    while scheduler.pending or running:
        starts, wake = scheduler.start(now, threads - len(running))
        for host, item in starts:
            running.append((now + duration(host, item), host, item, now))
        next_end = min((r[0] for r in running), default=None)
        now = min(t for t in (next_end, wake) if t is not None)
        for end, host, item, start in [r for r in running if r[0] <= now]:
            running.remove((end, host, item, start))
            scheduler.finished(host)
            log.append((host, item, start, end))
    return log


def test_one_host_gets_at_most_n_in_flight_and_starts_a_gap_apart():
    log = run_schedule({"a": list(range(10))}, HostPoliteness(concurrency=2, gap_s=0.3))
    starts = sorted(start for _, _, start, _ in log)
    assert all(b - a >= 0.3 - 1e-9 for a, b in zip(starts, starts[1:]))
    for t in starts:
        assert sum(1 for _, _, s, e in log if s <= t < e) <= 2
    assert len(log) == 10


def test_hosts_take_turns_so_a_big_host_does_not_hold_up_the_others():
    log = run_schedule({"big": list(range(50)), "small": [0], "other": [0]},
                       HostPoliteness(concurrency=2, gap_s=1.0))
    started = {host: start for host, _, start, _ in log if host != "big"}
    assert started == {"small": 0.0, "other": 0.0}


def test_threads_bound_the_total_and_paths_have_no_host_limits():
    log = run_schedule({"": list(range(8))}, HostPoliteness(concurrency=1, gap_s=5.0), threads=4)
    assert sorted(start for *_, start, _ in log) == [0.0] * 4 + [1.0] * 4


def test_dropping_a_host_takes_its_waiting_feeds_out():
    scheduler = HostScheduler({"a": [1, 2, 3], "b": [4]}, HostPoliteness(concurrency=1, gap_s=0))
    starts, _ = scheduler.start(0.0, 10)
    assert sorted(starts) == [("a", 1), ("b", 4)]
    assert scheduler.drop("a") == [2, 3] and scheduler.pending == 0


def test_a_gap_counts_from_the_last_start_of_an_earlier_tick():
    scheduler = HostScheduler({"a": [1]}, HostPoliteness(concurrency=2, gap_s=1.0), {"a": 10.0})
    assert scheduler.start(10.5, 4) == ([], 11.0)
    assert scheduler.start(11.0, 4) == ([("a", 1)], None)
