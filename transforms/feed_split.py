"""A large RSS/Atom/RDF document read in pieces: its items, a few hundred at a
time, each piece parsed by feedparser as a small document of its own.

feedparser has no streaming API: on a whole document it builds every entry
(and a copy or two of the body) before returning, about 1.7 KB of Python
objects an entry, so a 200,000-item feed held some 350 MB of entries, beside
several copies of its 120 MB body, before the first story left the parse stage. Here the document is read once by expat
(the parser feedparser itself uses, with the same settings), which finds the
byte span of every item; then each run of CHUNK_ITEMS items is given to
feedparser between the document's own prolog and ending (everything before
the first item and after the last one), so namespaces, xml:base, xml:lang
and the feed's version are what they are in the whole document.

Every entry is therefore exactly what feedparser gives for the whole document,
provided the whole document is well-formed (then feedparser's strict parser
reads it, as it reads each piece). `split_feed` returns None, and the caller
parses the whole document as usual, when that cannot be shown: not well-formed
(feedparser would use its loose parser), a charset feedparser does not trust,
items that are not where the format puts them, or an entry count that does not
come out as one entry per item.
"""
from __future__ import annotations

import io
import re
import xml.sax
from array import array
from typing import Iterator, List, NamedTuple, Optional, Tuple
from xml.parsers import expat

from feedparser.api import PREFERRED_XML_PARSERS, StrictFeedParser
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype
from feedparser.urls import make_safe_absolute_uri
from feedparser.util import FeedParserDict

CHUNK_ITEMS = 500          # items per piece feedparser parses at once
_EXPAT_BLOCK = 1 << 20     # bytes handed to expat per call
_ITEM_NAMES = frozenset({"item", "entry"})
_ROOT_START = re.compile(rb"<\w")   # where feedparser's replace_doctype ends its prolog


class SplitFeed(NamedTuple):
    """A document cut at its items. `feed`/`version` are feedparser's for the
    document without its items; `pieces` yields each piece's entries."""

    feed: dict
    version: str
    items: int
    pieces: "Iterator[list]"


class Spans:
    """Where each item starts and ends in the document (byte offsets), as two
    arrays: 16 bytes an item rather than ~120 as a list of tuples."""

    def __init__(self):
        self.starts, self.ends = array("q"), array("q")

    def add(self, start: int, end: int) -> None:
        self.starts.append(start)
        self.ends.append(end)

    def __len__(self) -> int:
        return len(self.starts)


class _Settings(NamedTuple):
    baseuri: str
    baselang: Optional[str]


def feedparser_input(body: bytes, headers: dict) -> Tuple[bytes, dict]:
    """The body as feedparser reads it (UTF-8, by feedparser's own charset
    rules; what transforms.entity_guard checks) and feedparser's result so far
    (headers, and `encoding`: empty when feedparser would not trust its strict
    parser with the document)."""
    result = FeedParserDict(bozo=False, entries=[], feed=FeedParserDict(), headers={})
    result["headers"].update(headers or {})
    return convert_to_utf8(result["headers"], body, result), result


_CARRIED_ATTRIBUTES = frozenset({"base", "lang"})


class _CarriesOver(Exception):
    """An element inside the feed sets state feedparser carries to later entries."""


def item_spans(prolog: bytes, document: bytes, rest: int) -> Optional["Spans"]:
    """Byte spans (start, end) in `document` of the feed's items, in order:
    `item` or `entry` elements (any case, as feedparser lower-cases names)
    that are children of the root or of a `channel` child of the root. Expat,
    set up as xml.sax sets it up for feedparser, reads `prolog` and then
    `document` from offset `rest` on (the prolog stands for document[:rest]).
    None when it finds the document not well-formed, or when an element below
    the root and its channel declares a namespace or carries xml:base or
    xml:lang (or base, lang): feedparser keeps those from one entry to the
    next (a base or language set in one entry applies to later ones, and a
    prefix declared in one names the elements of later ones), so pieces
    would not read as the whole document does."""
    parser = expat.ParserCreate(None, " ", intern={})
    parser.namespace_prefixes = 1
    # As xml.sax's expat reader: external entities are not read (feedparser
    # turns external general entities off), parameter entities unless standalone.
    parser.ExternalEntityRefHandler = lambda *args: 1
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_UNLESS_STANDALONE)
    shift = len(prolog) - rest    # expat's offsets minus this are offsets in `document`
    spans = Spans()
    path: List[str] = []          # local names of the open elements
    opened = [-1]                 # start of the item being read

    def local(name: str) -> str:
        parts = name.split(" ")
        return (parts[1] if len(parts) > 1 else parts[0]).lower()

    def is_item(name: str, depth: int) -> bool:
        return name in _ITEM_NAMES and (depth == 1 or (depth == 2 and path[1] == "channel"))

    def scoped(here: str) -> bool:
        # The root and its channel: their start tags are in every piece's prolog.
        return len(path) == 0 or (len(path) == 1 and here == "channel")

    def declared(prefix, uri):
        declarations.append(len(path))

    def start(name, attrs):
        here = local(name)
        if not scoped(here):
            if declarations and declarations[-1] == len(path):
                raise _CarriesOver()
            if any(local(attr) in _CARRIED_ATTRIBUTES for attr in attrs):
                raise _CarriesOver()
        declarations.clear()
        if is_item(here, len(path)):
            opened[0] = parser.CurrentByteIndex - shift
        path.append(here)

    def end(name):
        here = path.pop()
        if is_item(here, len(path)):
            # At an end tag expat points at its "<"; for <item/>, at the start tag.
            spans.add(opened[0], document.index(b">", parser.CurrentByteIndex - shift) + 1)

    declarations: List[int] = []  # depths of namespace declarations not yet applied
    parser.StartNamespaceDeclHandler = declared
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(prolog, False)
        view = memoryview(document)
        for offset in range(rest, len(document), _EXPAT_BLOCK):
            parser.Parse(bytes(view[offset:offset + _EXPAT_BLOCK]), False)
        parser.Parse(b"", True)
    except (expat.ExpatError, ValueError, _CarriesOver):
        return None
    if spans.starts and min(spans.starts) < rest:
        return None
    return spans


