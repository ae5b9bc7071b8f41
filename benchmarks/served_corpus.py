"""A generated corpus served over HTTP on 127.0.0.1, as the benchmarks'
feeds: from a FeedServer in this process (`served_feed_list`), or from a
child process (`served_elsewhere`) when this process is the one measured
by a wall clock (benchmarks/profile.py).

This module imports only the test server: a spawned child imports it
again, and needs nothing of Beam, pyarrow or the pipeline to serve files.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from typing import List

from tests.support.feedserver import FeedServer


def serve_folder(server: FeedServer, folder: str, latency: float) -> List[str]:
    """Serves every corpus document under `folder` from disk, each answer
    after `latency` seconds; returns the paths."""
    paths = []
    for directory, _, files in os.walk(folder):
        for name in files:
            if name.endswith((".xml", ".atom")):
                path = "/" + os.path.relpath(os.path.join(directory, name), folder)
                server.handle(path, _file_responder(os.path.join(directory, name), latency))
                paths.append(path)
    return sorted(paths)


def served_feed_list(server: FeedServer, folder: str, latency: float, feeds: str) -> str:
    """Serves `folder` (serve_folder) and writes the served URLs as the feed
    list `feeds`; returns `feeds`."""
    with open(feeds, "w") as handle:
        handle.write("".join(server.url(p) + "\n" for p in serve_folder(server, folder, latency)))
    return feeds


def _file_responder(filename: str, latency: float):
    kind = "application/atom+xml" if filename.endswith(".atom") else "application/rss+xml"

    def respond(handler):
        time.sleep(latency)
        with open(filename, "rb") as handle:
            body = handle.read()
        handler.send_response(200)
        handler.send_header("Content-Type", f"{kind}; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def _serve(folder: str, feeds: str, ready, stop) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    with FeedServer() as server:
        served_feed_list(server, folder, 0.0, feeds)
        ready.set()
        # A parent killed outright runs no cleanup: stop when it is gone.
        while not stop.wait(1.0) and parent.is_alive():
            pass


@contextlib.contextmanager
def served_elsewhere(folder: str, feeds: str, timeout: float = 120.0):
    """served_feed_list from a spawned child process (no copy of this
    process's state or threads), latency 0; yields the child's pid and
    stops the child on the way out, however the block ends."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    child = context.Process(target=_serve, args=(folder, feeds, ready, stop),
                            name="feed server", daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if not child.is_alive():
                raise RuntimeError(f"the feed server exited with code {child.exitcode} before serving")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the feed server did not start within {timeout:.0f} s")
        yield child.pid
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.terminate()
            child.join()
