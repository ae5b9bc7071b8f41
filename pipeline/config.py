"""Loading and validating the run's configuration: feed list, topic rules,
output location. Everything here runs before the pipeline starts; a problem
raises ConfigError with one line that says what to fix.
"""
from __future__ import annotations

import posixpath
import re
import uuid
import xml.etree.ElementTree as ET
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


def read_text(path: str, what: str) -> str:
    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except Exception as exc:
        raise ConfigError(f"cannot read {what} {path}: {first_line(exc)}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text: {exc}") from None


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
    one URL or path per line (# starts a comment). Sorted and de-duplicated."""
    text = read_text(path, "feed list")
    is_opml = text.lstrip().startswith("<")
    entries = _parse_opml(text, path) if is_opml else _parse_text_list(text)
    feeds = {}
    for location, title in entries:
        url = resolve_location(location, path)
        feeds.setdefault(url, FeedSource(url=url, title=title or None))
    if not feeds:
        raise ConfigError(f"feed list {path} names no feeds")
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


def _scalar_index(text: str, node: yaml.Node, offset: int) -> int:
    """Index in the file of character `offset` of a scalar's value.

    A YAML scalar's value is its source text minus quotes, indentation and
    escapes, with line breaks folded to spaces: walking both from the start
    and matching characters finds it. A character that came from an escape
    (\\t, \\u00e9) is not in the source and is stepped over."""
    begin, src = node.start_mark.index, text[node.start_mark.index:node.end_mark.index]
    value = node.value
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
            j += 1
        if j == len(src):  # from an escape sequence
            if k == offset:
                return begin + i
            continue
        if k == offset:
            return begin + j
        i = j + 1
    return begin  # not reached


def _mapping(node: yaml.Node) -> dict:
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _read_topics_yaml(path: str):
    """The topics as Topic records, each with where it is written."""
    from transforms.topics import Topic

    text = read_text(path, "topics file")
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"topics file {path} is not valid YAML: {' '.join(str(exc).split())}") from None

    def fail(node: yaml.Node, message: str) -> ConfigError:
        line, col = _line_col(text, node.start_mark.index)
        return ConfigError(f"topics file {path}, line {line}, column {col}: {message}")

    items, items_node = data, root
    if isinstance(data, dict) and "topics" in data:
        items, items_node = data["topics"], _mapping(root)["topics"]
    if isinstance(items, dict):  # name: query, or name: {query: ...}
        if len(items) != len(items_node.value):
            names = [k.value for k, _ in items_node.value]
            duplicate = next(k for k, _ in items_node.value if names.count(k.value) > 1)
            raise fail(duplicate, f"topic {duplicate.value!r}: duplicate name")
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
        name = str(item["name"])
        unknown = sorted(set(map(str, item)) - set(TOPIC_KEYS))
        if unknown:
            raise fail(item_node, f"topic {name!r}: unknown key {unknown[0]!r} "
                                  f"(a topic has {', '.join(TOPIC_KEYS)})")
        if name in seen:
            raise fail(item_node, f"topic {name!r}: duplicate name")
        seen.add(name)
        query_node = _mapping(fields_node).get("query") if fields_node is not None else plain_query_node
        if not isinstance(item["query"], str):
            raise fail(query_node or item_node, f"topic {name!r} has a query that is not text")
        fold = item.get("fold_accents", False)
        if not isinstance(fold, bool):
            raise fail(item_node, f"topic {name!r}: fold_accents must be true or false")
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


def load_topics(path: str):
    """Compiled and validated topics. A bad query is a ConfigError naming the
    topic and the line and column in the file."""
    from transforms.topics import TopicError, compile_topics

    text, entries = _read_topics_yaml(path)
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
                          f"topic {exc.topic!r}: {exc.reason}") from None


def check_output_writable(output: str) -> None:
    """Create OUT and write and delete a probe file, before any fetch."""
    probe = FileSystems.join(output, f".newswatch-probe-{uuid.uuid4().hex}")
    try:
        if not FileSystems.exists(output):
            FileSystems.mkdirs(output)
        with FileSystems.create(probe) as handle:
            handle.write(b"ok")
        FileSystems.delete([probe])
    except Exception as exc:
        raise ConfigError(f"cannot write to output {output}: {first_line(exc)}") from None
