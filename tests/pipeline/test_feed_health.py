"""Feed health in the data (issue 15, point 5), on real runs over HTTP on
127.0.0.1: the fetch log's error_category, feed_title, parse_warning and
integer status; errors/ and fetches/ readable with plain pandas after a
healthy first run; one row per run in OUT/runs/ with the printed counters;
pipeline.dataset.read_runs; and fetches files of schema 3 and 4 read together."""
import re
import shutil
import socket
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import read_errors, read_fetches, read_runs
from pipeline.summary import ROWS
from tests.support.feedserver import FeedServer
from tests.support.sample import ASIA, TOPICS, WIRE, run
from transforms.schema import ERRORS_SCHEMA, FETCHES_SCHEMA, RUN_COUNTERS, RUNS_SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UTC = timezone.utc

# The wire feed cut off inside its second item, served whole (a matching
# Content-Length): the fetch is fine, the document is not.
TRUNCATED = WIRE[:WIRE.index("<item>", WIRE.index("<item>") + 1) + 40]
# Well-formed but for one mismatched tag in the first item: feedparser's loose
# parser still reads both items.
MALFORMED = WIRE.replace("<title>Late goal settles the derby</title>",
                         "<title>Late goal settles the <b>derby</title>", 1)


def free_port() -> int:
    """A port nobody listens on (bound, then released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One run, h1, over a good feed, a 404, an HTML page, a refused port,
    a truncated and a malformed feed; its printed summary."""
    folder = tmp_path_factory.mktemp("health")
    out = folder / "out"
    with FeedServer() as server:
        server.add("/wire.xml", WIRE)
        server.add("/asia.atom", ASIA, headers={"Content-Type": "application/atom+xml"})
        server.add("/gone.xml", "not here", status=404)
        server.add("/page.html", "<html><body><h1>Subscribe!</h1></body></html>",
                   headers={"Content-Type": "text/html"})
        server.add("/truncated.xml", TRUNCATED)
        server.add("/malformed.xml", MALFORMED)
        urls = {name: server.url(path) for name, path in (
            ("wire", "/wire.xml"), ("asia", "/asia.atom"), ("gone", "/gone.xml"), ("page", "/page.html"),
            ("truncated", "/truncated.xml"), ("malformed", "/malformed.xml"))}
        urls["refused"] = f"http://127.0.0.1:{free_port()}/feed.xml"
        feeds = folder / "feeds.txt"
        feeds.write_text("\n".join(urls.values()) + "\n")
        topics = folder / "topics.yaml"
        topics.write_text(TOPICS)
        capture = _Capture()
        with capture:
            assert run(feeds, topics, out, "--run-id", "h1") == 0
    return {"out": out, "urls": urls, "printed": capture.text, "feeds": feeds, "topics": topics,
            "folder": folder}


class _Capture:
    """stdout of a run (a module-scoped fixture has no capsys)."""

    def __enter__(self):
        import contextlib
        import io
        self._buffer = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._buffer)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
        self.text = self._buffer.getvalue()


def by_feed(world, frame):
    names = {url: name for name, url in world["urls"].items()}
    return frame.assign(name=frame["feed_url"].map(names)).set_index("name")


# --------------------------------------------------------------------------- fetches


def test_each_failure_has_its_category_in_a_column_of_its_own(world):
    fetches = by_feed(world, pd.read_parquet(world["out"] / "fetches"))
    assert fetches.loc["gone", "error_category"] == "http_status"
    assert fetches.loc["refused", "error_category"] == "connection"
    assert fetches.loc["page", "error_category"] == "not_a_feed"
    for name in ("wire", "asia", "truncated", "malformed"):
        assert pd.isna(fetches.loc[name, "error_category"]) and pd.isna(fetches.loc[name, "error"]), name
    # `error` keeps its "category: detail" form
    for name in ("gone", "refused", "page"):
        assert fetches.loc[name, "error"].startswith(fetches.loc[name, "error_category"] + ": ")
    errors = by_feed(world, pd.read_parquet(world["out"] / "errors"))
    assert errors["error_category"].to_dict() == {"gone": "http_status", "refused": "connection",
                                                 "page": "not_a_feed"}


def test_status_is_an_integer_column_in_plain_pandas(world):
    fetches = by_feed(world, pd.read_parquet(world["out"] / "fetches"))
    assert str(fetches["status"].dtype) == "Int32"
    assert fetches.loc["wire", "status"] == 200 and fetches.loc["gone", "status"] == 404
    assert fetches.loc["refused", "status"] is pd.NA      # no HTTP response
    assert str(read_fetches(world["out"])["status"].dtype) == "Int32"


def test_the_feed_title_is_in_the_fetch_log(world):
    fetches = by_feed(world, pd.read_parquet(world["out"] / "fetches"))
    assert fetches.loc["wire", "feed_title"] == "Wire"
    assert fetches.loc["asia", "feed_title"] == "Asia desk"
    assert pd.isna(fetches.loc["gone", "feed_title"]) and pd.isna(fetches.loc["refused", "feed_title"])


