"""Hostile servers and feeds (tests/faultserver.py): each fault is survived and
recorded exactly once, and nothing secret or internal reaches the output.

The first half runs each fault through the pure fetch and parse functions; the
second runs `newswatch run` over all of them at once and reads the Parquet back.
"""
import concurrent.futures
import re

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from tests.support.faultserver import (EXTREME_DATES, FAULT_CLI_ARGS, FAULT_SETTINGS, FAULTS,
                               FAULTS_BY_NAME, TOPIC, FaultServer, Secrets)
from transforms.fetch import fetch_feed
from transforms.html_text import FIELD_CAPS
from transforms.parse import parse_fetch
from transforms.records import FeedSource

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    with Secrets(tmp_path_factory.mktemp("secrets")) as s:
        yield s


@pytest.fixture(scope="module")
def fault_server(secrets):
    with FaultServer(secrets) as server:
        yield server


@pytest.fixture(scope="module")
def outcomes(fault_server):
    """fault name -> ParsedFeed, all fetched at once (the slow faults overlap)."""
    def one(fault):
        return parse_fetch(fetch_feed(FeedSource(fault_server.url(fault.path)), FAULT_SETTINGS), "r")
    with concurrent.futures.ThreadPoolExecutor(len(FAULTS)) as pool:
        return dict(zip(FAULTS_BY_NAME, pool.map(one, FAULTS)))


def category(error):
    return error.split(":", 1)[0] if isinstance(error, str) else None


# The feeds that parse, but not cleanly: the category of their parse warning.
PARSE_WARNINGS = {"wrong_charset": "encoding", "missing_charset": "encoding",
                  "control_characters": "malformed", "invalid_character_references": "bad_references"}


# --- each fault, through the pure fetch and parse functions -------------------


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_each_fault_is_recorded_exactly_once(fault, outcomes, fault_server):
    parsed = outcomes[fault.name]
    if fault.stage:  # the feed is lost: one dead letter, and the fetch row says why
        assert parsed.stories == [] and not parsed.ok
        (letter,) = parsed.dead_letters
        assert (letter.stage, category(letter.reason)) == (fault.stage, fault.category)
        assert letter.feed_url == fault_server.url(fault.path)
        assert parsed.log.error.startswith(letter.reason[:200])
        assert parsed.log.error_category == letter.error_category == fault.category
        assert parsed.log.parse_warning is None
    else:  # the feed parses: its stories, and no dead letter
        assert parsed.ok and parsed.log.error is None and parsed.dead_letters == []
        assert parsed.log.error_category is None
        warning = PARSE_WARNINGS.get(fault.name)
        assert parsed.log.parse_warning is (warning is not None)
        assert category(parsed.log.parse_warning_detail) == warning
        assert len(parsed.stories) == parsed.log.entry_count == fault.stories
    assert parsed.log.feed_url == fault_server.url(fault.path)


def test_errors_carry_what_an_operator_needs(outcomes):
    def error(name):
        return outcomes[name].log.error

    assert error("status_429_retry_after") == "http_status: 429 Too Many Requests (Retry-After: 120)"
    assert error("status_410") == "http_status: 410 Gone"
    assert error("redirect_to_metadata") == "blocked_address: 169.254.169.254 (cloud metadata address)"
    assert error("redirect_to_private") == "blocked_address: 10.0.0.1 (private)"
    assert error("redirect_to_internal_server") == "blocked_address: 127.0.0.2 (loopback)"
    assert "non-http URL 'file://" in error("redirect_to_file")
    assert "loop" in error("redirect_loop") and "more than 5 redirects" in error("redirect_chain_too_long")
    assert "deadline" in error("trickle_1_byte_per_s")
    assert error("gzip_bomb").startswith("too_large: decoded body exceeds")
    assert "entity 'lol1' refers to other entities" in error("entity_bomb")
    assert "would expand to more than" in error("quadratic_entity_bomb")
    assert "external entity 'xxe' is never resolved" in error("external_entity_file")
    assert error("empty_body") == "not_a_feed: empty body"
    parse_letter = outcomes["html_page"].dead_letters[0]
    assert "Subscribe to our newsletter" in parse_letter.excerpt


def test_no_secret_and_no_internal_response_anywhere(outcomes, secrets):
    everything = repr(outcomes)
    for marker in secrets.markers:
        assert marker not in everything
    assert "root:x:0:0" not in everything
    assert secrets.server.requests == []  # never even connected to


