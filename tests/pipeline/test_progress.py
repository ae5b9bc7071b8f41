"""Progress lines on stderr (pipeline/progress.py): the reporter on a fake
clock, and whole `newswatch run`s over a slow local feed server, in the
in-memory and the multi_processing DirectRunner, with and without --quiet."""
import io
import os
import re
import subprocess
import sys
import time

import pytest

from pipeline.progress import Progress, RunProgress, add_quiet_option, default_interval
from tests.support.paths import ROOT
from transforms import live_counts


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def reporter(**kwargs):
    clock, stream = FakeClock(), io.StringIO()
    kwargs.setdefault("interval", 5.0)
    return Progress("compact", stream=stream, clock=clock, ticker=False, **kwargs), clock, stream


def test_no_line_before_the_interval_then_at_most_one_per_interval():
    progress, clock, stream = reporter(total=40, fields=("partitions", ("rows", "rows merged")))
    progress.advance(partitions=1, rows=1000)
    clock.now += 4.9
    progress.advance(partitions=1, rows=500)
    assert stream.getvalue() == ""
    clock.now += 0.1
    progress.advance(partitions=1, rows=1500)
    assert stream.getvalue() == "newswatch compact: 3/40 partitions, 3,000 rows merged [5 s]\n"
    clock.now += 4.0
    assert progress.tick() is False
    clock.now += 1.0
    assert progress.tick() is True
    assert stream.getvalue().splitlines()[-1] == "newswatch compact: 3/40 partitions, 3,000 rows merged [10 s]"
    progress.close()
    assert stream.getvalue().splitlines()[-1] == \
        "newswatch compact: done: 3/40 partitions, 3,000 rows merged [10 s]"
    assert progress.lines == 3


def test_short_work_stays_silent_even_at_the_end():
    progress, clock, stream = reporter(total=3, fields=("files",))
    progress.advance(files=3)
    clock.now += 4.0
    progress.close()
    assert stream.getvalue() == "" and progress.lines == 0


def test_work_that_lasted_the_interval_gets_its_last_line_even_without_a_tick():
    progress, clock, stream = reporter(fields=("files",))
    clock.now += 7.0
    progress.advance(files=2)  # a line is due here
    clock.now += 1.0
    progress.close(failed=True)
    assert stream.getvalue().splitlines() == ["newswatch compact: 2 files [7 s]",
                                              "newswatch compact: failed: 2 files [8 s]"]


def test_quiet_prints_nothing_and_starts_no_thread():
    progress, clock, stream = reporter(quiet=True, fields=("files",))
    with progress:
        assert progress._thread is None
        clock.now += 60
        progress.advance(files=1)
    assert stream.getvalue() == "" and progress.lines == 0


def test_counts_named_later_follow_the_fields_and_update_sets_them():
    progress, clock, stream = reporter(fields=("files",))
    progress.advance(files=1, bytes_read=2048)
    progress.update(files=5)
    clock.now += 5
    progress.tick()
    assert stream.getvalue() == "newswatch compact: 5 files, 2,048 bytes read [5 s]\n"


def test_the_ticker_prints_while_the_caller_is_busy_and_reads_its_source():
    stream, seen = io.StringIO(), iter(range(1, 1000))
    with Progress("run", total=9, fields=("feeds",), interval=0.05, stream=stream,
                  read=lambda: {"feeds": min(next(seen), 9)}) as progress:
        deadline = time.monotonic() + 30
        while progress.lines < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # one long step, no advance()
    lines = stream.getvalue().splitlines()
    values = [int(re.search(r": (?:done: )?(\d+)/9 feeds", line).group(1)) for line in lines]
    assert len(lines) >= 4 and lines[-1].startswith("newswatch run: done: ")
    assert values == sorted(values) and values[0] >= 1


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEWSWATCH_PROGRESS_INTERVAL", "0.5")
    assert default_interval() == 0.5
    for bad in ("", "soon", "0", "-1"):
        monkeypatch.setenv("NEWSWATCH_PROGRESS_INTERVAL", bad)
        assert default_interval() == 5.0


def test_quiet_option():
    import argparse

    parser = argparse.ArgumentParser()
    add_quiet_option(parser)
    assert parser.parse_args(["--quiet"]).quiet and not parser.parse_args([]).quiet


