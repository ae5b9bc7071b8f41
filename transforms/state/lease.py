"""The output lease: one writer per output folder at a time.

    OUT/_state/lease.json    {"holder": run id, "token", "mode", "host", "pid",
                              "acquired_at", "heartbeat_at", "expires_at", "released"}

A run takes the lease before it fetches anything and keeps it until it has
committed (a batch run), or for its lifetime (a streaming job, a `--every`
process). Every change goes through transforms.state.conditional, which makes
each one atomic on its filesystem (exclusive create and compare-and-swap on
local disk, generation preconditions on gs://, conditional writes on s3://):

- acquire: create the object if absent; else, if it is released or expired,
  replace it, on condition that it is still the version read. Of two runs that
  try at once exactly one wins; the other waits (up to `wait_s`) or stops
  with LeaseHeld. The same run id held by a live holder is refused at once;
  a run that named no run id takes a fresh one when it gets the lease, so
  two runs started within one millisecond are two runs, not one.
- renew (the heartbeat): replace our own version with a later expiry. A
  renewal that finds another token has lost the lease (LeaseLost).
- a holder on this host whose process is gone (killed) frees the lease at
  once, not after its TTL (hosts sharing an output need distinct names).
- check (before a commit): the lease is still ours and not expired, so a run
  whose lease was taken over never commits.
- release: replace our version with a released body; nothing is deleted, so
  no conditional delete is needed anywhere.

Expiry compares the reader's clock with the holder's: hosts that share an
output need clocks within a fraction of the TTL of each other (NTP gives
milliseconds; the default TTL is two minutes).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms import metrics
from transforms.paths import make_folder
from transforms.state import conditional

_log = logging.getLogger(__name__)

LEASE_FILE = "lease.json"
DEFAULT_TTL_S = 120.0
# A holder renews this many times per TTL: two renewals may fail in a row
# (a slow object store) before the lease lapses.
RENEWALS_PER_TTL = 4
BATCH, STREAMING, EVERY = "batch", "streaming", "every"


def lease_path(output: str) -> str:
    return FileSystems.join(output, "_state", LEASE_FILE)


@dataclass(frozen=True)
class LeaseBody:
    """What lease.json says: who holds the output, and until when."""

    holder: str            # the run id
    token: str             # unique per acquisition: tells two holders of one run id apart
    mode: str              # batch, streaming or every
    host: str
    pid: int
    acquired_at: str       # ISO 8601, UTC
    heartbeat_at: str
    expires_at: str
    released: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Optional["LeaseBody"]:
        """None for a body that is not a lease (treated as free: it names no holder)."""
        try:
            fields = json.loads(data.decode("utf-8"))
            body = cls(**{name: fields[name] for name in cls.__dataclass_fields__ if name in fields})
            if not (all(isinstance(getattr(body, name), str) for name in _TEXT_FIELDS)
                    and type(body.pid) is int and isinstance(body.released, bool)):
                return None
            _parse(body.expires_at)
            return body
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def expired_at(self, now: datetime) -> bool:
        return self.released or _parse(self.expires_at) <= now

    def free_at(self, now: datetime) -> bool:
        return self.expired_at(now) or self.holder_died()

    def holder_died(self) -> bool:
        """True when the holder ran on this host and its process is gone (a
        killed cron run): its lease is free at once, not after the TTL. A
        reused pid only makes us wait for the expiry. A job on a remote
        runner (pid 0) has no local process to look for."""
        if self.pid <= 0 or self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, owned by another user
            return False
        return False

    def describe(self) -> str:
        return (f"run {self.holder} ({self.mode}, host {self.host}, pid {self.pid}, "
                f"heartbeat {self.heartbeat_at}, expires {self.expires_at})")


_TEXT_FIELDS = ("holder", "token", "mode", "host", "acquired_at", "heartbeat_at", "expires_at")


class LeaseHeld(Exception):
    """Another run holds the output's lease (exit code 75: try again later)."""

    def __init__(self, body: LeaseBody, output: str, same_run: bool = False):
        self.body, self.output, self.same_run = body, output, same_run
        what = "the same --run-id is already running" if same_run else "another run is writing it"
        super().__init__(f"{output} is leased to {body.describe()}: {what}; "
                         f"try again later, or give --wait-for-lease SECONDS")


