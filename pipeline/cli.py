"""Command line: `newswatch run --feeds FEEDS --topics TOPICS --output OUT [beam options]`,
`newswatch compact --output OUT` (docs/compaction.md),
`newswatch report --output OUT --html FILE` (pipeline/report/),
`newswatch rules --output OUT` (pipeline/rules_command.py),
`newswatch rules diff OLD NEW --output OUT` (pipeline/rules_diff.py),
`newswatch retag --topics NEW --output OUT` (pipeline/retag.py) and
`newswatch views [delete NAME] --output OUT` (pipeline/views_command.py).

Exit codes: 0 success; 2 bad arguments or configuration (one line on stderr,
before any fetch); 1 the run itself failed or its counts did not reconcile;
75 (EX_TEMPFAIL) another run holds the output's lease: try again later.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, List, Optional, Sequence

from pipeline import config as cfg
from pipeline import dofn_signatures, rules_command, views_command
from pipeline.progress import RunProgress, add_quiet_option
from pipeline.summary import RunSummary, run_row
from transforms import process_gc, process_memory
from transforms.archive import ARCHIVE_TEXT, TEXT_FULL
from transforms.errors import first_line
from transforms.fast_parse import PARSERS
from transforms.state.store import DEFAULT_LOOKBACK_DAYS

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LEASE_HELD = 0, 1, 2, 75
ALL_NETWORKS = "all"


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit 2 like every config error."""

    def error(self, message):
        raise cfg.ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="newswatch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", parser_class=_OneLineParser)
    run = commands.add_parser("run", help="fetch feeds and write matching stories as Parquet")

    def option(name, **kwargs):
        # --run-id and --run_id alike: Dataflow template parameters use underscores.
        spellings = [name] + (["--" + name[2:].replace("-", "_")] if "-" in name[2:] else [])
        run.add_argument(*spellings, **kwargs)

    option("--feeds", required=True, help="OPML file or text file of URLs/paths (local, gs://, s3://), "
                                          "or - for standard input")
    option("--topics", required=True, help="topics YAML file (local, gs://, s3://)")
    option("--output", required=True, help="output folder (local path, gs:// or s3://)")
    option("--run-id", help="id carried by the output files; re-running an id replaces its "
                            "files (default: from the start time)")
    option("--shards", type=int, default=1, help="story files per date partition (default 1)")
    option("--archive-shards", type=int,
           help="entry archive files per date partition (default: --shards, or in a batch run the "
                "number of workers of --direct_running_mode=multi_processing where that is larger)")
    option("--no-clusters", nargs="?", const=True, default=False, type=_yes_no, metavar="true|false",
           help="do not group reprints into syndication clusters (cluster_id and cluster_size stay null)")
    option("--no-archive", nargs="?", const=True, default=False, type=_yes_no, metavar="true|false",
           help="keep no entry archive (OUT/entries/): a later retag cannot see this run's entries")
    option("--archive-text", choices=ARCHIVE_TEXT, default=TEXT_FULL,
           help="what the entry archive keeps of each entry: full (default: its text too, "
                "so it can be re-tagged) or none (identities only)")
    option("--parser", default="auto", choices=PARSERS,
           help="auto: the fast lxml parser, feedparser for every document it refuses; "
                "feedparser: feedparser alone (default auto)")
    option("--fetch-timeout", type=float, default=20.0,
           help="seconds to wait for a server to send data (default 20)")
    option("--max-feed-bytes", type=int, default=10 * 1024 * 1024,
           help="largest feed body accepted, after decompression (default 10 MiB)")
    option("--fetch-concurrency", type=int, default=32,
           help="feeds fetched at once per worker in a batch run, per key of the streaming poll (default 32)")
    option("--fetch-deadline", type=float, default=60.0,
           help="seconds a whole request (redirects included) may take (default 60)")
    option("--allow-private-addresses", nargs="?", const=ALL_NETWORKS, default=None,
           metavar="NETWORKS",
           help="let feeds and redirects reach loopback, private and link-local addresses "
                "(intranet feeds, tests): all of them (no value, or 'all'), or only the comma-separated "
                "networks given, e.g. 10.20.0.0/16,127.0.0.1; cloud metadata addresses "
                "stay refused")
    option("--lookback-days", type=float, default=DEFAULT_LOOKBACK_DAYS,
           help=f"how long written stories are remembered to avoid writing them again "
                f"(default {DEFAULT_LOOKBACK_DAYS})")
    option("--every", type=float, metavar="SECONDS",
           help="local repeated mode: run again every SECONDS until interrupted "
                "(Ctrl-C finishes the current cycle)")
    option("--streaming", nargs="?", const=True, default=False, type=_yes_no, metavar="true|false",
           help="streaming mode: poll the feeds every --poll-interval seconds in one long-running "
                "job (Dataflow or another streaming runner; on the DirectRunner only with --duration)")
    option("--poll-interval", type=float, default=300.0, metavar="SECONDS",
           help="streaming: seconds between polls of the feed list (default 300)")
    option("--duration", type=float, metavar="SECONDS",
           help="streaming: stop polling after SECONDS (default: run until stopped)")
    option("--window", type=float, default=300.0, metavar="SECONDS",
           help="streaming: output files per FixedWindow of SECONDS (default 300)")
    option("--dedup-ttl", type=float, default=7 * 24 * 3600.0, metavar="SECONDS",
           help="streaming: how long a written story is remembered so it is not written "
                "again (default 604800, 7 days)")
    option("--host-concurrency", type=int, default=2, metavar="N",
           help="streaming: requests in flight to one host at most (default 2)")
    option("--host-gap", type=float, default=1.0, metavar="SECONDS",
           help="streaming: seconds between the starts of two requests to one host (default 1.0)")
    option("--wait-for-lease", type=float, default=0.0, metavar="SECONDS",
           help="if another run holds the output's lease, wait up to SECONDS for it (default 0: "
                "stop at once with exit code 75)")
    option("--lease-ttl", type=float, metavar="SECONDS",
           help="how long the output's lease outlives its last heartbeat (default 120 for a local "
                "process; a Dataflow job holds it longer: docs/operations.md)")
    option("--compact", action="store_true",
           help="after a batch run, compact the closed days of OUT (as `newswatch compact`)")
    add_quiet_option(run)
    compact = commands.add_parser("compact", help="merge the small files of closed days into one "
                                                  "file a day (stories) or a month (other kinds)")
    compact.add_argument("--output", required=True, help="output folder (local path, gs:// or s3://)")
    compact.add_argument("--force", action="store_true",
                         help="compact even while a run holds the output's lease (a streaming job's "
                              "uncommitted windows are left alone)")
    compact.add_argument("--before", type=_day, metavar="YYYY-MM-DD",
                         help="compact the days before this one (default: today, UTC)")
    add_quiet_option(compact)
    _add_report_parser(commands)
    rules_command.add_parser(commands)
    _add_retag_parser(commands)
    views_command.add_parser(commands)
    return parser


