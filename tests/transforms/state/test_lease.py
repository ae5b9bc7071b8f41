"""The output lease (transforms/state/lease.py) on local disk, gs:// and s3://
(the emulators): one holder at a time, waiting, expiry and takeover, the same
run id refused, heartbeats, the commit fence and release."""
import itertools
import threading
import uuid
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems

from transforms.paths import make_folder
from transforms.state import conditional
from transforms.state.lease import Heartbeat, Lease, LeaseBody, LeaseFence, LeaseHeld, LeaseLost, lease_path


@pytest.fixture(params=["local", "gs", "s3"])
def output(request, tmp_path):
    """An empty output folder on each filesystem."""
    if request.param == "local":
        return str(tmp_path / "out")
    # The stores whose conditional writes are atomic (tests/conftest.py).
    store = request.getfixturevalue({"gs": "fake_gcs", "s3": "serial_s3"}[request.param])
    FileSystems.set_options(beam.options.pipeline_options.PipelineOptions(store.use_from_beam()))
    return f"{request.param}://{store.bucket}/lease-{uuid.uuid4().hex[:8]}/out"


class Clock:
    """A clock the test moves: leases expire without waiting."""

    def __init__(self):
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self):
        return self.now


def held_body(output) -> LeaseBody:
    return LeaseBody.from_bytes(conditional.read(lease_path(output)).data)


def test_a_second_run_is_refused_naming_the_holder_until_the_first_releases(output):
    first = Lease(output, "run-a").acquire()
    with pytest.raises(LeaseHeld) as refused:
        Lease(output, "run-b").acquire()
    assert "run run-a (batch" in str(refused.value) and not refused.value.same_run
    assert held_body(output).holder == "run-a"
    first.release()
    assert held_body(output).released
    second = Lease(output, "run-b").acquire()
    assert held_body(output).holder == "run-b" and second.taken_over is None


def test_the_same_run_id_held_twice_is_refused_even_when_told_to_wait(output):
    Lease(output, "nightly").acquire()
    with pytest.raises(LeaseHeld) as refused:
        Lease(output, "nightly").acquire(wait_s=30)
    assert refused.value.same_run and "the same --run-id" in str(refused.value)


def test_runs_that_named_no_run_id_are_two_runs_even_when_their_ids_coincide(output):
    # Ids made from the clock repeat within a millisecond: the second run's
    # source gives the holder's id four times more before a new one.
    first = Lease(output, "20260101T000000000Z", new_run_id=lambda: "20260101T000000000Z").acquire()
    ids = itertools.chain(["20260101T000000000Z"] * 4, itertools.repeat("20260101T000000001Z"))
    second = Lease(output, "20260101T000000000Z", new_run_id=lambda: next(ids))
    with pytest.raises(LeaseHeld) as refused:
        second.acquire()
    assert not refused.value.same_run and "another run is writing it" in str(refused.value)
    threading.Timer(0.5, first.release).start()
    second.acquire(wait_s=20, poll_s=0.1)
    assert second.run_id == held_body(output).holder == "20260101T000000001Z"
    assert first.run_id == "20260101T000000000Z"


def test_a_waiting_run_gets_the_lease_when_the_holder_releases(output):
    first = Lease(output, "run-a").acquire()
    threading.Timer(0.5, first.release).start()
    second = Lease(output, "run-b").acquire(wait_s=20, poll_s=0.1)
    assert held_body(output).holder == "run-b" and second.taken_over is None


def test_a_lease_without_heartbeat_expires_and_is_taken_over(output):
    clock = Clock()
    crashed = Lease(output, "crashed", ttl_s=60, clock=clock).acquire()
    with pytest.raises(LeaseHeld):
        Lease(output, "next", ttl_s=60, clock=clock).acquire()
    clock.now += timedelta(seconds=61)
    taker = Lease(output, "next", ttl_s=60, clock=clock).acquire()
    assert taker.taken_over.holder == "crashed"
    # The crashed run, should it wake up, has lost the output: no renewal, no commit.
    with pytest.raises(LeaseLost):
        crashed.renew()
    with pytest.raises(LeaseLost):
        crashed.check()
    crashed.release()  # quietly does nothing: the lease is not its own
    assert held_body(output).holder == "next" and not held_body(output).released


def test_renewal_pushes_the_expiry_and_check_fences_an_expired_lease(output):
    clock = Clock()
    lease = Lease(output, "long", ttl_s=60, clock=clock).acquire()
    for _ in range(3):
        clock.now += timedelta(seconds=45)
        lease.renew()
        with pytest.raises(LeaseHeld):
            Lease(output, "other", ttl_s=60, clock=clock).acquire()
    lease.check()
    clock.now += timedelta(seconds=61)
    with pytest.raises(LeaseLost, match="expired"):
        lease.check()