class LeaseLost(Exception):
    """Our lease was taken over (it expired) or vanished: this run must not commit."""


class Lease:
    """One run's hold on OUT/_state/lease.json.

    `clock` returns the current UTC time (a parameter so tests can age a lease).
    `new_run_id`, for a run whose id was not given, names the run at the
    moment it gets the lease (`run_id` is then replaced): an id its caller
    picked from the clock could equal a live holder's, and a run that waited
    is named for when it got the lease.
    """

    def __init__(self, output: str, run_id: str, mode: str = BATCH, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 local: bool = True, new_run_id: Optional[Callable[[], str]] = None):
        self.output, self.run_id, self.mode, self.ttl_s = output, run_id, mode, ttl_s
        self.new_run_id = new_run_id
        # A job handed to a remote runner: the launching process exits while
        # the job holds the lease, so the lease names no process (pid 0).
        self.local = local
        self.path = lease_path(output)
        self.token = uuid.uuid4().hex
        self.clock = clock
        self.taken_over: Optional[LeaseBody] = None   # the expired holder we replaced, if any

    def _new_body(self, held: Optional[LeaseBody] = None) -> LeaseBody:
        """A body for this holder, now; a renewal keeps what the acquirer
        wrote (a worker's pid must not stand for the run)."""
        now = self.clock()
        return LeaseBody(holder=self.run_id, token=self.token, mode=self.mode,
                         host=held.host if held else socket.gethostname(),
                         pid=held.pid if held else (os.getpid() if self.local else 0),
                         acquired_at=held.acquired_at if held else _iso(now), heartbeat_at=_iso(now),
                         expires_at=_iso(now + timedelta(seconds=self.ttl_s)))

    def acquire(self, wait_s: float = 0.0, poll_s: float = 1.0) -> "Lease":
        """Takes the lease, waiting up to `wait_s` seconds for its holder to
        release it or for it to expire. Raises LeaseHeld."""
        deadline = time.monotonic() + max(0.0, wait_s)
        make_folder(self.path.rsplit("/", 1)[0])  # local disk needs the _state folder
        while True:
            current = conditional.read(self.path)
            if current is None:
                self._name_run(None)
                if conditional.create(self.path, self._new_body().to_bytes()) is not None:
                    return self
                continue  # created meanwhile by another run: look again
            held = LeaseBody.from_bytes(current.data)
            if held is None or held.free_at(self.clock()):
                self._name_run(held)
                if conditional.replace(self.path, self._new_body().to_bytes(), current.version) is not None:
                    self.taken_over = held if held is not None and not held.released else None
                    return self
                continue  # another run took it first: look again
            if held.holder == self.run_id and self.new_run_id is None:
                raise LeaseHeld(held, self.output, same_run=True)
            if time.monotonic() >= deadline:
                raise LeaseHeld(held, self.output)
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))

    def _name_run(self, previous: Optional[LeaseBody]) -> None:
        """Names an unnamed run now, never as the holder before it (a
        clock-made id repeats within its millisecond)."""
        if self.new_run_id is None:
            return
        self.run_id = self.new_run_id()
        while previous is not None and self.run_id == previous.holder:
            time.sleep(0.001)
            self.run_id = self.new_run_id()

    def _ours(self):
        """The current version, if the lease is still ours; else LeaseLost."""
        current = conditional.read(self.path)
        held = LeaseBody.from_bytes(current.data) if current is not None else None
        if held is None or held.token != self.token or held.released:
            raise LeaseLost(f"the lease on {self.output} is no longer held by run {self.run_id}"
                            + (f": now {held.describe()}" if held is not None else ""))
        return current, held

    def renew(self) -> None:
        """The heartbeat: pushes the expiry ttl_s ahead. Raises LeaseLost."""
        for _ in range(5):
            current, held = self._ours()
            if conditional.replace(self.path, self._new_body(held).to_bytes(), current.version) is not None:
                return
            # Changed between our read and write: by another renewer of ours
            # (a worker of the same run), or by a takeover; read again.
        raise LeaseLost(f"the lease on {self.output} keeps changing under run {self.run_id}")

    def released_by_us(self) -> bool:
        """True when this holder has released the lease (a retried commit
        stage finds its commit done)."""
        current = conditional.read(self.path)
        held = LeaseBody.from_bytes(current.data) if current is not None else None
        return held is not None and held.token == self.token and held.released

    def check(self) -> None:
        """Raises LeaseLost unless the lease is ours and unexpired: a commit's fence."""
        _, held = self._ours()
        if held.expired_at(self.clock()):
            raise LeaseLost(f"the lease of run {self.run_id} on {self.output} expired at "
                            f"{held.expires_at} (no heartbeat for {self.ttl_s:g} s)")

    def release(self) -> None:
        """Gives the lease up; quietly does nothing if it is no longer ours."""
        try:
            current, held = self._ours()
        except LeaseLost:
            return
        conditional.replace(self.path, replace(held, released=True,
                                               heartbeat_at=_iso(self.clock())).to_bytes(),
                            current.version)

    def handle(self) -> "LeaseHandle":
        """What a pipeline stage needs to check or renew this lease on a worker."""
        return LeaseHandle(self.output, self.run_id, self.mode, self.ttl_s, self.token)


