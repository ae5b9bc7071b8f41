"""Fetching from the benchmark's own server on 127.0.0.1.

The fetch stage may refuse private and loopback addresses unless told
otherwise (a guard against feeds that point at internal services). The
benchmark serves its corpus on 127.0.0.1, so it turns that allowance on
wherever the code it runs has one, and runs unchanged where it has none.
"""
from __future__ import annotations

import dataclasses
from typing import List

from transforms.fetch import FetchSettings


def _allowance_fields() -> List[str]:
    return [f.name for f in dataclasses.fields(FetchSettings)
            if f.type in ("bool", bool) and ("private" in f.name or "loopback" in f.name)]


def fetch_settings(**overrides) -> FetchSettings:
    """FetchSettings that may fetch from 127.0.0.1."""
    return FetchSettings(**{**{name: True for name in _allowance_fields()}, **overrides})


def cli_flags() -> List[str]:
    """The `newswatch run` flags that allow fetching from 127.0.0.1 (if any)."""
    from pipeline.cli import build_parser

    flags = []
    for action in _run_parser(build_parser())._actions:
        for option in action.option_strings:
            # A switch, or an option whose value may be left out (then: all).
            if option.startswith("--") and ("private" in option or "loopback" in option) \
                    and action.nargs in (0, "?"):
                flags.append(option)
                break
    return flags


def _run_parser(parser):
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict) and "run" in choices:
            return choices["run"]
    raise RuntimeError("newswatch has no `run` command")