def test_a_truncated_or_malformed_feed_carries_a_parse_warning(world):
    fetches = by_feed(world, pd.read_parquet(world["out"] / "fetches"))
    assert str(fetches["parse_warning"].dtype) == "boolean"
    truncated, malformed = fetches.loc["truncated"], fetches.loc["malformed"]
    # no error: the fetch and the parse succeeded, but not cleanly
    assert truncated["parse_warning"] and truncated["parse_warning_detail"].startswith("malformed: line ")
    assert truncated["entry_count"] < 3 and pd.isna(truncated["error"])
    assert malformed["parse_warning"] and malformed["parse_warning_detail"].startswith("malformed: ")
    assert malformed["entry_count"] == 3 and malformed["feed_title"] == "Wire"
    assert fetches.loc["wire", "parse_warning"] == False and pd.isna(fetches.loc["wire", "parse_warning_detail"])  # noqa: E712
    for name in ("gone", "refused", "page"):   # nothing was parsed
        assert fetches.loc[name, "parse_warning"] is pd.NA, name
        assert pd.isna(fetches.loc[name, "parser"]), name


def test_the_fetch_log_says_which_parser_read_each_feed(world):
    fetches = by_feed(world, pd.read_parquet(world["out"] / "fetches"))
    # well-formed RSS: the fast path; not well-formed: feedparser's loose parser
    assert fetches.loc["wire", "parser"] == "fast"
    assert fetches.loc["truncated", "parser"] == "feedparser"
    assert fetches.loc["malformed", "parser"] == "feedparser"


def test_fetches_and_errors_carry_schema_version_5(world):
    for kind, schema in (("fetches", FETCHES_SCHEMA), ("errors", ERRORS_SCHEMA)):
        for path in (world["out"] / kind).rglob("*.parquet"):
            written = pq.read_schema(path)
            assert written.metadata[b"newswatch.schema_version"] == b"5"
            assert written.names == schema.names


# --------------------------------------------------------------------------- a healthy first run


@pytest.fixture(scope="module")
def healthy(world):
    """Two runs, first and second, over a good feed only: no dead letter at
    all. `first` is a copy of the output after the first run, `out` after both."""
    out = world["folder"] / "healthy"
    feeds = world["folder"] / "good.txt"
    with FeedServer() as server:
        server.add("/wire.xml", WIRE)
        feeds.write_text(server.url("/wire.xml") + "\n")
        assert run(feeds, world["topics"], out, "--run-id", "first") == 0
        first = world["folder"] / "healthy-first"
        shutil.copytree(out, first)
        assert run(feeds, world["topics"], out, "--run-id", "second") == 0
    return {"first": first, "out": out, "feeds": feeds, "topics": world["topics"]}


def test_errors_and_fetches_read_with_plain_pandas_after_a_healthy_first_run(healthy):
    healthy = healthy["first"]
    errors = pd.read_parquet(healthy / "errors")
    assert len(errors) == 0 and list(errors.columns) == ERRORS_SCHEMA.names + ["date"]
    assert str(errors["occurred_at"].dtype) == "datetime64[us, UTC]"
    (empty,) = (healthy / "errors").rglob("*.parquet")
    assert empty.name == "first-000.parquet"
    started = read_runs(healthy, run_id="first").loc[0, "started_at"]
    assert empty.parent.name == f"date={started.date().isoformat()}"   # the run's date
    fetches = pd.read_parquet(healthy / "fetches")
    assert len(fetches) == 1 and fetches["error"].isna().all()
    assert len(ds.dataset(healthy / "errors", format="parquet", partitioning="hive").to_table()) == 0
    assert len(read_errors(healthy)) == 0 and list(read_errors(healthy).columns) == ERRORS_SCHEMA.names + ["date"]


def test_a_later_run_adds_no_empty_file_once_a_folder_has_files(healthy):
    assert [p.name for p in (healthy["out"] / "errors").rglob("*.parquet")] == ["first-000.parquet"]


# --------------------------------------------------------------------------- runs/


def printed_counters(text: str) -> dict:
    """The summary table as printed: counter name -> value."""
    names = {(stage, label): name for stage, name, label in ROWS}
    found = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+(.+?)\s+([\d,]+)$", line)
        if m and (m.group(1), m.group(2)) in names:
            found[names[m.group(1), m.group(2)]] = int(m.group(3).replace(",", ""))
    return found