def test_of_many_runs_starting_together_exactly_one_gets_the_lease(output):
    winners, refused = [], []

    def start(n):
        try:
            Lease(output, f"run-{n}").acquire()
            winners.append(n)
        except LeaseHeld:
            refused.append(n)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refused) == 5
    assert held_body(output).holder == f"run-{winners[0]}"


def test_of_many_runs_taking_over_an_expired_lease_exactly_one_wins(output):
    clock = Clock()
    Lease(output, "crashed", ttl_s=10, clock=clock).acquire()
    clock.now += timedelta(seconds=11)
    winners = []

    def take(n):
        try:
            Lease(output, f"taker-{n}", ttl_s=10, clock=clock).acquire()
            winners.append(n)
        except LeaseHeld:
            pass

    threads = [threading.Thread(target=take, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and held_body(output).holder == f"taker-{winners[0]}"


def test_the_heartbeat_keeps_a_short_lease_alive_and_releases_it(output):
    lease = Lease(output, "beating", ttl_s=1.2).acquire()
    with Heartbeat(lease) as beat:
        deadline = threading.Event()
        deadline.wait(3.0)  # 2.5 TTLs: without renewals it would have expired
        with pytest.raises(LeaseHeld):
            Lease(output, "other", ttl_s=1.2).acquire()
        lease.check()
    assert beat.lost is None and held_body(output).released


def test_an_unreadable_lease_names_no_holder_and_is_replaced(output):
    path = lease_path(output)
    make_folder(path.rsplit("/", 1)[0])
    assert conditional.create(path, b"not json") is not None
    lease = Lease(output, "fresh").acquire()
    assert held_body(output).holder == "fresh" and lease.taken_over is None


def test_a_killed_holder_on_this_host_frees_the_lease_at_once(tmp_path):
    import subprocess
    import sys

    output = str(tmp_path / "out")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    killed = Lease(output, "killed", ttl_s=3600).acquire()
    path = lease_path(output)
    current = conditional.read(path)
    body = LeaseBody.from_bytes(current.data)
    conditional.replace(path, LeaseBody(**{**body.__dict__, "pid": int(dead.stdout)}).to_bytes(),
                        current.version)
    taker = Lease(output, "next").acquire()   # no wait, although the TTL is an hour away
    assert taker.taken_over.holder == "killed" and held_body(output).holder == "next"
    with pytest.raises(LeaseLost):
        killed.check()


def test_a_job_on_a_remote_runner_names_no_process_so_its_lease_is_not_freed_early(tmp_path):
    """A Dataflow launcher exits once the job is submitted: its pid being gone
    must not free the job's lease."""
    output = str(tmp_path / "out")
    job = Lease(output, "dataflow-job", ttl_s=3600, local=False).acquire()
    assert held_body(output).pid == 0
    with pytest.raises(LeaseHeld):
        Lease(output, "next").acquire()
    job.renew()
    assert held_body(output).pid == 0


def test_a_renewal_keeps_the_acquirers_host_and_pid(tmp_path):
    output = str(tmp_path / "out")
    lease = Lease(output, "run").acquire()
    current = conditional.read(lease_path(output))
    body = LeaseBody.from_bytes(current.data)
    conditional.replace(lease_path(output), LeaseBody(**{**body.__dict__, "pid": 1}).to_bytes(),
                        current.version)
    lease.renew()   # as a worker process of the run would
    assert held_body(output).pid == 1


@pytest.mark.parametrize("body", [b'{"holder": "x", "token": "t", "mode": "batch", "host": "h", "pid": "7", '
                                  b'"acquired_at": "2026-01-01T00:00:00Z", "heartbeat_at": "2026-01-01T00:00:00Z", '
                                  b'"expires_at": "2999-01-01T00:00:00Z"}',
                                  b'{"holder": "x", "token": "t", "mode": "batch", "host": "h", "pid": 7, '
                                  b'"acquired_at": "a", "heartbeat_at": "b", "expires_at": "soon"}',
                                  b'[1, 2]'], ids=["pid-as-text", "bad-expiry", "not-an-object"])
def test_a_malformed_lease_names_no_holder(body, tmp_path):
    assert LeaseBody.from_bytes(body) is None
    output = str(tmp_path / "out")
    make_folder(str(tmp_path / "out" / "_state"))
    conditional.create(lease_path(output), body)
    Lease(output, "fresh").acquire()
    assert held_body(output).holder == "fresh"


def test_the_write_fence_stops_a_run_whose_lease_was_taken_over(tmp_path):
    output = str(tmp_path / "out")
    frozen = Lease(output, "frozen", ttl_s=1).acquire()
    fence = LeaseFence(frozen.handle())
    fence.check()                      # held: writes go ahead
    threading.Event().wait(1.2)        # no heartbeat: frozen past its TTL
    Lease(output, "next").acquire()
    with pytest.raises(LeaseLost):     # its cached check is older than a renewal interval
        fence.check()
