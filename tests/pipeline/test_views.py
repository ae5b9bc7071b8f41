"""`newswatch views`: listing the views `newswatch retag` made and deleting
one (pipeline/views_command.py, pipeline/views.py). A real run over feeds
on 127.0.0.1, real retags, real files read back."""
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import dataset, views
from pipeline.cli import main
from tests.pipeline.test_retag import RULES_A, RULES_B, SNAPSHOTS, retag, runs_over_snapshots
from tests.support.feedserver import FeedServer
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """OUT after two runs with rules A, with two views: "b" (rules B, the
    whole archive) and "a-first" (rules A, the first day only)."""
    folder = tmp_path_factory.mktemp("views")
    (folder / "a.yaml").write_text(RULES_A)
    (folder / "b.yaml").write_text(RULES_B)
    out = folder / "out"
    with FeedServer() as server:
        runs_over_snapshots(server, folder, folder / "a.yaml", out, snapshots=SNAPSHOTS[:2], run_ids=("r1", "r2"))
    assert retag(folder / "b.yaml", out, "--name", "b") == 0
    day = dataset.read_entries(out, columns=["fetched_at"]).fetched_at.min().date()
    assert retag(folder / "a.yaml", out, "--name", "a-first", "--since", str(day), "--until", str(day)) == 0
    return folder


def text(value):
    return None if pd.isna(value) else value   # missing text is NaN in pandas' str dtype


@pytest.fixture
def out(made, copy_of):
    return copy_of(made / "out")


def test_list_views_gives_each_view_from_its_pointer(out):
    frame = dataset.list_views(out)
    assert list(frame.name) == ["a-first", "b"]
    for row in frame.itertuples(index=False):
        pointer = dataset.read_view(out, row.name)
        assert (row.topics_version, row.generation, text(row.since), text(row.until)) == (
            pointer["topics_version"], pointer["generation"], pointer["since"], pointer["until"])
        assert row.stories == len(dataset.read_stories(out, view=row.name)) == pointer["counts"]["stories"]
        assert row.units == len(pointer["runs"]) and row.unpublished == 0
        assert row.created_at.isoformat().replace("+00:00", "Z").startswith(pointer["created_at"][:19])
        assert os.path.isdir(row.path) and row.path.endswith(f"{row.generation}/stories")
    b = frame.set_index("name").loc["b"]
    assert pd.isna(b.since) and pd.isna(b.until) and b.units == 2
    assert not pd.isna(frame.set_index("name").loc["a-first"].since)