def split_feed(document: bytes, result: dict, chunk_items: Optional[int] = None) -> Optional[SplitFeed]:
    """The feed cut at its items (see the module docstring), or None when the
    whole document must go to feedparser as it is. `document` and `result`
    are feedparser_input's; pieces have `chunk_items` items (CHUNK_ITEMS)."""
    if not result["encoding"]:
        return None
    # feedparser's replace_doctype only changes what comes before the root
    # element: applied to that prolog alone, it spares two copies of the body.
    root = _ROOT_START.search(document)
    if root is None:
        return None
    rest = root.start() + 2
    result["version"], prolog, _ = replace_doctype(document[:rest])
    spans = item_spans(prolog, document, rest)
    if not spans:
        return None
    head = prolog + document[rest:spans.starts[0]]
    tail = document[spans.ends[-1]:]
    gaps = b"".join(document[end:start] for end, start in zip(spans.ends, spans.starts[1:]))
    settings = _settings(result)
    outline = _strict_parse(head + gaps + tail, settings)
    if outline is None or outline.entries:
        return None
    version = result["version"] or outline.version
    return SplitFeed(outline.feeddata, version, len(spans),
                     _pieces(document, head, tail, spans, chunk_items or CHUNK_ITEMS, settings))


def _settings(result) -> _Settings:
    # As feedparser.api.parse: the base URI from Content-Location, the language header.
    contentloc = result["headers"].get("content-location", "")
    href = result.get("href", "")
    baseuri = make_safe_absolute_uri(href, contentloc) or make_safe_absolute_uri(contentloc) or href
    baselang = result["headers"].get("content-language", None)
    if isinstance(baselang, bytes):
        baselang = baselang.decode("utf-8", "ignore")
    return _Settings(baseuri, baselang)


def _strict_parse(document: bytes, settings: _Settings) -> Optional[StrictFeedParser]:
    """feedparser's strict parser on `document`, set up as feedparser.parse
    sets it up (sanitize_html and resolve_relative_uris off, as
    transforms.parse asks); None when it reports an error."""
    handler = StrictFeedParser(settings.baseuri, settings.baselang, "utf-8")
    handler.resolve_relative_uris = False
    handler.sanitize_html = False
    reader = xml.sax.make_parser(PREFERRED_XML_PARSERS)
    reader.setFeature(xml.sax.handler.feature_namespaces, 1)
    try:
        reader.setFeature(xml.sax.handler.feature_external_ges, 0)
    except xml.sax.SAXNotSupportedException:
        pass
    reader.setContentHandler(handler)
    reader.setErrorHandler(handler)
    source = xml.sax.xmlreader.InputSource()
    source.setByteStream(io.BytesIO(document))
    try:
        reader.parse(source)
    except xml.sax.SAXException:
        return None
    return None if handler.bozo else handler


class PieceFailed(Exception):
    """A piece did not give one entry per item (the caller parses the whole
    document instead, from the first entry not yet handed on)."""


def _pieces(data: bytes, head: bytes, tail: bytes, spans: Spans, chunk_items: int,
            settings: _Settings) -> Iterator[list]:
    for first in range(0, len(spans), chunk_items):
        last = min(first + chunk_items, len(spans)) - 1
        parsed = _strict_parse(head + data[spans.starts[first]:spans.ends[last]] + tail, settings)
        if parsed is None or len(parsed.entries) != last - first + 1:
            raise PieceFailed(f"items {first}-{last}")
        yield parsed.entries
