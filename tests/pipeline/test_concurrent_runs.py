"""Runs that overlap on one output: the lease lets one write at a time.

Two `newswatch run` processes started together on one output (local disk;
on gs:// and s3:// the second once the first holds the lease): one runs, the other stops at once with exit code 75 and one
line naming the holder, having written nothing; or, with --wait-for-lease,
waits and then writes nothing twice. The same --run-id twice at once is
refused. A streaming job holds the lease for its lifetime.
"""
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline.cli import EXIT_LEASE_HELD, default_run_id, main
from tests.support.local_feeds import write_feeds, write_topics
from tests.support.paths import ROOT
from transforms.state import lease as lease_module
from transforms.state.lease import Heartbeat, Lease, lease_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FEEDS, ITEMS, DATES = 200, 3, 20   # 600 stories; object stores get fewer (slow emulators)
STORE_FEEDS = 30


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    base = tmp_path_factory.mktemp("concurrent")
    return write_feeds(base / "feeds", FEEDS, ITEMS, DATES), write_topics(base)


@pytest.fixture(scope="module")
def store_config(tmp_path_factory):
    base = tmp_path_factory.mktemp("concurrent-store")
    return write_feeds(base / "feeds", STORE_FEEDS, ITEMS, DATES), write_topics(base)


def start(args, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "tests.support.emulated_cli", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_together(*argvs, env_extra=None, after_lease_of=None):
    """Starts the runs together, or each once the first holds the lease on
    `after_lease_of` (the emulator used for whole gs:// runs ignores
    preconditions, so a same-instant race is tested on the lease itself:
    tests/transforms/state/test_lease.py)."""
    procs = [start(argvs[0], env_extra)]
    if after_lease_of is not None:
        deadline = time.monotonic() + 120
        while not FileSystems.exists(lease_path(after_lease_of)) and time.monotonic() < deadline:
            time.sleep(0.05)
    procs += [start(argv, env_extra) for argv in argvs[1:]]
    return [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]


def read_stories(output: str, store=None) -> pd.DataFrame:
    if store is None:
        return pd.read_parquet(Path(output) / "stories")
    return pd.read_parquet(f"{output.split('://', 1)[1]}/stories", filesystem=store.arrow_fs())


def output_on(scheme, request, tmp_path):
    if scheme == "local":
        return str(tmp_path / "out"), [], None, {}
    store = request.getfixturevalue({"gs": "gcs", "s3": "s3"}[scheme])
    beam_args = store.use_from_beam()
    FileSystems.set_options(beam.options.pipeline_options.PipelineOptions(beam_args))
    env = {"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]} if scheme == "gs" else {}
    folder = request.node.name.replace("[", "-").rstrip("]")
    return f"{scheme}://{store.bucket}/{folder}/out", beam_args, store, env


@pytest.mark.parametrize("scheme", ["local", "gs", "s3"])
def test_two_runs_at_once_one_writes_the_other_stops_with_75(scheme, config, store_config, request, tmp_path):
    feeds, topics = config if scheme == "local" else store_config
    count = (FEEDS if scheme == "local" else STORE_FEEDS) * ITEMS
    output, beam_args, store, env = output_on(scheme, request, tmp_path)
    argv = ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", output,
            "--runner", "DirectRunner", *beam_args]
    results = run_together(argv, argv, env_extra=env, after_lease_of=output if store else None)
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, EXIT_LEASE_HELD], results
    refused = next(err for code, _, err in results if code == EXIT_LEASE_HELD)
    assert len(refused.strip().splitlines()) == 1 and "is leased to run" in refused
    stories = read_stories(output, store)
    assert len(stories) == count and stories.story_id.is_unique
    assert stories.run_id.nunique() == 1


