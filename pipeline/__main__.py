"""`python -m pipeline ...`: the same as the `newswatch` command."""
import sys

from pipeline.cli import main

sys.exit(main())
