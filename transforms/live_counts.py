"""Counter totals while a local run is still going, for its progress line.

Beam's counters reach the launching process only when a bundle ends, and the
DirectRunner's `pipeline.run()` returns only when the whole job has ended, so
neither the PipelineResult nor the metrics can be read mid-run. Instead every
process that runs our DoFns (the launching process itself in the in-memory
mode; each SDK worker subprocess in `--direct_running_mode=multi_processing`,
which inherits the environment) keeps its own totals of the pipeline's
counters and, while `NEWSWATCH_PROGRESS_DIR` names a folder, rewrites one small
JSON file there (`<pid>-<token>.json`, replaced atomically) every FLUSH_S
seconds. The launching process sums the files (`read_totals`). Each file only
grows, so the sums only grow. Without the variable (Dataflow workers, tests of
single stages) nothing is kept or written: the Beam counters alone count.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Dict, Optional

ENV_DIR = "NEWSWATCH_PROGRESS_DIR"
FLUSH_S = 0.25  # how stale a worker's file may be; a write costs well under a millisecond

# The folder of the run under way: read once from the environment in an SDK
# worker process (started for one run), set by begin() in the launching one.
_active: Optional[str] = os.environ.get(ENV_DIR) or None

_lock = threading.Lock()
_wake = threading.Event()
_tally: Dict[str, int] = {}
_folder: Optional[str] = None  # the run the tally belongs to
_file: Optional[Path] = None
_dirty = False
_writer: Optional[threading.Thread] = None


def begin(folder: str) -> Optional[str]:
    """Counts into `folder` from now on, in this process and in the worker
    processes started from now on; returns the folder it replaces."""
    global _active
    previous, _active = _active, folder
    os.environ[ENV_DIR] = folder
    return previous


def end(previous: Optional[str] = None) -> None:
    """Stops counting into the current folder (back to `previous`, if any)."""
    global _active
    flush()
    _active = previous
    if previous is None:
        os.environ.pop(ENV_DIR, None)
    else:
        os.environ[ENV_DIR] = previous


def add(name: str, value: int) -> None:
    """Counts `value` more of counter `name`, while a progress folder is set."""
    folder = _active
    if not folder:
        return
    global _folder, _file, _dirty, _writer
    with _lock:
        if folder != _folder:  # a new run in this process: start from zero
            _flush_locked()
            _tally.clear()
            _folder = folder
            _file = Path(folder) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        _tally[name] = _tally.get(name, 0) + int(value)
        _dirty = True
        if _writer is None:  # one writer for the life of the process
            _writer = threading.Thread(target=_write_loop, name="newswatch-live-counts", daemon=True)
            _writer.start()


def flush() -> None:
    """Writes this process's totals now (the launcher calls it before its last read)."""
    with _lock:
        _flush_locked()


def _write_loop() -> None:
    while True:
        _wake.wait(FLUSH_S)
        with _lock:
            _flush_locked()


def _flush_locked() -> None:
    global _dirty
    if not _dirty or _file is None:
        return
    _dirty = False
    temporary = _file.with_name(_file.name + ".tmp")
    try:
        temporary.write_text(json.dumps(_tally))
        os.replace(temporary, _file)
    except OSError:
        pass  # the run ended and its folder is gone: these counts are no longer read


def read_totals(folder: str) -> Dict[str, int]:
    """The counters summed over every process that wrote to `folder`."""
    totals: Dict[str, int] = {}
    try:
        names = [p for p in Path(folder).glob("*.json")]
    except OSError:
        return totals
    for path in names:
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # replaced or removed under us: read on the next tick
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + int(value)
    return totals