def test_hostile_text_becomes_clean_capped_plain_text(outcomes):
    (ctl,) = outcomes["control_characters"].stories
    for value in (ctl.title, ctl.summary, ctl.url, ctl.guid):
        assert not CONTROL.search(value), repr(value)
    assert ctl.title == "Korea NUL [31m red" and ctl.url == "https://faults.example.org/ctl"

    (scripted,) = outcomes["scripts_in_summary"].stories
    text = " ".join((scripted.title, scripted.summary, scripted.content)).lower()
    for bad in ("<", "script", "alert", "onclick", "onerror", "onmouseover", "javascript", "cookie"):
        assert bad not in text, bad
    assert scripted.summary == "Korea link" and scripted.content == "bold"

    (huge,) = outcomes["title_5mb"].stories
    assert len(huge.title) == FIELD_CAPS["title"] and huge.title.startswith("Korea xxx")
    assert huge.truncated == ("title",)

    (refs,) = outcomes["invalid_character_references"].stories
    assert refs.title.startswith("Korea \ufffd") and refs.title.endswith("end")
    assert not re.search(r"[\ud800-\udfff]", refs.title)

    assert outcomes["wrong_charset"].stories[0].title == "Corée du Nord: Korea"
    assert outcomes["missing_charset"].stories[0].title == "Корея: Korea"


def test_entries_without_title_link_or_date_are_kept(outcomes):
    untitled, unlinked, undated = outcomes["entries_missing_fields"].stories
    assert untitled.title == "" and untitled.summary == "Korea, untitled"
    assert unlinked.url is None and unlinked.guid == "urn:faults:no-link"
    assert undated.published_at is None and undated.title == "Korea without a date"


def test_dates_far_in_the_future_and_before_1970_are_kept_as_given(outcomes):
    got = [s.published_at.isoformat() for s in outcomes["extreme_dates"].stories]
    assert got == [iso for _, iso in EXTREME_DATES]


# --- the whole run over every fault -------------------------------------------


def read(out, kind):
    return pd.read_parquet(out / kind)


def string_cells(frame):
    for column in frame.columns:
        for value in frame[column]:
            if isinstance(value, str):
                yield value
            elif hasattr(value, "tolist") and not np.isscalar(value):   # list columns
                yield from (v for v in value.tolist() if isinstance(v, str))


def test_a_run_over_every_fault_completes_records_each_once_and_reconciles(
        fault_server, secrets, tmp_path, capsys):
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(fault_server.feed_list())
    topics = tmp_path / "topics.yaml"
    topics.write_text(f"topics:\n  - name: all\n    query: {TOPIC}\n")
    out = tmp_path / "out"

    code = main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--run-id", "faults", "--runner", "DirectRunner", *FAULT_CLI_ARGS])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]

    url_of = {fault_server.url(f.path): f for f in FAULTS}
    fetches = read(out, "fetches")
    assert sorted(fetches["feed_url"]) == sorted(url_of)  # one row per attempt
    for row in fetches.itertuples():
        assert category(row.error) == url_of[row.feed_url].category, row
        assert (row.error_category if isinstance(row.error_category, str) else None) == \
            url_of[row.feed_url].category, row
    warned = fetches[fetches["parse_warning"].fillna(False)]
    assert sorted(warned["feed_url"]) == sorted(fault_server.url(FAULTS_BY_NAME[n].path) for n in PARSE_WARNINGS)

    errors = read(out, "errors")
    lost = [f for f in FAULTS if f.stage]
    expected = sorted((f.stage, f.category, fault_server.url(f.path)) for f in lost)
    assert sorted(zip(errors["stage"], errors["reason"].map(category), errors["feed_url"])) == expected

    stories = read(out, "stories")
    kept = sum(f.stories for f in FAULTS)
    assert len(stories) == kept and stories["story_id"].is_unique
    assert (stories["title"].str.len() <= FIELD_CAPS["title"]).all()
    assert (stories["summary"].str.len() <= FIELD_CAPS["summary"]).all()
    dates = set(stories["date"].astype(str))
    assert {"9999-12-31", "2999-12-31", "1969-07-20", "1900-01-01", "0001-01-01"} <= dates

    # Nothing from the local disk or the internal server, no control characters, no markup.
    for frame in (stories, fetches, errors):
        for cell in string_cells(frame):
            for marker in secrets.markers:
                assert marker not in cell
            assert "root:x:0:0" not in cell
            assert not CONTROL.search(cell), repr(cell[:80])
    assert secrets.server.requests == []
    for cell in string_cells(stories[["title", "summary", "content"]]):
        assert "<script" not in cell.lower() and "onerror" not in cell.lower()

    lines = printed.out.splitlines()
    failed = sum(f.stage == "fetch" for f in FAULTS)
    n = len(FAULTS)
    assert (f"reconcile: fetch attempts {n} = ok {n - failed} + not modified 0 + failed {failed} -> ok"
            in lines)
    assert f"reconcile: fetch rows {n} = attempts {n} + skipped 0 -> ok" in lines
    assert (f"reconcile: dead letters {len(lost)} = failed feeds {len(lost)} + failed entries 0 -> ok"
            in lines)
    assert (f"reconcile: entries {kept} = duplicates 0 + seen before 0 + unmatched 0 + written {kept} "
            f"+ dead-lettered 0 -> ok") in lines
    assert any(re.fullmatch(r"parse\s+text fields truncated\s+1", line) for line in lines)
