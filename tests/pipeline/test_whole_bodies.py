"""Whole runs over bodies that are not whole: a feed whose body is cut short is
one `connection` dead letter with no story of it written, and the next run
fetches it in full (a 200, not a 304 on the half's ETag) and writes every
story; a two-member gzip body gives all its entries; a FIFO, a directory
and a device in the feed list are dead letters and the run goes on. Real
HTTP on 127.0.0.1, real Parquet read back with pandas."""
import os

import pandas as pd
import pytest

from tests.support.faultserver import (TOPIC, cut_short, gzip_members, halves, numbered_feed,
                                       without_last_chunk)
from tests.support.sample import run
from tests.support.watchdog import returns_within

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ETAG = '"whole-v1"'


@pytest.fixture
def topics(tmp_path):
    path = tmp_path / "topics.yaml"
    path.write_text(f"topics:\n  - name: all\n    query: {TOPIC}\n")
    return path


def read(out, kind):
    path = out / kind
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["feed_url", "run_id"])


def feed_list(tmp_path, *locations):
    path = tmp_path / "feeds.txt"
    path.write_text("".join(f"{location}\n" for location in locations))
    return path


@pytest.mark.parametrize("fault, detail", [
    (cut_short, "connection: body cut short: "),
    (without_last_chunk, "connection: body cut short: chunked body ended after "),
], ids=["content_length", "chunked"])
def test_a_body_cut_short_is_lost_whole_then_fetched_in_full_on_the_next_run(
        fault, detail, feed_server, tmp_path, topics, capsys):
    body = numbered_feed("/news.xml", 12)
    url = feed_server.url("/news.xml")
    feeds, out = feed_list(tmp_path, url), tmp_path / "out"

    feed_server.handle("/news.xml", fault(body, ETAG))
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    first = capsys.readouterr().out

    errors = read(out, "errors")
    assert list(zip(errors.stage, errors.feed_url)) == [("fetch", url)]
    assert errors.reason[0].startswith(detail)
    assert len(read(out, "stories")) == 0  # not the 6 stories of the half that came
    (fetch_row,) = read(out, "fetches").itertuples()
    assert fetch_row.error == errors.reason[0] and fetch_row.entry_count == 0
    assert "reconcile: dead letters 1 = failed feeds 1 + failed entries 0 -> ok" in first

    # The server now sends the whole body under the same ETag, and would
    # answer 304 to a request that sent that ETag back.
    feed_server.add("/news.xml", body, etag=ETAG)
    assert run(feeds, topics, out, "--run-id", "r2") == 0

    second_request = feed_server.requests_for("/news.xml")[1]
    assert "if-none-match" not in second_request.headers
    fetches = read(out, "fetches")
    (again,) = fetches[fetches.run_id == "r2"].itertuples()
    assert (again.status, again.entry_count) == (200, 12) and pd.isna(again.error)
    stories = read(out, "stories")
    assert sorted(stories.url) == sorted(f"https://faults.example.org/news.xml/{i}" for i in range(1, 13))
    assert set(stories.run_id) == {"r2"}

    # The whole answer's ETag is remembered: the run after that costs a 304.
    assert run(feeds, topics, out, "--run-id", "r3") == 0
    assert feed_server.requests_for("/news.xml")[2].headers["if-none-match"] == ETAG
    fetches = read(out, "fetches")
    assert list(fetches[fetches.run_id == "r3"].status) == [304]


def test_a_gzip_body_of_two_members_gives_every_entry(feed_server, tmp_path, topics, capsys):
    body = numbered_feed("/two.xml", 14)
    feed_server.add("/two.xml", gzip_members(*halves(body)), headers={"Content-Encoding": "gzip"})
    local = tmp_path / "local.xml.gz"
    local.write_bytes(gzip_members(*halves(numbered_feed("/local.xml", 14))))
    out = tmp_path / "out"

    assert run(feed_list(tmp_path, feed_server.url("/two.xml"), local), topics, out) == 0
    printed = capsys.readouterr().out

    fetches = read(out, "fetches").set_index("feed_url")
    assert fetches.loc[feed_server.url("/two.xml"), "entry_count"] == 14
    assert fetches.loc[str(local), "entry_count"] == 14
    assert len(read(out, "stories")) == 28 and len(read(out, "errors")) == 0
    assert "reconcile: entries 28 = duplicates 0 + seen before 0 + unmatched 0 + written 28" in printed


def test_special_files_in_the_feed_list_are_dead_letters_and_the_run_goes_on(tmp_path, topics):
    fifo, folder, regular = tmp_path / "pipe.xml", tmp_path / "folder.xml", tmp_path / "feed.xml"
    os.mkfifo(fifo)
    folder.mkdir()
    regular.write_bytes(numbered_feed("/regular.xml", 3))
    feeds = feed_list(tmp_path, fifo, folder, "/dev/null", regular)
    out = tmp_path / "out"

    code = returns_within(180, lambda: run(feeds, topics, out), fifo)

    assert code == 0
    errors = read(out, "errors").set_index("feed_url")
    assert errors.loc[str(fifo), "reason"] == f"bad_url: {fifo} is a FIFO (named pipe), not a regular file"
    assert errors.loc[str(folder), "reason"] == f"bad_url: {folder} is a directory, not a regular file"
    assert errors.loc["/dev/null", "reason"] == "bad_url: /dev/null is a character device, not a regular file"
    assert set(errors.stage) == {"fetch"} and len(errors) == 3
    assert len(read(out, "stories")) == 3


