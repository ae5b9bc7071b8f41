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

The machine is shared: a contestant is stopped (and its figures refused) if
it would leave less than `min_free_bytes` of memory to everyone else.
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
    cpu_by_role: Dict[str, float]   # "main", "worker 1", ... (Beam's SDK workers)
    returncode: int
    stdout: str
    stderr: str
    stopped: str = ""         # why the run was cut short, if it was
    # This process's CPU while the child ran: a server it runs for the child
    # (the benchmark's feed server) and the sampling share the child's cores.
    own_cpu_s: float = 0.0


class _TreeSampler(threading.Thread):
    def __init__(self, root: psutil.Process, min_free_bytes: int = 0):
        super().__init__(daemon=True, name="tree-sampler")
        self.root = root
        self.min_free_bytes = min_free_bytes
        self.stopped = ""
        self.peak_rss = 0
        self.peak_processes = 0
        self.peak_single = 0
        self.cpu_by_pid: Dict[int, float] = {}
        self.workers: List[int] = []      # pids of Beam SDK worker processes, in start order
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
                if proc.pid not in self.workers and _is_sdk_worker(proc):
                    self.workers.append(proc.pid)
                self.peak_single = max(self.peak_single, _high_water_mark(proc.pid))
                alive += 1
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, alive)
        available = psutil.virtual_memory().available
        if self.min_free_bytes and available < self.min_free_bytes and not self.stopped:
            self.stopped = (f"stopped with {available / 2**30:.1f} GiB of memory left on the machine "
                            f"(at {rss / 2**30:.1f} GiB)")
            _kill(procs)

    def stop(self):
        self._done.set()
        self.join()

    def cpu_by_role(self) -> Dict[str, float]:
        roles = {"main": self.cpu_by_pid.get(self.root.pid, 0.0)}
        for n, pid in enumerate(self.workers, 1):
            roles[f"worker {n}"] = self.cpu_by_pid.get(pid, 0.0)
        return roles


def _is_sdk_worker(proc: psutil.Process) -> bool:
    try:
        # (the /bin/sh that starts one has the module name inside one argument)
        return "apache_beam.runners.worker.sdk_worker_main" in proc.cmdline()
    except psutil.Error:
        return False


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


def _kill(procs) -> None:
    for proc in reversed(procs):  # children first
        try:
            proc.kill()
        except psutil.Error:
            pass


def run_measured(cmd: Sequence[str], *, cwd: Optional[str] = None, env: Optional[dict] = None,
                 timeout_s: float = 3 * 3600, min_free_bytes: int = 0) -> Measurement:
    """Runs `cmd` to completion; output is captured, never streamed."""
    cpu_before = _children_cpu()
    own_before = time.process_time()
    started = time.perf_counter()
    with open(os.devnull, "rb") as stdin:
        proc = psutil.Popen(list(cmd), cwd=cwd, env=env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = _TreeSampler(proc, min_free_bytes)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill([proc] + proc.children(recursive=True))
        stdout, stderr = proc.communicate()
        sampler.stopped = f"stopped after {timeout_s:.0f} s"
    wall = time.perf_counter() - started
    sampler.stop()
    own = time.process_time() - own_before
    cpu = max(_children_cpu() - cpu_before, sum(sampler.cpu_by_pid.values()))
    return Measurement(wall_s=wall, cpu_s=cpu, peak_rss=max(sampler.peak_rss, sampler.peak_single),
                       peak_processes=sampler.peak_processes, cpu_by_role=sampler.cpu_by_role(),
                       returncode=proc.returncode,
                       stdout=stdout, stderr=stderr, stopped=sampler.stopped, own_cpu_s=own)


def tail(text: str, lines: int = 5) -> List[str]:
    return [line for line in text.strip().splitlines()[-lines:]]


# A fixed piece of the pipeline's own kind of work: feedparser on a 50-item feed.
_PARSE_WORK = """
import io, feedparser
item = ("<item><title>Officials met again on Tuesday</title><link>https://example.org/%d</link>"
        "<description>&lt;p&gt;" + "Talks on the peninsula resumed after a pause. " * 40 +
        "&lt;/p&gt;</description><pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>")
body = ("<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        + "".join(item % i for i in range(50)) + "</channel></rss>").encode()
for _ in range({rounds}):
    feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
"""


def two_process_speedup(rounds: int = 80) -> float:
    """How much faster two processes finish the same parse work than one, on
    this machine, now: 2.0 on two free, independent cores; less when other
    work shares the machine or the two virtual cores share a physical one.
    This is the most any two-worker run can gain here."""
    import sys

    cmd = [sys.executable, "-c", _PARSE_WORK.format(rounds=rounds)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    alone = time.perf_counter() - started
    started = time.perf_counter()
    pair = [subprocess.Popen(cmd) for _ in range(2)]
    for p in pair:
        p.wait()
    return 2 * alone / (time.perf_counter() - started)
