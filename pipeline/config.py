"""Loading and validating the run's configuration: feed list, topic rules,
output location, the local runner's workers. Everything here runs before
the pipeline starts; a problem raises ConfigError with one line that says
what to fix.
"""
from __future__ import annotations

import os
import posixpath
import re
import stat
import sys
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from typing import List, Optional, Tuple

import yaml
from apache_beam.io.filesystems import FileSystems

from transforms.errors import first_line
from transforms.records import FeedSource

REMOTE_SCHEMES = ("http://", "https://")
STORAGE_SCHEMES = ("gs://", "s3://")
MAX_CONFIG_BYTES = 16 * 1024 * 1024


class ConfigError(Exception):
    """A problem with the command line or configuration files (exit code 2)."""


STDIN = "-"                       # --feeds -: the feed list comes from standard input
STDIN_LABEL = "(standard input)"  # how it is named in messages

_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"))


def read_text(path: str, what: str, allow_stdin: bool = False) -> str:
    """A configuration file as text: at most MAX_CONFIG_BYTES of UTF-8 (see read_bytes)."""
    return decode_text(read_bytes(path, what, allow_stdin), what, STDIN_LABEL if path == STDIN else path)


def read_bytes(path: str, what: str, allow_stdin: bool = False) -> bytes:
    """A configuration file as given: at most MAX_CONFIG_BYTES.

    Local paths must name regular files: a FIFO or a device would make the
    read wait forever (or never end), so they are refused from their stat,
    before any open. `-` is standard input where `allow_stdin` says so.
    gs:// and s3:// objects are regular by nature and go through Beam."""
    if path == STDIN and not allow_stdin:
        raise ConfigError(f"{what} cannot be read from standard input ({STDIN}): "
                          "only the feed list can; give a file")
    label = STDIN_LABEL if path == STDIN else path
    try:
        if path == STDIN:
            data = _read_stdin(what)
        elif FileSystems.get_scheme(path) is None:
            data = _read_regular_file(path, what)
        else:
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot read {what} {label}: {first_line(exc)}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} {label} is larger than {MAX_CONFIG_BYTES} bytes")
    return data


def decode_text(data: bytes, what: str, label: str) -> str:
    """UTF-8 text (a leading byte order mark dropped); ConfigError naming the line otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{what} {label}, line {line}: not UTF-8 text "
                          f"(byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _special_kind(mode: int) -> Optional[str]:
    """What a file that is not a regular file is ("a named pipe (FIFO)" ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _NOT_REGULAR if test(mode)), "a special file")


def _refuse_special(path: str, what: str, mode: int) -> None:
    kind = _special_kind(mode)
    if kind:
        piped = kind in ("a named pipe (FIFO)", "a character device")  # /dev/stdin is one of them
        hint = f"; give {STDIN} to read the {what} from standard input" if what == "feed list" and piped else ""
        raise ConfigError(f"{what} {path} is {kind}, not a regular file{hint}")


def _read_regular_file(path: str, what: str) -> bytes:
    _refuse_special(path, what, os.stat(path).st_mode)
    # O_NONBLOCK: should the path be swapped for a FIFO after the stat, the
    # open still returns at once and the fstat below refuses it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        _refuse_special(path, what, os.fstat(fd).st_mode)
        return handle.read(MAX_CONFIG_BYTES + 1)


def _read_stdin(what: str) -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise ConfigError(f"cannot read {what} {STDIN_LABEL}: it is closed")
    if stream.isatty():
        # Nobody is typing a feed list: waiting for one would look like a hang.
        raise ConfigError(f"{what} {STDIN_LABEL} is a terminal: pipe the {what} in "
                          f"(for example: generate-feeds | newswatch run --feeds {STDIN} ...)")
    return stream.read(MAX_CONFIG_BYTES + 1)


def _folder_of(path: str) -> str:
    if path.startswith(STORAGE_SCHEMES) or "://" in path:
        return path.rsplit("/", 1)[0]
    return posixpath.dirname(posixpath.abspath(path))


