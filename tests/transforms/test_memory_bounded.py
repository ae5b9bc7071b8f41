"""Memory stays bounded: the bombs and oversized bodies are fetched and parsed
in a child process whose address space may grow only HEADROOM_MB past its
size after start-up (RLIMIT_AS). Unbounded, the gzip bomb would inflate to
1 GiB, the endless body would never end and the quadratic entity bomb would
expand to 2 GB of text."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.faultserver import FAULTS_BY_NAME, MEMORY_CASES, FaultServer, Secrets
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HEADROOM_MB = 300


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_bombs_and_oversized_bodies_stay_under_a_memory_cap(tmp_path):
    with Secrets(tmp_path) as secrets, FaultServer(secrets) as server:
        urls = [server.url(FAULTS_BY_NAME[name].path) for name in MEMORY_CASES]
        # One glibc malloc arena per thread would reserve 64 MiB of address
        # space each; two keep the measure about data, not allocator layout.
        env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_ARENA_MAX="2")
        proc = subprocess.run([sys.executable, "-m", "tests.support.memory_probe", str(HEADROOM_MB), *urls],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["cap_works"], "the memory cap did not stop a larger allocation"
    for name, url in zip(MEMORY_CASES, urls):
        fault = FAULTS_BY_NAME[name]
        expected = fault.category or f"{fault.stories} stories"
        assert report["outcomes"][url].startswith(expected), (name, report["outcomes"][url])