def test_live_counts_are_summed_over_processes_and_only_kept_while_a_folder_is_named(monkeypatch):
    from transforms.metrics import counter

    monkeypatch.delenv(live_counts.ENV_DIR, raising=False)
    counter("entries").inc(5)  # no folder: only the Beam counter counts
    with RunProgress(total=None, quiet=False) as run:
        folder = os.environ[live_counts.ENV_DIR]
        counter("entries").inc(3)
        counter("fetch_attempts").inc()
        # another process's file (a multi_processing worker)
        (live_counts.Path(folder) / "999-other.json").write_text('{"entries": 4, "fetch_skipped": 2}')
        live_counts.flush()
        assert live_counts.read_totals(folder) == {"entries": 7, "fetch_attempts": 1, "fetch_skipped": 2}
        assert run._read() == {"feeds": 3, "entries": 7, "kept": 0, "failed": 0}
    assert live_counts.ENV_DIR not in os.environ and not os.path.exists(folder)


# ------------------------------------------------------------ whole runs

LINE = re.compile(r"^newswatch run: (done: )?([\d,]+)/([\d,]+) feeds fetched, ([\d,]+) entries parsed, "
                  r"([\d,]+) stories kept, ([\d,]+) feeds failed \[\d+ s\]$")
FEEDS, GONE, DELAY_S = 48, 4, 0.25


def numbers(text):
    return int(text.replace(",", ""))


@pytest.fixture
def slow_world(feed_server, tmp_path):
    """FEEDS feeds that each take DELAY_S to answer (GONE of them 404), fetched
    two at a time: the fetch stage alone lasts several seconds."""
    urls = []
    for n in range(FEEDS):
        path = f"/slow{n}.xml"
        if n < GONE:
            feed_server.add(path, "gone", status=404, delay_s=DELAY_S)
        else:
            items = "".join(f"<item><title>Korea bulletin {n}-{i}</title>"
                            f"<link>https://slow.example.org/{n}/{i}</link>"
                            f"<description>{'North Korea' if i else 'Weather'} news {n}-{i}.</description>"
                            f"</item>" for i in range(3))
            feed_server.add(path, f'<?xml version="1.0"?><rss version="2.0"><channel>'
                                  f'<title>Slow {n}</title>{items}</channel></rss>', delay_s=DELAY_S)
        urls.append(feed_server.url(path))
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("\n".join(urls) + "\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  - name: dprk\n    query: '\"North Korea\"'\n")
    return feeds, topics, tmp_path / "out"


def newswatch_run(world, *extra):
    feeds, topics, out = world
    env = dict(os.environ, PYTHONPATH=str(ROOT), NEWSWATCH_PROGRESS_INTERVAL="0.5")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics", str(topics),
         "--output", str(out), "--runner", "DirectRunner", "--allow-private-addresses",
         "--fetch-concurrency", "2", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def summary_value(stdout, label):
    match = re.search(rf"^\w+ +{re.escape(label)} +([\d,]+)$", stdout, re.MULTILINE)
    return numbers(match.group(1))


def check_progress(proc):
    lines = [line for line in proc.stderr.splitlines() if line.startswith("newswatch run:")]
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    counts = [tuple(numbers(m.group(i)) for i in (2, 4, 5, 6)) for m in parsed]
    assert {numbers(m.group(3)) for m in parsed} == {FEEDS}
    live, final = counts[:-1], counts[-1]
    # the last line, and only it, is the end, and it shows the summary's totals
    assert parsed[-1].group(1) and not any(m.group(1) for m in parsed[:-1])
    out = proc.stdout
    assert final == (summary_value(out, "fetch attempts") + summary_value(out, "not due, skipped"),
                     summary_value(out, "entries"), summary_value(out, "matched"),
                     summary_value(out, "feeds failed"))
    assert final == (FEEDS, 3 * (FEEDS - GONE), 2 * (FEEDS - GONE), GONE)
    # lines while the feeds were still being fetched, counts that never go down
    assert any(0 < c[0] < FEEDS for c in live), lines
    for earlier, later in zip(counts, counts[1:]):
        assert all(a <= b for a, b in zip(earlier, later)), (earlier, later)
    return lines


@pytest.mark.integration
@pytest.mark.slow
def test_a_long_run_prints_progress_lines_that_end_at_the_summary(slow_world):
    proc = newswatch_run(slow_world)
    check_progress(proc)
    assert "-> ok" in proc.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_multi_processing_workers_report_their_progress(slow_world):
    proc = newswatch_run(slow_world, "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    check_progress(proc)


@pytest.mark.integration
@pytest.mark.slow
def test_quiet_prints_no_progress_but_still_the_summary(slow_world):
    proc = newswatch_run(slow_world, "--quiet")
    assert "newswatch run:" not in proc.stderr
    assert summary_value(proc.stdout, "fetch attempts") == FEEDS and "-> ok" in proc.stdout
