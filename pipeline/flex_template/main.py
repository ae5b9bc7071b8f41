"""Entry point of the Dataflow Flex Template.

The template launcher runs `python main.py --feeds=... --output=... --runner=
DataflowRunner --project=... ...` (the template parameters plus Beam's
options); this is `newswatch run` with those arguments. The launcher builds
the job, reads the state and submits the job; the job commits the state
itself (its last stage), so nothing here waits for it.
"""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