def resolve_location(entry: str, list_path: str) -> str:
    """A feed list entry as a URL or absolute path. Relative paths resolve
    against the list's own folder, so a list travels with its files."""
    entry = entry.strip()
    if entry.startswith(REMOTE_SCHEMES + STORAGE_SCHEMES):
        return entry
    if entry.startswith("file://"):
        return entry[len("file://"):]
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", entry):
        raise ConfigError(f"unsupported feed location {entry!r} in {list_path} "
                          "(use http(s)://, gs://, s3:// or a path)")
    if entry.startswith("/"):
        return entry
    folder = _folder_of(list_path)
    if "://" in folder:
        return f"{folder}/{entry}"
    return posixpath.normpath(posixpath.join(folder, entry))


def _parse_opml(text: str, path: str) -> List[Tuple[str, str]]:
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise ConfigError(f"feed list {path} is not valid OPML: {exc}") from None
    found = []
    for outline in root.iter():
        if not str(outline.tag).lower().endswith("outline"):
            continue
        attrs = {k.lower(): v for k, v in outline.attrib.items()}
        url = (attrs.get("xmlurl") or "").strip()
        if url:
            found.append((url, attrs.get("title") or attrs.get("text") or ""))
    return found


def _parse_text_list(text: str) -> List[Tuple[str, str]]:
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            found.append((line, ""))
    return found


def load_feed_list(path: str) -> List[FeedSource]:
    """Feeds from an OPML file (what feed readers export) or a text file with
    one URL or path per line (# starts a comment). Sorted and de-duplicated.
    `-` reads the list from standard input (`generate | newswatch run --feeds -`);
    its relative paths resolve against the working directory."""
    text = read_text(path, "feed list", allow_stdin=True)
    shown = STDIN_LABEL if path == STDIN else path
    base = os.path.join(os.getcwd(), STDIN) if path == STDIN else path
    is_opml = text.lstrip().startswith("<")
    entries = _parse_opml(text, shown) if is_opml else _parse_text_list(text)
    feeds = {}
    for location, title in entries:
        url = resolve_location(location, base)
        feeds.setdefault(url, FeedSource(url=url, title=title or None))
    if not feeds:
        raise ConfigError(f"feed list {shown} names no feeds")
    return sorted(feeds.values())


TOPIC_KEYS = ("name", "query", "description", "fold_accents")


@dataclass(frozen=True)
class _Where:
    """Where one topic is written in its YAML file, for error messages."""

    item: yaml.Node               # the topic's entry (its first line)
    query: Optional[yaml.Node]    # the query scalar