def test_a_waiting_run_runs_after_the_first_and_writes_nothing_twice(config, tmp_path):
    feeds, topics = config
    out = tmp_path / "out"
    argv = ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
            "--runner", "DirectRunner", "--wait-for-lease", "300"]
    results = run_together(argv, argv)
    assert [code for code, _, _ in results] == [0, 0], results
    stories = read_stories(str(out))
    assert len(stories) == FEEDS * ITEMS and stories.story_id.is_unique
    fetches = pd.read_parquet(out / "fetches")
    assert fetches.run_id.nunique() == 2 and len(fetches) == 2 * FEEDS  # both ran, one after the other


def test_a_run_that_waited_takes_its_run_id_when_it_gets_the_lease(config, tmp_path, monkeypatch):
    # Named when it starts, it would carry the id of a moment before the run
    # it waited for ended, which two runs started together may share.
    feeds, topics = config
    out = tmp_path / "out"
    first = Lease(str(out), default_run_id()).acquire()
    released_at = []

    def release_then_sleep(seconds):   # the waiting run's first pause: the holder ends
        if not released_at:
            time.sleep(0.05)   # later by far than ids' millisecond
            released_at.append(datetime.now(timezone.utc))
            first.release()
        time.sleep(seconds)

    monkeypatch.setattr(lease_module, "time", SimpleNamespace(monotonic=time.monotonic, sleep=release_then_sleep,
                                                             time=time.time))
    assert main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--runner", "DirectRunner", "--wait-for-lease", "60"]) == 0
    (run_id,) = pd.read_parquet(out / "fetches").run_id.unique()
    assert released_at and default_run_id(released_at[0]) <= run_id and run_id != first.run_id


def test_the_same_run_id_twice_at_once_is_refused_and_hides_nothing(config, tmp_path):
    feeds, topics = config
    out = tmp_path / "out"
    argv = ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
            "--runner", "DirectRunner", "--run-id", "nightly", "--wait-for-lease", "300"]
    results = run_together(argv, argv)
    assert sorted(code for code, _, _ in results) == [0, EXIT_LEASE_HELD], results
    refused = next(err for code, _, err in results if code == EXIT_LEASE_HELD)
    assert "the same --run-id" in refused
    stories = read_stories(str(out))
    assert len(stories) == FEEDS * ITEMS and stories.story_id.is_unique
    assert pd.read_parquet(out / "fetches").feed_url.nunique() == FEEDS


def test_a_streaming_job_holds_the_lease_for_its_lifetime(config, tmp_path, capsys):
    feeds, topics = config
    out = tmp_path / "out"
    base = ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
            "--runner", "DirectRunner"]
    job = start([*base, "--streaming", "--poll-interval", "2", "--duration", "12", "--window", "4"])
    lease_file = out / "_state" / "lease.json"
    deadline = time.monotonic() + 120
    while not lease_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # past the lease's first heartbeat, into the job's polling
    assert job.poll() is None
    assert main(base) == EXIT_LEASE_HELD
    assert "(streaming" in capsys.readouterr().err
    assert job.wait(timeout=300) == 0, job.stderr.read()[-3000:]
    assert main(base) == 0  # the job released it
    stories = read_stories(str(out))
    assert len(stories) == FEEDS * ITEMS and stories.story_id.is_unique


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_a_run_on_a_leased_object_store_output_writes_nothing(scheme, store_config, request, tmp_path, capsys):
    feeds, topics = store_config
    output, beam_args, store, _ = output_on(scheme, request, tmp_path)
    argv = ["run", "--feeds", str(feeds), "--topics", str(topics), "--output", output,
            "--runner", "DirectRunner", *beam_args]
    holder = Lease(output, "holder", ttl_s=4).acquire()
    with Heartbeat(holder):
        assert main(argv) == EXIT_LEASE_HELD
        assert "is leased to run holder (batch" in capsys.readouterr().err
        written = [m.path for m in FileSystems.match([f"{output}/**"])[0].metadata_list]
        assert written == [f"{output}/_state/lease.json"]
    # Released: a run that waits for it goes ahead.
    assert main(argv + ["--wait-for-lease", "30"]) == 0
    assert len(read_stories(output, store)) == STORE_FEEDS * ITEMS
