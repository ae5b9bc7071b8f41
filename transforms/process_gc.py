"""How a pipeline process collects garbage: what it holds after start-up
is frozen out of the collector's full passes, and its young generation is
collected every YOUNG_THRESHOLD net allocations rather than Python's 700.

CPython's full collection (generation 2) walks every container object the
process holds, and runs again each time the objects that outlived the
younger collections have grown by a quarter. A pipeline process holds a
large heap from the moment it has imported Beam, pyarrow, feedparser and
their protobuf descriptors, classes and functions, and holds it until it
exits; without freezing, that heap is most of what every full pass walks
(docs/performance.md, "Where the time and memory go").

`gc.freeze()` moves every object tracked at that moment to a permanent
generation that no collection walks (reference counting still frees them;
cycles among them stay): it is called once per process, after start-up,
when what the process holds is mostly what it will hold until it exits
(with `--every`, also what the first cycle had loaded by then).

The young generation is collected when the container objects allocated
since its last pass, less those freed, exceed its threshold; the middle
one every 10 young passes, the oldest every 10 middle ones (once what
outlived them has grown by a quarter). A run allocates millions of
stories, records and tuples that live for a stage or the run: at
Python's threshold of 700, a run of 100,000 entries takes about 2,200
young passes, 200 middle and 18 full ones over them; at YOUNG_THRESHOLD,
about 110, 9 and 2 (docs/performance.md, "Garbage collection"). Garbage
held in reference cycles is freed later in proportion: a cycle still in
the young generation after up to that many allocations, one that
outlived a young pass at the next middle or full pass.

- The command line calls `apply()` before it builds its first pipeline
  (of `run`, or of `retag`), when the stages' modules are imported, and
  sets NEWSWATCH_GC in the environment, so that the processes it starts
  (Beam's multi_processing workers) freeze theirs too;
- the parse stage, in its setup(), and retag's preparation, on its first
  element, call `in_worker()` before a worker process's first work: it
  freezes when NEWSWATCH_GC says so. Workers the command line does not
  start (Dataflow's, a test's DirectRunner) have no such setting and keep
  the collector's defaults, as they keep their allocators
  (transforms/process_memory.py).

NEWSWATCH_GC=default leaves the collector as it is, in the command line's
process and its workers.
"""
from __future__ import annotations

import gc
import os

SWITCH = "NEWSWATCH_GC"
SWITCH_VALUES = ("freeze", "default")

YOUNG_THRESHOLD = 10_000   # net allocations of container objects between young passes (Python's: 700)

_frozen = False   # once per process: in-process, its own worker too


def check() -> None:
    """ValueError for a NEWSWATCH_GC that is neither "freeze" nor "default"
    (the command line checks it before any work)."""
    choice = os.environ.get(SWITCH, "freeze")
    if choice not in SWITCH_VALUES:
        raise ValueError(f"{SWITCH}={choice!r}: expected one of {', '.join(SWITCH_VALUES)}")


def apply() -> None:
    """Freeze this process's start-up objects and set its young threshold
    (once), and ask the workers it starts to do the same, unless
    NEWSWATCH_GC is "default"; ValueError as check()."""
    check()
    if os.environ.get(SWITCH) == "default":
        return
    os.environ[SWITCH] = "freeze"
    _freeze()


def in_worker() -> None:
    """Before a stage's first element (its setup()): freeze this worker
    process's start-up objects and set its young threshold (once) when the
    command line that started it asked for it."""
    if os.environ.get(SWITCH) == "freeze":
        _freeze()


def _freeze() -> None:
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()   # what start-up left as garbage is freed, not kept for good
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
