"""Progress lines on stderr for work that takes more than a few seconds.

    from pipeline.progress import Progress

    with Progress("compact", total=len(partitions), fields=("partitions", "files", "rows"),
                  quiet=args.quiet) as progress:
        for partition in partitions:
            rows, files = merge(partition)
            progress.advance(partitions=1, files=files, rows=rows)

prints, on stderr, at most one line every `interval` seconds (default 5, or
$NEWSWATCH_PROGRESS_INTERVAL), the first only once `interval` seconds have
passed, so short work stays silent:

    newswatch compact: 12/40 partitions, 310 files, 1,204,113 rows [10 s]

and, when the work took that long, a last line as the block ends:

    newswatch compact: done: 40/40 partitions, 1,021 files, 4,022,981 rows [31 s]

(`failed:` instead of `done:` when the block raised). Lines are always whole
lines, on a terminal too, so logs and captured output stay readable.

- `fields`: the counts in the order shown, each a name or (name, label);
  `total` belongs to the first. Counts named only in advance()/update() are
  shown after them, in the order first seen.
- `advance(**deltas)` adds to counts; `update(**counts)` sets them (for a
  caller that reads totals from elsewhere, as `newswatch run` reads its
  workers' counters); both may be called from any thread.
- `read`: a function returning {name: count}, called by the ticker thread
  before each line (update() with its result); `final_counts(...)` sets the
  counts the last line shows (the run's committed Beam counters).
- A daemon ticker thread prints while the caller is busy in one long step;
  `quiet=True` prints nothing at all and starts no thread.
- `clock`, `stream` and `ticker=False` let tests drive it by hand: tick()
  prints a line if one is due.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

ENV_INTERVAL = "NEWSWATCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 5.0

Field = Union[str, Tuple[str, str]]


def default_interval() -> float:
    """$NEWSWATCH_PROGRESS_INTERVAL seconds if set to a positive number, else 5."""
    try:
        value = float(os.environ.get(ENV_INTERVAL, ""))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def add_quiet_option(parser) -> None:
    """`--quiet` on a subcommand's argparse parser (args.quiet)."""
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print no progress lines on stderr (the result is still printed)")


