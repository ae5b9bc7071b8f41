"""`python -m tests.support.emulated_cli run ...`: newswatch's command line in
a subprocess that reaches the gs:// emulator at once (STORAGE_EMULATOR_HOST
set by the parent), without Beam's ~26 s search for Google credentials."""
import os
import sys

from pipeline.cli import main

if __name__ == "__main__":
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from apache_beam.internal.gcp import auth
        with auth._Credentials._credentials_lock:
            auth._Credentials._credentials, auth._Credentials._credentials_init = None, True
    sys.exit(main(sys.argv[1:]))
