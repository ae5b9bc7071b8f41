"""The rules archive and `newswatch rules`: each run stores the topics file it
used under OUT/_rules/<topics_version>.yaml, once per version, byte for byte;
`newswatch rules` lists the versions with their runs and prints a stored
file. Whole runs over HTTP on 127.0.0.1, on local disk and on gs://."""
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import dataset
from pipeline.cli import main
from tests.support.feedserver import FeedServer
from tests.support.paths import ROOT
from tests.support.sample import TOPICS, run, serve_sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Rules A as a person writes them: comments, blank lines and non-ASCII text,
# none of which changes topics_version, all of which the archive keeps.
RULES_A = ("# Desk rules, reviewed every Monday.\n\n" + TOPICS
           + "  # 북한: the Korean name, for the Seoul feeds\n").encode("utf-8")
RULES_B = RULES_A + b"  - name: hotline\n    query: hotline\n"


def rules_files(out):
    return sorted(p.name for p in (out / "_rules").iterdir())


def version_of_run(out, run_id):
    runs = dataset.read_runs(out, run_id=run_id)
    return runs.topics_version.item()


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """One output: runs r1 and r2 with rules A, r3 with rules B; what the
    archive looked like between the runs."""
    folder = tmp_path_factory.mktemp("history")
    out = folder / "out"
    seen = {}
    with FeedServer() as server:
        feeds, _ = serve_sample(server, folder)
        (folder / "a.yaml").write_bytes(RULES_A)
        (folder / "b.yaml").write_bytes(RULES_B)
        assert run(feeds, folder / "a.yaml", out, "--run-id", "r1", "--quiet") == 0
        version_a = version_of_run(out, "r1")
        stored_a = out / "_rules" / f"{version_a}.yaml"
        seen["after r1"] = (stored_a.stat().st_mtime_ns, stored_a.read_bytes(), rules_files(out))
        assert run(feeds, folder / "a.yaml", out, "--run-id", "r2", "--quiet") == 0
        seen["after r2"] = (stored_a.stat().st_mtime_ns, stored_a.read_bytes(), rules_files(out))
        assert run(feeds, folder / "b.yaml", out, "--run-id", "r3", "--quiet") == 0
    return out, version_a, version_of_run(out, "r3"), seen


def test_each_version_is_stored_once_as_given(history):
    out, a, b, seen = history
    assert a != b
    assert rules_files(out) == sorted([f"{a}.yaml", f"{b}.yaml"])
    assert (out / "_rules" / f"{a}.yaml").read_bytes() == RULES_A      # comments and all
    assert (out / "_rules" / f"{b}.yaml").read_bytes() == RULES_B
    # the second run with A found its file and left it alone
    assert seen["after r1"] == seen["after r2"]
    assert seen["after r1"][2] == [f"{a}.yaml"]
    # the archive is named by the versions the stories and runs carry (r3 wrote no new story)
    assert set(dataset.read_stories(out).topics_version) == {a}
    assert list(dataset.read_runs(out).topics_version) == [a, a, b]


def test_the_rules_are_stored_before_the_run_writes_anything(history):
    out, a, b, _ = history
    rules_b = (out / "_rules" / f"{b}.yaml").stat().st_mtime_ns
    written_by_r3 = [p for kind in ("stories", "fetches", "runs") for p in (out / kind).rglob("r3*.parquet")]
    assert written_by_r3 and all(rules_b <= p.stat().st_mtime_ns for p in written_by_r3)


