"""Runs one contestant as a child process and measures it from outside:
wall time, CPU seconds and peak resident memory of its whole process tree
(Beam's multi_processing workers included).

CPU comes from two sources that must agree within sampling error: the
kernel's accounting of finished children (getrusage RUSAGE_CHILDREN, which
counts grandchildren that their parent waited for) and psutil samples of every
live descendant; the larger is reported, so a worker that is never waited for
still counts. Memory is the largest sum of RSS over the tree seen in the
samples (every 50 ms), and never less than the high-water mark the kernel
kept for any one process of the tree (Linux: VmHWM), which catches a peak
between two samples.
"""
from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import psutil

SAMPLE_EVERY_S = 0.05


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float
    peak_rss: int             # bytes, whole process tree
    peak_processes: int       # most processes alive at once in the tree
    returncode: int
    stdout: str
    stderr: str


class _TreeSampler(threading.Thread):
    def __init__(self, root: psutil.Process):
        super().__init__(daemon=True, name="tree-sampler")
        self.root = root
        self.peak_rss = 0
        self.peak_processes = 0
        self.peak_single = 0
        self.cpu_by_pid: Dict[int, float] = {}
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.sample()
            self._done.wait(SAMPLE_EVERY_S)

    def sample(self):
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return
        rss, alive = 0, 0
        for proc in procs:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                # A process's own CPU; its children's is counted under their pids.
                self.cpu_by_pid[proc.pid] = times.user + times.system
                self.peak_single = max(self.peak_single, _high_water_mark(proc.pid))
                alive += 1
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, alive)

    def stop(self):
        self._done.set()
        self.join()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _high_water_mark(pid: int) -> int:
    """Peak RSS of one process so far, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(cmd: Sequence[str], *, cwd: Optional[str] = None, env: Optional[dict] = None,
                 timeout_s: float = 3600) -> Measurement:
    """Runs `cmd` to completion; output is captured, never streamed."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with open(os.devnull, "rb") as stdin:
        proc = psutil.Popen(list(cmd), cwd=cwd, env=env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = _TreeSampler(proc)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += f"\nkilled after {timeout_s:.0f} s"
    wall = time.perf_counter() - started
    sampler.stop()
    cpu = max(_children_cpu() - cpu_before, sum(sampler.cpu_by_pid.values()))
    return Measurement(wall_s=wall, cpu_s=cpu, peak_rss=max(sampler.peak_rss, sampler.peak_single),
                       peak_processes=sampler.peak_processes, returncode=proc.returncode,
                       stdout=stdout, stderr=stderr)


def tail(text: str, lines: int = 5) -> List[str]:
    return [line for line in text.strip().splitlines()[-lines:]]