def test_a_run_writes_one_row_whose_counters_are_the_printed_summary(world):
    (path,) = (world["out"] / "runs").rglob("*.parquet")
    assert path.name == "h1.parquet" and path.parent.name.startswith("date=")
    runs = pd.read_parquet(world["out"] / "runs")
    assert len(runs) == 1
    row = runs.iloc[0]
    printed = printed_counters(world["printed"])
    assert len(printed) == len(RUN_COUNTERS)
    assert {name: int(row[name]) for name in RUN_COUNTERS} == printed
    assert printed["fetch_failed"] == 2 and printed["feeds_failed"] == 3
    assert row["run_id"] == "h1" and row["mode"] == "batch" and row["runner"] == "DirectRunner"
    assert bool(row["reconciles"]) and row["topics_rules"] == 2 and len(row["topics_version"]) == 16
    assert row["started_at"] <= row["finished_at"] and row["elapsed_s"] > 0
    topic_lines = dict(re.findall(r"^topics\s+topic (\w+)\s+([\d,]+)$", world["printed"], re.M))
    assert {k: int(v) for k, v in topic_lines.items()} == dict(row["matched_by_topic"])
    language_lines = dict(re.findall(r"^language\s+(\w+)\s+([\d,]+)$", world["printed"], re.M))
    assert {k: int(v) for k, v in language_lines.items()} == dict(row["stories_by_language"])
    assert any(note.startswith("state: ") for note in row["notes"])


def test_read_runs_gives_every_run_in_order_and_filters(healthy):
    healthy = healthy["out"]
    runs = read_runs(healthy)
    assert list(runs["run_id"]) == ["first", "second"]
    assert list(runs.columns) == RUNS_SCHEMA.names + ["date"]
    assert str(runs["entries"].dtype) == "Int64" and str(runs["reconciles"].dtype) == "boolean"
    assert runs.loc[1, "seen_before"] == runs.loc[0, "rows_written_stories"]   # the second run saw them all
    assert list(read_runs(healthy, run_id="second")["run_id"]) == ["second"]
    assert list(read_runs(healthy, since=runs.loc[1, "started_at"].to_pydatetime())["run_id"]) == ["second"]
    assert len(read_runs(healthy, mode="streaming")) == 0
    assert list(read_runs(healthy, columns=["run_id", "entries"]).columns) == ["run_id", "entries"]


def test_read_runs_on_an_output_without_runs_is_an_empty_typed_frame(tmp_path):
    (tmp_path / "stories").mkdir()
    runs = read_runs(tmp_path)
    assert len(runs) == 0 and list(runs.columns) == RUNS_SCHEMA.names + ["date"]
    assert str(runs["entries"].dtype) == "Int64"


def test_a_rerun_with_the_same_run_id_replaces_its_row(healthy, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(healthy["out"], out)
    before = read_runs(out, run_id="second").loc[0, "started_at"]
    with FeedServer() as server:
        server.add("/wire.xml", WIRE)
        healthy["feeds"].write_text(server.url("/wire.xml") + "\n")
        # the latest run may be re-run (no later commit relies on it)
        assert run(healthy["feeds"], healthy["topics"], out, "--run-id", "second") == 0
    runs = read_runs(out)
    assert list(runs["run_id"]) == ["first", "second"] and runs.loc[1, "started_at"] > before


# --------------------------------------------------------------------------- schema versions


V3_FETCHES = pa.schema([f for f in FETCHES_SCHEMA
                        if f.name not in ("error_category", "feed_title", "parse_warning",
                                          "parse_warning_detail", "parser")],
                       metadata={b"newswatch.kind": b"fetches", b"newswatch.schema_version": b"3"})


def test_fetches_files_of_schema_3_and_4_read_together(world, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    (partition,) = (out / "fetches").iterdir()
    at = datetime.now(UTC).replace(microsecond=0)
    old = pa.Table.from_pylist([
        {"feed_url": "https://old.example/feed", "final_url": "https://old.example/feed", "status": None,
         "bytes": 0, "elapsed_s": 1.0, "entry_count": 0, "error": "timeout: timed out", "fetched_at": at,
         "run_id": "v3", "skipped_until": None},
        {"feed_url": "https://old.example/ok", "final_url": "https://old.example/ok", "status": 200,
         "bytes": 10, "elapsed_s": 0.1, "entry_count": 4, "error": None, "fetched_at": at,
         "run_id": "v3", "skipped_until": None}], schema=V3_FETCHES)
    # named to sort first: pyarrow on its own would take the columns of version 3
    pq.write_table(old, partition / "a-v3-000.parquet")

    fetches = read_fetches(out).set_index("feed_url")
    assert len(fetches) == len(read_fetches(world["out"])) + 2
    assert list(fetches.columns) == FETCHES_SCHEMA.names[1:] + ["date"]
    assert fetches.loc["https://old.example/feed", "error_category"] == "timeout"
    assert pd.isna(fetches.loc["https://old.example/ok", "error_category"])
    assert fetches.loc["https://old.example/ok", "parse_warning"] is pd.NA
    assert pd.isna(fetches.loc["https://old.example/ok", "parser"])
    assert str(fetches["status"].dtype) == "Int32" and fetches.loc["https://old.example/ok", "status"] == 200
    assert fetches.loc[world["urls"]["gone"], "error_category"] == "http_status"
    assert set(read_fetches(out, columns=["error_category"])["error_category"].dropna()) == {
        "timeout", "http_status", "connection", "not_a_feed"}
