"""Syndication clusters in whole runs (issue 14): feeds of several outlets over
real HTTP on 127.0.0.1, `newswatch run` on the DirectRunner, Parquet read
back with pandas. One outlet reprints another's story (another headline, a
dateline, the bottom cut, a word changed, its own footer); the rows say so
in cluster_id and cluster_size, in one run, across runs, across the polls of
a streaming job and across its restart. The stories are made up
(tests/transforms/test_sketch.py)."""
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from tests.support.feedserver import FeedServer, Scripted
from tests.support.paths import ROOT
from tests.support.reprints import MUSEUM, MUSEUM_OWN_REPORT, SHIP, lead, reprint
from transforms.records import Story
from transforms.schema import SCHEMA_VERSION, STORIES_DATASET_SCHEMA, STORIES_SCHEMA
from transforms.sink import to_row, write_parquet_atomically

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TOPICS = "topics:\n  - name: local\n    query: 'Vellmar OR Esterby OR Rool'\n"
CLUSTER_COLUMNS = ["cluster_id", "cluster_size"]


def item(guid, title, description, when, site, content=None):
    body = f"<content:encoded>{escape(content)}</content:encoded>" if content else ""
    return (f"<item><title>{escape(title)}</title><link>https://{site}/{guid}</link><guid>{guid}</guid>"
            f"<description>{escape(description)}</description>{body}"
            f"<pubDate>{format_datetime(when)}</pubDate></item>")


def rss(title, *items):
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f'<channel><title>{title}</title>{"".join(items)}</channel></rss>')


# The wire: the ship story in full (content:encoded, its lead as description), and the museum story.
WIRE_SHIP = item("wire-ship", "Cargo ship runs aground off Vellmar", lead(SHIP), DAY, "wire.example",
                 content=SHIP)
WIRE_MUSEUM = item("wire-museum", "Paintings stolen from Esterby museum", MUSEUM, DAY - timedelta(hours=1),
                   "wire.example")
# Coastal Times: an edited reprint of the ship story, and a byte-identical
# copy of the wire's museum story (posted later: the wire's copy is kept).
COAST_SHIP = item("coast-1", "Grain freighter stranded near Vellmar, crew safe",
                  reprint(SHIP, keep=0.6), DAY + timedelta(hours=1), "coast.example")
COAST_MUSEUM_COPY = item("coast-2", "Paintings stolen from Esterby museum", MUSEUM, DAY - timedelta(minutes=30),
                         "coast.example")
# Northern Courier: the ship story's lead only (a summary-only feed), and its
# own reporter's story of the museum theft: the same event, not a reprint.
COURIER_SHIP = item("courier-1", "Stranded: the Northern Lark", reprint(
    lead(SHIP), keep=1.0, dateline="By Lena Marsh. VELLMAR -", footer="Subscribe to the Courier."),
    DAY + timedelta(hours=2), "courier.example")
COURIER_MUSEUM = item("courier-2", "Rool landscapes taken in night raid", MUSEUM_OWN_REPORT,
                      DAY - timedelta(minutes=20), "courier.example")

FEEDS = {
    "/wire.xml": rss("Wire", WIRE_SHIP, WIRE_MUSEUM),
    "/coast.xml": rss("Coastal Times", COAST_SHIP, COAST_MUSEUM_COPY),
    "/courier.xml": rss("Northern Courier", COURIER_SHIP, COURIER_MUSEUM),
}
# guid -> what the row's cluster is (by guid of the first member) and its size
EXPECTED = {
    "wire-ship": ("wire-ship", 1),
    "coast-1": ("wire-ship", 2),
    "courier-1": ("wire-ship", 3),
    "wire-museum": ("wire-museum", 1),
    "courier-2": ("courier-2", 1),
}


def args(feeds, topics, out, *extra):
    return ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
            "--runner", "DirectRunner", "--allow-private-addresses", *extra]


def run(argv, capsys=None):
    code = main(argv)
    captured = capsys.readouterr() if capsys is not None else None
    assert code == 0, captured and captured.err[-3000:] + captured.out[-3000:]


def stories(out):
    return pd.read_parquet(out / "stories")


def by_guid(df, everything=None):
    """guid -> (guid of the cluster's first member, found in `everything`, cluster_size)."""
    everything = df if everything is None else everything
    guid_of = dict(zip(everything["story_id"], everything["guid"]))
    return {row.guid: (guid_of.get(row.cluster_id, row.cluster_id), int(row.cluster_size))
            for row in df.itertuples()}


