"""The garbage collector of a pipeline process: the command line freezes
what its process holds after start-up and sets its young threshold, and
asks the workers it starts to do the same in the parse stage's setup; a
worker nobody asked keeps the defaults. Each case runs in a fresh interpreter: a frozen heap is for the
whole process."""
import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from transforms.process_gc import SWITCH, YOUNG_THRESHOLD

pytestmark = [pytest.mark.integration, pytest.mark.slow]   # fresh interpreters, worker processes


@pytest.fixture(scope="module")
def pythons_young():
    """This interpreter's own young threshold (700 up to Python 3.13), as a
    fresh process has it: the test process's own may have been changed."""
    return int(subprocess.run([sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"],
                              capture_output=True, text=True, check=True).stdout)


# What apply() or a pipeline left: this process's frozen objects and young
# threshold, the switch in its environment, and (with `workers`) the frozen
# objects and young threshold each multi_processing worker had when it
# parsed a feed.
PROBE = r"""
import gc, json, os, sys
{before}
workers = []
if {workers!r}:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tests.support.fetched import fetched
    from transforms.parse import ParseFeeds
    body = b"<rss version='2.0'><channel><title>T</title><item><title>A</title><link>https://e.example/a</link></item></channel></rss>"
    options = PipelineOptions(["--runner", "DirectRunner", "--direct_running_mode", "multi_processing",
                               "--direct_num_workers", "2"])
    out = os.path.join({folder!r}, "frozen")
    with beam.Pipeline(options=options) as p:
        parsed = p | beam.Create([fetched(body)]) | ParseFeeds("r")
        (parsed.stories | beam.Map(lambda story: json.dumps([gc.get_freeze_count(), gc.get_threshold()[0]]))
         | beam.io.WriteToText(out))
    workers = [json.loads(line) for name in os.listdir({folder!r}) if name.startswith("frozen")
               for line in open(os.path.join({folder!r}, name))]
print(json.dumps({{"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0],
                  "env": os.environ.get({switch!r}), "workers": workers}}))
"""


def probe(before: str, folder, workers: bool = False, **env) -> dict:
    clean = {name: value for name, value in os.environ.items() if name != SWITCH}
    script = PROBE.format(before=before, workers=workers, folder=str(folder), switch=SWITCH)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_apply_freezes_the_start_up_heap_and_asks_the_workers_to(tmp_path, pythons_young):
    assert probe("", tmp_path) == {"frozen": 0, "young": pythons_young, "env": None, "workers": []}
    seen = probe("import apache_beam\nfrom transforms import process_gc\nprocess_gc.apply()", tmp_path)
    # Beam's import alone leaves hundreds of thousands of container objects.
    assert seen["frozen"] > 100_000 and seen["env"] == "freeze"
    assert seen["young"] == YOUNG_THRESHOLD != pythons_young   # else this test could not fail


def test_the_switch_leaves_the_collector_as_it_is(tmp_path, pythons_young):
    seen = probe("from transforms import process_gc\nprocess_gc.apply()", tmp_path, **{SWITCH: "default"})
    assert seen == {"frozen": 0, "young": pythons_young, "env": "default", "workers": []}


def test_workers_freeze_in_the_parse_stage_only_when_asked(tmp_path, pythons_young):
    asked = probe("", tmp_path / "asked", workers=True, **{SWITCH: "freeze"})
    assert asked["frozen"] == 0 and asked["young"] == pythons_young   # the probe's own process called nothing
    assert asked["workers"] and all(frozen > 100_000 and young == YOUNG_THRESHOLD
                                    for frozen, young in asked["workers"])
    # A worker the command line did not start (no switch) keeps the defaults.
    alone = probe("", tmp_path / "alone", workers=True)
    assert alone["workers"] and alone["workers"] == [[0, pythons_young]] * len(alone["workers"])


def test_the_command_line_freezes_before_a_run(tmp_path, pythons_young):
    # A run of one feed that cannot be fetched (a dead letter; the run goes on).
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("http://127.0.0.1:9/feed.xml\n")
    run = (f"from pipeline.cli import main\n"
           f"main(['run', '--feeds', {str(feeds)!r}, '--topics', {str(ROOT / 'seeds' / 'topics.yaml')!r}, "
           f"'--output', {str(tmp_path / 'out')!r}, '--runner', 'DirectRunner', '--quiet'])")
    seen = probe(run, tmp_path)
    assert seen["frozen"] > 100_000 and seen["young"] == YOUNG_THRESHOLD and seen["env"] == "freeze"
    assert (tmp_path / "out" / "errors").exists()   # the run ran
    # compact builds no pipeline: it leaves the collector alone
    compact = f"from pipeline.cli import main\nmain(['compact', '--output', {str(tmp_path / 'out')!r}, '--quiet'])"
    left = probe(compact, tmp_path)
    assert left["frozen"] == 0 and left["young"] == pythons_young


def test_a_switch_value_that_is_not_known_stops_the_run_before_any_work(tmp_path):
    clean = {name: value for name, value in os.environ.items() if name != SWITCH}
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("http://127.0.0.1:9/feed.xml\n")   # never fetched: the run stops first
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds),
                           "--topics", str(ROOT / "seeds" / "topics.yaml"), "--output", str(tmp_path / "out"),
                           "--runner", "DirectRunner"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**clean, "PYTHONPATH": str(ROOT), SWITCH: "off"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["newswatch: error: NEWSWATCH_GC='off': expected one of freeze, default"]
    assert not (tmp_path / "out").exists()