def test_the_listing_gives_each_version_its_runs(history, capsys):
    out, a, b, _ = history
    runs = dataset.read_runs(out).set_index("run_id")
    frame = dataset.read_rules(out)
    assert list(frame.version) == [a, b]
    assert list(frame.runs) == [2, 1]
    assert list(frame.first_run) == ["r1", "r3"] and list(frame.last_run) == ["r2", "r3"]
    assert list(frame.first_run_at) == [runs.started_at["r1"], runs.started_at["r3"]]
    assert list(frame.last_run_at) == [runs.started_at["r2"], runs.started_at["r3"]]
    assert list(frame.path) == [f"{out}/_rules/{a}.yaml", f"{out}/_rules/{b}.yaml"]

    capsys.readouterr()
    assert main(["rules", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = {run_id: runs.started_at[run_id].strftime("%Y-%m-%dT%H:%M:%SZ") for run_id in ("r1", "r2", "r3")}
    assert lines[0].split() == ["version", "runs", "first", "run", "started", "last", "run", "started",
                                "stored", "file"]
    assert lines[1].split() == [a, "2", "r1", at["r1"], "r2", at["r2"], f"_rules/{a}.yaml"]
    assert lines[2].split() == [b, "1", "r3", at["r3"], "r3", at["r3"], f"_rules/{b}.yaml"]
    assert lines[3:] == ["", "2 versions"]
    # the columns line up
    assert len({line.index("_rules/") for line in lines[1:3]}) == 1

    assert main(["rules", "list", "--output", str(out), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["version"], r["runs"], r["first_run"], r["last_run"], r["last_run_at"]) for r in records] == [
        (a, 2, "r1", "r2", at["r2"]), (b, 1, "r3", "r3", at["r3"])]


def test_show_prints_the_stored_file_byte_for_byte(history):
    out, a, b, _ = history
    shown = subprocess.run([sys.executable, "-m", "pipeline", "rules", "show", a, "--output", str(out)],
                           cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr.decode()[-2000:]
    assert shown.stdout == RULES_A
    by_prefix = subprocess.run([sys.executable, "-m", "pipeline", "rules", "--output", str(out), "show", b[:8]],
                               cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                               timeout=120)
    assert by_prefix.returncode == 0 and by_prefix.stdout == RULES_B


def test_versions_without_a_run_or_without_a_file_are_listed_as_such(history, tmp_path, capsys):
    out, a, b, _ = history
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "_rules" / f"{b}.yaml").unlink()                           # runs used it, no file
    unused = "0123456789abcdef"
    (copy / "_rules" / f"{unused}.yaml").write_bytes(RULES_A)          # a file, no finished run
    (copy / "_rules" / f".{unused}.yaml.1234.inprogress").write_bytes(b"half")   # not a version

    frame = dataset.read_rules(copy)
    assert list(frame.version) == [a, b, unused] and list(frame.runs) == [2, 1, 0]
    assert frame.path.isna().tolist() == [False, True, False]
    assert frame.first_run.isna().tolist() == [False, False, True]

    capsys.readouterr()
    assert main(["rules", "--output", str(copy)]) == 0
    lines = capsys.readouterr().out.splitlines()
    r3 = dataset.read_runs(copy, run_id="r3").started_at.item().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lines[2].split() == [b, "1", "r3", r3, "r3", r3, "missing", "from", "_rules/"]
    assert lines[3].split() == [unused, "0", "-", "-", "-", "-", f"_rules/{unused}.yaml", "(no", "finished", "run)"]
    assert lines[5] == ("3 versions: 1 with no finished run (stored by a run still going, failed, or handed "
                        "to Dataflow); 1 whose file is missing from _rules/ (used by runs before the rules "
                        "archive, or deleted)")

    assert main(["rules", "show", b, "--output", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"version {b} was used by runs of {copy} but its file is not stored" in err


def test_the_next_run_removes_what_a_run_killed_while_storing_its_rules_left(history, feed_server, tmp_path,
                                                                            capsys):
    # A run killed between writing its rules file's temporary and renaming
    # it leaves `.<version>.yaml.<random>.inprogress`; one an hour old is
    # nobody's, one just written may be a running writer's.
    out, a, b, _ = history
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    unused = "0123456789abcdef"
    left = copy / "_rules" / f".{unused}.yaml.{'a' * 32}.inprogress"
    left.write_bytes(b"topics:\n  - name: half")
    hour_ago = left.stat().st_mtime - 3600
    os.utime(left, (hour_ago, hour_ago))
    fresh = copy / "_rules" / f".{unused}.yaml.{'b' * 32}.inprogress"
    fresh.write_bytes(b"topics:\n")
    capsys.readouterr()
    assert main(["rules", "--output", str(copy)]) == 0                  # the listing ignores both
    assert unused not in capsys.readouterr().out and list(dataset.read_rules(copy).version) == [a, b]
    feeds, _ = serve_sample(feed_server, tmp_path)
    (tmp_path / "a.yaml").write_bytes(RULES_A)
    assert run(feeds, tmp_path / "a.yaml", copy, "--run-id", "r4", "--quiet") == 0
    assert not left.exists() and fresh.exists()
    assert rules_files(copy) == sorted([f"{a}.yaml", f"{b}.yaml", fresh.name])


def test_an_output_without_rules_still_reads_and_reports(history, tmp_path, capsys):
    out, a, b, _ = history
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "_rules")
    stories = dataset.read_stories(copy)
    assert len(stories) == len(dataset.read_stories(out)) > 0
    assert len(pd.read_parquet(copy / "stories")) == len(stories)
    assert list(dataset.read_runs(copy).run_id) == ["r1", "r2", "r3"]
    assert main(["report", "--output", str(copy), "--csv", str(tmp_path / "csv"), "--quiet"]) == 0
    assert (tmp_path / "csv" / "stories_per_day.csv").exists()
    frame = dataset.read_rules(copy)
    assert list(frame.version) == [a, b] and frame.path.isna().all() and list(frame.runs) == [2, 1]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nowhere", "no output at {out}"),
    (lambda tmp: (tmp / "photos").mkdir() or tmp / "photos",
     "{out} is not a newswatch output (it has none of runs/, stories/, fetches/, errors/, entries/, views/, _state/, _rules/)"),
])
def test_rules_on_something_that_is_not_an_output_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    out = make(tmp_path)
    for command in (["rules"], ["rules", "list"], ["rules", "show", "0123456789abcdef"]):
        assert main([*command, "--output", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"newswatch: error: rules: {message.format(out=out)}\n"
    assert main(["rules"]) == 2
    assert capsys.readouterr().err == "newswatch: error: rules: give --output OUT\n"


def test_a_streaming_run_stores_its_rules(feed_server, tmp_path):
    feeds, _ = serve_sample(feed_server, tmp_path)
    (tmp_path / "a.yaml").write_bytes(RULES_A)
    out = tmp_path / "out"
    assert run(feeds, tmp_path / "a.yaml", out, "--streaming", "--poll-interval", "1", "--duration", "2",
               "--window", "1", "--host-gap", "0", "--quiet") == 0
    version = dataset.read_runs(out).topics_version.item()
    assert rules_files(out) == [f"{version}.yaml"]
    assert (out / "_rules" / f"{version}.yaml").read_bytes() == RULES_A


def test_a_run_on_gs_stores_its_rules_there(gcs, feed_server, tmp_path, capsys):
    beam_args = gcs.use_from_beam()
    FileSystems.set_options(PipelineOptions(beam_args))
    feeds, _ = serve_sample(feed_server, tmp_path)
    (tmp_path / "a.yaml").write_bytes(RULES_A)
    out = f"gs://{gcs.bucket}/rules-archive/out"
    assert run(feeds, tmp_path / "a.yaml", out, "--run-id", "g1", "--quiet", *beam_args) == 0
    version = dataset.read_runs(out, run_id="g1").topics_version.item()
    stored = FileSystems.match([f"{out}/_rules/*"])[0].metadata_list
    assert [m.path for m in stored] == [f"{out}/_rules/{version}.yaml"]
    with FileSystems.open(stored[0].path, compression_type="uncompressed") as handle:
        assert handle.read() == RULES_A
    capsys.readouterr()
    assert main(["rules", "--output", out, *beam_args]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split()[:3] == [version, "1", "g1"] and listed[1].endswith(f"_rules/{version}.yaml")
    frame = dataset.read_rules(out)
    assert list(frame.path) == [f"{out}/_rules/{version}.yaml"]