def comparable(df):
    """The rows without what differs between runs, and without the cluster columns."""
    return (df.drop(columns=["run_id", "fetched_at", *CLUSTER_COLUMNS]).sort_values("story_id")
            .reset_index(drop=True).map(lambda v: list(v) if hasattr(v, "tolist") else v))


def clusters_of(df):
    return (df[["story_id", *CLUSTER_COLUMNS]].sort_values("story_id").reset_index(drop=True))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three outlets' feeds on one server, and one batch run over them."""
    folder = tmp_path_factory.mktemp("clusters")
    with FeedServer() as server:
        for path, body in FEEDS.items():
            server.add(path, body)
        feeds = folder / "feeds.txt"
        feeds.write_text("".join(server.url(p) + "\n" for p in FEEDS))
        topics = folder / "topics.yaml"
        topics.write_text(TOPICS)
        out = folder / "out"
        run(args(feeds, topics, out, "--run-id", "batch"))
        yield feeds, topics, out, folder


# -- one batch run -------------------------------------------------------------
def test_a_reprint_and_a_lead_only_copy_share_the_first_members_cluster(world):
    _, _, out, _ = world
    df = stories(out)
    # the exact copy of the museum story is still dropped; the reprints are kept
    assert sorted(df["guid"]) == sorted(EXPECTED)
    assert by_guid(df) == EXPECTED
    ship = df.set_index("guid").loc["wire-ship"]
    assert (df.set_index("guid").loc[["coast-1", "courier-1"], "cluster_id"] == ship["story_id"]).all()
    assert str(df["cluster_size"].dtype) == "int32" and df["cluster_id"].notna().all()


def test_the_stories_files_carry_the_current_schema_version(world):
    _, _, out, _ = world
    files = sorted((out / "stories").rglob("*.parquet"))
    assert files
    for path in files:
        schema = pq.read_schema(path)
        assert schema.metadata[b"newswatch.schema_version"] == SCHEMA_VERSION.encode() == b"5"
        assert schema.field("cluster_id").type == pa.string() and schema.field("cluster_size").type == pa.int32()


def test_a_folder_with_schema_2_files_reads_whole_with_nulls_for_old_rows(world, tmp_path):
    _, _, out, _ = world
    folder = tmp_path / "stories"
    shutil.copytree(out / "stories", folder)
    # a file written before the cluster columns existed (schema version 2)
    old_schema = pa.schema([f for f in STORIES_SCHEMA if f.name not in CLUSTER_COLUMNS],
                           metadata={**STORIES_SCHEMA.metadata, b"newswatch.schema_version": b"2"})
    old = [Story(story_id=f"old{i}", url=None, canonical_url=None, guid=f"old-{i}", title="Older story",
                 summary="Written by an earlier version.", content="", published_at=DAY - timedelta(days=300),
                 run_id="v2") for i in range(2)]
    path = folder / "date=2025-05-06" / "v2-000.parquet"
    write_parquet_atomically(str(path), pa.Table.from_pylist([to_row(s, old_schema) for s in old],
                                                             schema=old_schema))
    assert pq.read_schema(path).metadata[b"newswatch.schema_version"] == b"2"

    df = pd.read_parquet(folder, schema=STORIES_DATASET_SCHEMA).set_index("guid")
    assert len(df) == len(EXPECTED) + 2
    assert df.loc[["old-0", "old-1"], "cluster_id"].isna().all()
    assert df.loc[["old-0", "old-1"], "cluster_size"].isna().all()
    assert df.loc["coast-1", "cluster_size"] == 2 and str(df.loc["old-0", "date"]) == "2025-05-06"


def test_no_clusters_leaves_the_columns_null_and_the_rows_as_they_were(world, tmp_path):
    feeds, topics, out, _ = world
    run(args(feeds, topics, tmp_path / "plain", "--run-id", "plain", "--no-clusters"))
    plain = stories(tmp_path / "plain")
    assert plain["cluster_id"].isna().all() and plain["cluster_size"].isna().all()
    assert sorted(plain["guid"]) == sorted(EXPECTED)
    pd.testing.assert_frame_equal(comparable(plain), comparable(stories(out)))
    assert not (tmp_path / "plain" / "_state" / "clusters").exists() or all(
        pq.read_table(p).column("story_id").null_count == pq.read_table(p).num_rows
        for p in (tmp_path / "plain" / "_state" / "clusters").glob("*.parquet"))


