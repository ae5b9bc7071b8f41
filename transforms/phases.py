"""Named points in a run where a test can stop it: NEWSWATCH_PAUSE_AT=<phase>
makes the run write the file named by NEWSWATCH_PAUSE_SIGNAL (if set) when
it first reaches that phase, then sleep until it is killed. The kill tests
(tests/pipeline/test_interrupted_runs.py) use it to kill a run in each
phase and check that the next ordinary runs recover.

Without NEWSWATCH_PAUSE_AT nothing here runs: the graph gets no extra stage.
"""
from __future__ import annotations

import os
import time

PAUSE_AT, PAUSE_SIGNAL = "NEWSWATCH_PAUSE_AT", "NEWSWATCH_PAUSE_SIGNAL"
# With NEWSWATCH_PAUSE_UNTIL=<path> the pause ends when that file exists,
# for tests that let something happen meanwhile and then go on.
PAUSE_UNTIL = "NEWSWATCH_PAUSE_UNTIL"

FETCH = "fetch"          # a feed has been fetched, nothing parsed or written
PARSE = "parse"          # a feed has been parsed, nothing written
WRITE = "write"          # one story file is written (renamed into place), others not yet
COMMIT = "commit"        # the run's seen file is written, its feeds file and commit not yet
COMMITTED = "committed"  # the state is committed; the lease is not yet released
PHASES = (FETCH, PARSE, WRITE, COMMIT, COMMITTED)


def pause_requested(phase: str) -> bool:
    return os.environ.get(PAUSE_AT) == phase


def reached(phase: str) -> None:
    """Pauses for good if the environment asks for a pause at `phase`."""
    if not pause_requested(phase):
        return
    signal = os.environ.get(PAUSE_SIGNAL)
    if signal:
        with open(signal, "w") as handle:
            handle.write(f"{phase} {os.getpid()}\n")
    until = os.environ.get(PAUSE_UNTIL)
    while True:
        if until and os.path.exists(until):
            return
        time.sleep(0.2 if until else 3600)


def passing(phase: str):
    """A function for beam.Map that pauses at `phase` on its first element."""
    def check(element):
        reached(phase)
        return element
    return check
