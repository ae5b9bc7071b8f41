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
from pipeline.rules_command import output_problem

LIST, DELETE = "list", "delete"


def add_parser(commands) -> None:
    """`views` and its actions, on the subcommands of the newswatch parser."""
    views = commands.add_parser("views", help="the named views `retag` made: list them, delete one")
    _options(views, inherited=False)
    actions = views.add_subparsers(dest="views_action", parser_class=type(views))
    _options(actions.add_parser(LIST, help="each view: rules version, generation, when published, range, "
                                           "counts (the default)"), inherited=True)
    delete = actions.add_parser(DELETE, help="remove a view: its pointer first (readers then find no such "
                                             "view), then its files")
    delete.add_argument("name", help="the view's name (OUT/views/NAME/)")
    _options(delete, inherited=True, with_json=False)


def _options(parser: argparse.ArgumentParser, inherited: bool, with_json: bool = True) -> None:
    # As in rules_command: on `views` and on each action; an action's
    # defaults are SUPPRESSed so they do not overwrite what `views` parsed.
    parser.add_argument("--output", default=argparse.SUPPRESS if inherited else None,
                        help="output folder (local path, gs:// or s3://)")
    if with_json:
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if inherited else False,
                            help="list: one JSON object per line and view, for machines")


def run(args: argparse.Namespace, out=None) -> int:
    """Runs the action `args` names; raises ConfigError for exit 2."""
    out = out or sys.stdout
    if not getattr(args, "output", None):
        raise ConfigError("views: give --output OUT")
    output = args.output.rstrip("/") or "/"
    problem = output_problem(output)
    if problem:
        raise ConfigError(f"views: {problem}")
    return ACTIONS[args.views_action or LIST](output, args, out)


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

    def line(cells):
        return "  ".join(c.rjust(widths[i]) if i >= 6 and i < len(widths) else
                         c.ljust(widths[i]) if i < len(widths) else c for i, c in enumerate(cells)).rstrip()

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


def _time(value) -> Optional[str]:
    if pd.isna(value):
        return None
    return value.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- delete


def delete_view(output: str, args: argparse.Namespace, out) -> int:
    from pipeline import views

    try:
        done = views.delete_view(output, args.name)
    except views.NoSuchView as exc:
        raise ConfigError(f"views delete: {exc}") from None
    except views.ViewError as exc:   # a name that cannot be a view's
        raise ConfigError(f"views delete: {exc}") from None
    line = f"newswatch: view {done.name} deleted" + (
        f" (generation {done.generation})" if done.generation else " (an earlier deletion finished)")
    line += f": {len(done.removed)} generation{'s' if len(done.removed) != 1 else ''} removed"
    if done.kept:
        line += (f"; kept {', '.join(done.kept)}, made since the deletion began by a retag of the same "
                 f"name (it publishes, or the next retag that publishes removes it)")
    print(line, file=out, flush=True)
    return 0


ACTIONS: Dict[str, Callable[[str, argparse.Namespace, object], int]] = {
    LIST: list_views,
    DELETE: delete_view,
}