def test_multi_processing_gives_the_same_clusters(world, tmp_path):
    feeds, topics, out, _ = world
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args(feeds, topics, tmp_path / "multi", "--run-id", "multi",
                                                "--direct_running_mode=multi_processing",
                                                "--direct_num_workers=2")],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    multi = stories(tmp_path / "multi")
    assert by_guid(multi) == EXPECTED
    pd.testing.assert_frame_equal(clusters_of(multi), clusters_of(stories(out)))


# -- across runs ------------------------------------------------------------------
def test_a_reprint_in_tomorrows_run_joins_yesterdays_cluster(feed_server, tmp_path):
    feed_server.add("/wire.xml", rss("Wire", WIRE_SHIP, WIRE_MUSEUM))
    feed_server.add("/coast.xml", rss("Coastal Times"))
    feed_server.add("/harbour.xml", rss("Harbour News"))
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("".join(f"{feed_server.url(p)}\n" for p in ("/wire.xml", "/coast.xml", "/harbour.xml")))
    topics = tmp_path / "topics.yaml"
    topics.write_text(TOPICS)
    out = tmp_path / "out"
    run(args(feeds, topics, out, "--run-id", "day1"))
    first_files = {p: pd.read_parquet(p) for p in (out / "stories").rglob("*.parquet")}
    assert by_guid(stories(out)) == {"wire-ship": ("wire-ship", 1), "wire-museum": ("wire-museum", 1)}

    # the next day one outlet runs the wire story, edited, and another a copy of its lead
    # (in one feed document the two would share their lead, taken for that feed's boilerplate)
    tomorrow = DAY + timedelta(days=1)
    feed_server.add("/coast.xml", rss(
        "Coastal Times",
        item("coast-1", "Grain freighter stranded near Vellmar", reprint(SHIP, keep=0.4), tomorrow,
             "coast.example")))
    feed_server.add("/harbour.xml", rss(
        "Harbour News",
        item("coast-3", "Freighter: what we know", lead(SHIP, sentences=1), tomorrow + timedelta(hours=1),
             "harbour.example")))
    run(args(feeds, topics, out, "--run-id", "day2"))
    df = stories(out)
    assert by_guid(df[df["run_id"] == "day2"], df) == {"coast-1": ("wire-ship", 2), "coast-3": ("wire-ship", 3)}
    first = df.set_index("guid").loc["wire-ship"]
    assert (df[df["run_id"] == "day2"]["cluster_id"] == first["story_id"]).all()
    # yesterday's rows are as they were written
    for path, rows in first_files.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), rows)


# -- streaming --------------------------------------------------------------------
def streaming(feeds, topics, out, run_id, duration):
    return ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
            "--allow-private-addresses", "127.0.0.1", "--runner", "DirectRunner", "--run-id", run_id,
            "--streaming", "--poll-interval", "1", "--duration", str(duration), "--window", "1",
            "--host-gap", "0.02"]


def test_streaming_a_reprint_on_a_later_poll_and_after_a_restart_joins_the_cluster(feed_server, tmp_path, capsys):
    server = feed_server
    server.add("/wire.xml", rss("Wire", WIRE_SHIP), etag='"w1"')
    # the reprint appears from the second poll on
    server.script("/coast.xml", [Scripted(rss("Coastal Times", WIRE_MUSEUM.replace("wire-museum", "coast-m"))),
                                 Scripted(rss("Coastal Times", COAST_SHIP))])
    server.add("/courier.xml", rss("Northern Courier"))
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("".join(server.url(p) + "\n" for p in ("/wire.xml", "/coast.xml", "/courier.xml")))
    topics = tmp_path / "topics.yaml"
    topics.write_text(TOPICS)
    out = tmp_path / "out"

    run(streaming(feeds, topics, out, "job1", 3), capsys)
    df = stories(out)
    assert by_guid(df) == {"wire-ship": ("wire-ship", 1), "coast-m": ("coast-m", 1),
                           "coast-1": ("wire-ship", 2)}
    # the reprint arrived on a later poll: it is in a later window's file than the wire story
    file_of = {g: f for f in (out / "stories").rglob("*.parquet") for g in pd.read_parquet(f)["guid"]}
    assert file_of["wire-ship"] != file_of["coast-1"]

    # a restarted job: the lead-only copy joins the cluster remembered in _state/clusters
    assert list((out / "_state" / "clusters").glob("job1-w*.parquet"))
    server.add("/courier.xml", rss("Northern Courier", COURIER_SHIP))
    run(streaming(feeds, topics, out, "job2", 2), capsys)
    df = stories(out)
    assert by_guid(df[df["run_id"] == "job2"], df) == {"courier-1": ("wire-ship", 3)}
    assert df["story_id"].is_unique and len(df) == 4
