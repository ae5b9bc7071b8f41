"""Streaming mode end to end: a live feed server on 127.0.0.1 whose feeds
change between polls, a bounded `newswatch run --streaming` on the
DirectRunner, every story written exactly once, every poll accounted for."""
import os
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.cli import main
from tests.support.feedserver import FeedServer, Scripted
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def rss(*items, title="Desk"):
    body = "".join(
        f"<item><title>North Korea {name}</title><link>https://desk.example.org/{link}</link>"
        f"<guid>{guid}</guid><description>Report {name} from Seoul about Pyongyang.</description>"
        f"<pubDate>Tue, 28 Sep 2021 0{n % 10}:00:00 GMT</pubDate></item>"
        for n, (name, link, guid) in enumerate(items))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'


A1, A2, A3, A4 = ("a1", "a1", "g-a1"), ("a2", "a2", "g-a2"), ("a3", "a3", "g-a3"), ("a4", "a4", "g-a4")
A2_NEW_GUID = ("a2", "a2", "g-a2-renumbered")     # same story, the CMS changed its guid


@pytest.fixture
def limited_host():
    """A second host (127.0.0.2): its 429 defers only its own feeds."""
    with FeedServer("127.0.0.2") as server:
        yield server


@pytest.fixture
def live(feed_server, limited_host, tmp_path):
    server = feed_server
    # gains items between polls, re-serves old ones, renumbers a guid; 304 when unchanged
    server.script("/growing.xml", [
        Scripted(rss(A1, A2), etag='"v1"'),
        Scripted(rss(A1, A2, A3), etag='"v2"'),
        Scripted(rss(A2_NEW_GUID, A3, A4), etag='"v3"'),
    ])
    # 429 with Retry-After once, then fine (on a host of its own: a 429 defers a whole host)
    limited_host.script("/limited.xml", [
        Scripted("slow down", status=429, headers={"Retry-After": "2"}),
        Scripted(rss(("b1", "b1", "g-b1"), title="Limited")),
    ])
    # always the same, with a validator: 200 once, then 304s
    server.script("/static.xml", [Scripted(rss(("c1", "c1", "g-c1"), title="Static"), etag='"c"')])
    # flaps between 200 and 500; vanishes (404) and comes back with a new item
    server.script("/flapping.xml", [Scripted(rss(("d1", "d1", "g-d1"))), Scripted("boom", status=500),
                                    Scripted(rss(("d1", "d1", "g-d1"), ("d2", "d2", "g-d2"))),
                                    Scripted("boom", status=500)])
    server.script("/vanishing.xml", [Scripted(rss(("e1", "e1", "g-e1"))), Scripted("gone", status=404),
                                     Scripted(rss(("e1", "e1", "g-e1"), ("e2", "e2", "g-e2")))])
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("\n".join([server.url(p) for p in (
        "/growing.xml", "/static.xml", "/flapping.xml", "/vanishing.xml")] + [limited_host.url("/limited.xml")]) + "\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  - name: dprk\n    query: '\"North Korea\" OR Pyongyang'\n")
    return server, feeds, topics, tmp_path / "out"


def streaming_args(feeds, topics, out, *extra):
    # Every feed but one lives on one host (127.0.0.1): a short gap per host,
    # or the default (1 s) would spread one poll over more than the interval.
    return ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
            "--allow-private-addresses", "127.0.0.1,127.0.0.2", "--runner", "DirectRunner",
            "--streaming", "--poll-interval", "1", "--duration", "4", "--window", "1",
            "--host-gap", "0.02", *extra]


def check_output(server, limited_host, out):
    stories = pd.read_parquet(out / "stories")
    # every story exactly once across all window files; the renumbered guid is not new
    assert stories["story_id"].is_unique
    assert sorted(t.split()[-1] for t in stories["title"]) == ["a1", "a2", "a3", "a4", "b1", "c1",
                                                               "d1", "d2", "e1", "e2"]
    names = [n for _, _, files in os.walk(out / "stories") for n in files]
    assert names and all("-w" in n and not n.startswith(".") for n in names)  # window files

    fetches = pd.read_parquet(out / "fetches")
    by_feed = {url: rows for url, rows in fetches.groupby("feed_url")}
    static = by_feed[server.url("/static.xml")]
    assert list(static["status"].dropna()).count(200) == 1 and (static["status"] == 304).sum() >= 2
    assert (by_feed[server.url("/growing.xml")]["status"] == 304).sum() >= 1
    limited = by_feed[limited_host.url("/limited.xml")]
    assert (limited["status"] == 429).sum() == 1
    assert limited["skipped_until"].notna().sum() >= 1            # the Retry-After skip
    assert sorted(set(by_feed[server.url("/flapping.xml")]["status"].dropna())) == [200, 500]
    assert 404 in set(by_feed[server.url("/vanishing.xml")]["status"])
    # every failure is in fetches/ and errors/
    errors = pd.read_parquet(out / "errors")
    assert len(errors) == fetches["error"].notna().sum() >= 3
    # the server was asked only when a feed was due: no request during the skip
    assert limited_host.hits["/limited.xml"] == (limited["status"].notna()).sum()