# Imported by every Python process started with it on PYTHONPATH (the
# command line and each worker it starts): at exit, each writes what it had
# frozen, its young threshold, and whether it was a Beam worker.
AT_EXIT = r"""
import atexit, gc, json, os, sys

def _report():
    with open(os.path.join({folder!r}, f"{{os.getpid()}}.json"), "w") as handle:
        json.dump({{"worker": "sdk_worker_main" in " ".join(sys.argv), "frozen": gc.get_freeze_count(),
                    "young": gc.get_threshold()[0]}}, handle)

atexit.register(_report)
"""


def test_retag_freezes_its_process_and_its_preparation_workers(tmp_path, pythons_young):
    out = tmp_path / "out"
    clean = {name: value for name, value in os.environ.items() if name != SWITCH}
    env = {**clean, "PYTHONPATH": str(ROOT)}
    seeds = ROOT / "seeds"
    run = subprocess.run([sys.executable, "-m", "pipeline", "run", "--feeds", str(seeds / "feeds.opml"),
                          "--topics", str(seeds / "topics.yaml"), "--output", str(out), "--runner", "DirectRunner",
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    reports = tmp_path / "reports"
    hooks = tmp_path / "hooks"
    reports.mkdir(), hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AT_EXIT.format(folder=str(reports)))

    def retag(name: str, **switch) -> list:
        for old in reports.iterdir():
            old.unlink()
        proc = subprocess.run([sys.executable, "-m", "pipeline", "retag", "--topics", str(seeds / "topics.yaml"),
                               "--output", str(out), "--name", name, "--runner", "DirectRunner", "--quiet",
                               "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**env, "PYTHONPATH": f"{hooks}{os.pathsep}{ROOT}", **switch})
        assert proc.returncode == 0, proc.stderr[-2000:]
        return [json.loads(path.read_text()) for path in reports.iterdir()]

    seen = retag("frozen")
    main = [(r["frozen"], r["young"]) for r in seen if not r["worker"]]
    workers = [(r["frozen"], r["young"]) for r in seen if r["worker"]]
    assert max(main)[0] > 100_000 and max(main)[1] == YOUNG_THRESHOLD   # the command line's own process
    assert len(workers) == 2 and all(n > 100_000 and young == YOUNG_THRESHOLD for n, young in workers)
    defaults = retag("defaults", **{SWITCH: "default"})
    assert defaults and all(r["frozen"] == 0 and r["young"] == pythons_young for r in defaults)
