"""Loading and validating the run's configuration: feed list, topic rules,
output location. Everything here runs before the pipeline starts; a problem
raises ConfigError with one line that says what to fix.
"""
from __future__ import annotations

import posixpath
import re
import uuid
import xml.etree.ElementTree as ET
from typing import List, Sequence, Tuple

import yaml
from apache_beam.io.filesystems import FileSystems

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
        raise ConfigError(f"cannot read {what} {path}: {_first_line(exc)}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text: {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


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


def load_topic_definitions(path: str) -> List[Tuple[str, str]]:
    """(name, query) pairs from a topics YAML file:

        topics:
          - name: dprk
            query: '"North Korea" OR DPRK'

    A mapping `name: query` (or `name: {query: ...}`) is accepted too.
    """
    text = read_text(path, "topics file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"topics file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    items = data.get("topics") if isinstance(data, dict) and "topics" in data else data
    if isinstance(items, dict):
        items = [{"name": k, **(v if isinstance(v, dict) else {"query": v})} for k, v in items.items()]
    if not isinstance(items, list) or not items:
        raise ConfigError(f"topics file {path} defines no topics (expected a 'topics:' list)")
    defs = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or not item.get("name") or "query" not in item:
            raise ConfigError(f"topics file {path}: topic #{number} needs a 'name' and a 'query'")
        if not isinstance(item["query"], str):
            raise ConfigError(f"topics file {path}: topic '{item['name']}' has a query that is not text")
        defs.append((str(item["name"]), item["query"]))
    return defs


def load_topics(path: str):
    """Compiled topics; a query that does not parse is a ConfigError naming
    the topic and the position."""
    from transforms.topics import TopicError, compile_topics

    defs = load_topic_definitions(path)
    try:
        return compile_topics(defs)
    except TopicError as exc:
        raise ConfigError(f"topics file {path}: {exc}") from None


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
        raise ConfigError(f"cannot write to output {output}: {_first_line(exc)}") from None


def topic_pairs(topics: Sequence) -> List[Tuple[str, str]]:
    return [(t.name, t.query) for t in topics]
