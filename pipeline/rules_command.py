"""`newswatch rules`: the versions of the topics rules an output has seen.

    newswatch rules --output OUT [--json]        list (the default): each version, its runs, its file
    newswatch rules show VERSION --output OUT    the stored topics file of VERSION, as given
    newswatch rules diff OLD NEW --output OUT    what a rule change changes (pipeline/rules_diff.py)

The listing comes from pipeline.dataset.read_rules (OUT/runs and
OUT/_rules/, transforms/rules_archive.py). Each action is a sub-command of
`rules` with its function in ACTIONS; the parser takes the output options
before or after the action's name.

Exit codes: 0 done; 2 a missing OUT, a folder that is not a newswatch
output, or an unknown version (one line on stderr); 1 storage trouble.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Dict, List, Optional

import pandas as pd

from pipeline import dataset, rules_diff
from pipeline.config import ConfigError
from pipeline.output_commands import add_output_options, checked_output, iso_time as _time
from transforms import rules_archive

LIST, SHOW, DIFF = "list", "show", "diff"
LIST_JSON = "list: one JSON object per line and version, for machines"
# A version may be named by a unique prefix of at least this many digits.
MIN_PREFIX = 4


def add_parser(commands) -> None:
    """`rules` and its actions, on the subcommands of the newswatch parser."""
    rules = commands.add_parser("rules", help="the versions of the topics rules an output has seen, "
                                              "and their stored files")
    add_output_options(rules, inherited=False, json_help=LIST_JSON)
    actions = rules.add_subparsers(dest="rules_action", parser_class=type(rules))
    add_output_options(actions.add_parser(LIST, help="each version: its first and last run, runs, stored "
                                                     "file (the default)"), inherited=True, json_help=LIST_JSON)
    show = actions.add_parser(SHOW, help="print the stored topics file of a version, as it was given")
    show.add_argument("version", help="a topics_version (or a unique prefix of it)")
    add_output_options(show, inherited=True, json_help=None)
    rules_diff.add_parser(actions)


def run(args: argparse.Namespace, out=None) -> int:
    """Runs the action `args` names; raises ConfigError for exit 2."""
    out = out or sys.stdout
    if args.rules_action == DIFF:
        # Its rules compile, and their versions resolve, before OUT is looked at.
        return rules_diff.command(args, out)
    action = args.rules_action or LIST
    return ACTIONS[action](checked_output(args, "rules", action, json_actions=(LIST,)), args, out)


# --------------------------------------------------------------------------- list


def list_versions(output: str, args: argparse.Namespace, out) -> int:
    frame = dataset.read_rules(output)
    text = listing_json(frame) if args.json else "\n".join(listing_lines(frame, output))
    print(text, file=out, flush=True)
    return 0


def listing_lines(frame: pd.DataFrame, output: str) -> List[str]:
    """The read_rules frame as aligned text: a header, a line per version,
    and a line that counts the versions without a run or without a file."""
    if frame.empty:
        return [f"{output}: no finished run and no stored rules yet"]
    header = ["version", "runs", "first run", "started", "last run", "started", "stored file"]
    rows = []
    for row in frame.itertuples(index=False):
        ran = row.runs > 0
        stored = f"missing from {rules_archive.RULES_FOLDER}/" if pd.isna(row.path) else _relative(row.path, output)
        if not ran:
            stored += "  (no finished run)"
        rows.append([row.version, str(row.runs),
                     row.first_run if ran else "-", _time(row.first_run_at) if ran else "-",
                     row.last_run if ran else "-", _time(row.last_run_at) if ran else "-", stored])
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header) - 1)]

    def line(cells):
        return "  ".join([c.rjust(w) if i == 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
                         + [cells[-1]]).rstrip()

    unused = int((frame.runs == 0).sum())
    missing = int(frame.path.isna().sum())
    total = f"{len(frame)} version{'s' if len(frame) != 1 else ''}"
    notes = ([f"{unused} with no finished run (stored by a run still going, failed, or handed to Dataflow)"]
             if unused else []) + \
            ([f"{missing} whose file is missing from {rules_archive.RULES_FOLDER}/ (used by runs before "
              f"the rules archive, or deleted)"] if missing else [])
    return [line(header), *(line(cells) for cells in rows), "", total + (": " + "; ".join(notes) if notes else "")]


def listing_json(frame: pd.DataFrame) -> str:
    """One JSON object per line and version: read_rules' columns, times in ISO 8601 UTC."""
    lines = []
    for row in frame.itertuples(index=False):
        record = {"version": row.version, "path": _text(row.path), "runs": int(row.runs),
                  "first_run": _text(row.first_run), "first_run_at": _time(row.first_run_at),
                  "last_run": _text(row.last_run), "last_run_at": _time(row.last_run_at)}
        lines.append(json.dumps(record, ensure_ascii=False))
    return "\n".join(lines)


def _text(value) -> Optional[str]:
    return None if pd.isna(value) else str(value)  # missing text is NaN in pandas' str dtype


def _relative(path: str, output: str) -> str:
    return path[len(output) + 1:] if path.startswith(output + "/") else path


# --------------------------------------------------------------------------- show


def show_version(output: str, args: argparse.Namespace, out) -> int:
    version = resolve_version(output, args.version)
    data = rules_archive.read_rules_file(output, version)
    stream = getattr(out, "buffer", None)
    if stream is None:  # a text stream without bytes underneath (tests' capture)
        out.write(data.decode("utf-8", errors="replace"))
        out.flush()
    else:
        out.flush()
        stream.write(data)
        stream.flush()
    return 0


def resolve_version(output: str, given: str, command: str = "rules show") -> str:
    """The stored version `given` names, whole or by a unique prefix;
    ConfigError saying why not, in the words of `command`."""
    frame = dataset.read_rules(output)
    stored = sorted(frame.version[frame.path.notna()])
    given = given.strip().lower()
    if given in stored:
        return given
    if len(given) >= MIN_PREFIX:
        matches = [v for v in stored if v.startswith(given)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ConfigError(f"{command}: {given} is the start of {len(matches)} versions: "
                              f"{', '.join(matches)}")
    if given in set(frame.version):
        raise ConfigError(f"{command}: version {given} was used by runs of {output} but its file is not "
                          f"stored under {rules_archive.RULES_FOLDER}/ (runs before the rules archive, "
                          f"or deleted)")
    shown = ", ".join(stored[:5]) + (f" and {len(stored) - 5} more" if len(stored) > 5 else "")
    raise ConfigError(f"{command}: no version {given} in {output}"
                      + (f" (stored: {shown})" if stored else " (no rules stored)"))


ACTIONS: Dict[str, Callable[[str, argparse.Namespace, object], int]] = {
    LIST: list_versions,
    SHOW: show_version,
}
