"""Calls that may block (a FIFO opened for reading waits for a writer) run on
a thread with a deadline, so a regression fails its test instead of hanging
the suite."""
import os
import stat
import threading

import pytest


def returns_within(seconds: float, call, fifo=None):
    """call()'s result (or its exception), if it returns within `seconds`.
    Otherwise the test fails, after a writer that comes and goes has released
    a reader blocked on `fifo` (it then sees end of file)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # raised again in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if fifo is not None and stat.S_ISFIFO(os.stat(fifo).st_mode):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(5)
        pytest.fail(f"{call} did not return within {seconds} s (blocked on {fifo}?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
