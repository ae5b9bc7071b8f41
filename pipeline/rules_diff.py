"""`newswatch rules diff OLD NEW --output OUT`: what a change of topic rules
would change, per topic, over the entry archive (OUT/entries/,
transforms/archive.py), before the change is rolled out.

1. `resolve_rules`: OLD and NEW are each a topics file (local, gs://, s3://)
   or a topics_version stored as OUT/_rules/<version>.yaml; both are loaded
   and compiled (config.load_topics) before anything is read, so a rule
   with a mistake stops the command with one line.
2. `archive_stories`: the archived entries of the window (dataset.read_entries,
   by fetch date), each turned back into the Story parse gave
   (archive.story_from_entry_row) and deduplicated as a run does
   (dedup.dedup_stories: guid in its feed, canonical URL, text; the
   preferred copy wins), then one per story_id. Entries archived without
   text (`--archive-text none`) cannot be matched on text: they are counted
   and left out.
3. `match_stories`: each story through each rule set's TopicMatcher with
   topics.tag_story, which gives what TagTopics gives; a `language:` rule gets
   the seeded detection of transforms/language.py, at most once a story.
4. `diff_matches`: per topic, the stories that enter, leave or stay, and
   why: for an entering story the NEW terms that matched it, for a leaving
   one the OLD terms that matched it and are no longer in the rule.
5. `render_text` / `render_json`.

Dedup runs over the whole window at once, as one run over all those entries
would: a story fetched on several days counts once, and its preferred copy's
text decides. Later runs of the pipeline drop such repeats as "seen before"
instead, which keeps the same copy unless a later fetch brought an earlier
published one.

Why not Beam: a rule author runs this interactively on a window (30 days
by default) of one output; a single process with pyarrow reads the
partitions of that window directly, and the work per entry is one dedup
record and two matcher calls, with no shuffle and no worker start-up. The
entries of the window are held in memory (about the size of their text);
for an archive too large for that, narrow the window with --since/--until.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from pipeline import config as cfg
from transforms.records import Match, Story
from transforms.rules_archive import rules_path

DEFAULT_DAYS = 30             # the window when --since is not given
DEFAULT_LIMIT = 20            # stories listed per topic and direction
TITLE_WIDTH = 72
EXIT_OK, EXIT_FAILED = 0, 1

ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class RuleSet:
    """One side of the diff: where its rules came from and its matcher."""

    given: str                  # as on the command line
    path: str                   # the topics file read
    version: str                # topics_version of the rules as compiled now
    matcher: object = field(compare=False, repr=False)   # transforms.topics.TopicMatcher
    stored_as: Optional[str] = None   # the version it was stored under, if read from OUT/_rules

    @property
    def names(self) -> List[str]:
        return [topic.name for topic in self.matcher.topics]

    def label(self) -> str:
        note = ""
        if self.stored_as is not None and self.stored_as != self.version:
            note = f", stored as {self.stored_as}: the matcher has changed since"
        return f"{self.given} (topics_version {self.version}{note})"


def _exists(path: str) -> bool:
    if "://" not in path:
        return os.path.isfile(path)
    from apache_beam.io.filesystems import FileSystems

    try:
        return FileSystems.exists(path)
    except Exception:  # a bucket we cannot reach: as absent, the message says what was tried
        return False


def resolve_rules(given: str, output: str, side: str) -> RuleSet:
    """OLD or NEW (`side`) as a compiled rule set: a topics file if `given`
    names one, else the version stored as OUT/_rules/<given>.yaml. Raises
    ConfigError (one line) when neither exists or the rules do not compile."""
    from transforms.topics import TopicMatcher

    if not given:
        raise cfg.ConfigError(f"rules diff: {side} is empty: give a topics file or a topics_version")
    stored_as = None
    if _exists(given):
        path = given
    elif "/" in given or "://" in given:
        raise cfg.ConfigError(f"rules diff: {side} {given}: no such topics file")
    else:
        # A stored version, whole or by a unique prefix (as `rules show` takes it).
        from pipeline.rules_command import resolve_version

        stored_as = resolve_version(output, given, f"rules diff: {side}")
        path = rules_path(output, stored_as)
    topics = cfg.load_topics(path)   # ConfigError naming file, line and column
    matcher = TopicMatcher(topics)
    return RuleSet(given, path, matcher.version, matcher, stored_as)


def rule_terms(ruleset: RuleSet) -> Dict[str, frozenset]:
    """For each topic, what its rule can give as evidence: (term, kind), kind
    "text" for a word or phrase, "source" or "language" for those conditions
    (references to other topics expanded)."""
    from transforms.topics import LanguageIs, SourceIs, Term
    from transforms.topics.query import walk

    terms = {}
    for compiled in ruleset.matcher.compiled:
        found = set()
        for node in walk(compiled.node):
            if isinstance(node, Term):
                found.add((node.text, "text"))
            elif isinstance(node, SourceIs):
                found.add((node.host, "source"))
            elif isinstance(node, LanguageIs):
                found.add((node.code, "language"))
        terms[compiled.topic.name] = frozenset(found)
    return terms


def _kind(match: Match) -> Tuple[str, str]:
    return match.term, match.field if match.field in ("source", "language") else "text"


# --------------------------------------------------------------------------- the archive


@dataclass
class ArchiveRead:
    """The stories of the window, and how the archived entries were counted."""

    since: Optional[str]
    until: Optional[str]
    default_window: bool
    entries: int = 0
    without_text: int = 0
    duplicates: int = 0
    stories: List[Story] = field(default_factory=list)


def default_since(output: str, until: Optional[str]) -> Optional[str]:
    """The first day of the last DEFAULT_DAYS days of the window: before
    --until's last day, or the archive's last day (not after today)."""
    from pipeline import dataset

    if until is not None:
        end = _bound(until, is_end=True) - timedelta(microseconds=1)
        last = end.date()
    else:
        last = dataset.last_day(output, "entries")
        if last is None:
            return None
        last = min(last, datetime.now(timezone.utc).date())
    return (last - timedelta(days=DEFAULT_DAYS - 1)).isoformat()


def archive_stories(output: str, since: Optional[str], until: Optional[str],
                    default_window: bool = False) -> ArchiveRead:
    """The window's archived entries as deduplicated Stories, one per story_id."""
    from pipeline import dataset
    from transforms.archive import TEXT_FIELDS, story_from_entry_row
    from transforms.dedup import dedup_stories, preference
    from transforms.schema import ENTRIES_SCHEMA

    frame = dataset.read_entries(output, since=since, until=until, columns=ENTRIES_SCHEMA.names)
    rows = [{name: _plain(value) for name, value in record.items()} for record in frame.to_dict("records")]
    read = ArchiveRead(since, until, default_window, entries=len(rows))
    stories = []
    for row in rows:
        if all(row[name] is None for name in TEXT_FIELDS):
            read.without_text += 1   # archived with --archive-text none
            continue
        stories.append(story_from_entry_row(row))
    kept, read.duplicates = dedup_stories(stories)
    by_id: Dict[str, Story] = {}
    for story in kept:  # one row per story_id, as the stories files hold
        other = by_id.get(story.story_id)
        if other is None or preference(story) < preference(other):
            by_id[story.story_id] = story
    read.duplicates += len(kept) - len(by_id)
    read.stories = sorted(by_id.values(), key=lambda s: s.story_id)
    return read