@dataclass(frozen=True)
class LeaseHandle:
    """A picklable reference to a held lease, for pipeline stages: they renew
    it (streaming ticks) and check it before committing."""

    output: str
    run_id: str
    mode: str
    ttl_s: float
    token: str

    def lease(self) -> Lease:
        lease = Lease(self.output, self.run_id, self.mode, self.ttl_s)
        lease.token = self.token
        return lease


class LeaseFence:
    """Checks, before a write becomes visible, that the run still holds its
    lease: at most once per renewal interval of wall-clock time, so a process
    that was frozen past its TTL (a suspended laptop) checks again before its
    next file appears. Raises LeaseLost."""

    def __init__(self, handle: Optional[LeaseHandle]):
        self.handle = handle
        self._checked_at = float("-inf")

    def check(self) -> None:
        if self.handle is None:
            return
        if time.time() - self._checked_at < self.handle.ttl_s / RENEWALS_PER_TTL:
            return
        self.handle.lease().check()
        self._checked_at = time.time()


class Heartbeat:
    """A thread that renews a lease every ttl / RENEWALS_PER_TTL seconds while
    a local run works, then releases it. A lost lease is logged and kept in
    `lost`; the run's commit fence (Lease.check) is what stops the run."""

    def __init__(self, lease: Lease, release: bool = True):
        self.lease, self.release = lease, release
        self.lost: Optional[LeaseLost] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="newswatch-lease", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.release:
            try:
                self.lease.release()
            except Exception as exc:  # the run's result stands; the lease lapses at its expiry
                _log.warning("could not release the lease on %s (%s); it expires at its TTL",
                             self.lease.output, exc)

    def _beat(self) -> None:
        interval = self.lease.ttl_s / RENEWALS_PER_TTL
        while not self._stop.wait(interval):
            try:
                self.lease.renew()
            except LeaseLost as exc:
                self.lost = exc
                _log.error("%s", exc)
                return
            except Exception as exc:  # storage trouble: the next beat tries again
                _log.warning("lease heartbeat failed (%s); retrying", exc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class RenewLeaseFn(beam.DoFn):
    """Streaming ticks -> nothing: renews the job's lease on every tick. A
    lost lease is counted and logged, not raised: the window commits' fence
    (Lease.check) is what stops a job that lost its output."""

    def __init__(self, handle: LeaseHandle):
        self.handle = handle
        self.lost = metrics.counter("lease_lost")

    def process(self, _tick):
        try:
            self.handle.lease().renew()
        except LeaseLost as exc:
            self.lost.inc()
            _log.error("%s", exc)
        return []
