"""Process memory: Arrow's system pool, two malloc arenas and a fixed mmap
threshold, in the process and in the processes it starts; a setting the
user put in the environment wins. Each case runs in a fresh interpreter,
since the settings are process-wide."""
import json
import os
import platform
import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from transforms.process_memory import ENVIRONMENT, SWITCH

# Prints the Arrow pool and the settings in the environment of this process
# and of a child it starts after apply(); with glibc, also whether a 512 KiB
# block is mapped once a freed 8 MiB block has raised glibc's threshold
# (dynamic) above it.
PROBE = r"""
import ctypes, json, os, subprocess, sys
import pyarrow as pa
{before}
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

def maps_a_block_of(size):
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):  # glibc before 2.33
        return None
    libc.mallinfo2.restype = Mallinfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(libc.malloc(8 << 20))
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    mapped = libc.mallinfo2().hblks > before
    libc.free(block)
    return mapped

child = subprocess.run([sys.executable, "-c", "import os, pyarrow as pa; print(pa.default_memory_pool().backend_name)"],
                       capture_output=True, text=True, check=True).stdout.strip()
print(json.dumps({{"pool": pa.default_memory_pool().backend_name, "child_pool": child,
                  "env": {{name: os.environ.get(name) for name in {names!r}}},
                  "mapped": maps_a_block_of(512 << 10) if {glibc!r} else None}}))
"""
GLIBC = platform.libc_ver()[0] == "glibc"


def probe(before: str, **env) -> dict:
    clean = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT and name != SWITCH}
    script = PROBE.format(before=before, names=list(ENVIRONMENT), glibc=GLIBC)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mallinfo2_missing() -> bool:
    import ctypes

    return not GLIBC or not hasattr(ctypes.CDLL(None), "mallinfo2")


def test_without_apply_the_process_keeps_the_defaults():
    # What apply() changes, as the probe sees it: the check below cannot
    # pass on defaults.
    seen = probe("")
    assert seen["pool"] != "system" and seen["child_pool"] != "system"
    assert seen["env"] == {name: None for name in ENVIRONMENT}
    if not mallinfo2_missing():
        assert seen["mapped"] is False


def test_apply_sets_the_allocators_here_and_in_the_processes_started_after_it():
    seen = probe("from transforms import process_memory\nprocess_memory.apply()")
    assert seen["pool"] == "system" and seen["child_pool"] == "system"
    assert seen["env"] == ENVIRONMENT
    if not mallinfo2_missing():
        assert seen["mapped"] is True


def test_a_setting_in_the_environment_is_the_users():
    seen = probe("from transforms import process_memory\nprocess_memory.apply()",
                 ARROW_DEFAULT_MEMORY_POOL="mimalloc", MALLOC_ARENA_MAX="4")
    assert seen["pool"] == "mimalloc" and seen["child_pool"] == "mimalloc"
    assert seen["env"]["ARROW_DEFAULT_MEMORY_POOL"] == "mimalloc"
    assert seen["env"]["MALLOC_ARENA_MAX"] == "4"
    assert seen["env"]["MALLOC_MMAP_THRESHOLD_"] == ENVIRONMENT["MALLOC_MMAP_THRESHOLD_"]


def test_the_command_line_applies_them_before_a_run(tmp_path):
    # `newswatch compact` on an empty output does nothing, after the same
    # start as `run` and `retag`.
    seen = probe(f"from pipeline.cli import main\nmain(['compact', '--output', {str(tmp_path)!r}, '--quiet'])")
    assert seen["pool"] == "system" and seen["env"] == ENVIRONMENT


@pytest.mark.skipif(mallinfo2_missing(), reason="needs glibc 2.33's mallinfo2")
def test_an_mmap_threshold_given_in_the_environment_is_left_to_glibc():
    seen = probe("from transforms import process_memory\nprocess_memory.apply()", MALLOC_MMAP_THRESHOLD_="16777216")
    assert seen["mapped"] is False


def test_the_switch_leaves_every_allocator_to_the_libraries():
    seen = probe("from transforms import process_memory\nprocess_memory.apply()", **{SWITCH: "default"})
    assert seen["pool"] != "system" and seen["child_pool"] != "system"
    assert seen["env"] == {name: None for name in ENVIRONMENT}
    if not mallinfo2_missing():
        assert seen["mapped"] is False


def test_a_switch_value_that_is_not_known_stops_the_run_before_any_work(tmp_path):
    clean = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--feeds", str(ROOT / "seeds" / "feeds.opml"),
                           "--topics", str(ROOT / "seeds" / "topics.yaml"), "--output", str(tmp_path / "out"),
                           "--runner", "DirectRunner"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**clean, "PYTHONPATH": str(ROOT), SWITCH: "fast"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "newswatch: error: NEWSWATCH_ALLOCATORS='fast': expected one of tuned, default"]
    assert not (tmp_path / "out").exists()
