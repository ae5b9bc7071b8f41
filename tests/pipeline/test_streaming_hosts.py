"""Streaming fetch, per host, over real HTTP on loopback "hosts" (127.0.0.2,
127.0.0.3, ...: all of 127.0.0.0/8 is loopback on Linux): a bounded
`newswatch run --streaming` on the DirectRunner, and what the servers saw.

- many feeds on one host: at most --host-concurrency requests at once, starts
  at least --host-gap apart;
- a host that answers 429 to every feed: after the first 429 none of its
  feeds is asked again before the Retry-After has passed;
- a feed that times out on every poll does not delay another host's feed.
"""
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from tests.support.feedserver import FeedServer
from transforms.hosts import key_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEED = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Desk {n}</title>'
        '<item><title>Weather {n}</title><link>https://desk.example.org/{n}</link></item></channel></rss>')


@pytest.fixture
def hosts():
    servers = {}

    def host(address):
        servers[address] = FeedServer(address).start()
        return servers[address]

    yield host
    for server in servers.values():
        server.stop()


def run(tmp_path, urls, *extra, interval=1.0, duration=4.0):
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("".join(url + "\n" for url in urls))
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  - name: dprk\n    query: Pyongyang\n")
    out = tmp_path / "out"
    code = main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--allow-private-addresses", "127.0.0.0/8", "--runner", "DirectRunner",
                 "--streaming", "--poll-interval", str(interval), "--duration", str(duration),
                 "--window", str(interval), *extra])
    assert code == 0
    return out


def run_start(out: Path) -> float:
    """The run's start (its first tick), from the run id in its file names."""
    name = next((out / "fetches").rglob("*.parquet")).name
    run_id = name.split("-w")[0]                      # 20261203T141031784Z
    start = datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    return start.timestamp() + int(run_id[15:18]) / 1000


def test_many_feeds_on_one_host_go_out_n_at_a_time_and_a_gap_apart(hosts, tmp_path):
    server = hosts("127.0.0.2")
    for n in range(8):
        server.add(f"/feed/{n}.xml", FEED.format(n=n), delay_s=0.3)
    out = run(tmp_path, [server.url(f"/feed/{n}.xml") for n in range(8)],
              "--host-concurrency", "2", "--host-gap", "0.2", interval=3.0, duration=6.0)

    assert len(server.spans) == 16                          # every feed, both ticks
    assert server.max_in_flight == 2                        # the limit, and used
    spans = sorted(server.spans, key=lambda s: s[1])
    for _, start, _ in spans:
        assert sum(1 for _, s, e in spans if s <= start < e) <= 2
    starts = [start for _, start, _ in spans]
    # request starts as the server saw them: the gap, less a little network jitter
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 0.2 - 0.03
    assert (pd.read_parquet(out / "fetches")["status"] == 200).sum() == 16


def test_a_host_answering_429_to_every_feed_backs_off_as_a_host(hosts, tmp_path):
    refusing, fine = hosts("127.0.0.2"), hosts("127.0.0.4")
    assert key_of("127.0.0.2", 4) != key_of("127.0.0.4", 4)
    for n in range(5):
        refusing.add(f"/feed/{n}.xml", "slow down", status=429, headers={"Retry-After": "3"})
    fine.add("/feed.xml", FEED.format(n=0))
    out = run(tmp_path, [refusing.url(f"/feed/{n}.xml") for n in range(5)] + [fine.url("/feed.xml")],
              "--host-gap", "0.5", interval=1.0, duration=7.0)

    # one request, then none until the Retry-After (3 s from the tick that asked)
    # has passed, then one: not 5 a tick (a first start-up tick may catch up late)
    assert 2 <= len(refusing.spans) <= 3, refusing.spans
    fetches = pd.read_parquet(out / "fetches")
    on_host = fetches[fetches["feed_url"].str.contains("127.0.0.2")]
    assert (on_host["status"] == 429).sum() == len(refusing.spans)
    # the host's other feeds were skipped until its backoff, the other host's feed never
    deferred = on_host[on_host["skipped_until"].notna()]
    assert len(deferred) == 7 * 5 - len(refusing.spans)
    assert len(fine.spans) == 7


def test_a_feed_that_times_out_does_not_delay_another_hosts_feed(hosts, tmp_path):
    slow, fine = hosts("127.0.0.2"), hosts("127.0.0.4")
    slow.add("/feed.xml", FEED.format(n=1), delay_s=5.0)
    fine.add("/feed.xml", FEED.format(n=2))
    interval, ticks = 2.0, 5
    out = run(tmp_path, [slow.url("/feed.xml"), fine.url("/feed.xml")],
              "--fetch-timeout", "0.5", interval=interval, duration=interval * ticks)

    asked = sorted(s for _, s, _ in fine.spans)
    assert len(asked) == ticks                               # every tick
    # on the polls that asked the slow feed, the other was asked beside it,
    # not after its timeout (0.5 s)
    slow_asked = [r.time for r in slow.requests]             # one clock: time.monotonic()
    fine_asked = [r.time for r in fine.requests]
    for at in slow_asked:
        assert min(abs(at - other) for other in fine_asked) < 0.3, (slow_asked, fine_asked)
    # the slow feed timed out, then backed off (not asked on every poll)
    fetches = pd.read_parquet(out / "fetches")
    slow_rows = fetches[fetches["feed_url"] == slow.url("/feed.xml")]
    assert slow_rows["error"].str.startswith("timeout").sum() == 2 == slow.hits["/feed.xml"]
    assert slow_rows["skipped_until"].notna().sum() == ticks - 2
