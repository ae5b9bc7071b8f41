"""How a pipeline process allocates: Arrow's memory pool and glibc's malloc.

A batch stage on the DirectRunner holds its whole input and output, and
frees them when the next stage has read them; what a process gives back to
the system then decides its peak more than what it holds at any moment
(docs/performance.md, "Where the time and memory go"). Three defaults keep freed memory:

- pyarrow allocates from mimalloc, which keeps freed pages for reuse; the
  system pool (malloc) gives large blocks back at once.
- glibc gives each thread that allocates its own arena, up to 8 per core,
  and an arena keeps what was freed in it; two are enough for one Python
  thread at a time.
- glibc raises its mmap threshold (up to 32 MiB) each time a mapped block
  is freed, so later large blocks (encoded bundles, Arrow buffers) come
  from an arena and stay in it; a fixed threshold keeps blocks of
  MMAP_THRESHOLD bytes and more mapped, and unmapped when freed.

The command line calls `apply()`, which sets these in its process and,
through the environment, in the processes it starts (Beam's
multi_processing workers read them at start). A setting already in the
environment is the user's and is left as it is; NEWSWATCH_ALLOCATORS=default
leaves all of them to the libraries. Workers the command line does not
start (Dataflow's) keep their defaults: their runner spills what a stage
holds, and their harness allocates from many threads.
"""
from __future__ import annotations

import ctypes
import os
import platform

import pyarrow as pa

ARENA_MAX = 2
MMAP_THRESHOLD = 256 * 1024
ENVIRONMENT = {
    "MALLOC_ARENA_MAX": str(ARENA_MAX),
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}
SWITCH = "NEWSWATCH_ALLOCATORS"
SWITCH_VALUES = ("tuned", "default")
# mallopt(3) parameters, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_applied = False


def apply() -> None:
    """Set the allocators of this process (once) and of its children, unless
    NEWSWATCH_ALLOCATORS is "default"; ValueError for any value but "tuned"
    and "default"."""
    global _applied
    choice = os.environ.get(SWITCH, "tuned")
    if choice not in SWITCH_VALUES:
        raise ValueError(f"{SWITCH}={choice!r}: expected one of {', '.join(SWITCH_VALUES)}")
    if _applied or choice == "default":
        return
    _applied = True
    given = {name for name in ENVIRONMENT if name in os.environ}
    if platform.libc_ver()[0] == "glibc":
        mallopt = ctypes.CDLL(None).mallopt
        if "MALLOC_ARENA_MAX" not in given:
            mallopt(_M_ARENA_MAX, ARENA_MAX)
        if "MALLOC_MMAP_THRESHOLD_" not in given:
            mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if "ARROW_DEFAULT_MEMORY_POOL" not in given:
        pa.set_memory_pool(pa.system_memory_pool())
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