def test_bounded_streaming_run_writes_each_story_once(live, limited_host, capsys):
    server, feeds, topics, out = live
    assert main(streaming_args(feeds, topics, out)) == 0
    summary = capsys.readouterr().out
    check_output(server, limited_host, out)
    assert summary.count("-> ok") == 5
    # at the end of the bounded run every remembered identity was released
    forgotten = int(summary.split("streaming: ")[1].split()[0].replace(",", ""))
    assert forgotten >= 10
    # one runs/ row for the whole job, at its end, with its counters
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 1 and runs.loc[0, "mode"] == "streaming" and bool(runs.loc[0, "reconciles"])
    assert runs.loc[0, "rows_written_stories"] == 10 and pd.isna(runs.loc[0, "state_seen_identities"])


def test_bounded_streaming_run_in_multi_processing_mode(live, limited_host):
    server, feeds, topics, out = live
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *streaming_args(
            feeds, topics, out, "--direct_running_mode=multi_processing", "--direct_num_workers=2")],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_output(server, limited_host, out)


@pytest.mark.parametrize("extra,message", [
    (["--duration", "5"], "--duration needs --streaming"),
    (["--streaming", "--every", "60"], "choose one"),
    (["--streaming", "--poll-interval", "0"], "--poll-interval must be a positive"),
    (["--streaming", "--window", "0.5"], "--window must be at least 1 second"),
    (["--streaming=maybe"], "expected true or false"),
])
def test_streaming_options_are_checked_before_any_fetch(live, capsys, extra, message):
    server, feeds, topics, out = live
    code = main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert server.requests == []


# -- long runs: the run summary after many polls ------------------------------
LONG_POLLS, LONG_INTERVAL_S = 40, 0.5


def item(name, about, link=None):
    return (f"<item><title>{about} {name}</title><link>https://desk.example.org/{link or name}</link>"
            f"<guid>g-{name}</guid><description>{about} report {name}.</description>"
            "<pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>")


def feed(*items, title="Desk"):
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
            f'{"".join(items)}</channel></rss>')


def long_scripts():
    """Three feeds over LONG_POLLS polls, as {path: [(items, Scripted), ...]}:
    one gains a matching story every fourth poll (304 in between), one gains a
    story every poll, alternately about Pyongyang and about the weather (no
    validator: 200 every time), one re-publishes the first feed's stories under
    its own guids, a poll late."""
    def versions(make, every, etag):
        out = []
        for poll in range(LONG_POLLS):
            items = make(poll // every + 1)
            out.append((items, Scripted(feed(*(markup for _, markup in items)),
                                        etag=f'"{poll // every}"' if etag else None)))
        return out

    def growing(n):
        return [(f"a{i}", item(f"a{i}", "North Korea")) for i in range(n)]

    def mixed(n):
        return [(f"b{i}" if i % 2 == 0 else None, item(f"b{i}", "Pyongyang" if i % 2 == 0 else "Weather"))
                for i in range(n)]

    def mirror(n):
        return [(f"a{i}", item(f"m{i}", "North Korea", link=f"a{i}")) for i in range(max(n - 1, 1))]

    return {"/growing.xml": versions(growing, 4, True), "/mixed.xml": versions(mixed, 1, False),
            "/mirror.xml": versions(mirror, 4, True)}


def test_long_streaming_run_ends_with_its_summary(feed_server, tmp_path, capsys):
    # ~10 or more polls used to end in "run failed: maximum recursion depth
    # exceeded" when the summary queried the counters (see transforms/poll.py).
    server, scripts = feed_server, long_scripts()
    for path, versions in scripts.items():
        server.script(path, [scripted for _, scripted in versions])
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("".join(server.url(path) + "\n" for path in scripts))
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  - name: dprk\n    query: '\"North Korea\" OR Pyongyang'\n")
    out = tmp_path / "out"

    code = main(streaming_args(feeds, topics, out, "--poll-interval", str(LONG_INTERVAL_S),
                               "--duration", str(LONG_POLLS * LONG_INTERVAL_S)))
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    summary = captured.out
    assert summary.count("-> ok") == 5 and "MISMATCH" not in summary, summary

    # every poll happened and is in the fetch log
    fetches = pd.read_parquet(out / "fetches")
    assert fetches.groupby("feed_url").size().to_dict() == {
        server.url(path): LONG_POLLS for path in scripts}
    assert all(server.hits[path] == LONG_POLLS for path in scripts)
    # every matching story any poll served, each written exactly once
    served = {f"https://desk.example.org/{key}" for versions in scripts.values()
              for items, _ in versions for key, _ in items if key is not None}
    stories = pd.read_parquet(out / "stories")
    assert stories["story_id"].is_unique
    assert len(stories) == len(served) and set(stories["canonical_url"]) == served
    written = int(summary.split("stories written")[1].split()[0].replace(",", ""))
    assert written == len(served)
