"""The whole batch run, as a user starts it: feeds over real HTTP on 127.0.0.1,
the `newswatch run` command, Parquet read back with pandas."""
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.support.paths import ROOT
from tests.support.sample import ASIA, TOPICS, WIRE, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

@pytest.fixture
def world(feed_server, tmp_path):
    """Five feeds: gzip RSS, slow Atom, a 404, an HTML page, plus the list and topics."""
    feed_server.add("/wire.xml", WIRE, gzip=True, headers={"Content-Type": "application/rss+xml"})
    feed_server.add("/asia.atom", ASIA, delay_s=0.5, headers={"Content-Type": "application/atom+xml"})
    feed_server.add("/gone.xml", "not here", status=404)
    feed_server.add("/page.html", "<html><body><h1>Subscribe!</h1></body></html>",
                    headers={"Content-Type": "text/html"})
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("# test feeds\n" + "\n".join(
        feed_server.url(p) for p in ("/wire.xml", "/asia.atom", "/gone.xml", "/page.html")) + "\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text(TOPICS)
    return feeds, topics, tmp_path / "out"


def comparable(df):
    return (df.drop(columns=["run_id", "fetched_at", "date"]).sort_values("story_id")
            .reset_index(drop=True).map(lambda v: list(v) if hasattr(v, "tolist") else v))


def test_feeds_in_deduplicated_matched_tagged_stories_out(world, capsys, feed_server):
    feeds, topics, out = world
    assert run(feeds, topics, out, "--run-id", "e2e-1") == 0
    summary = capsys.readouterr().out

    stories = pd.read_parquet(out / "stories")
    assert sorted(stories["title"]) == ["North Korea test-fires ballistic missile",
                                        "Pyongyang says hotline will reopen next month",
                                        "북한, 동해상으로 탄도미사일 발사"]
    by_title = stories.set_index("title")
    missile = by_title.loc["North Korea test-fires ballistic missile"]
    # the earliest copy wins, under its canonical URL
    assert missile["canonical_url"] == "https://wire.example.org/world/nk-missile"
    assert list(missile["topics"]) == ["dprk", "missile_tests"]
    assert list(missile["matched_terms"]) == ["North Korea", "fired", "missile", "test", "test fires"]
    # why it matched: each term with its field and offset in that field's text
    texts = {"title": missile.name, "summary": missile["summary"], "content": missile["content"]}
    explained = [dict(m) for m in missile["matches"]]
    assert {"topic": "missile_tests", "term": "test fires", "field": "title",
            "offset": missile.name.index("test-fires")} in explained
    assert {"topic": "dprk", "term": "North Korea", "field": "title", "offset": 0} in explained
    for m in explained:
        assert texts[m["field"]][m["offset"]:].lower().startswith(m["term"].lower().split()[0])
    assert stories["topics_version"].nunique() == 1 and len(stories["topics_version"][0]) == 16
    assert missile["language"] == "en" and str(missile["date"]) == "2021-09-28"
    korean = by_title.loc["북한, 동해상으로 탄도미사일 발사"]
    assert korean["language"] == "ko" and list(korean["topics"]) == ["dprk", "missile_tests"]
    hotline = by_title.loc["Pyongyang says hotline will reopen next month"]
    assert list(hotline["topics"]) == ["dprk"]
    # no date in the feed: partitioned by the fetch date
    assert pd.isna(hotline["published_at"])
    assert str(hotline["date"]) == hotline["fetched_at"].strftime("%Y-%m-%d")
    assert str(stories["published_at"].dtype) == "datetime64[us, UTC]"
    assert set(stories["run_id"]) == {"e2e-1"}

    fetches = pd.read_parquet(out / "fetches").set_index("feed_url")
    assert len(fetches) == 4
    assert fetches.loc[feed_server.url("/gone.xml"), "status"] == 404
    assert fetches.loc[feed_server.url("/wire.xml"), "entry_count"] == 3
    assert fetches.loc[feed_server.url("/page.html"), "error"].startswith("not_a_feed")
    assert pd.isna(fetches.loc[feed_server.url("/asia.atom"), "error"])

    errors = pd.read_parquet(out / "errors")
    assert sorted(errors["stage"]) == ["fetch", "parse"]
    assert set(errors["feed_url"]) == {feed_server.url("/gone.xml"), feed_server.url("/page.html")}
    assert "Subscribe!" in errors.set_index("stage").loc["parse", "excerpt"]

    # the printed counters reconcile: 6 entries = 2 duplicates + 1 unmatched + 3 written
    assert ("reconcile: entries 6 = duplicates 2 + seen before 0 + unmatched 1 + written 3 + "
            "dead-lettered 0 -> ok") in summary
    assert "topic dprk" in summary and "language ko" in summary
    # every file is final: no temporary names left behind
    assert [n for _, _, files in os.walk(out) for n in files if n.startswith(".")] == [".lease.json.lock"]


def test_same_input_same_rows(world, tmp_path):
    feeds, topics, out = world
    assert run(feeds, topics, out, "--run-id", "first") == 0
    assert run(feeds, topics, tmp_path / "elsewhere", "--run-id", "second") == 0
    first = pd.read_parquet(out / "stories")
    second = pd.read_parquet(tmp_path / "elsewhere" / "stories")
    assert len(first) == 3 and set(second.run_id) == {"second"}
    pd.testing.assert_frame_equal(comparable(first), comparable(second))


def test_parser_feedparser_gives_the_same_rows_and_the_fetch_log_names_the_parser(world, tmp_path):
    feeds, topics, out = world
    assert run(feeds, topics, out, "--run-id", "auto") == 0
    assert run(feeds, topics, tmp_path / "fp", "--run-id", "fp", "--parser", "feedparser") == 0
    pd.testing.assert_frame_equal(comparable(pd.read_parquet(out / "stories")).drop(columns=["cluster_id"]),
                                  comparable(pd.read_parquet(tmp_path / "fp" / "stories")).drop(columns=["cluster_id"]))
    parsers = {}
    for name, folder in (("auto", out), ("feedparser", tmp_path / "fp")):
        fetches = pd.read_parquet(folder / "fetches")
        parsers[name] = dict(zip(fetches.feed_url.str.rsplit("/", n=1).str[1], fetches.parser.fillna("-")))
    # the 404 and the HTML page: nothing was parsed
    assert parsers["auto"] == {"wire.xml": "fast", "asia.atom": "fast", "gone.xml": "-", "page.html": "-"}
    assert parsers["feedparser"] == {"wire.xml": "feedparser", "asia.atom": "feedparser",
                                     "gone.xml": "-", "page.html": "-"}


def test_multi_processing_gives_the_same_rows(world, tmp_path):
    feeds, topics, out = world
    assert run(feeds, topics, tmp_path / "inproc", "--run-id", "inproc") == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics", str(topics),
         "--output", str(out), "--run-id", "multi", "--runner", "DirectRunner",
         "--allow-private-addresses",
         "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-> ok" in proc.stdout
    pd.testing.assert_frame_equal(comparable(pd.read_parquet(tmp_path / "inproc" / "stories")),
                                  comparable(pd.read_parquet(out / "stories")))


BAD_RULES = {
    "empty_query": "query: ''",
    "unbalanced_quote": "query: '\"North Korea'",
    "near_without_operand": "query: missile NEAR/5",
    "unknown_field": "query: headline:missile",
    "self_reference": "query: topic:dprk OR DPRK",
    "control_character": 'query: "DPRK\\x07"',
}


@pytest.mark.parametrize("case", ["bad_query", "missing_topics", "missing_feeds", "unwritable_output",
                                  "unknown_option", "unknown_parser", "empty_feed_list", *BAD_RULES])
def test_configuration_errors_stop_before_any_fetch(world, feed_server, capsys, case, tmp_path):
    feeds, topics, out = world
    args = {"feeds": feeds, "topics": topics, "out": out}
    extra = []
    if case == "bad_query":
        topics.write_text("topics:\n  - name: dprk\n    query: '(North Korea'\n")
    elif case == "missing_topics":
        args["topics"] = tmp_path / "nope.yaml"
    elif case == "missing_feeds":
        args["feeds"] = tmp_path / "nope.txt"
    elif case == "unwritable_output":
        (tmp_path / "afile").write_text("x")
        args["out"] = tmp_path / "afile" / "out"
    elif case == "unknown_option":
        extra = ["--runer", "DirectRunner"]
    elif case == "unknown_parser":
        extra = ["--parser", "lxml"]
    elif case == "empty_feed_list":
        feeds.write_text("# nothing yet\n")
    elif case in BAD_RULES:
        topics.write_text(f"topics:\n  - name: dprk\n    {BAD_RULES[case]}\n")
    code = run(args["feeds"], args["topics"], args["out"], *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("newswatch: error:"), err
    assert feed_server.requests == []
    if case == "bad_query":
        # the column of the "(" inside `    query: '(North Korea'`
        assert err[0].endswith("line 3, column 13: topic 'dprk': unbalanced parenthesis")
    if case in BAD_RULES:
        assert ", line 3, column " in err[0] and ": topic 'dprk': " in err[0]
    if case == "unknown_parser":
        assert "--parser" in err[0] and "'auto', 'feedparser'" in err[0]


def test_a_ten_thousand_term_topic_runs(world, capsys):
    feeds, topics, out = world
    many = " OR ".join(f"term{i}" for i in range(10_000))
    topics.write_text(TOPICS + f"  - name: many\n    query: '{many} OR Pyongyang'\n")
    assert run(feeds, topics, out, "--run-id", "big") == 0
    stories = pd.read_parquet(out / "stories")
    hotline = stories.set_index("title").loc["Pyongyang says hotline will reopen next month"]
    assert list(hotline["topics"]) == ["dprk", "many"]
    assert "-> ok" in capsys.readouterr().out
