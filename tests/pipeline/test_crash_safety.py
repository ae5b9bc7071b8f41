"""Crash safety: a run killed with SIGKILL while it writes leaves no partial
Parquet file visible, and re-running it with the same --run-id ends with each
row exactly once: nothing duplicated, nothing lost, nothing stale.

Between the attempts every story's date moves by 10,000 days (as if the feeds
changed, or fetched_at crossed midnight), so no file the killed attempt
finished is rewritten by the second: without the re-run's clean-up its rows
would stay next to the new ones.
"""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FEEDS, ITEMS = 12, 50  # 600 stories, each on a date of its own: 600 files to write
START = datetime(2001, 1, 1, 12, tzinfo=timezone.utc)
TOPICS = "topics:\n  - name: dprk\n    query: Korea\n"


def feed(n: int, shift_days: int) -> str:
    items = []
    for i in range(ITEMS):
        k = n * ITEMS + i
        published = format_datetime(START + timedelta(days=k + shift_days), usegmt=True)
        items.append(f"<item><title>Korea report number {k}</title>"
                     f"<link>https://crash.example.org/{k}</link>"
                     f"<description>The talks on the Korean peninsula went on for a day, number {k}."
                     f"</description><pubDate>{published}</pubDate></item>")
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
            f'{"".join(items)}</channel></rss>')


def serve(server, shift_days: int) -> None:
    for n in range(FEEDS):
        server.add(f"/feed{n}.xml", feed(n, shift_days))


def visible_files(out: Path):
    return [Path(folder) / name for folder, _, names in os.walk(out) for name in names
            if not name.startswith(".")]


def hidden_files(out: Path):
    return [Path(folder) / name for folder, _, names in os.walk(out) for name in names
            if name.startswith(".")]


def kill_when(proc, out: Path, condition, timeout_s=240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{proc.stderr.read()[-2000:]}")
        if condition(out):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the run never reached the kill point")


def writing_a_temporary_file(out: Path) -> bool:
    # A data file's temporary: the run stores its rules (_rules/) before it
    # opens its marker, so a kill there would test something else.
    return any(p.name.endswith(".inprogress") and p.relative_to(out).parts[0] in DATA_FOLDERS
               for p in hidden_files(out))


DATA_FOLDERS = ("stories", "fetches", "errors", "entries")


def some_stories_written(out: Path) -> bool:
    return len(visible_files(out / "stories")) >= 5


@pytest.mark.parametrize("kill_point", [writing_a_temporary_file, some_stories_written],
                         ids=lambda f: f.__name__)
def test_killed_run_rerun_with_the_same_id_has_every_row_once(kill_point, feed_server, tmp_path, capsys):
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("".join(feed_server.url(f"/feed{n}.xml") + "\n" for n in range(FEEDS)))
    topics = tmp_path / "topics.yaml"
    topics.write_text(TOPICS)
    out, reference = tmp_path / "out", tmp_path / "reference"
    args = ["run", "--feeds", str(feeds), "--topics", str(topics), "--runner", "DirectRunner",
            "--allow-private-addresses", "127.0.0.1"]

    serve(feed_server, shift_days=0)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args, "--output", str(out),
                             "--run-id", "crash"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: SIGKILL it all
    kill_when(proc, out, kill_point)
    assert proc.returncode == -signal.SIGKILL

    # What readers see after the crash: whole files only.
    finished = [p for p in visible_files(out) if p.suffix == ".parquet"]
    for path in finished:
        pq.read_metadata(path)
    # ... and no state that vouches for them: the run is still marked open
    assert (out / "_state" / "runs" / "crash.json").exists()
    assert not (out / "_state" / "seen").exists()
    if kill_point is some_stories_written:
        assert len(visible_files(out / "stories")) >= 5  # the stale files the re-run must remove

    serve(feed_server, shift_days=10_000)
    assert main([*args, "--output", str(out), "--run-id", "crash"]) == 0
    rerun_summary = capsys.readouterr().out
    assert main([*args, "--output", str(reference), "--run-id", "crash"]) == 0
    capsys.readouterr()

    def rows(folder, kind, key):
        return pd.read_parquet(folder / kind).sort_values(key).reset_index(drop=True)

    stories = rows(out, "stories", "story_id")
    assert len(stories) == FEEDS * ITEMS and stories["story_id"].is_unique
    expected = rows(reference, "stories", "story_id")
    compared = ["story_id", "title", "published_at", "date"]
    pd.testing.assert_frame_equal(stories[compared], expected[compared])
    assert (stories["date"].astype(str) > "2028").all()  # only the second attempt's dates
    assert len(rows(out, "fetches", "feed_url")) == FEEDS
    # the killed attempt's temporaries are gone too (the lease's lock file stays, by design)
    assert [p.name for p in hidden_files(out)] == [".lease.json.lock"]
    if finished:
        assert "replaced run crash: removed" in rerun_summary
