"""`newswatch views`: the named views `newswatch retag` made (pipeline/views.py).

    newswatch views --output OUT [--json]        list (the default): each view, its rules, range, counts
    newswatch views delete NAME --output OUT     remove a view: its pointer first, then its generations

The listing comes from pipeline.dataset.list_views (the pointers, read with
pyarrow); deleting goes through pipeline.views.delete_view (Beam's
filesystems: local disk, gs://, s3://). Each action is a sub-command of
`views` with its function in ACTIONS; the output options go before or after
the action's name, as for `newswatch rules`.

Exit codes: 0 done; 2 a missing OUT, a folder that is not a newswatch
output, or an unknown view name (one line on stderr); 1 storage trouble, or
a retag of the name published while it was being deleted.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Dict, List, Optional

import pandas as pd

from pipeline import dataset
from pipeline.config import ConfigError
from pipeline.output_commands import add_output_options, checked_output, iso_time as _time

LIST, DELETE = "list", "delete"
LIST_JSON = "list: one JSON object per line and view, for machines"


def add_parser(commands) -> None:
    """`views` and its actions, on the subcommands of the newswatch parser."""
    views = commands.add_parser("views", help="the named views `retag` made: list them, delete one")
    add_output_options(views, inherited=False, json_help=LIST_JSON)
    actions = views.add_subparsers(dest="views_action", parser_class=type(views))
    add_output_options(actions.add_parser(LIST, help="each view: rules version, generation, when published, "
                                                     "range, counts (the default)"),
                       inherited=True, json_help=LIST_JSON)
    delete = actions.add_parser(DELETE, help="remove a view: its pointer first (readers then find no such "
                                             "view), then its files")
    delete.add_argument("name", help="the view's name (OUT/views/NAME/)")
    add_output_options(delete, inherited=True, json_help=None)


def run(args: argparse.Namespace, out=None) -> int:
    """Runs the action `args` names; raises ConfigError for exit 2."""
    action = args.views_action or LIST
    return ACTIONS[action](checked_output(args, "views", action, json_actions=(LIST,)), args, out or sys.stdout)


# --------------------------------------------------------------------------- list


def list_views(output: str, args: argparse.Namespace, out) -> int:
    frame = dataset.list_views(output)
    text = listing_json(frame) if args.json else "\n".join(listing_lines(frame, output))
    print(text, file=out, flush=True)
    return 0


def listing_lines(frame: pd.DataFrame, output: str) -> List[str]:
    """The list_views frame as aligned text: a header and a line per view."""
    if frame.empty:
        return [f"{output}: no views (make one with `newswatch retag --topics NEW.yaml --output {output}`)"]
    header = ["name", "topics_version", "generation", "published", "since", "until", "units", "stories"]
    rows = [[row.name, row.topics_version, row.generation, _time(row.created_at) or "-",
             _text(row.since) or "-", _text(row.until) or "-", str(row.units), _count(row.stories)]
            + ([f"({row.unpublished} unpublished generation{'s' if row.unpublished != 1 else ''})"]
               if row.unpublished else [])
            for row in frame.itertuples(index=False)]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    numeric = {header.index("units"), header.index("stories")}

    def line(cells):
        # The header's columns aligned (counts to the right); a note past them as it is.
        aligned = [cell.rjust(width) if i in numeric else cell.ljust(width)
                   for i, (cell, width) in enumerate(zip(cells, widths))]
        return "  ".join(aligned + cells[len(widths):]).rstrip()

    return [line(header), *(line(cells) for cells in rows)]


def listing_json(frame: pd.DataFrame) -> str:
    """One JSON object per line and view: list_views' columns, times in ISO 8601 UTC."""
    lines = []
    for row in frame.itertuples(index=False):
        record = {"name": row.name, "topics_version": row.topics_version, "generation": row.generation,
                  "created_at": _time(row.created_at), "since": _text(row.since), "until": _text(row.until),
                  "units": int(row.units), "skipped": int(row.skipped), "entries": _int(row.entries),
                  "stories": _int(row.stories), "warnings": int(row.warnings),
                  "unpublished": int(row.unpublished), "path": row.path}
        lines.append(json.dumps(record, ensure_ascii=False))
    return "\n".join(lines)


def _text(value) -> Optional[str]:
    return None if pd.isna(value) else str(value)


def _int(value) -> Optional[int]:
    return None if pd.isna(value) else int(value)


def _count(value) -> str:
    return "-" if pd.isna(value) else f"{int(value):,}"


# --------------------------------------------------------------------------- delete


def delete_view(output: str, args: argparse.Namespace, out) -> int:
    from pipeline import views

    try:
        done = views.delete_view(output, args.name)
    except views.ViewError as exc:   # no such view, a name that cannot be one, a tombstone without its list
        raise ConfigError(f"views delete: {exc}") from None
    line = f"newswatch: view {done.name} deleted" + (
        f" (generation {done.generation})" if done.generation else " (an earlier deletion finished)")
    line += f": {len(done.removed)} generation{'s' if len(done.removed) != 1 else ''} removed"
    if done.kept:
        line += (f"; kept {', '.join(done.kept)}, not there when the deletion began: a retag of the same "
                 f"name (it publishes, or the next retag that publishes removes it)")
    print(line, file=out, flush=True)
    return 0


ACTIONS: Dict[str, Callable[[str, argparse.Namespace, object], int]] = {
    LIST: list_views,
    DELETE: delete_view,
}