def test_list_views_of_an_output_without_views_is_empty_with_its_columns(made, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(made / "out", out, ignore=shutil.ignore_patterns("views"))
    frame = dataset.list_views(out)
    assert frame.empty and list(frame.columns) == [f.name for f in dataset.VIEWS_SCHEMA]


def test_views_list_prints_a_line_per_view_and_json(out, capsys):
    assert main(["views", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    frame = dataset.list_views(out).set_index("name")
    assert lines[0].split() == ["name", "topics_version", "generation", "published", "since", "until",
                                "units", "stories"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [name, frame.loc[name].topics_version, frame.loc[name].generation] for name in ("a-first", "b")]
    assert main(["views", "list", "--json", "--output", str(out)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in records] == ["a-first", "b"]
    assert records[1]["stories"] == int(frame.loc["b"].stories) and records[1]["since"] is None


def test_delete_removes_the_pointer_then_every_generation(out, capsys):
    assert retag(_rules(out, "b"), out, "--name", "b", "--replace") == 0   # two generations: the view's and the one it replaced
    capsys.readouterr()
    before = dataset.read_view(out, "b")
    assert len(views.generations(str(out), "b")) == 2
    assert main(["views", "delete", "b", "--output", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"view b deleted (generation {before['generation']}): 2 generations removed" in said
    with pytest.raises(FileNotFoundError, match="no view 'b'"):
        dataset.read_stories(out, view="b")
    assert views.generations(str(out), "b") == []
    assert not (out / "views" / "b" / "_view.json").exists()
    assert list(dataset.list_views(out).name) == ["a-first"]
    assert len(dataset.read_stories(out, view="a-first")) > 0          # the other view is untouched
    # the name can be used again
    assert retag(_rules(out, "a-first"), out, "--name", "b") == 0
    assert list(dataset.list_views(out).name) == ["a-first", "b"]


def _rules(out, name):
    """The topics file a view was made with, as the view keeps it."""
    pointer = dataset.read_view(out, name)
    path = out / "views" / name / pointer["topics_file"]
    copy = out.parent / f"{name}.yaml"
    copy.write_bytes(path.read_bytes())
    return copy


def test_delete_of_an_unknown_name_is_one_line_and_exit_2(out, capsys):
    assert main(["views", "delete", "nothing", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"newswatch: error: views delete: no view nothing in {out}"]
    assert main(["views", "delete", "../b", "--output", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["views", "delete", "b", "--output", str(out / "missing")]) == 2
    assert "no output at" in capsys.readouterr().err
    assert list(dataset.list_views(out).name) == ["a-first", "b"]


def killed_deletion(out, name, remove=None):
    """The pointer of `name` as a deletion killed after its tombstone leaves
    it: a tombstone listing `remove` (default: the view's generations)."""
    from datetime import datetime, timezone

    from transforms.state import conditional

    path = views.pointer_path(str(out), name)
    found = conditional.read(path)
    remove = views.generations(str(out), name) if remove is None else remove
    assert conditional.replace(path, views.tombstone(name, datetime.now(timezone.utc), remove), found.version)
    return path


def test_a_view_being_deleted_reads_as_absent_and_a_second_delete_finishes(out, capsys):
    generations = views.generations(str(out), "b")
    path = killed_deletion(out, "b")
    with pytest.raises(FileNotFoundError, match=r"\(it is being deleted\)"):
        dataset.read_stories(out, view="b")
    assert list(dataset.list_views(out).name) == ["a-first"]
    assert views.generations(str(out), "b") == generations
    assert main(["views", "delete", "b", "--output", str(out)]) == 0
    assert "(an earlier deletion finished): 1 generation removed" in capsys.readouterr().out
    assert views.generations(str(out), "b") == [] and not os.path.exists(path)


def test_a_tombstone_without_its_list_is_one_line_and_exit_2(out, capsys):
    from transforms.state import conditional

    path = views.pointer_path(str(out), "b")
    found = conditional.read(path)
    assert conditional.replace(path, json.dumps({"deleted": True, "name": "b"}).encode(), found.version)
    assert main(["views", "delete", "b", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lists no generations to remove" in err
    assert len(views.generations(str(out), "b")) == 1                   # nothing guessed, nothing removed


def test_a_retag_that_read_the_pointer_before_a_delete_cannot_publish(out, tmp_path):
    # The retag stops after reading the pointer; the view is deleted; the
    # retag goes on: it must fail and not bring back a view over the deletion.
    from transforms import phases

    signal_file, resume = tmp_path / "paused", tmp_path / "resume"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{phases.PAUSE_AT: "retag-pointer-read",
                                                     phases.PAUSE_SIGNAL: str(signal_file),
                                                     phases.PAUSE_UNTIL: str(resume)})
    rules = _rules(out, "b")
    job = subprocess.Popen([sys.executable, "-m", "pipeline", "retag", "--topics", str(rules), "--output",
                            str(out), "--name", "b", "--replace", "--runner", "DirectRunner", "--quiet"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        phases_wait(signal_file, job)
        assert main(["views", "delete", "b", "--output", str(out)]) == 0
        resume.write_text("go")
        stdout, stderr = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 1 and "view b was deleted meanwhile" in stderr, stderr[-2000:]
    assert not (out / "views" / "b" / "_view.json").exists()
    assert list(dataset.list_views(out).name) == ["a-first"]


def paused_delete(out, tmp_path, phase):
    """`newswatch views delete b` in a subprocess, paused at `phase`
    (pipeline/views.py); returns it and its resume function."""
    from transforms import phases

    signal_file, resume = tmp_path / f"{phase}.paused", tmp_path / f"{phase}.resume"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{phases.PAUSE_AT: phase, phases.PAUSE_SIGNAL: str(signal_file),
                                                     phases.PAUSE_UNTIL: str(resume)})
    job = subprocess.Popen([sys.executable, "-m", "pipeline", "views", "delete", "b", "--output", str(out)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    phases_wait(signal_file, job)

    def finish():
        resume.write_text("go")
        try:
            return job.communicate(timeout=120)
        finally:
            if job.poll() is None:
                job.kill()
    return job, finish


def test_while_the_tombstone_stands_generations_stay_readers_see_none_and_a_retag_cannot_publish(
        out, tmp_path, capsys):
    before = views.generations(str(out), "b")
    rules = _rules(out, "b")
    job, finish = paused_delete(out, tmp_path, views.DELETE_TOMBSTONED)
    try:
        assert views.generations(str(out), "b") == before                    # nothing removed yet
        with pytest.raises(FileNotFoundError, match=r"\(it is being deleted\)"):
            dataset.read_stories(out, view="b")
        assert retag(rules, out, "--name", "b") == 1                           # it read the tombstone
        assert "view b is being deleted" in capsys.readouterr().err
        started = [g for g in views.generations(str(out), "b") if g not in before]
        assert len(started) == 1
    finally:
        stdout, stderr = finish()
    assert job.returncode == 0, stderr[-2000:]
    assert f"1 generation removed; kept {started[0]}" in stdout
    assert views.generations(str(out), "b") == started                         # the retag's, not listed
    assert not (out / "views" / "b" / "_view.json").exists()


def test_a_retag_that_publishes_between_the_read_and_the_tombstone_wins_and_nothing_is_deleted(out, tmp_path):
    job, finish = paused_delete(out, tmp_path, views.DELETE_POINTER_READ)
    try:
        assert retag(_rules(out, "b"), out, "--name", "b", "--replace") == 0
        published = dataset.read_view(out, "b")
        generations = views.generations(str(out), "b")
    finally:
        stdout, stderr = finish()
    assert job.returncode == 1, stderr[-2000:]
    assert "view b was published by a retag meanwhile: nothing deleted" in stderr
    assert dataset.read_view(out, "b") == published
    assert views.generations(str(out), "b") == generations and len(generations) == 2
    assert len(dataset.read_stories(out, view="b")) == published["counts"]["stories"]


def test_a_delete_that_loses_the_race_to_another_delete_finishes_it_or_says_so(out, tmp_path):
    # Another deletion's tombstone stands: this one finishes it from its list.
    job, finish = paused_delete(out, tmp_path, views.DELETE_POINTER_READ)
    try:
        path = killed_deletion(out, "b")
    finally:
        stdout, stderr = finish()
    assert job.returncode == 0, stderr[-2000:]
    assert "view b deleted (an earlier deletion finished): 1 generation removed" in stdout
    assert views.generations(str(out), "b") == [] and not os.path.exists(path)
    # The other deletion has finished: nothing left to delete, and it says so.
    assert retag(_rules(out, "a-first"), out, "--name", "b") == 0
    again = tmp_path / "again"
    again.mkdir()
    job, finish = paused_delete(out, again, views.DELETE_POINTER_READ)
    try:
        assert main(["views", "delete", "b", "--output", str(out)]) == 0
    finally:
        stdout, stderr = finish()
    assert job.returncode == 2 and stderr.strip().splitlines() == [
        f"newswatch: error: views delete: no view b in {out} (another `views delete` removed it meanwhile)"]


def test_a_resumed_delete_leaves_a_pointer_made_after_its_tombstone_went(out, tmp_path):
    # B read a killed deletion's tombstone; A finishes that deletion; a retag
    # makes the view anew; B goes on: its tombstone removal, at the version
    # it read, must not remove the new pointer.
    killed_deletion(out, "b")
    job, finish = paused_delete(out, tmp_path, views.DELETE_POINTER_READ)
    try:
        assert main(["views", "delete", "b", "--output", str(out)]) == 0      # A
        assert retag(_rules(out, "a-first"), out, "--name", "b") == 0
        remade = dataset.read_view(out, "b")
    finally:
        stdout, stderr = finish()
    assert job.returncode == 0, stderr[-2000:]
    assert "0 generations removed" in stdout
    assert dataset.read_view(out, "b") == remade
    assert len(dataset.read_stories(out, view="b")) == remade["counts"]["stories"]


def phases_wait(signal_file, job, seconds=120):
    import time

    deadline = time.monotonic() + seconds
    while not signal_file.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert signal_file.exists(), job.stderr.read()[-3000:] if job.poll() is not None else "no pause"


@pytest.fixture(params=["local", "gs", "s3"])
def store(request, tmp_path):
    """(OUT, beam options) on each filesystem: gs:// on the emulator whole
    runs use (fake-gcs-server cannot batch-delete, as deleting a generation
    does), s3:// on moto serving one request at a time (tests/conftest.py)."""
    import uuid

    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    if request.param == "local":
        return str(tmp_path / "out"), []
    server = request.getfixturevalue({"gs": "gcs", "s3": "serial_s3"}[request.param])
    beam_args = server.use_from_beam()
    FileSystems.set_options(beam.options.pipeline_options.PipelineOptions(beam_args))
    return f"{request.param}://{server.bucket}/views-{uuid.uuid4().hex[:8]}/out", beam_args


def test_delete_on_each_filesystem_removes_what_it_listed_and_keeps_a_generation_begun_since(
        store, capsys, monkeypatch, tmp_path):
    # Generation ids carry times; a later one made by a machine whose clock
    # is behind must still be kept, and an orphan from the future removed:
    # the deletion goes by its listing, not by clocks.
    import threading
    from datetime import datetime, timedelta, timezone

    from apache_beam.io.filesystems import FileSystems

    from transforms import phases

    out, beam_args = store
    now = datetime.now(timezone.utc)
    orphan, previous, current = (views.new_generation(now + timedelta(hours=h)) for h in (3, -2, -1))
    later = views.new_generation(now - timedelta(hours=5))          # made after the listing, on a slow clock

    def make(generation):
        root = views.generation_dir(out, "v", generation)
        for path in (f"{root}/{views.TOPICS_FILE}", f"{root}/stories/date=2021-09-28/r1-000.parquet"):
            if "://" not in out:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with FileSystems.create(path) as handle:
                handle.write(b"not read here")

    for generation in (orphan, previous, current):
        make(generation)
    views.publish(out, views.ViewPointer(name="v", generation=current, topics_version="0123456789abcdef",
                                         topics_file=f"{current}/{views.TOPICS_FILE}", topics_text="",
                                         source_output=out, previous=previous, runs=["r1"],
                                         created_at=now.isoformat().replace("+00:00", "Z"),
                                         counts={"entries": 5, "stories": 2}), None)
    frame = dataset.list_views(out)
    assert list(frame.name) == ["v"] and frame.generation.item() == current
    assert (frame.stories.item(), frame.units.item(), frame.unpublished.item()) == (2, 1, 1)
    capsys.readouterr()
    signal_file, resume = tmp_path / "paused", tmp_path / "resume"
    monkeypatch.setenv(phases.PAUSE_AT, views.DELETE_TOMBSTONED)
    monkeypatch.setenv(phases.PAUSE_SIGNAL, str(signal_file))
    monkeypatch.setenv(phases.PAUSE_UNTIL, str(resume))
    codes = []
    deleting = threading.Thread(target=lambda: codes.append(main(["views", "delete", "v", "--output", out,
                                                                  *beam_args])))
    deleting.start()
    try:
        for _ in range(1200):
            if signal_file.exists() or not deleting.is_alive():
                break
            deleting.join(0.05)
        assert signal_file.exists()
        make(later)
    finally:
        resume.write_text("go")
        deleting.join(120)
    assert codes == [0]
    said = capsys.readouterr().out
    assert f"view v deleted (generation {current}): 3 generations removed; kept {later}" in said
    assert views.generations(out, "v") == [later]
    with pytest.raises(FileNotFoundError, match="no view 'v'"):
        dataset.read_view(out, "v")
    assert dataset.list_views(out).empty
    assert main(["views", "delete", "v", "--output", out, *beam_args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no view v in" in err and "holds 1 unpublished generation" in err


def test_views_json_belongs_to_the_listing(out, capsys):
    for argv in (["views", "--json", "delete", "b", "--output", str(out)],
                 ["rules", "--json", "show", "0123456789abcdef", "--output", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--json is for list only" in err[0], err
    assert list(dataset.list_views(out).name) == ["a-first", "b"]


def test_generations_made_within_one_second_keep_their_order(tmp_path):
    # Two retags of a name often start within one second: the one that
    # publishes removes the generation begun a moment before it and keeps
    # the one begun a moment after. Ids made without microseconds still
    # count, from the start of their second.
    from datetime import datetime, timedelta, timezone

    out = str(tmp_path / "out")
    now = datetime(2026, 12, 6, 0, 1, 35, 500000, tzinfo=timezone.utc)
    before, mine, after = (views.new_generation(now + timedelta(microseconds=m)) for m in (-300000, 0, 300000))
    older, same_second = "g20261206T000134Z-0123abcd", "g20261206T000135Z-89abcdef"
    for generation in (after, mine, same_second, before, older):
        os.makedirs(views.stories_dir(out, "v", generation))
        with open(f"{views.generation_dir(out, 'v', generation)}/{views.TOPICS_FILE}", "w") as handle:
            handle.write("")
    assert all(views.is_generation(g) for g in (before, mine, after, older, same_second))
    assert views.generations(out, "v") == [older, same_second, before, mine, after]
    assert views.remove_superseded(out, "v", mine) == [older, same_second, before]
    assert views.generations(out, "v") == [mine, after]