def _plain(value):
    """A reader's cell as parse gave it: None for every kind of null, a
    datetime for a Timestamp, a list for an array."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or pd.isna(value):   # pandas' string columns hold NaN for null
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


# --------------------------------------------------------------------------- matching


StoryMatches = Dict[str, Dict[str, List[Match]]]   # story_id -> topic -> its matches


def language_detector(*rulesets: RuleSet) -> Optional[Callable[[Story], str]]:
    """The seeded detection `language:` rules need, once per story whichever
    rule set asks; None when no rule needs it."""
    if not any(r.matcher.needs_language for r in rulesets):
        return None
    from transforms.language import detect_language, language_text, shared_detector

    detector = shared_detector()
    detected: Dict[str, str] = {}

    def detect(story: Story) -> str:
        if story.story_id not in detected:
            detected[story.story_id] = detect_language(language_text(story), detector)
        return detected[story.story_id]

    return detect


def match_stories(stories: Sequence[Story], ruleset: RuleSet,
                  detect: Optional[Callable[[Story], str]] = None) -> StoryMatches:
    """Which topics of `ruleset` match each story, with their matches, as TagTopics tags them."""
    from transforms.topics import tag_story

    result: StoryMatches = {}
    for story in stories:
        tagged = tag_story(story, ruleset.matcher, detect)
        if tagged is None:
            continue
        by_topic: Dict[str, List[Match]] = {}
        for match in tagged.matches:
            by_topic.setdefault(match.topic, []).append(match)
        result[story.story_id] = {name: by_topic.get(name, []) for name in tagged.topics}
    return result


# --------------------------------------------------------------------------- the diff


@dataclass(frozen=True)
class Term:
    """A term that made the difference: as written in the rule, the fields it
    was found in, and whether it is new in NEW (entering) or gone from the
    rule (leaving)."""

    term: str
    fields: Tuple[str, ...]
    differs: bool


@dataclass(frozen=True)
class Change:
    story_id: str
    published_at: Optional[datetime]
    title: str
    url: Optional[str]
    terms: Tuple[Term, ...]


@dataclass
class TopicDiff:
    topic: str
    status: str          # added, removed, changed (some story enters or leaves), same
    old: int
    new: int
    unchanged: int
    entering: List[Change]
    leaving: List[Change]


def _terms(matches: Sequence[Match], differs: Callable[[Match], bool],
           only_differing: bool) -> Tuple[Term, ...]:
    by_term: Dict[Tuple[str, str], List[str]] = {}
    for m in matches:
        by_term.setdefault(_kind(m), [])
        if m.field not in by_term[_kind(m)]:
            by_term[_kind(m)].append(m.field)
    first = {}
    for m in matches:
        first.setdefault(_kind(m), m)
    terms = [Term(key[0], tuple(fields), differs(first[key])) for key, fields in by_term.items()]
    if only_differing and any(t.differs for t in terms):
        terms = [t for t in terms if t.differs]
    return tuple(terms)


def _story_order(change: Change):
    published = change.published_at
    return (published is None, published or datetime.min.replace(tzinfo=timezone.utc), change.story_id)


def diff_matches(stories: Sequence[Story], old: StoryMatches, new: StoryMatches,
                 old_rules: RuleSet, new_rules: RuleSet) -> List[TopicDiff]:
    """Per topic (sorted by name): the stories that enter, leave or stay.

    An entering story lists the NEW terms that matched it, those not in the
    OLD rule marked; a leaving story the OLD terms that matched it and are
    gone from the NEW rule (every term, marked not gone, when none is: then
    the query around them changed). Entering and leaving stories are sorted
    by published date (undated last), then story_id."""
    by_id = {story.story_id: story for story in stories}
    old_terms, new_terms = rule_terms(old_rules), rule_terms(new_rules)
    old_names, new_names = set(old_rules.names), set(new_rules.names)
    diffs = []
    for topic in sorted(old_names | new_names):
        was = {sid for sid, topics in old.items() if topic in topics}
        now = {sid for sid, topics in new.items() if topic in topics}
        known_old = old_terms.get(topic, frozenset())
        known_new = new_terms.get(topic, frozenset())

        def change(sid: str, matches: Sequence[Match], differs, only_differing: bool) -> Change:
            story = by_id[sid]
            return Change(sid, story.published_at, story.title, story.url,
                          _terms(matches, differs, only_differing))

        entering = [change(sid, new[sid][topic], lambda m: _kind(m) not in known_old, False)
                    for sid in now - was]
        leaving = [change(sid, old[sid][topic], lambda m: _kind(m) not in known_new, True)
                   for sid in was - now]
        if topic not in old_names:
            status = ADDED
        elif topic not in new_names:
            status = REMOVED
        else:
            status = CHANGED if entering or leaving else SAME
        diffs.append(TopicDiff(topic, status, len(was), len(now), len(was & now),
                               sorted(entering, key=_story_order), sorted(leaving, key=_story_order)))
    return diffs


# --------------------------------------------------------------------------- rendering


def _shorten(text: str, width: int = TITLE_WIDTH) -> str:
    text = " ".join((text or "").split()) or "(no title)"
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _day(when: Optional[datetime]) -> str:
    return when.astimezone(timezone.utc).date().isoformat() if when else "(no date) "


def _window(read: ArchiveRead) -> str:
    since = read.since or "the archive's start"
    until = f"until {read.until}" if read.until else "to the archive's end"
    default = f" (the last {DEFAULT_DAYS} days of the archive)" if read.default_window else ""
    return f"fetched from {since} {until}{default}"


def _shown(changes: List[Change], limit: int) -> Tuple[List[Change], int]:
    if limit <= 0 or len(changes) <= limit:
        return changes, 0
    return changes[:limit], len(changes) - limit


def render_text(output: str, read: ArchiveRead, old_rules: RuleSet, new_rules: RuleSet,
                diffs: Sequence[TopicDiff], limit: int = DEFAULT_LIMIT) -> str:
    lines = [
        f"rules diff over {output.rstrip('/')}/entries, {_window(read)}",
        f"OLD: {old_rules.label()}",
        f"NEW: {new_rules.label()}",
        f"entries: {read.entries} read, {read.without_text} without text, {read.duplicates} duplicates; "
        f"{len(read.stories)} stories matched with both",
    ]
    if read.without_text:
        lines.append(f"note: {read.without_text} entries were archived without text (--archive-text none) "
                     "and cannot be matched on their text: they are left out of the diff")
    if read.entries == 0:
        lines.append("note: no archived entries in this window")
    for diff in diffs:
        status = f" ({diff.status})" if diff.status in (ADDED, REMOVED) else ""
        lines.append("")
        lines.append(f"topic {diff.topic}{status}: old {diff.old}, new {diff.new}, "
                     f"entering {len(diff.entering)}, leaving {len(diff.leaving)}, unchanged {diff.unchanged}")
        for sign, changes, what in (("+", diff.entering, "entering"), ("-", diff.leaving, "leaving")):
            shown, more = _shown(changes, limit)
            for c in shown:
                lines.append(f"  {sign} {_day(c.published_at)}  {_shorten(c.title)}  {c.url or '(no url)'}")
                lines.append(f"      {_reason(c, entering=sign == '+')}")
            if more:
                lines.append(f"  ... and {more} more {what}")
    return "\n".join(lines) + "\n"


def _reason(change: Change, entering: bool) -> str:
    shown = ", ".join(f"{t.term} ({', '.join(t.fields)})"
                      + (" new" if entering and t.differs else "") for t in change.terms)
    if entering:
        return f"NEW terms: {shown}"
    if any(t.differs for t in change.terms):
        return f"OLD terms gone: {shown}"
    return f"OLD terms, all still in NEW (the query around them changed): {shown}"


def render_json(output: str, read: ArchiveRead, old_rules: RuleSet, new_rules: RuleSet,
                diffs: Sequence[TopicDiff], limit: int = DEFAULT_LIMIT) -> str:
    def rules(r: RuleSet) -> dict:
        return {"given": r.given, "path": r.path, "topics_version": r.version, "stored_as": r.stored_as}

    def change(c: Change, entering: bool) -> dict:
        return {"story_id": c.story_id,
                "published_at": c.published_at.astimezone(timezone.utc).isoformat() if c.published_at else None,
                "title": c.title, "url": c.url,
                "terms": [{"term": t.term, "fields": list(t.fields),
                           ("new" if entering else "gone"): t.differs} for t in c.terms]}

    topics = []
    for diff in diffs:
        entry = {"topic": diff.topic, "status": diff.status, "old": diff.old, "new": diff.new,
                 "entering_count": len(diff.entering), "leaving_count": len(diff.leaving),
                 "unchanged": diff.unchanged}
        for name, changes, entering in (("entering", diff.entering, True), ("leaving", diff.leaving, False)):
            shown, more = _shown(changes, limit)
            entry[name] = [change(c, entering) for c in shown]
            entry[f"{name}_more"] = more
        topics.append(entry)
    document = {
        "output": output, "since": read.since, "until": read.until, "default_window": read.default_window,
        "old": rules(old_rules), "new": rules(new_rules),
        "entries": {"read": read.entries, "without_text": read.without_text,
                    "duplicates": read.duplicates, "stories": len(read.stories)},
        "topics": topics,
    }
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


# --------------------------------------------------------------------------- the command


def _bound(value: str, is_end: bool) -> datetime:
    """A --since/--until value (YYYY-MM-DD or ISO 8601, UTC) as the datetime
    pipeline.dataset reads it as; raises ConfigError."""
    try:
        if len(value) == 10:
            day = datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)
            return day + timedelta(days=1) if is_end else day
        when = datetime.fromisoformat(value)
    except ValueError:
        raise cfg.ConfigError(f"rules diff: not a date or time: {value!r} (use YYYY-MM-DD or ISO 8601)") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def add_parser(rules_commands) -> None:
    """`diff` under `newswatch rules`."""
    diff = rules_commands.add_parser(
        "diff", help="per topic, the archived stories that OLD and NEW rules disagree on, and why",
        description="Match the entry archive (OUT/entries) with two rule sets and print, per topic, "
                    "the stories that enter or leave and the terms that made the difference.")
    diff.add_argument("old", metavar="OLD", help="the rules now: a topics YAML file (local, gs://, s3://) "
                                                 "or a topics_version stored as OUT/_rules/<version>.yaml")
    diff.add_argument("new", metavar="NEW", help="the rules to try: a topics file or a stored topics_version")
    diff.add_argument("--output", required=True, help="the output folder whose entry archive is read")
    diff.add_argument("--since", help=f"first fetch day or time (YYYY-MM-DD or ISO 8601, UTC), included "
                                      f"(default: the last {DEFAULT_DAYS} days of the archive, ending at "
                                      "--until or at the archive's last day)")
    diff.add_argument("--until", help="last fetch day (included) or time (excluded) (default: the archive's end)")
    diff.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                      help=f"stories listed per topic and direction (default {DEFAULT_LIMIT}; 0: all)")
    diff.add_argument("--json", action="store_true", help="write the diff as JSON (for tools)")


def command(args, out: TextIO = None) -> int:
    """`newswatch rules diff`: 0 printed; ConfigError (exit 2) for bad
    options, rules that do not compile, an unknown version or a missing
    output, all before the archive is read; 1 when reading it fails."""
    out = out or sys.stdout
    output = args.output.rstrip("/") or "/"
    if args.limit < 0:
        raise cfg.ConfigError("rules diff: --limit must be 0 (all) or more")
    start, end = (_bound(value, is_end) if value is not None else None
                  for value, is_end in ((args.since, False), (args.until, True)))
    if start is not None and end is not None and start >= end:
        raise cfg.ConfigError(f"rules diff: --since {args.since} is not before --until {args.until}")
    old_rules = resolve_rules(args.old, output, "OLD")
    new_rules = resolve_rules(args.new, output, "NEW")
    if "://" not in output and not os.path.isdir(output):
        raise cfg.ConfigError(f"rules diff: no output folder at {output}")
    detect = language_detector(old_rules, new_rules)
    try:
        since = args.since if args.since is not None else default_since(output, args.until)
        read = archive_stories(output, since, args.until, default_window=args.since is None)
    except Exception as exc:
        from transforms.errors import first_line

        print(f"newswatch: rules diff failed: reading {output}/entries: {first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    old = match_stories(read.stories, old_rules, detect)
    new = match_stories(read.stories, new_rules, detect)
    diffs = diff_matches(read.stories, old, new, old_rules, new_rules)
    render = render_json if args.json else render_text
    out.write(render(output, read, old_rules, new_rules, diffs, args.limit))
    out.flush()
    return EXIT_OK
