"""Command line: `newswatch run --feeds FEEDS --topics TOPICS --output OUT [beam options]`.

Exit codes: 0 success; 2 bad arguments or configuration (one line on stderr,
before any fetch); 1 the run itself failed or its counts did not reconcile.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence

from pipeline import config as cfg
from pipeline.summary import RunSummary

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
ALL_NETWORKS = "all"


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit 2 like every config error."""

    def error(self, message):
        raise cfg.ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="newswatch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", parser_class=_OneLineParser)
    run = commands.add_parser("run", help="fetch feeds and write matching stories as Parquet")
    run.add_argument("--feeds", required=True, help="OPML file or text file of URLs/paths")
    run.add_argument("--topics", required=True, help="topics YAML file")
    run.add_argument("--output", required=True, help="output folder (local path or gs://)")
    run.add_argument("--run-id", help="id carried by the output files (default: from the start time)")
    run.add_argument("--shards", type=int, default=1, help="files per date partition (default 1)")
    run.add_argument("--fetch-timeout", type=float, default=20.0,
                     help="seconds to wait for a server to send data (default 20)")
    run.add_argument("--max-feed-bytes", type=int, default=10 * 1024 * 1024,
                     help="largest feed body accepted, after decompression (default 10 MiB)")
    run.add_argument("--fetch-concurrency", type=int, default=32,
                     help="feeds fetched at once per worker (default 32)")
    run.add_argument("--fetch-deadline", type=float, default=60.0,
                     help="seconds a whole request (redirects included) may take (default 60)")
    run.add_argument("--allow-private-addresses", nargs="?", const=ALL_NETWORKS, default=None,
                     metavar="NETWORKS",
                     help="let feeds and redirects reach loopback, private and link-local addresses "
                          "(intranet feeds, tests): all of them, or only the comma-separated "
                          "networks given, e.g. 10.20.0.0/16,127.0.0.1; cloud metadata addresses "
                          "stay refused")
    return parser


def default_run_id(now: Optional[datetime] = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def prepare(args: argparse.Namespace):
    """Validate everything before any work; raises ConfigError."""
    from pipeline.graph import RunConfig
    from transforms.address_guard import parse_networks
    from transforms.fetch import FetchSettings

    if args.shards < 1:
        raise cfg.ConfigError("--shards must be at least 1")
    if min(args.fetch_timeout, args.fetch_deadline, args.max_feed_bytes, args.fetch_concurrency) <= 0:
        raise cfg.ConfigError("--fetch-timeout, --fetch-deadline, --max-feed-bytes and "
                              "--fetch-concurrency must be positive")
    allow_all, networks = args.allow_private_addresses == ALL_NETWORKS, ()
    if args.allow_private_addresses not in (None, ALL_NETWORKS):
        try:
            networks = parse_networks(args.allow_private_addresses)
        except ValueError as exc:
            raise cfg.ConfigError(f"--allow-private-addresses: {exc}") from None
        if not networks:
            raise cfg.ConfigError("--allow-private-addresses: no network given")
    if args.run_id is not None and not _valid_run_id(args.run_id):
        raise cfg.ConfigError(f"--run-id {args.run_id!r}: use letters, digits, '-', '_' and '.' only")
    feeds = cfg.load_feed_list(args.feeds)
    topics = cfg.load_topics(args.topics)
    output = args.output.rstrip("/") or "/"
    cfg.check_output_writable(output)
    settings = FetchSettings(read_timeout_s=args.fetch_timeout, total_timeout_s=args.fetch_deadline,
                             max_bytes=args.max_feed_bytes, concurrency=args.fetch_concurrency,
                             allow_private_addresses=allow_all, allowed_networks=networks)
    return RunConfig(feeds=tuple(feeds), topics=tuple(topics), output=output,
                     run_id=args.run_id or default_run_id(), fetch=settings, shards=args.shards)


def _valid_run_id(value: str) -> bool:
    return bool(value) and len(value) <= 100 and all(c.isalnum() or c in "-_." for c in value) \
        and not value.startswith(".")


def run_batch(run_config, beam_args: Sequence[str]) -> RunSummary:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.graph import build_batch_pipeline
    from transforms.sink import remove_run_files

    options = PipelineOptions(list(beam_args))
    started = time.monotonic()
    # A re-run of a run id (after a crash, say) first removes what the earlier
    # attempt wrote, so its files cannot leave duplicate or stale rows.
    removed = remove_run_files(run_config.output, run_config.run_id)
    pipeline = beam.Pipeline(options=options)
    build_batch_pipeline(pipeline, run_config)
    result = pipeline.run()
    result.wait_until_finish()
    summary = RunSummary.from_result(result, run_config, time.monotonic() - started,
                                     runner=options.get_all_options().get("runner") or "DirectRunner")
    if removed:
        summary.notes.append(f"replaced run {run_config.run_id}: removed {len(removed)} files "
                             "of an earlier attempt before writing")
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, force=True,
                        format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args, beam_args = parser.parse_known_args(argv)
        if args.command != "run":
            raise cfg.ConfigError("expected a command: run")
        run_config = prepare(args)
        _check_beam_options(beam_args)
    except cfg.ConfigError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        summary = run_batch(run_config, beam_args)
    except Exception as exc:
        logging.getLogger("newswatch").exception("run failed")
        print(f"newswatch: run failed: {cfg._first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(summary.render())
    return EXIT_OK if summary.reconciles else EXIT_FAILED


def _check_beam_options(beam_args: Sequence[str]) -> None:
    """A misspelt option is a config error, not a warning Beam logs mid-run."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(list(beam_args))
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, conflict_handler="resolve")
    for options_class in _all_subclasses(PipelineOptions):
        try:
            options_class._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # an option registered by two classes
    _, unknown = parser.parse_known_args(list(beam_args))
    if unknown:
        raise cfg.ConfigError(f"unknown option or argument {unknown[0].split('=')[0]!r}")
    del options


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)