def _add_retag_parser(commands) -> None:
    retag = commands.add_parser("retag", help="re-tag archived entries with other topic rules into a "
                                              "named view (docs/retag.md)")
    retag.add_argument("--topics", required=True, help="the new topics YAML file (local, gs://, s3://)")
    retag.add_argument("--output", required=True, help="output folder whose entry archive is replayed")
    retag.add_argument("--since", help="first fetch day or time (YYYY-MM-DD or ISO 8601, UTC), included")
    retag.add_argument("--until", help="last fetch day (included) or time (excluded)")
    retag.add_argument("--name", help="the view's name: OUT/views/NAME/ (default: retag-<topics_version>)")
    retag.add_argument("--replace", action="store_true", help="replace the view if it exists")
    retag.add_argument("--dry-run", action="store_true",
                       help="print stories per topic, now and with the new rules, and write nothing")
    retag.add_argument("--lookback-days", type=float, default=DEFAULT_LOOKBACK_DAYS,
                       help=f"the --lookback-days the live runs had (default {DEFAULT_LOOKBACK_DAYS})")
    retag.add_argument("--no-clusters", action="store_true",
                       help="the live runs had --no-clusters: cluster_id and cluster_size stay null")
    add_quiet_option(retag)


def _day(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def _add_report_parser(commands) -> None:
    report = commands.add_parser("report", help="an HTML page (and CSV tables) of what an output holds")
    report.add_argument("--output", required=True, help="output folder to report on (local path, gs:// or s3://)")
    report.add_argument("--since", help="first day or time (YYYY-MM-DD or ISO 8601, UTC), included")
    report.add_argument("--until", help="last day (included) or time (excluded)")
    report.add_argument("--html", metavar="FILE", help="write the report as one self-contained HTML file")
    report.add_argument("--csv", metavar="DIR", help="write the report's tables as CSV files into DIR")
    report.add_argument("--silent-days", type=float, default=3.0, metavar="DAYS",
                        help="a feed without a story for DAYS is listed as silent (default 3)")
    report.add_argument("--top", type=int, default=10, metavar="N", help="sources shown per topic (default 10)")
    report.add_argument("--newest", type=int, default=10, metavar="N",
                        help="newest stories shown per topic (default 10)")
    add_quiet_option(report)


# Options that make sense only for a local process, not in a Dataflow template
# (a launcher prints no progress lines to silence).
LOCAL_ONLY_OPTIONS = ("--every", "--quiet", "--compact")


def _yes_no(value: str) -> bool:
    # `--streaming` alone, or `--streaming=true` as a template launcher passes it.
    if str(value).lower() in ("true", "yes", "1"):
        return True
    if str(value).lower() in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def default_run_id(now: Optional[datetime] = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def prepare(args: argparse.Namespace, beam_args: Sequence[str] = ()):
    """Validate everything before any work; raises ConfigError."""
    from pipeline.graph import RunConfig
    from transforms.address_guard import parse_networks
    from transforms.fetch import FetchSettings

    if args.shards < 1:
        raise cfg.ConfigError("--shards must be at least 1")
    if args.archive_shards is not None and args.archive_shards < 1:
        raise cfg.ConfigError("--archive-shards must be at least 1")
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
    if not args.lookback_days > 0:
        raise cfg.ConfigError("--lookback-days must be positive")
    if args.every is not None:
        if not args.every > 0:
            raise cfg.ConfigError("--every must be a positive number of seconds")
        if args.run_id is not None:
            raise cfg.ConfigError("--run-id cannot be combined with --every: each cycle gets its own id")
    if not args.wait_for_lease >= 0:
        raise cfg.ConfigError("--wait-for-lease must be zero or a positive number of seconds")
    if args.lease_ttl is not None and not args.lease_ttl >= 1:
        raise cfg.ConfigError("--lease-ttl must be at least 1 second")
    if not args.output.strip():
        # An unset $OUT in a cron line must not mean the filesystem root.
        raise cfg.ConfigError("--output is empty: give the output folder")
    streaming = _streaming_settings(args)
    feeds = cfg.load_feed_list(args.feeds)
    topics = cfg.load_topics_file(args.topics)
    output = args.output.rstrip("/") or "/"
    cfg.check_output_writable(output)
    settings = FetchSettings(read_timeout_s=args.fetch_timeout, total_timeout_s=args.fetch_deadline,
                             max_bytes=args.max_feed_bytes, concurrency=args.fetch_concurrency,
                             allow_private_addresses=allow_all, allowed_networks=networks)
    # Each (date, shard) of a file written is one worker's work, and the
    # archive is the largest write: with a shard per worker, each writes a
    # share of it (docs/performance.md, "Two workers"). The streaming
    # DirectRunner has no multi_processing mode.
    archive_shards = args.archive_shards or max(args.shards, 1 if streaming else cfg.local_workers(beam_args))
    return RunConfig(feeds=tuple(feeds), topics=topics.topics, output=output,
                     run_id=args.run_id or "", fetch=settings, shards=args.shards,
                     archive_shards=archive_shards,
                     lookback=timedelta(days=args.lookback_days), streaming=streaming,
                     clusters=not args.no_clusters, topics_file=topics.data,
                     archive_text=None if args.no_archive else args.archive_text, parser=args.parser)


def _streaming_settings(args: argparse.Namespace):
    from pipeline.graph import StreamingSettings
    from transforms.hosts import HostPoliteness

    if not args.streaming:
        given = [name for name in ("duration",) if getattr(args, name) is not None]
        if given:
            raise cfg.ConfigError(f"--{given[0]} needs --streaming")
        return None
    if args.every is not None:
        raise cfg.ConfigError("--streaming and --every are two ways to keep watching: choose one")
    for name in ("poll_interval", "window", "dedup_ttl"):
        if not getattr(args, name) > 0:
            raise cfg.ConfigError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.window < 1:
        # A window's files and commit are named by its start, to the second
        # (transforms/sink.py, window_tag): two windows in one second would
        # write the same names.
        raise cfg.ConfigError("--window must be at least 1 second")
    if args.duration is not None and not args.duration > 0:
        raise cfg.ConfigError("--duration must be a positive number of seconds")
    if args.host_concurrency < 1:
        raise cfg.ConfigError("--host-concurrency must be at least 1")
    if not args.host_gap >= 0:
        raise cfg.ConfigError("--host-gap must be zero or a positive number of seconds")
    return StreamingSettings(poll_interval_s=args.poll_interval, duration_s=args.duration,
                             window_s=args.window, dedup_ttl_s=args.dedup_ttl,
                             hosts=HostPoliteness(concurrency=args.host_concurrency, gap_s=args.host_gap))


def _valid_run_id(value: str) -> bool:
    return bool(value) and len(value) <= 100 and all(c.isalnum() or c in "-_." for c in value) \
        and not value.startswith(".")


def _writes_template(beam_args: Sequence[str]) -> bool:
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    return bool(PipelineOptions(list(beam_args)).view_as(GoogleCloudOptions).template_location)


def _on_dataflow(beam_args: Sequence[str]) -> bool:
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    return "dataflow" in str(PipelineOptions(list(beam_args)).view_as(StandardOptions).runner or "").lower()


# How long a Dataflow job's lease lasts without a heartbeat from this process:
# a batch job holds it until its commit stage releases it; a streaming job
# renews it on every poll tick, once its workers have started.
DATAFLOW_BATCH_LEASE_S = 4 * 3600.0
DATAFLOW_START_S = 900.0


def lease_ttl(given: Optional[float], mode: str, on_dataflow: bool, streaming=None) -> float:
    from transforms.state.lease import BATCH, DEFAULT_TTL_S

    ttl = given or DEFAULT_TTL_S
    if streaming is not None:
        ttl = max(ttl, 3 * streaming.poll_interval_s)  # renewed on every tick
    if on_dataflow:
        ttl = max(ttl, DATAFLOW_BATCH_LEASE_S if mode == BATCH else DATAFLOW_START_S)
    return ttl


@contextlib.contextmanager
def output_lease(run_config, args: argparse.Namespace, beam_args: Sequence[str]):
    """Holds OUT's lease around a run (or, with --every, around all cycles)
    and yields the run config that carries it. A local process keeps it alive
    with a heartbeat and releases it at the end; a Dataflow job is left to
    release it (batch commit) or renew it (streaming ticks). Raises LeaseHeld."""
    from transforms.state.lease import BATCH, EVERY, STREAMING, Heartbeat, Lease

    if _writes_template(beam_args):
        yield run_config  # only a job description is written: nothing runs
        return
    on_dataflow = _on_dataflow(beam_args)
    mode = STREAMING if run_config.streaming else EVERY if args.every is not None else BATCH
    ttl = lease_ttl(args.lease_ttl, mode, on_dataflow, run_config.streaming)
    named = run_config.run_id
    lease = Lease(run_config.output, named, mode, ttl, local=not on_dataflow,
                  new_run_id=None if named else default_run_id).acquire(args.wait_for_lease)
    holder = lease.run_id
    config = dataclasses.replace(run_config, run_id=holder if mode != EVERY else "",
                                 lease=lease.handle(), release_lease=on_dataflow and mode == BATCH)
    if on_dataflow:
        submitted = False
        try:
            yield config
            submitted = True
        finally:
            if not submitted:
                lease.release()  # no job was submitted to hold it
        return
    with Heartbeat(lease):
        yield config


def run_cycle(base_config, beam_args: Sequence[str], replace_run: bool = False,
              quiet: bool = False) -> RunSummary:
    """One batch run: recover interrupted runs, read the state, mark the run
    open, run the pipeline (whose last stage commits the state)."""
    from transforms import phases
    from transforms.state.recovery import recover_interrupted
    from transforms.state.store import StateStore

    started_at = datetime.now(timezone.utc)
    run_id = base_config.run_id or default_run_id(started_at)
    store = StateStore(base_config.output)
    template = _writes_template(beam_args)
    recovered = [] if template else recover_interrupted(store, run_id, started_at, base_config.lookback)
    feed_states, report = store.load_feed_states(run_id)
    if template:
        # Only a job description is written: nothing runs, so no run opens.
        logging.getLogger("newswatch").warning(
            "--template_location writes a classic template, which freezes the run id and the "
            "feed state of this moment; schedule the Flex Template instead (README)")
        stored = []
    else:
        stored = store_rules(base_config)
        store.open_run(run_id, started_at)
    config = dataclasses.replace(base_config, run_id=run_id, started_at=started_at,
                                 feed_states=tuple(sorted(feed_states.items())))
    # Only a given --run-id can have run before; a fresh id has no files to
    # replace, and listing the whole output for them costs time on gs://.
    summary = run_batch(config, beam_args, replace_run=replace_run, quiet=quiet)
    phases.reached(phases.COMMITTED)
    summary.notes = [r.note() for r in recovered] + report.notes() + stored + summary.notes
    if not template:
        record_run(summary, config)
    return summary


def store_rules(config) -> List[str]:
    """Stores the run's topics file under OUT/_rules/ (once per version;
    transforms/rules_archive.py) before its pipeline starts; a note when it
    was new."""
    from transforms import rules_archive

    written = rules_archive.store_rules(config.output, config.topics, config.topics_file)
    return [f"topics: rules stored as {rules_archive.RULES_FOLDER}/{written.rsplit('/', 1)[1]}"] \
        if written else []


def record_run(summary: RunSummary, config) -> None:
    """After a run that ended here (a batch run's state is committed by then):
    an empty, schema-carrying file in fetches/ and errors/ where the output
    has none yet, and its row in OUT/runs/. A job handed to Dataflow gets the
    empty files at submission and no row (its counters are in the Dataflow
    console). Trouble writing them is a note, not a failed run: the run's
    data is committed."""
    from transforms.schema import partition_date
    from transforms.sink import ensure_schema_files, write_run_row

    try:
        ensure_schema_files(config.output, config.run_id, partition_date(config.started_at))
        if not summary.submitted:
            write_run_row(config.output, run_row(summary))
    except Exception as exc:
        logging.getLogger("newswatch").warning("run %s: runs/ row not written", config.run_id, exc_info=True)
        summary.notes.append(f"WARNING the runs/ row was not written: {first_line(exc)}")


def run_batch(run_config, beam_args: Sequence[str], replace_run: bool = True,
              quiet: bool = False) -> RunSummary:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.graph import build_batch_pipeline
    from transforms.sink import remove_run_files

    options = PipelineOptions(list(beam_args))
    # A re-run of a run id (after a crash, say) first removes what the earlier
    # attempt wrote, so its files cannot leave duplicate or stale rows.
    removed = remove_run_files(run_config.output, run_config.run_id) if replace_run else []
    summary = _run_pipeline(build_batch_pipeline, run_config, options, quiet=quiet)
    if removed:
        summary.notes.append(f"replaced run {run_config.run_id}: removed {len(removed)} files "
                             "of an earlier attempt before writing")
    return summary


def run_streaming(run_config, beam_args: Sequence[str], quiet: bool = False) -> RunSummary:
    """A streaming job: polls until --duration has passed (or forever).

    It starts from the state committed under _state/ (feed validators here,
    written stories in SeenBefore) and commits every output window as a unit
    of its own (`<run_id>-w<window start>-p<pane>`). Its run marker stays
    open while it runs: should it die between writing a window's files and
    committing them, the next run recovers that window
    (transforms.state.recovery)."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from pipeline.graph import build_streaming_pipeline
    from transforms.state.recovery import recover_interrupted
    from transforms.state.store import StateStore

    started_at = datetime.now(timezone.utc)
    run_id = run_config.run_id or default_run_id(started_at)
    store = StateStore(run_config.output)
    template = _writes_template(beam_args)  # a job description only: no lease, nothing runs
    recovered = [] if template else recover_interrupted(store, run_id, started_at, run_config.lookback)
    feed_states, report = store.load_feed_states(run_id)
    stored = [] if template else store_rules(run_config)
    if not template:
        store.open_run(run_id, started_at, window_s=run_config.streaming.window_s)
    config = dataclasses.replace(run_config, run_id=run_id, started_at=started_at,
                                 feed_states=tuple(sorted(feed_states.items())))
    options = PipelineOptions(list(beam_args))
    options.view_as(StandardOptions).streaming = True
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    if config.streaming.duration_s is None and "Direct" in str(runner):
        logging.getLogger("newswatch").warning(
            "the DirectRunner writes nothing until a streaming run ends: give --duration, "
            "or use --every to keep watching locally (README)")
    summary = _run_pipeline(build_streaming_pipeline, config, options, quiet=quiet)
    if not summary.submitted and not template:
        store.close_run(run_id)  # every window it wrote is committed
    summary.notes = [r.note() for r in recovered] + report.notes() + stored + summary.notes
    if not template:
        record_run(summary, config)  # one row for the whole job, at its end
    return summary


def _run_pipeline(build, config, options, quiet: bool = False) -> RunSummary:
    """Builds and runs the pipeline; waits for it, except on Dataflow.

    A local run prints progress lines on stderr while it runs (unless
    quiet): pipeline/progress.py. A Dataflow job shows the same counters as
    Beam metrics in its console; its launcher prints none."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions

    runner = str(options.view_as(StandardOptions).runner or "DirectRunner")
    process_gc.apply()   # once a process: the stages' modules are imported by now
    dofn_signatures.memoize()
    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config)
    remote = "Dataflow" in runner or bool(options.view_as(GoogleCloudOptions).template_location)
    # A batch run fetches each feed once; a streaming one polls them again and again.
    total = len(config.feeds) if config.streaming is None else None
    with RunProgress(total, quiet=quiet or remote) as progress:
        result = pipeline.run()
        if "Dataflow" in runner:
            # The job runs (and, in batch, commits its state) on Dataflow; a Flex
            # Template launcher must not wait for it. Its counters are in the console.
            return RunSummary({}, config.run_id, config.output, time.monotonic() - started,
                              runner=runner, submitted=True)
        result.wait_until_finish()
        summary = RunSummary.from_result(result, config, time.monotonic() - started, runner=runner)
        progress.finish(summary.counters)
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, force=True,
                        format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args, beam_args = parser.parse_known_args(argv)
        if args.command == "report":
            if beam_args:  # Beam's filesystem options (--s3_endpoint_url ...) for a gs:// or s3:// OUT
                _check_beam_options(beam_args)
            return report_command(args)
        if args.command == "rules":
            if beam_args:  # as for report: filesystem options for a gs:// or s3:// OUT
                _check_beam_options(beam_args)
            return _guarded("rules", rules_command.run, args)
        if args.command == "views":
            if beam_args:  # as for rules
                _check_beam_options(beam_args)
            return _guarded("views", views_command.run, args)
        if args.command not in ("run", "compact", "retag"):
            raise cfg.ConfigError("expected a command: run, compact, retag, report, rules or views")
        _check_beam_options(beam_args)
        try:
            process_memory.apply()
            process_gc.check()
        except ValueError as exc:
            raise cfg.ConfigError(str(exc)) from None
        if args.command == "retag":
            return retag_command(args, beam_args)
        if args.command == "compact":
            return run_compact(args.output, args.before, args.force, quiet=args.quiet)
        if args.compact and (args.streaming or args.every is not None or _on_dataflow(beam_args)):
            raise cfg.ConfigError("--compact follows a local batch run; for --every, streaming and Dataflow "
                                  "outputs schedule `newswatch compact --force`, which works beside the job: "
                                  "it leaves the story files the job has not committed")
        _check_dataflow_options(args, beam_args)
        run_config = prepare(args, beam_args)
    except cfg.ConfigError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from transforms.state.lease import LeaseHeld

    try:
        with output_lease(run_config, args, beam_args) as leased:
            if args.every is not None:
                return run_every(leased, beam_args, args.every, quiet=args.quiet)
            if leased.streaming is not None:
                code = _report(lambda: run_streaming(leased, beam_args, quiet=args.quiet))
            else:
                if args.run_id is not None:
                    _check_rerun(leased)
                code = _one_cycle(leased, beam_args, replace_run=args.run_id is not None, quiet=args.quiet)
                if code == EXIT_OK and args.compact:
                    code = run_compact(leased.output, None, force=False, lease_held=True, quiet=args.quiet)
            if code != EXIT_OK:
                raise _RunFailed(code)  # tells output_lease that no job holds the lease
            return code
    except _RunFailed as failed:
        return failed.code
    except cfg.ConfigError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except LeaseHeld as exc:
        print(f"newswatch: {exc}", file=sys.stderr)
        return EXIT_LEASE_HELD
    except Exception as exc:  # the lease could not be read or written: storage trouble
        logging.getLogger("newswatch").exception("run failed")
        print(f"newswatch: run failed: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def report_command(args: argparse.Namespace) -> int:
    """`newswatch report`: 0 written; 2 bad options, a missing or empty
    output, or matplotlib missing (one line on stderr)."""
    import importlib.util

    if not (args.html or args.csv):
        raise cfg.ConfigError("report: give --html FILE, --csv DIR or both")
    if args.silent_days < 0 or args.top < 1 or args.newest < 1:
        raise cfg.ConfigError("report: --silent-days must be 0 or more, --top and --newest 1 or more")
    if args.html:
        folder = os.path.dirname(os.path.abspath(args.html))
        if not os.path.isdir(folder):
            raise cfg.ConfigError(f"report: --html {args.html}: no folder {folder}")
    # pandas for the tables, matplotlib for the page's charts: the `report` extra
    needed = ["pandas"] + (["matplotlib"] if args.html else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise cfg.ConfigError(f"report needs {' and '.join(missing)}, not installed here: "
                              "pip install 'newswatch[report]'")
    from pipeline import report
    from pipeline.progress import Progress

    steps = len(report.BUILD_STEPS) + bool(args.html) + bool(args.csv)
    with Progress("report", total=steps, fields=("steps",), quiet=args.quiet) as progress:
        return _build_report(args, report, lambda step: progress.advance(steps=1))


def _build_report(args: argparse.Namespace, report, step_done) -> int:
    try:
        tables = report.build(args.output, since=args.since, until=args.until, silent_days=args.silent_days,
                              top=args.top, newest=args.newest, step_done=step_done)
    except Exception as exc:
        import pyarrow

        # A wrong path, an empty range or a bad --since is the caller's; a
        # file pyarrow cannot read (ArrowInvalid is a ValueError) or storage
        # trouble is not.
        if isinstance(exc, (FileNotFoundError, report.NothingToReport, ValueError)) \
                and not isinstance(exc, pyarrow.ArrowException):
            raise cfg.ConfigError(f"report: {first_line(exc)}") from None
        logging.getLogger("newswatch").exception("report failed")
        print(f"newswatch: report failed: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    written = []
    if args.html:
        written.append(report.write_html(tables, args.html, output=args.output, since=args.since, until=args.until))
        step_done("html")
    if args.csv:
        report.write_csv(tables, args.csv)
        written.append(f"{args.csv} (CSV)")
        step_done("csv")
    stories = tables.summary.set_index("measure")["value"]
    print(f"report on {args.output}: {stories['stories']} stories, {stories['feeds']} feeds; wrote "
          + ", ".join(str(path) for path in written), flush=True)
    return EXIT_OK


def _guarded(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """`newswatch rules` and `views` (pipeline/rules_command.py,
    views_command.py): their ConfigErrors are exit 2; anything else (storage
    trouble, a retag publishing the view being deleted) is one line and
    exit 1."""
    try:
        return run(args)
    except cfg.ConfigError:
        raise
    except Exception as exc:
        logging.getLogger("newswatch").exception("%s failed", command)
        print(f"newswatch: {command} failed: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def retag_command(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    """`newswatch retag` (pipeline/retag.py): the topics compile before
    anything of OUT is read; 2 for a bad topics file or options, a missing
    output or archive, entries without text, or a view that exists without
    --replace; 1 if the replay failed."""
    from pipeline import retag

    if not args.lookback_days > 0:
        raise cfg.ConfigError("--lookback-days must be positive")
    if not args.output.strip():
        raise cfg.ConfigError("--output is empty: give the output folder")
    options = retag.RetagOptions(topics_path=args.topics, output=args.output.rstrip("/") or "/",
                                 since=args.since, until=args.until, name=args.name, replace=args.replace,
                                 dry_run=args.dry_run, lookback_days=args.lookback_days,
                                 clusters=not args.no_clusters, quiet=args.quiet)
    topics, text, version = retag.prepare(options)   # ConfigError: nothing of OUT read yet
    _check_retag_runner(beam_args, args.dry_run)
    process_gc.apply()
    try:
        result = retag.run_retag(options, topics, text, version, beam_args,
                                 say=lambda line: print(line, file=sys.stderr, flush=True))
    except retag.RetagRefused as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:
        logging.getLogger("newswatch").exception("retag failed")
        print(f"newswatch: retag failed: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print("\n".join(result.lines), flush=True)
    return EXIT_OK


def run_compact(output: str, before, force: bool, lease_held: bool = False, quiet: bool = False) -> int:
    """`newswatch compact` (and `run --compact`, inside the run's lease): one
    line of what it did; exit 2 if a run is open on OUT."""
    from pipeline.compact import CompactRefused, compact
    from pipeline.progress import Progress

    try:
        with Progress("compact", fields=("partitions", "files", "rows"), quiet=quiet) as progress:
            report = compact(output, before=before, force=force, lease_held=lease_held,
                             merged=lambda files, rows: progress.advance(partitions=1, files=files, rows=rows))
    except CompactRefused as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:
        logging.getLogger("newswatch").exception("compaction failed")
        print(f"newswatch: compaction failed: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"newswatch: {report.line()}", flush=True)
    return EXIT_OK


def _check_rerun(run_config) -> None:
    """A re-run replaces run X's files. That is safe while no later run has
    committed: later runs skip the stories X wrote (and store the feeds'
    newer validators), so deleting X's files after them could lose stories
    for good; and while none of X's rows sit in a compacted file, which the
    re-run cannot replace (a compaction killed mid-swap is finished first, so
    its merged file counts). Raises ConfigError. Called while holding the lease."""
    from transforms.state.store import StateStore

    later = StateStore(run_config.output).later_commits(run_config.run_id)
    if later:
        shown = ", ".join(later[:3]) + (f" and {len(later) - 3} more" if len(later) > 3 else "")
        raise cfg.ConfigError(f"--run-id {run_config.run_id}: runs committed after it ({shown}) rely on "
                              f"the stories it wrote; re-running it could lose them: use a new run id")
    from pipeline.compact import files_holding_run, pending_swaps, recover

    # A compaction killed mid-swap may hold X's rows in a merged file not yet
    # published, which files_holding_run cannot see: finish it first.
    if pending_swaps(run_config.output):
        recover(run_config.output.rstrip("/"))
    compacted = files_holding_run(run_config.output, run_config.run_id)
    if compacted:
        raise cfg.ConfigError(f"--run-id {run_config.run_id}: its rows were compacted into {compacted[0]}"
                              + (f" and {len(compacted) - 1} more" if len(compacted) > 1 else "")
                              + "; re-running it would write them twice: use a new run id")


class _RunFailed(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _one_cycle(run_config, beam_args, replace_run: bool = False, quiet: bool = False) -> int:
    return _report(lambda: run_cycle(run_config, beam_args, replace_run, quiet=quiet))


def _report(run) -> int:
    try:
        summary = run()
    except Exception as exc:
        logging.getLogger("newswatch").exception("run failed")
        print(f"newswatch: run failed: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(summary.render(), flush=True)
    return EXIT_OK if summary.reconciles else EXIT_FAILED


def run_every(run_config, beam_args, every: float, quiet: bool = False) -> int:
    """Local repeated mode: a batch cycle every `every` seconds (start to
    start; at once if a cycle took longer), state carried between cycles.
    Ctrl-C (or SIGTERM) lets the current cycle finish, then stops; a second
    Ctrl-C aborts. Stops with exit code 75 if the process lost the output's
    lease (it was frozen past its TTL and another run took over)."""
    from transforms.state.lease import LeaseLost

    stop = _StopRequest()
    worst = EXIT_OK
    cycle = 0
    with stop:
        while True:
            cycle += 1
            began = time.monotonic()
            if run_config.lease is not None:
                try:
                    run_config.lease.lease().check()
                except LeaseLost as exc:
                    print(f"newswatch: stopping: {exc}", file=sys.stderr, flush=True)
                    return EXIT_LEASE_HELD
            print(f"newswatch: cycle {cycle} starting", flush=True)
            code = _one_cycle(run_config, beam_args, quiet=quiet)
            worst = max(worst, code)
            if stop.wait(began + every - time.monotonic()):
                break
    print(f"newswatch: stopped after {cycle} cycle(s)", flush=True)
    return worst


class _StopRequest:
    """SIGINT/SIGTERM handler for repeated mode: the first asks to stop after
    the current cycle, the second stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("newswatch: stopping after the current cycle (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True as soon as a stop was requested."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.requested and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))
        return self.requested


def _check_beam_options(beam_args: Sequence[str]) -> None:
    """A misspelt option is a config error, not a warning Beam logs mid-run."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(list(beam_args))
    FileSystems.set_options(options)  # s3:// endpoint and keys, for config and state reads
    # One line for a bad value too (`--direct_num_workers=abc`), not argparse's usage.
    parser = _OneLineParser(add_help=False, allow_abbrev=False, conflict_handler="resolve")
    for options_class in _all_subclasses(PipelineOptions):
        try:
            options_class._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # an option registered by two classes
    _, unknown = parser.parse_known_args(list(beam_args))
    if unknown:
        raise cfg.ConfigError(f"unknown option or argument {unknown[0].split('=')[0]!r}")


def _check_retag_runner(beam_args: Sequence[str], dry_run: bool) -> None:
    """The runner a retag names exists, before it writes anything; a dry run
    replays into a local temporary folder, which a remote runner cannot reach."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.runners.runner import create_runner

    runner = PipelineOptions(list(beam_args)).view_as(StandardOptions).runner or "DirectRunner"
    try:
        create_runner(runner)
    except (ValueError, ImportError) as exc:
        raise cfg.ConfigError(f"retag: --runner {runner}: {first_line(exc)}") from None
    if dry_run and "dataflow" in str(runner).lower():
        raise cfg.ConfigError("retag --dry-run replays into a local folder: run it without --runner "
                              f"{runner}")


def _check_dataflow_options(args: argparse.Namespace, beam_args: Sequence[str]) -> None:
    """On Dataflow: OUT must be storage the workers reach, and the workers
    must get this project (the image of pipeline/flex_template, or --setup_file)."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions, WorkerOptions

    options = PipelineOptions(list(beam_args))
    if "dataflow" not in str(options.view_as(StandardOptions).runner or "").lower():
        return
    if args.every is not None:
        raise cfg.ConfigError("--every repeats local runs; on Dataflow schedule the Flex Template "
                              "instead (docs/operations.md)")
    if FileSystems.get_scheme(args.output) in (None, "file"):
        raise cfg.ConfigError(f"--output {args.output} is a local path: Dataflow workers cannot write to "
                              "this machine's disk; give a gs:// folder")
    worker = options.view_as(WorkerOptions)
    if not (worker.sdk_container_image or worker.worker_harness_container_image
            or options.view_as(SetupOptions).setup_file):
        raise cfg.ConfigError("Dataflow workers need this project: give --sdk_container_image (the image of "
                              "pipeline/flex_template/Dockerfile) or --setup_file ./setup.py")


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)
