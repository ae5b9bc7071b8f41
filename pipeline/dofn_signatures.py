"""Beam's reading of DoFn signatures, done once per function and process.

While it builds a pipeline (and again while it runs one), Beam reads the
signature of every method of every DoFn, to find state and timer
parameters, about a dozen times per DoFn, with `inspect.signature` each
time. A function's signature does not change, so `memoize()` replaces
`apache_beam.transforms.core.get_signature` with one that computes it once
per function; a bound method shares its function's. Other callables
(builtins, partials, classes) go to Beam's reading unchanged.

The command line calls it before it builds a pipeline (`run`, each `--every`
cycle, `retag`'s preparation and replays), and retag's preparation calls it
in a worker process for the stages after it. What it saves is a fixed cost
per pipeline: it weighs on small runs and on retag's many replays. A live
run's multi_processing workers build each DoFn's runner about once, so
they keep Beam's reading.
"""
from __future__ import annotations

import types
import weakref


def memoize() -> None:
    """Once per process; a second call changes nothing."""
    from apache_beam.transforms import core

    original = core.get_signature
    if getattr(original, "memoized", False):
        return
    functions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
    methods: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def get_signature(func):
        if type(func) is types.MethodType and type(func.__func__) is types.FunctionType:
            memo, key = methods, func.__func__
        elif type(func) is types.FunctionType:
            memo, key = functions, func
        else:
            return original(func)
        found = memo.get(key)
        if found is None:
            found = memo[key] = original(func)
        return found

    get_signature.memoized = True
    get_signature.unmemoized = original
    core.get_signature = get_signature
