"""`newswatch retag`: archived entries re-tagged with other rules into a
named view (docs/retag.md). Real feeds on 127.0.0.1 that change between
runs, real runs, real Parquet read back with pandas."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline import dataset, views
from pipeline.cli import main
from pipeline.retag import POINTER_READ, PUBLISHING, UNITS_PREPARED, EntryGroup, RunRecord, plan_units
from tests.support.feedserver import FeedServer
from tests.support.paths import ROOT
from tests.support.reprints import SHIP

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULES_A = """topics:
  - name: dprk
    query: '"North Korea" OR Pyongyang OR 북한'
"""
# B adds topics that match stories A never kept, and one that needs the
# language (detected during matching).
RULES_B = RULES_A + """  - name: missile_tests
    query: '(missile OR missiles OR 미사일) AND (test OR fired OR 발사)'
  - name: sport
    query: 'goal OR derby OR penalties'
  - name: shipping
    query: 'ship OR vessel OR harbour'
  - name: korean_press
    query: 'topic:dprk AND language:ko'
"""
COMPARED = ["story_id", "run_id", "topics", "matched_terms", "matches", "language", "cluster_id",
            "cluster_size", "topics_version", "date", "title", "url", "published_at"]


def item(guid, title, text, link=None, day=28, hour=1):
    return (f"<item><title>{title}</title><link>https://wire.example.org/{link or guid}</link>"
            f"<guid>{guid}</guid><description>{text}</description>"
            f"<pubDate>{'Mon Tue Wed Thu Fri Sat Sun'.split()[(day - 27) % 7]}, {day} Sep 2021 "
            f"{hour:02d}:00:00 GMT</pubDate></item>")


def rss(title, *items):
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f'<link>https://{title.lower()}.example.org/</link>{"".join(items)}</channel></rss>')


NK = item("w1", "North Korea test-fires ballistic missile",
          "North Korea fired a ballistic missile into the sea on Tuesday, Seoul said.")
NK_UTM = item("w2", "North Korea test-fires ballistic missile",
              "North Korea fired a ballistic missile into the sea on Tuesday, Seoul said.",
              link="w1?utm_source=rss")
DERBY = item("w3", "Late goal settles the derby", "A header in stoppage time decided a tight match.", day=25)
FINAL = item("w4", "Cup final goes to penalties", "The final ended level after extra time.", day=29)
HOTLINE = item("w5", "Pyongyang says hotline will reopen", "State media said the lines would be restored.",
               day=29, hour=3)
KOREAN = item("k1", "북한, 동해상으로 탄도미사일 발사",
              "합동참모본부는 북한이 오늘 오전 동해상으로 탄도미사일 한 발을 발사했다고 밝혔다. "
              "군은 추가 발사에 대비해 감시와 경계를 강화하고 있다.", day=28, hour=3)
SHIP_STORY = item("s1", "Cargo ship runs aground off Vellmar", SHIP, day=28, hour=5)
SHIP_REPRINT = item("s2", "Grain carrier stranded after gale", "VELLMAR (Wire) - " + SHIP.replace(
    "on Tuesday", "early on Tuesday"), day=28, hour=6)
WEATHER = item("w6", "Sunny spells ahead", "Mild weather is expected for the weekend.", day=30)

# Three snapshots of two feeds: entries appear, repeat and vanish.
SNAPSHOTS = [
    {"/wire.xml": rss("Wire", NK, NK_UTM, DERBY, SHIP_STORY),
     "/desk.xml": rss("Desk", KOREAN, HOTLINE)},
    {"/wire.xml": rss("Wire", NK, DERBY, FINAL),
     "/desk.xml": rss("Desk", KOREAN, SHIP_REPRINT)},
    {"/wire.xml": rss("Wire", FINAL, WEATHER, HOTLINE),
     "/desk.xml": rss("Desk", SHIP_REPRINT, DERBY)},
]
RUNS = ("r1", "r2", "r3")


def run(feeds, topics, out, run_id, *extra):
    return main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out), "--run-id", run_id,
                 "--runner", "DirectRunner", "--allow-private-addresses", "127.0.0.1", "--quiet", *extra])


def retag(topics, out, *extra):
    return main(["retag", "--topics", str(topics), "--output", str(out), "--runner", "DirectRunner",
                 "--quiet", *extra])


def runs_over_snapshots(server, folder, topics, out, snapshots=SNAPSHOTS, run_ids=RUNS, extra=()):
    feeds = folder / "feeds.txt"
    feeds.write_text("".join(server.url(path) + "\n" for path in snapshots[0]))
    for snapshot, run_id in zip(snapshots, run_ids):
        for path, body in snapshot.items():
            server.add(path, body)
        assert run(feeds, topics, out, run_id, *extra) == 0


def paused_retag(rules, out, tmp_path, phase, *args):
    """`newswatch retag` in a subprocess, paused at `phase` (pipeline/retag.py);
    returns it and its resume function (which returns its stderr)."""
    go_on, paused = tmp_path / f"{phase}.go-on", tmp_path / f"{phase}.paused"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NEWSWATCH_PAUSE_AT=phase,
               NEWSWATCH_PAUSE_SIGNAL=str(paused), NEWSWATCH_PAUSE_UNTIL=str(go_on))
    job = subprocess.Popen([sys.executable, "-m", "pipeline", "retag", "--topics", str(rules),
                            "--output", str(out), *args, "--runner", "DirectRunner", "--quiet"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not paused.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not paused.exists():
        job.kill()
    assert paused.exists(), job.communicate()[1][-2000:] if job.poll() is not None else "no pause"

    def finish():
        go_on.write_text("")
        try:
            return job.communicate(timeout=300)[1]
        finally:
            if job.poll() is None:
                job.kill()
    return job, finish


def rows(frame):
    frame = frame[COMPARED].copy()
    for name in ("topics", "matched_terms"):
        frame[name] = frame[name].map(lambda v: tuple(v))
    frame["matches"] = frame["matches"].map(lambda v: tuple(tuple(sorted(m.items())) for m in v))
    return frame.sort_values("story_id").reset_index(drop=True)


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """OUT after three runs with rules A, and a fresh OUT after the same
    three runs with rules B over the same snapshots (what retag must equal)."""
    folder = tmp_path_factory.mktemp("retag")
    (folder / "a.yaml").write_text(RULES_A)
    (folder / "b.yaml").write_text(RULES_B)
    with FeedServer() as server:
        runs_over_snapshots(server, folder, folder / "a.yaml", folder / "out_a")
        runs_over_snapshots(server, folder, folder / "b.yaml", folder / "out_b")
    return folder


@pytest.fixture
def out(world, copy_of):
    """A copy of the rules-A output, for a test to change."""
    return copy_of(world / "out_a")


def test_the_fixture_needs_state_across_runs(world):
    # The live B runs write stories A never kept, and drop a repeat (the
    # derby, written by r1) that a replay without the earlier runs' state
    # would write again: equality below depends on the replay order.
    live = pd.read_parquet(world / "out_b" / "stories")
    assert {"sport", "shipping", "korean_press"} <= set(t for ts in live.topics for t in ts)
    assert len(pd.read_parquet(world / "out_a" / "stories")) < len(live)
    derby = live[live.title == "Late goal settles the derby"]
    assert list(derby.run_id) == ["r1"]
    reprint = live[live.title == "Grain carrier stranded after gale"].iloc[0]
    original = live[live.title == "Cargo ship runs aground off Vellmar"].iloc[0]
    assert reprint.cluster_id == original.story_id and reprint.cluster_size == 2


@pytest.mark.parametrize("mode", [[], ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]],
                         ids=["in_process", "multi_processing"])
def test_retag_equals_fresh_runs_with_the_new_rules(world, out, mode, capsys, monkeypatch):
    if mode:  # workers import this tree, not an installed copy
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
    assert retag(world / "b.yaml", out, "--name", "b", *mode) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    view = dataset.read_stories(out, view="b")
    pd.testing.assert_frame_equal(rows(view), rows(dataset.read_stories(world / "out_b")))
    # fetched_at is the archived fetch's (out_b's runs fetched at other times)
    archived = dataset.read_entries(out, columns=["story_id", "fetched_at"])
    assert set(zip(view.story_id, view.fetched_at)) <= set(zip(archived.story_id, archived.fetched_at))
    # the last line is the published stories folder, for plain pandas
    assert printed[-1].endswith("/stories") and Path(printed[-1]).is_dir()
    pd.testing.assert_frame_equal(rows(pd.read_parquet(printed[-1])),
                                  rows(pd.read_parquet(world / "out_b" / "stories")))
    # read_matches follows the view too
    matches = dataset.read_matches(out, view="b")
    assert set(matches.topic) == {"dprk", "missile_tests", "sport", "shipping", "korean_press"}
    # the live stories are untouched
    assert len(dataset.read_stories(out)) == len(pd.read_parquet(world / "out_a" / "stories"))


def test_the_view_pointer_says_what_it_holds(world, out):
    assert retag(world / "b.yaml", out) == 0
    name = f"retag-{pd.read_parquet(world / 'out_b' / 'stories').topics_version.iloc[0]}"
    pointer = dataset.read_view(out, name)
    assert pointer["runs"] == list(RUNS) and pointer["topics_text"] == RULES_B
    generation = out / "views" / name / pointer["generation"]
    assert (generation / "topics.yaml").read_text() == RULES_B
    assert (generation / "_state" / "seen").is_dir()       # the view's own state
    assert not (generation / "_prepared").exists()          # the prepared units went before publishing
    assert pointer["counts"]["stories"] == len(dataset.read_stories(out, view=name))
    # the live state and story folders were not written
    assert files_under(out / "stories") == files_under(world / "out_a" / "stories")
    assert files_under(out / "_state") == files_under(world / "out_a" / "_state")


def test_replace_is_needed_to_replace_a_view(world, out, capsys):
    assert retag(world / "a.yaml", out, "--name", "v") == 0
    first = dataset.read_view(out, "v")["generation"]
    capsys.readouterr()
    assert retag(world / "b.yaml", out, "--name", "v") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--replace" in err[0]
    assert dataset.read_view(out, "v")["generation"] == first
    assert retag(world / "b.yaml", out, "--name", "v", "--replace") == 0
    pointer = dataset.read_view(out, "v")
    assert pointer["generation"] != first and pointer["topics_text"] == RULES_B
    pd.testing.assert_frame_equal(rows(dataset.read_stories(out, view="v")),
                                  rows(dataset.read_stories(world / "out_b")))
    # the replaced generation stays for readers still in it, until the next retag of the name
    assert pointer["previous"] == first
    assert views.generations(str(out), "v") == [first, pointer["generation"]]
    assert retag(world / "a.yaml", out, "--name", "v", "--replace") == 0
    third = dataset.read_view(out, "v")
    assert views.generations(str(out), "v") == [pointer["generation"], third["generation"]]


def test_dry_run_prints_old_and_new_per_topic_and_writes_nothing(world, out, capsys):
    before = files_under(out)
    assert retag(world / "b.yaml", out, "--dry-run") == 0
    printed = capsys.readouterr().out
    assert files_under(out) == before
    live_a = pd.read_parquet(world / "out_a" / "stories")
    live_b = pd.read_parquet(world / "out_b" / "stories")
    lines = {line.split()[0]: line.split()[1:] for line in printed.splitlines() if line.startswith("  ")}
    for topic in ("dprk", "missile_tests", "sport", "shipping", "korean_press"):
        old = sum(topic in t for t in live_a.topics)
        new = sum(topic in t for t in live_b.topics)
        assert lines[topic][:2] == [f"{old:,}", f"{new:,}"], printed


def test_a_topics_file_that_does_not_compile_stops_retag_before_any_read(world, out, capsys, tmp_path):
    # every entries file unreadable: a retag that read one would fail otherwise
    for path in (out / "entries").rglob("*.parquet"):
        path.write_bytes(b"not parquet")
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics:\n  - name: broken\n    query: '(missile AND'\n")
    before = files_under(out)
    assert retag(bad, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml" in err[0] and "broken" in err[0], err
    assert files_under(out) == before
    # the same archive with good rules does read it, and fails on it
    assert retag(world / "b.yaml", out) == 1


def test_refusals_are_one_line_and_exit_2(world, out, tmp_path, capsys):
    rules = world / "b.yaml"
    assert retag(rules, tmp_path / "missing") == 2
    assert "no output folder" in capsys.readouterr().err
    assert retag(rules, out, "--since", "1999-01-01", "--until", "1999-01-31") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no archived entries" in err[0]
    shutil.rmtree(out / "entries")
    assert retag(rules, out) == 2
    assert "no archived entries" in capsys.readouterr().err
    assert not (out / "views").exists()


def test_entries_archived_without_text_are_refused_naming_the_runs(world, tmp_path, capsys):
    with FeedServer() as server:
        runs_over_snapshots(server, tmp_path, world / "a.yaml", tmp_path / "none", run_ids=("n1", "n2"),
                            snapshots=SNAPSHOTS[:2], extra=("--archive-text", "none"))
        assert retag(world / "b.yaml", tmp_path / "none") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--archive-text none" in err[0]
        # mixed: one run with text, the others without
        runs_over_snapshots(server, tmp_path, world / "a.yaml", tmp_path / "none", run_ids=("t3",),
                            snapshots=SNAPSHOTS[2:])
    assert retag(world / "b.yaml", tmp_path / "none") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n1, n2" in err[0] and "t3" not in err[0]


def test_sigkill_during_a_retag_leaves_the_old_view_and_the_next_retag_cleans_up(world, out, tmp_path):
    assert retag(world / "a.yaml", out, "--name", "v") == 0
    old = dataset.read_view(out, "v")
    old_rows = rows(dataset.read_stories(out, view="v"))
    proc, _ = paused_retag(world / "b.yaml", out, tmp_path, PUBLISHING, "--name", "v", "--replace")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the new generation is all written, but not published: the old view is what readers get
    orphans = [g for g in views.generations(str(out), "v") if g != old["generation"]]
    assert len(orphans) == 1 and list((out / "views" / "v" / orphans[0] / "stories").rglob("*.parquet"))
    assert dataset.read_view(out, "v") == old
    pd.testing.assert_frame_equal(rows(dataset.read_stories(out, view="v")), old_rows)
    # the next retag of the name removes the orphan (and keeps the generation it replaced)
    assert retag(world / "b.yaml", out, "--name", "v", "--replace") == 0
    assert views.generations(str(out), "v") == [old["generation"], dataset.read_view(out, "v")["generation"]]
    pd.testing.assert_frame_equal(rows(dataset.read_stories(out, view="v")),
                                  rows(dataset.read_stories(world / "out_b")))


def test_a_retag_of_30_days_reads_only_the_partitions_of_those_days(tmp_path, capsys):
    from benchmarks.retag_throughput import START, generate, run_id

    out = tmp_path / "out"
    days = [0, 5, 20, 35]
    generate(out, runs=4, entries_per_run=100, run_times=[START + pd.Timedelta(days=d) for d in days])
    # an unreadable file in every partition outside the range, and one more day outside
    for day in (0, 35, 38):
        folder = out / "entries" / f"date={(START + pd.Timedelta(days=day)).date()}"
        folder.mkdir(exist_ok=True)
        (folder / "garbage-000.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "b.yaml").write_text(RULES_B)
    since, until = (START + pd.Timedelta(days=1)).date(), (START + pd.Timedelta(days=30)).date()
    assert retag(tmp_path / "b.yaml", out, "--since", str(since), "--until", str(until), "--name", "month") == 0
    pointer = dataset.read_view(out, "month")
    assert pointer["runs"] == [run_id(1), run_id(2)] and pointer["since"] == str(since)
    assert pointer["counts"]["entries"] == 200
    # the same archive over every day reads the unreadable files, and fails
    assert retag(tmp_path / "b.yaml", out, "--name", "all") == 1
    err = capsys.readouterr().err
    assert "garbage-000.parquet" in err and not (out / "views" / "all" / "_view.json").exists()


NEW_DPRK = item("w9", "Pyongyang holds party congress", "Delegates gathered in Pyongyang on Friday.", day=30)
LATE_DPRK = item("w10", "Pyongyang names envoy", "An envoy was named in Pyongyang on Saturday.", day=30)


def test_a_retag_runs_while_a_streaming_job_writes_to_the_same_output(world, tmp_path):
    out = tmp_path / "out"
    with FeedServer() as server:
        runs_over_snapshots(server, tmp_path, world / "a.yaml", out, snapshots=SNAPSHOTS[:2], run_ids=RUNS[:2])
        for path, body in SNAPSHOTS[2].items():
            server.add(path, body.replace("</channel>", NEW_DPRK + "</channel>"))
        before = {kind: files_under(out / kind) for kind in ("stories", "entries")}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        job = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "--feeds", str(tmp_path / "feeds.txt"), "--topics",
             str(world / "a.yaml"), "--output", str(out), "--run-id", "job", "--runner", "DirectRunner",
             "--allow-private-addresses", "127.0.0.1", "--streaming", "--poll-interval", "2",
             "--duration", "40", "--window", "2", "--host-gap", "0.02", "--quiet"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (out / "_state" / "runs" / "job.json").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert (out / "_state" / "runs" / "job.json").exists()       # the job holds OUT
            assert retag(world / "b.yaml", out, "--name", "b") == 0
            assert job.poll() is None                                  # still running meanwhile
            # a story for a later window of the job
            for path, body in SNAPSHOTS[2].items():
                server.add(path, body.replace("</channel>", NEW_DPRK + LATE_DPRK + "</channel>"))
            # once the job's first window is committed, a retag replays it
            deadline = time.monotonic() + 300
            while not list((out / "_state" / "seen").glob("job-w*.parquet")) and job.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            committed_first = sorted(p.stem for p in (out / "_state" / "seen").glob("job-w*.parquet"))
            assert committed_first, job.communicate()[1][-3000:] if job.poll() is not None else "no commit"
            assert retag(world / "b.yaml", out, "--name", "b", "--replace") == 0
            stdout, stderr = job.communicate(timeout=300)
        finally:
            if job.poll() is None:
                job.kill()
    assert job.returncode == 0, stderr[-3000:]
    expected = dataset.read_stories(world / "out_b", run_id=list(RUNS[:2]))
    view = dataset.read_stories(out, view="b")
    pd.testing.assert_frame_equal(rows(view[view.run_id.isin(RUNS[:2])]), rows(expected))
    pointer = dataset.read_view(out, "b")
    job_units = sorted({p.name.rsplit("-", 1)[0] for p in (out / "entries").rglob("job-w*.parquet")})
    replayed = [u for u in pointer["runs"] if u.startswith("job-")]
    assert pointer["runs"][:2] == list(RUNS[:2]) and set(committed_first) & set(job_units) <= set(replayed)
    assert replayed and replayed[0] == job_units[0]                # the first window is replayed
    assert "Pyongyang holds party congress" in set(view.title)
    # the windows committed after the retag looked are listed as skipped, not replayed
    late = [u for u in job_units if u not in replayed]
    assert sorted(pointer["skipped"]) == late and all("not committed" in why for why in pointer["skipped"].values())
    # the job's output is whole: its story written once, its counts reconcile,
    # the batch runs' files as they were
    assert stdout.count("-> ok") >= 4, stdout
    live = dataset.read_stories(out)
    assert sorted(live[live.run_id == "job"].title) == ["Pyongyang holds party congress", "Pyongyang names envoy"]
    assert live.story_id.is_unique
    assert [f for f in files_under(out / "stories") if not f.split("/")[-1].startswith("job")] == before["stories"]
    assert not (out / "_state" / "runs" / "job.json").exists()


def test_a_view_that_was_never_published_cannot_be_read(out):
    with pytest.raises(FileNotFoundError, match="no view"):
        dataset.read_stories(out, view="nothing")


# -- planning, without Beam --------------------------------------------------
def at(hour, minute=0):
    return pd.Timestamp(f"2021-09-28T{hour:02d}:{minute:02d}:00Z").to_pydatetime()


def group(path, run_id, unit=None, first=at(1), last=None, rows=10, without_text=0):
    return EntryGroup(path, run_id, unit, rows, first, last or first, without_text)


def test_units_are_replayed_in_process_after_a_preparation_on_the_workers_asked_for():
    from pipeline.config import local_workers
    from pipeline.retag import preparation_parts, replay_args

    two = ["--runner", "DirectRunner", "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
    assert preparation_parts(two) == 2 and preparation_parts(replay_args(two)) == 1
    threads = ["--runner", "DirectRunner", "--direct_running_mode=multi_threading", "--direct_num_workers=3"]
    assert preparation_parts(threads) == 3 and local_workers(threads) == 1   # a run's archive shards: processes
    for count in ("0", "-1"):   # 0 is Beam's "one per core"; below 0, the same here
        assert preparation_parts(["--direct_running_mode=multi_processing", f"--direct_num_workers={count}"]) \
            == (os.cpu_count() or 1)
    # any spelling Beam takes for the direct runner replays in-process
    for runner in ("--runner=direct", "--runner=SwitchingDirectRunner", "--runner=BundleBasedDirect"):
        assert preparation_parts(replay_args([runner, "--direct_running_mode=multi_processing",
                                              "--direct_num_workers=2"])) == 1, runner
    dataflow = ["--runner", "DataflowRunner", "--project", "p"]
    assert replay_args(dataflow) == dataflow


def test_plan_replays_committed_units_in_commit_order_and_reports_the_rest():
    groups = [
        group("e/date=2021-09-28/b2-000.parquet", "b2", first=at(2)),
        group("e/date=2021-09-28/b1-000.parquet", "b1", first=at(1)),
        group("e/date=2021-09-28/dead-000.parquet", "dead", first=at(0, 30)),
        group("e/date=2021-09-28/job-w20210928T030000Z-p0-000.parquet", "job",
              "job-w20210928T030000Z-p0", first=at(3)),
        group("e/date=2021-09-28/job-w20210928T030500Z-p0-000.parquet", "job",
              "job-w20210928T030500Z-p0", first=at(3, 5)),
        group("e/date=2021-09-28/job-w20210928T031000Z-p0-000.parquet", "job",
              "job-w20210928T031000Z-p0", first=at(3, 10)),
    ]
    runs = {"b1": RunRecord("b1", at(0, 59)), "b2": RunRecord("b2", at(1, 59)),
            "dead": RunRecord("dead", at(0, 29), finished=False),
            "job": RunRecord("job", at(2, 59), "batch", finished=False)}
    committed = {"b2", "job-w20210928T030000Z-p0", "job-w20210928T030500Z-p0"}
    plan = plan_units(groups, runs, committed)
    assert [u.unit for u in plan.units] == ["b1", "b2", "job-w20210928T030000Z-p0", "job-w20210928T030500Z-p0"]
    assert plan.units[0].started_at == at(0, 59) and plan.units[2].run_id == "job"
    assert set(plan.skipped) == {"dead", "job-w20210928T031000Z-p0"}
    assert plan.entries == 40


def test_plan_splits_a_merged_file_of_a_streaming_job_by_window():
    merged = "e/month=2021-09/compacted-1.parquet"
    groups = [group(merged, "job", first=at(3), last=at(3, 9)), group(merged, "b1", first=at(1))]
    runs = {"job": RunRecord("job", at(2, 59), "streaming"), "b1": RunRecord("b1", at(0, 59))}
    committed = {"b1", "job-w20210928T030000Z-p0", "job-w20210928T030500Z-p0"}
    plan = plan_units(groups, runs, committed)
    assert [u.unit for u in plan.units] == ["b1", "job-w20210928T030000Z-p0", "job-w20210928T030500Z-p0"]
    assert plan.units[1].window == (at(3), at(3, 5)) and plan.units[2].window == (at(3, 5), None)
    assert all(u.files == (merged,) for u in plan.units)


def test_plan_counts_entries_archived_without_text():
    plan = plan_units([group("a", "r1", without_text=10), group("b", "r2")],
                      {"r1": RunRecord("r1", at(1)), "r2": RunRecord("r2", at(2))}, set())
    assert plan.without_text == {"r1": 10}


def test_plan_replays_the_windows_recovery_committed_under_the_job_run_id():
    # a killed job's windows rolled forward by the next run: committed under "job" itself
    groups = [group("e/job-w20210928T030000Z-p0-000.parquet", "job", "job-w20210928T030000Z-p0", first=at(3)),
              group("e/job-w20210928T030500Z-p0-000.parquet", "job", "job-w20210928T030500Z-p0",
                    first=at(3, 5))]
    plan = plan_units(groups, {}, {"job-w20210928T030000Z-p0", "job"})
    assert [u.unit for u in plan.units] == ["job-w20210928T030000Z-p0", "job-w20210928T030500Z-p0"]
    assert plan.skipped == {}


def test_plan_closes_the_last_committed_window_of_a_running_job_at_its_length():
    merged = "e/month=2021-09/compacted-1.parquet"
    groups = [group(merged, "job", first=at(3), last=at(3, 14))]
    committed = {"job-w20210928T030000Z-p0", "job-w20210928T030500Z-p0"}
    running = {"job": RunRecord("job", at(2, 59), finished=False, window_s=300.0)}
    plan = plan_units(groups, running, committed)
    assert [u.window for u in plan.units] == [(at(3), at(3, 5)), (at(3, 5), at(3, 10))]
    assert list(plan.skipped) == ["job (merged entries after its last committed window)"]
    # without a marker saying the length, the gap between the windows gives it
    plan = plan_units(groups, {"job": RunRecord("job", at(2, 59), finished=False)}, committed)
    assert plan.units[-1].window == (at(3, 5), at(3, 10)) and plan.skipped
    # a finished job: every window committed, the last one open-ended
    plan = plan_units(groups, {"job": RunRecord("job", at(2, 59), "streaming")}, committed)
    assert plan.units[-1].window == (at(3, 5), None) and not plan.skipped


def test_plan_takes_units_older_than_the_state_cutoff_without_a_marker_as_committed():
    # state compaction pruned the commit rows older than the lookback; no runs/ row either
    groups = [group("e/old-000.parquet", "old", first=at(1)), group("e/dead-000.parquet", "dead", first=at(1)),
              group("e/new-000.parquet", "new", first=at(5))]
    runs = {"dead": RunRecord("dead", at(0, 59), finished=False)}   # its marker is still open
    plan = plan_units(groups, runs, set(), cutoff=at(2))
    assert [u.unit for u in plan.units] == ["old"]
    assert set(plan.skipped) == {"dead", "new"}


def test_plan_lists_runs_that_archived_nothing_in_the_range():
    runs = {"r1": RunRecord("r1", at(1)), "quiet": RunRecord("quiet", at(2), archived_nothing=True),
            "before": RunRecord("before", at(0), archived_nothing=True), "r3": RunRecord("r3", at(3))}
    plan = plan_units([group("a", "r1", first=at(1)), group("b", "r3", first=at(3))], runs, set(),
                      bounds=(at(0, 30), None))
    assert [u.unit for u in plan.units] == ["r1", "r3"]
    assert list(plan.skipped) == ["quiet"] and "archived nothing" in plan.skipped["quiet"]
    assert len(plan.warnings) == 1 and "quiet" in plan.warnings[0]


def test_a_run_with_no_archive_is_named_in_the_view(world, tmp_path, capsys):
    out = tmp_path / "out"
    with FeedServer() as server:
        runs_over_snapshots(server, tmp_path, world / "a.yaml", out, run_ids=("n1",), snapshots=SNAPSHOTS[:1])
        runs_over_snapshots(server, tmp_path, world / "a.yaml", out, run_ids=("n2",), snapshots=SNAPSHOTS[1:2],
                            extra=("--no-archive",))
        runs_over_snapshots(server, tmp_path, world / "a.yaml", out, run_ids=("n3",), snapshots=SNAPSHOTS[2:])
    capsys.readouterr()
    assert retag(world / "b.yaml", out, "--name", "b") == 0
    printed = capsys.readouterr().out
    pointer = dataset.read_view(out, "b")
    assert pointer["runs"] == ["n1", "n3"] and "archived nothing" in pointer["skipped"]["n2"]
    assert pointer["warnings"] and "n2" in pointer["warnings"][0] and "warning: run n2" in printed


def test_a_retag_does_not_remove_the_generation_another_retag_published(world, out, tmp_path):
    assert retag(world / "a.yaml", out, "--name", "v") == 0
    slow, finish = paused_retag(world / "b.yaml", out, tmp_path, POINTER_READ, "--name", "v", "--replace")
    try:
        # meanwhile another retag of the name publishes
        assert retag(world / "b.yaml", out, "--name", "v", "--replace") == 0
        published = dataset.read_view(out, "v")
    finally:
        err = finish()
    assert slow.returncode == 1 and "another retag" in err, err[-2000:]
    assert dataset.read_view(out, "v") == published
    assert published["generation"] in views.generations(str(out), "v")
    pd.testing.assert_frame_equal(rows(dataset.read_stories(out, view="v")),
                                  rows(dataset.read_stories(world / "out_b")))


def test_a_retag_whose_generation_a_later_retag_removed_says_so(world, out, tmp_path):
    # The slow retag has prepared its units; a later one of the name
    # publishes and removes the slow one's older, unpublished generation,
    # prepared files and all: the slow one must say what happened.
    slow, finish = paused_retag(world / "b.yaml", out, tmp_path, UNITS_PREPARED, "--name", "v")
    [mine] = views.generations(str(out), "v")
    assert list((out / "views" / "v" / mine / "_prepared").glob("*.pickle"))
    try:
        assert retag(world / "b.yaml", out, "--name", "v") == 0
        published = dataset.read_view(out, "v")
        assert mine not in views.generations(str(out), "v")
    finally:
        err = finish()
    assert slow.returncode == 1, err[-2000:]
    assert f"generation {mine} of view v was removed by another retag or a `views delete`" in err, err[-2000:]
    assert dataset.read_view(out, "v") == published
    assert views.generations(str(out), "v") == [published["generation"]]


def test_a_failed_retag_removes_its_prepared_files(world, out, tmp_path):
    # The prepared files hold the matched stories' text: a retag that fails
    # while replaying leaves none of them behind.
    slow, finish = paused_retag(world / "b.yaml", out, tmp_path, UNITS_PREPARED, "--name", "v")
    prepared = sorted((out / "views" / "v").glob("*/_prepared/*.pickle"))
    assert len(prepared) == len(RUNS)
    prepared[-1].write_bytes(b"not a pickle")   # the last unit's replay fails
    err = finish()
    assert slow.returncode == 1 and "retag failed" in err, err[-2000:]
    assert not list((out / "views" / "v").glob("*/_prepared"))
    assert not (out / "views" / "v" / "_view.json").exists()


def test_a_read_whose_pointer_changed_meanwhile_reads_again(world, out):
    assert retag(world / "a.yaml", out, "--name", "v") == 0
    first = dataset.read_view(out, "v")
    assert retag(world / "b.yaml", out, "--name", "v", "--replace") == 0
    second, version = views.read_pointer(str(out), "v")
    roots = []

    def read(root):
        roots.append(root)
        if len(roots) == 1:   # a retag publishes while this read lists the generation
            views.publish(str(out), views.ViewPointer(**first), version)
        return root

    assert dataset._in_view(out, "v", None, read).endswith(first["generation"])
    assert [r.rsplit("/", 1)[-1] for r in roots] == [second.generation, first["generation"]]


def test_dry_run_counts_only_the_stories_of_entries_in_range(world, out, capsys):
    live = dataset.read_stories(out)
    entries = dataset.read_entries(out, run_id="r1", columns=["feed_url", "fetched_at"])
    since = entries.groupby("feed_url").fetched_at.min().max()    # r1's later feed only
    inside = live[(live.fetched_at >= since)]
    assert 0 < len(inside) < len(live)
    assert retag(world / "b.yaml", out, "--dry-run", "--since", since.isoformat()) == 0
    printed = capsys.readouterr().out
    counts = {line.split()[0]: line.split()[1:] for line in printed.splitlines() if line.startswith("  ")}
    assert counts["(stories)"][0] == f"{len(inside):,}", printed
    assert counts["dprk"][0] == f"{sum('dprk' in t for t in inside.topics):,}", printed


def test_the_windows_a_killed_job_left_are_replayed_after_recovery(world, tmp_path):
    from transforms import phases

    out = tmp_path / "out"
    signal_file = tmp_path / "paused"
    with FeedServer() as server:
        runs_over_snapshots(server, tmp_path, world / "a.yaml", out, snapshots=SNAPSHOTS[:1], run_ids=RUNS[:1])
        for path, body in SNAPSHOTS[1].items():
            server.add(path, body.replace("</channel>", NEW_DPRK + "</channel>"))
        env = dict(os.environ, PYTHONPATH=str(ROOT), **{phases.PAUSE_AT: phases.WRITE,
                                                         phases.PAUSE_SIGNAL: str(signal_file)})
        job = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "--feeds", str(tmp_path / "feeds.txt"), "--topics",
             str(world / "a.yaml"), "--output", str(out), "--run-id", "job", "--runner", "DirectRunner",
             "--allow-private-addresses", "127.0.0.1", "--streaming", "--poll-interval", "2",
             "--duration", "3", "--window", "60", "--quiet"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not signal_file.exists() and job.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert signal_file.exists(), job.stderr.read()[-3000:] if job.poll() is not None else "no pause"
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        units = {p.name.rsplit("-", 1)[0] for p in (out / "entries").rglob("job-w*.parquet")}
        assert units, "the killed job archived nothing"
        assert not list((out / "_state" / "seen").glob("job-w*.parquet"))   # no window committed
        # the next run recovers the job: its windows are committed under "job"
        runs_over_snapshots(server, tmp_path, world / "a.yaml", out, snapshots=SNAPSHOTS[2:], run_ids=RUNS[2:])
    assert "job" in dataset.committed_units(out)
    assert retag(world / "b.yaml", out, "--name", "b") == 0
    pointer = dataset.read_view(out, "b")
    assert set(units) <= set(pointer["runs"]) and not pointer["skipped"], pointer
    view = dataset.read_stories(out, view="b")
    assert "Pyongyang holds party congress" in set(view.title)


def test_a_replayed_streaming_job_writes_what_the_live_job_wrote(world, tmp_path):
    # A bounded streaming job with rules B, then a retag of its archive with
    # the same rules B: the view holds the rows the live job wrote, run_id
    # included (the job's id, not its window unit's), in files named as the
    # job named them.
    out = tmp_path / "out"
    with FeedServer() as server:
        feeds = tmp_path / "feeds.txt"
        feeds.write_text("".join(server.url(path) + "\n" for path in SNAPSHOTS[0]))
        for path, body in SNAPSHOTS[0].items():
            server.add(path, body)
        assert run(feeds, world / "b.yaml", out, "job", "--streaming", "--poll-interval", "2",
                   "--duration", "3", "--window", "60", "--host-gap", "0") == 0
    assert retag(world / "b.yaml", out, "--name", "same") == 0
    live = dataset.read_stories(out)
    view = dataset.read_stories(out, view="same")
    assert set(live.run_id) == {"job"} and len(live) > 0
    pd.testing.assert_frame_equal(rows(view), rows(live))
    pointer = dataset.read_view(out, "same")
    assert pointer["runs"] and all(u.startswith("job-w") for u in pointer["runs"])   # replayed by window
    generation = pointer["generation"]
    assert [f.split("/")[-1] for f in files_under(out / "views" / "same" / generation / "stories")] == \
        [f.split("/")[-1] for f in files_under(out / "stories")]