def _line_col(text: str, index: int) -> Tuple[int, int]:
    """1-based line and column of a character index in `text`."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


_ESCAPE_LENGTH = {"x": 4, "u": 6, "U": 10}  # source characters of \xXX, \uXXXX, \UXXXXXXXX; other escapes 2


def _scalar_index(text: str, node: yaml.Node, offset: int) -> int:
    """Index in the file of character `offset` of a scalar's value.

    A YAML scalar's value is its source text minus quotes, indentation and
    escapes, with line breaks folded to spaces: walking both from the start
    and matching characters finds it. In a double-quoted scalar a character
    may come from an escape (\\t, \\u00e9): the walk steps over the escape
    as a whole, so each source character is looked at about once."""
    begin, src = node.start_mark.index, text[node.start_mark.index:node.end_mark.index]
    value = node.value
    escapes = node.style == '"'
    i = 0
    if node.style in ("|", ">"):  # the text starts on the line after the header
        i = src.find("\n") + 1 if "\n" in src else len(src)
    elif node.style in ("'", '"'):
        i = 1
    offset = max(0, min(offset, len(value)))
    for k in range(offset + 1):
        if k == len(value):  # just past the end: after the last character
            return begin + i
        ch = value[k]
        j = i
        while j < len(src) and not (src[j] == ch or (ch in " \n" and src[j] in " \n")):
            if escapes and src[j] == "\\":
                if src[j + 1:j + 2] not in ("\n", "\r"):
                    break  # the escape sequence that gives `ch`
                j += 1  # an escaped line break gives no character
            j += 1
        if j == len(src):  # lost track of the value: the nearest place known
            return begin + i
        if k == offset:
            return begin + j
        i = j + (_ESCAPE_LENGTH.get(src[j + 1:j + 2], 2) if escapes and src[j] == "\\" else 1)
    return begin  # not reached


def _mapping(node: yaml.Node) -> dict:
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _shown(name, limit: int = 60) -> str:
    """A topic name as messages quote it: a very long one is cut short."""
    text = str(name)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


MAX_YAML_DEPTH = 64  # levels of nested lists and mappings; a topics file needs four


class _YamlRefused(Exception):
    """A YAML construct a topics file may not use, and where it is."""

    def __init__(self, mark: yaml.Mark, message: str):
        super().__init__(message)
        self.mark, self.message = mark, message


class _TopicsYamlLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing as the parser's events arrive (so the work
    stays linear in the size of the file):

    - aliases (*name): a topics file has no need for them, and a few nested
      ones expand into gigabytes once a value is turned into a string;
    - lists and mappings nested deeper than MAX_YAML_DEPTH: the composer
      recurses once per level and would end in a RecursionError;
    - values Python cannot build (an integer of more than 4,300 digits, a
      date such as 2024-13-45), which raise ValueError rather than a YAMLError.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _YamlRefused(event.start_mark, f"YAML aliases (*{event.anchor[:40]}) are not accepted "
                                                 "in a topics file; write the value out")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)) \
                and self._depth >= MAX_YAML_DEPTH:
            raise _YamlRefused(event.start_mark, f"lists and mappings nested deeper than "
                                                 f"{MAX_YAML_DEPTH} levels are not accepted")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise _YamlRefused(node.start_mark, f"value cannot be read: {first_line(exc)}") from None


def _read_topics_yaml(path: str, data: Optional[bytes] = None):
    """The topics as Topic records, each with where it is written; from
    `data` when given (the file's bytes, already read)."""
    from transforms.topics import Topic

    text = read_text(path, "topics file") if data is None else decode_text(data, "topics file", path)
    try:
        loader = _TopicsYamlLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"topics file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except _YamlRefused as exc:
        line, col = _line_col(text, exc.mark.index)
        raise ConfigError(f"topics file {path}, line {line}, column {col}: {exc.message}") from None

    def fail(node: yaml.Node, message: str) -> ConfigError:
        line, col = _line_col(text, node.start_mark.index)
        return ConfigError(f"topics file {path}, line {line}, column {col}: {message}")

    items, items_node = data, root
    if isinstance(data, dict) and "topics" in data:
        items, items_node = data["topics"], _mapping(root)["topics"]
    if isinstance(items, dict):  # name: query, or name: {query: ...}
        if len(items) != len(items_node.value):
            counts = Counter(k.value for k, _ in items_node.value)
            duplicate = next((k for k, _ in items_node.value if counts[k.value] > 1), None)
            if duplicate is None:  # written differently, equal once read (1 and 1.0)
                raise fail(items_node, "two topics have the same name")
            raise fail(duplicate, f"topic {_shown(duplicate.value)}: duplicate name")
        pairs = list(zip(items.items(), items_node.value))
        items = [{"name": k, **(v if isinstance(v, dict) else {"query": v})} for (k, v), _ in pairs]
        nodes = [(key_node, value_node if isinstance(value_node, yaml.MappingNode) else None, value_node)
                 for _, (key_node, value_node) in pairs]
    elif isinstance(items, list) and items:
        nodes = [(n, n if isinstance(n, yaml.MappingNode) else None, None) for n in items_node.value]
    else:
        raise ConfigError(f"topics file {path} defines no topics (expected a 'topics:' list)")

    entries, seen = [], set()
    for number, (item, (item_node, fields_node, plain_query_node)) in enumerate(zip(items, nodes), 1):
        if not isinstance(item, dict) or not item.get("name") or "query" not in item:
            raise fail(item_node, f"topic #{number} needs a 'name' and a 'query'")
        if isinstance(item["name"], (list, dict, set)):
            raise fail(item_node, f"topic #{number}: the name must be text, not a list or mapping")
        name = str(item["name"])
        unknown = sorted(set(map(str, item)) - set(TOPIC_KEYS))
        if unknown:
            raise fail(item_node, f"topic {_shown(name)}: unknown key {_shown(unknown[0])} "
                                  f"(a topic has {', '.join(TOPIC_KEYS)})")
        if name in seen:
            raise fail(item_node, f"topic {_shown(name)}: duplicate name")
        seen.add(name)
        query_node = _mapping(fields_node).get("query") if fields_node is not None else plain_query_node
        if not isinstance(item["query"], str):
            raise fail(query_node or item_node, f"topic {_shown(name)} has a query that is not text")
        fold = item.get("fold_accents", False)
        if not isinstance(fold, bool):
            raise fail(item_node, f"topic {_shown(name)}: fold_accents must be true or false")
        entries.append((Topic(name, item["query"], fold), _Where(item_node, query_node)))
    return text, entries


def load_topic_definitions(path: str) -> List:
    """Topics (transforms.topics.Topic) from a topics YAML file:

        topics:
          - name: dprk
            description: North Korea        # optional, for people
            fold_accents: true              # optional: Corée = Coree
            query: '"North Korea" OR DPRK'

    A mapping `name: query` (or `name: {query: ...}`) is accepted too.
    """
    _, entries = _read_topics_yaml(path)
    return [topic for topic, _ in entries]


@dataclass(frozen=True)
class TopicsFile:
    """A topics file read once: its validated topics, and its bytes as given
    (stored under OUT/_rules/ by the run that uses them: transforms/rules_archive.py)."""

    topics: Tuple
    data: bytes


def load_topics_file(path: str) -> TopicsFile:
    """The topics of load_topics, with the bytes they were read from."""
    data = read_bytes(path, "topics file")
    return TopicsFile(tuple(load_topics(path, data)), data)


def load_topics(path: str, data: Optional[bytes] = None):
    """Compiled and validated topics (from `data`, the file's bytes, when
    given). A bad query is a ConfigError naming the topic and the line and
    column in the file."""
    from transforms.topics import TopicError, compile_topics

    text, entries = _read_topics_yaml(path, data)
    try:
        return compile_topics([topic for topic, _ in entries])
    except TopicError as exc:
        where = {topic.name: w for topic, w in entries}.get(exc.topic)
        if where is None:  # pragma: no cover - every topic here has a name
            raise ConfigError(f"topics file {path}: {exc}") from None
        if exc.position is not None and where.query is not None:
            index = _scalar_index(text, where.query, exc.position)
        else:
            index = where.item.start_mark.index
        line, col = _line_col(text, index)
        raise ConfigError(f"topics file {path}, line {line}, column {col}: "
                          f"topic {_shown(exc.topic)}: {exc.reason}") from None


def local_workers(beam_args, threads: bool = False) -> int:
    """The local DirectRunner's workers in `beam_args`: the processes of
    --direct_running_mode=multi_processing (with `threads`, the threads of
    multi_threading too), else 1. --direct_num_workers=0 means one per
    core, as in Beam; a count below 0 is taken the same way."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    direct = PipelineOptions(list(beam_args)).view_as(DirectOptions)
    modes = ("multi_processing", "multi_threading") if threads else ("multi_processing",)
    if direct.direct_running_mode not in modes:
        return 1
    workers = int(direct.direct_num_workers or 0)
    return workers if workers > 0 else (os.cpu_count() or 1)


def check_output_writable(output: str) -> None:
    """Create OUT and write and delete a probe file, before any fetch."""
    from transforms.paths import delete_files, make_folder  # OUT may hold glob characters

    probe = FileSystems.join(output, f".newswatch-probe-{uuid.uuid4().hex}")
    try:
        make_folder(output)  # a concurrent run may create OUT at the same moment
        with FileSystems.create(probe) as handle:
            handle.write(b"ok")
        delete_files([probe])
    except Exception as exc:
        raise ConfigError(f"cannot write to output {output}: {first_line(exc)}") from None
