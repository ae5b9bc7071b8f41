"""What `newswatch rules` (pipeline/rules_command.py) and `newswatch views`
(pipeline/views_command.py) share: commands whose actions read one existing
OUT.

    add_output_options(parser, ...)  --output (and --json) on the command and on each action
    checked_output(args, ...)        OUT from the arguments, or a ConfigError (exit 2)
    iso_time(value)                  a pandas timestamp as printed: ISO 8601 UTC to the second
"""
from __future__ import annotations

import argparse
from typing import Optional

import pandas as pd

from pipeline.config import ConfigError
from transforms import rules_archive

# Folders only a newswatch output holds (docs/output.md).
OUTPUT_FOLDERS = ("runs", "stories", "fetches", "errors", "entries", "views", "_state",
                  rules_archive.RULES_FOLDER)


def add_output_options(parser: argparse.ArgumentParser, inherited: bool, json_help: Optional[str]) -> None:
    """--output, and --json when `json_help` is given. On the command and on
    each action, so that `rules --output OUT show V` and `rules show V
    --output OUT` both work; an action's defaults are SUPPRESSed, as they
    would overwrite what the command itself parsed."""
    parser.add_argument("--output", default=argparse.SUPPRESS if inherited else None,
                        help="output folder (local path, gs:// or s3://)")
    if json_help:
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if inherited else False,
                            help=json_help)


def checked_output(args: argparse.Namespace, command: str, action: str, json_actions=()) -> str:
    """OUT as given (without a trailing '/'), once it holds a newswatch
    output; ConfigError, in the words of `command`, for a missing --output,
    --json given to an action outside `json_actions` (also before the
    action's name), or an OUT that is missing or not a newswatch output."""
    if getattr(args, "json", False) and action not in json_actions:
        raise ConfigError(f"{command} {action}: --json is for {' and '.join(json_actions)} only")
    if not getattr(args, "output", None):
        raise ConfigError(f"{command}: give --output OUT")
    output = args.output.rstrip("/") or "/"
    problem = output_problem(output)
    if problem:
        raise ConfigError(f"{command}: {problem}")
    return output


def output_problem(output: str) -> Optional[str]:
    """Why OUT cannot be read (missing, or not a newswatch output), or None."""
    from pipeline.compact import output_exists
    from transforms.paths import has_files

    if not output_exists(output):
        return f"no output at {output}"
    if not any(has_files(output, f"{folder}/**") for folder in OUTPUT_FOLDERS):
        return f"{output} is not a newswatch output (it has none of {', '.join(f + '/' for f in OUTPUT_FOLDERS)})"
    return None


def iso_time(value) -> Optional[str]:
    """A tz-aware pandas timestamp as ISO 8601 UTC to the second; None for a missing one."""
    if pd.isna(value):
        return None
    return value.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