class Progress:
    def __init__(self, what: str, total: Optional[int] = None, fields: Sequence[Field] = (),
                 quiet: bool = False, interval: Optional[float] = None,
                 read: Optional[Callable[[], Dict[str, int]]] = None,
                 stream=None, clock: Callable[[], float] = time.monotonic, ticker: bool = True):
        self.what = what
        self.total = total
        self.quiet = quiet
        self.interval = default_interval() if interval is None else float(interval)
        self.read = read
        self.stream = stream
        self.clock = clock
        self.lines = 0  # progress lines printed, the last one included
        self._ticker_wanted = ticker
        self._labels: Dict[str, str] = {}
        self._counts: Dict[str, int] = {}
        for spec in fields:
            name, label = (spec, spec) if isinstance(spec, str) else spec
            self._labels[name] = label
            self._counts[name] = 0
        self._lock = threading.RLock()
        self._started = clock()
        self._last_line: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    # ---------------------------------------------------------- counting

    def advance(self, **deltas: int) -> None:
        with self._lock:
            for name, value in deltas.items():
                self._counts[name] = self._counts.get(name, 0) + int(value)
        self.tick()

    def update(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                self._counts[name] = int(value)
        self.tick()

    def final_counts(self, **counts: int) -> None:
        """Sets the counts without printing: the last line shows them."""
        with self._lock:
            for name, value in counts.items():
                self._counts[name] = int(value)

    @property
    def counts(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._counts)

    # ---------------------------------------------------------- printing

    def elapsed(self) -> float:
        return self.clock() - self._started

    def due(self) -> bool:
        """A line is due once `interval` has passed since the start and since the last line."""
        now = self.clock()
        since = self._started if self._last_line is None else self._last_line
        return not self.quiet and not self._closed and now - since >= self.interval

    def tick(self) -> bool:
        """Prints a line if one is due; True if it did."""
        with self._lock:
            if not self.due():
                return False
            self._emit("")
            return True

    def close(self, failed: bool = False) -> None:
        """Stops the ticker; prints the last line if the work lasted `interval` or more."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            if self._closed:
                return
            if not self.quiet and (self.lines or self.elapsed() >= self.interval):
                self._emit("failed: " if failed else "done: ")
            self._closed = True

    def line(self, prefix: str = "") -> str:
        with self._lock:
            parts = []
            for index, (name, value) in enumerate(self._counts.items()):
                label = self._labels.get(name, name.replace("_", " "))
                shown = f"{value:,}/{self.total:,}" if index == 0 and self.total is not None else f"{value:,}"
                parts.append(f"{shown} {label}")
            return f"newswatch {self.what}: {prefix}{', '.join(parts)} [{self.elapsed():.0f} s]"

    def _emit(self, prefix: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        print(self.line(prefix), file=stream, flush=True)
        self.lines += 1
        self._last_line = self.clock()

    # ---------------------------------------------------------- ticker

    def start(self) -> "Progress":
        if self.quiet or not self._ticker_wanted or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._tick_loop, name=f"newswatch-progress-{self.what}",
                                        daemon=True)
        self._thread.start()
        return self

    def _tick_loop(self) -> None:
        step = min(0.5, self.interval / 4)
        while not self._stop.wait(step):
            if self.read is not None and self.due():
                try:
                    counts = self.read()
                except Exception:
                    counts = {}  # a progress read must never break the work
                with self._lock:
                    for name, value in counts.items():
                        # counts only grow: a stale read never shows a smaller number
                        self._counts[name] = max(self._counts.get(name, 0), int(value))
            self.tick()

    def __enter__(self) -> "Progress":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


def sum_of(counters: Dict[str, int], names: Iterable[str]) -> int:
    return sum(int(counters.get(name, 0)) for name in names)


# ------------------------------------------------------------------ a run

# What a run's progress line shows, from the pipeline's counters
# (transforms/metrics.py): (field, label, counters summed).
RUN_FIELDS = (
    ("feeds", "feeds fetched", ("fetch_attempts", "fetch_skipped")),
    ("entries", "entries parsed", ("entries",)),
    ("kept", "stories kept", ("matched",)),
    ("failed", "feeds failed", ("feeds_failed",)),
)


def run_counts(counters: Dict[str, int]) -> Dict[str, int]:
    """The progress fields of a run from its counters (live or final)."""
    return {name: sum_of(counters, parts) for name, _, parts in RUN_FIELDS}


class RunProgress:
    """Progress of one local pipeline run: the workers' live counters
    (transforms/live_counts.py) through a temporary folder named in the
    environment, which SDK worker subprocesses inherit.

        with RunProgress(total=len(feeds), quiet=quiet) as progress:
            result = pipeline.run(); result.wait_until_finish()
            progress.finish(read_counters(result))
    """

    def __init__(self, total: Optional[int], quiet: bool = False, what: str = "run"):
        self.progress = Progress(what, total=total, fields=[(n, label) for n, label, _ in RUN_FIELDS],
                                 quiet=quiet, read=self._read)
        self._folder: Optional[str] = None
        self._previous: Optional[str] = None

    def _read(self) -> Dict[str, int]:
        from transforms import live_counts

        live_counts.flush()  # this process's own counts (the in-memory mode)
        return run_counts(live_counts.read_totals(self._folder)) if self._folder else {}

    def finish(self, counters: Dict[str, int]) -> None:
        """The last line shows the run's committed counters, as the summary does."""
        self.progress.final_counts(**run_counts(counters))

    def __enter__(self) -> "RunProgress":
        import tempfile

        from transforms import live_counts

        if not self.progress.quiet:
            self._folder = tempfile.mkdtemp(prefix="newswatch-progress-")
            self._previous = live_counts.begin(self._folder)
        self.progress.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import shutil

        from transforms import live_counts

        self.progress.close(failed=exc_type is not None)
        if self._folder is not None:
            live_counts.end(self._previous)
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
