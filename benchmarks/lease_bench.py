"""What the output lease costs a run, on local disk and on gs:// (the
emulator): per run, taking the lease, one heartbeat, the commit's check and
the release, plus the look for interrupted runs; against the state work
every run already did before the lease (read the feed states, open and close
its marker), measured on the same filesystem in the same run.

    python -m benchmarks.lease_bench [--runs 50]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from transforms.state.lease import Lease
from transforms.state.recovery import recover_interrupted
from transforms.state.store import StateStore


def lease_cost(output: str, run: int) -> float:
    """Seconds of one run's lease work."""
    started = time.perf_counter()
    lease = Lease(output, f"bench-{run:04d}").acquire()
    recover_interrupted(StateStore(output), lease.run_id, datetime.now(timezone.utc), timedelta(days=30))
    lease.renew()
    lease.check()
    lease.release()
    return time.perf_counter() - started


def state_cost(output: str, run: int) -> float:
    """Seconds of the state work a run does without a lease (the baseline)."""
    started = time.perf_counter()
    store = StateStore(output)
    store.load_feed_states(f"base-{run:04d}")
    store.open_run(f"base-{run:04d}", datetime.now(timezone.utc))
    store.close_run(f"base-{run:04d}")
    return time.perf_counter() - started


def measure_on(output: str, runs: int) -> dict:
    lease_cost(output, -1)   # warm-up: clients, folders
    state_cost(output, -1)
    lease = sorted(lease_cost(output, run) for run in range(runs))
    state = sorted(state_cost(output, run) for run in range(runs))
    lease_ms, state_ms = 1000 * lease[runs // 2], 1000 * state[runs // 2]
    return {"lease_ms": lease_ms, "state_ms": state_ms, "ratio": lease_ms / state_ms}


def measure(runs: int = 50) -> dict:
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from tests.support.cloudstorage import GcsEmulator

    result = {"runs": runs}
    with tempfile.TemporaryDirectory() as work:
        result["local"] = measure_on(str(Path(work) / "out"), runs)
        emulator = GcsEmulator(Path(work) / "gcs.log")
        try:
            FileSystems.set_options(PipelineOptions(emulator.use_from_beam()))
            result["gs"] = measure_on(f"gs://{emulator.bucket}/lease-{uuid.uuid4().hex[:8]}", runs)
        finally:
            emulator.stop()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(measure(args.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
