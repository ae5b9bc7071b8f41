"""The fast parse path: RSS/Atom/RDF read with lxml into exactly what
feedparser gives for the fields a story is made of, or refused.

feedparser costs most of the pipeline's CPU: a SAX callback, a handler
lookup, a stack push and pop, a deep copy and a date parse for every element.
Here libxml2 builds the tree in C, and a small walk over it replays
feedparser's own rules (transforms.parse reads feedparser's shape, so the
walk gives that shape) for the elements a story reads: titles, links, ids,
summaries, content, authors, tags, dates, feedburner:origLink, and the feed's
title and link. It reuses feedparser's namespace table, URL joining, author
parsing and cp1252 mapping, so the two paths cannot drift apart silently;
tests/transforms/test_parse_parity.py runs both over every corpus and
compares every story and fetch-log row.

Anything the walk does not reproduce exactly is refused, and the document
goes to feedparser (transforms.parse). A refusal is `Refused(reason, detail)`;
the reasons, chosen by measurement on the corpora, and counted per reason
(`parse_fallback_<reason>`):

  encoding        feedparser's charset rules settle on no charset (then it
                  reads the document with its loose parser); a charset they
                  override is read as feedparser reads it, with its warning
  doctype         a DOCTYPE: feedparser rewrites it and its entity declarations
  not_well_formed expat (feedparser's strict parser) or libxml2 rejects the
                  document: feedparser's loose parser reads what it can
  format          the root is not `rss`, RSS 1.0/0.90 `rdf:RDF` or Atom 1.0 `feed`
  namespace       prefixed namespace declarations below the root element
                  (feedparser names an element of a namespace it does not
                  know by the first prefix declared for it), or an
                  attribute in such a namespace named like one that is read
  markup          an element whose text is read holds child elements
                  (feedparser rebuilds their markup as text)
  content_type    a text construct typed xhtml, or one feedparser would
                  base64-decode (mode="base64", a non-text media type)
  construct       an element feedparser handles in a way not reproduced
                  here: contributors, itunes:owner inside an item, Atom source,
                  CDF attributes, and any handler not listed below
  large           SPLIT_ABOVE bytes or more (transforms.parse): read in pieces
                  by transforms.feed_split with feedparser
  crash           the fast path raised: a bug, counted; feedparser decides

The private feedparser names used here (the namespace table, _urljoin,
_cp1252, the author helpers) are pinned with feedparser's version in
setup.py; a feedparser upgrade that changes them fails the parity test.
"""
from __future__ import annotations

import functools
import re
from typing import Callable, Dict, List, NamedTuple, Optional
from xml.parsers import expat

from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree

from transforms.feed_split import _settings, feedparser_input

# --parser: the fast path with feedparser behind it, or feedparser alone.
PARSERS = ("auto", "feedparser")
FALLBACK_REASONS = ("encoding", "doctype", "not_well_formed", "format", "namespace",
                    "markup", "content_type", "construct", "large", "crash")


class Refused(Exception):
    """The fast path will not read this document; `reason` is one of FALLBACK_REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class FastFeed(NamedTuple):
    """feedparser's `feed` and `entries` for the fields transforms.parse reads,
    and its `bozo`/`bozo_exception` (a charset warning, or none)."""

    feed: dict
    entries: List[dict]
    bozo: bool = False
    bozo_exception: Optional[Exception] = None


_NAMESPACES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_ATOM10 = "http://www.w3.org/2005/atom"
_RSS10 = "http://purl.org/rss/1.0/"
_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_RELATIVE_URI = frozenset({"comments", "docs", "href", "icon", "id", "link", "logo", "url",
                           "wfw_comment", "wfw_commentrss"})
_ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")
_BASE_ATTRIBUTE = re.compile(rb"base\s*=")
_C1 = re.compile("[\x80-\x9f]")
_C1_BYTES = bytes(range(0x80, 0xA0))
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)

# What some handlers read, by feedparser's handler key (prefix_name).
_AUTHOR_PARTS = {"name": "name", "itunes_name": "name", "email": "email", "itunes_email": "email",
                 "uri": "href", "url": "href", "homepage": "href"}
_CATEGORY = {"category": None, "dc_subject": None, "keywords": None,
             "media_category": "http://search.yahoo.com/mrss/category_schema"}
_KEYWORDS = {"media_keywords": None, "itunes_keywords": "http://www.itunes.com/"}
# Handlers whose effects reach nothing a story or the fetch log reads: their
# text lands in keys transforms.parse never looks at.
_INERT = frozenset({
    "rss", "channel", "feed", "enclosure", "media_content", "media_group", "media_thumbnail",
    "media_credit", "media_player", "media_rating", "media_restriction", "media_license",
    "language", "dc_language", "generator", "cloud", "width", "height", "subtitle", "tagline",
    "itunes_subtitle", "rights", "copyright", "dc_rights", "info", "feedburner_browserfriendly",
    "itunes_block", "itunes_explicit", "created", "expirationdate", "dcterms_created",
    "dcterms_valid", "webmaster", "dc_publisher", "newlocation", "admin_generatoragent",
    "admin_errorreportsto", "cc_license", "creativecommons_license", "creativeCommons_license",
    "georss_point", "georss_line", "georss_polygon", "georss_box", "where", "georss_where",
    "gml_point", "gml_linestring", "gml_polygon", "gml_exterior", "gml_linearring", "gml_pos",
    "gml_poslist", "url", "uri", "homepage", "name", "email", "itunes_name", "itunes_email",
    "itunes_owner", "itunes_image", "itunes_link",
})
# Inert elements whose children are read as usual (media:content holds
# media:title and media:description, which feedparser does read).
_CONTAINERS = frozenset({"media_group", "media_content", "enclosure", "cloud", "where",
                         "georss_where", "gml_point", "gml_linestring", "gml_polygon",
                         "gml_exterior", "gml_linearring", "itunes_owner"})
# Keys transforms.parse reads from an entry: a generic element (one without
# a handler) of such a name would overwrite them in feedparser's dict.
_READ_KEYS = frozenset({"link", "links", "id", "title", "summary", "content", "authors", "author",
                        "tags", "updated", "published"})


# Attributes the walk reads: one in an unknown namespace would be read
# under its bare name by feedparser, shadowing the element's own.
_READ_ATTRIBUTES = frozenset({"type", "rel", "href", "url", "uri", "ispermalink", "term", "scheme",
                              "domain", "label", "src", "mode", "text", "lastmod", "base"})


@functools.lru_cache(maxsize=4096)
def _has_handler(key: str) -> bool:
    return hasattr(_FeedParserMixin, "_start_" + key) or hasattr(_FeedParserMixin, "_end_" + key)


def _finish(text: str) -> str:
    """What feedparser's pop does to every text it keeps (its document is UTF-8)."""
    return _recode(text.strip())


def _recode(text: str) -> str:
    # Text that reads as UTF-8 once taken as Latin-1 is decoded again, and
    # C1 controls become their cp1252 characters, as feedparser's pop does.
    # ASCII text is neither: most text, returned as it is.
    if text.isascii():
        return text
    try:
        latin1 = text.encode("iso-8859-1")
    except UnicodeEncodeError:
        # str.translate with a dict is slow; most text has no C1 character at all.
        return text.translate(_cp1252) if _C1.search(text) else text
    try:
        text = latin1.decode("utf-8")
    except UnicodeDecodeError:
        # Latin-1 text stays as it is; its C1 characters are its bytes
        # 0x80-0x9f, which bytes.translate finds faster than re finds them.
        if len(latin1.translate(None, _C1_BYTES)) == len(latin1):
            return text
        return text.translate(_cp1252)
    return text.translate(_cp1252) if _C1.search(text) else text


def _content_type(value: str) -> str:
    return _FeedParserMixin.map_content_type(value)


def _content_params(type_attribute: str, mode: str) -> dict:
    kind = _content_type(type_attribute)
    if mode == "base64" or not (kind.startswith("text/") or kind.endswith("+xml") or kind.endswith("/xml")):
        raise Refused("content_type", kind[:50])
    if kind == "application/xhtml+xml":
        raise Refused("content_type", kind)
    return {"type": kind}


# (type attribute, mode) -> content_params' answer: a feed repeats a few.
_CONTENT_PARAMS: Dict[tuple, dict] = {}
# An absolute http(s) URL that urljoin gives back unchanged, against any
# base urlsplit accepts: a lower-case scheme, a plain host, printable ASCII,
# no ";" in the path (params), no "#" (fragment), and a query only when not
# empty (urlunparse drops an empty one). Most links in feeds are of this shape.
_UNCHANGED_BY_JOIN = re.compile(r'https?://[A-Za-z0-9.:-]+(?:/[!"$-:<->@-~]*)?(?:\?[!"$-~]+)?')
_joined = functools.lru_cache(maxsize=256)(_urljoin)


def _join(base: str, uri: str) -> str:
    """feedparser's _urljoin(base, uri), without its work for a URL it leaves as it is."""
    # urlsplit rejects only a base with brackets or non-ASCII (ValueError:
    # then feedparser's answer is "").
    if base.isascii() and "[" not in base and "]" not in base and _UNCHANGED_BY_JOIN.fullmatch(uri):
        return uri
    return _joined(base, uri)


def _entities_unended(link: str) -> str:
    """feedparser's rewrite of "&name;" to "&name" in a link."""
    # (A callable, not the template r"&\g<1>", which re expands in Python for each call.)
    return _ENTITY_IN_LINK.sub(_unended, link) if ";" in link else link


def _unended(match) -> str:
    return "&" + match.group(1)


class _AuthorShim:
    """Just enough of feedparser's parser for its own author helpers
    (_save_author, _sync_author_detail) to run on our dicts."""

    def __init__(self, context: dict):
        self.context = context

    def _get_context(self):
        return self.context

    _save_author = _FeedParserMixin._save_author
    _sync_author_detail = _FeedParserMixin._sync_author_detail


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                          remove_pis=True, huge_tree=False, collect_ids=False)


class _Walk:
    """feedparser's handler rules, replayed over an lxml tree (see the module docstring)."""

    def __init__(self, baseuri: str, prefixes: Dict[str, str]):
        self.baseuri = baseuri
        self.prefixes = prefixes          # unknown namespace URI -> the prefix feedparser names it by
        self.feed: dict = {}
        self.entries: List[dict] = []
        self.in_feed = self.in_entry = self.in_image = self.in_textinput = False
        self.title_depth = -1
        self.has_content = False
        self.guidislink = False
        self.depths: Dict[str, int] = {}  # the entry's property_depth_map
        self.bases: List[str] = []
        self.plans: Dict[str, _Plan] = {}  # tag -> what to do with it, for this document
        self.track_bases = True           # False when no element can carry a base
        self.author_shim = _AuthorShim({})

    # ------------------------------------------------------------ names

    def key(self, element) -> str:
        """feedparser's name for an element: mapped prefix + ":" + lower-case local name."""
        plan = self.plans.get(element.tag)
        return (plan or self.plan(element.tag)).key

    def plan(self, tag: str) -> "_Plan":
        """What the walk does with an element of this tag in this document
        (its name can depend on the document's prefixes, so plans are per walk)."""
        plan = self.plans[tag] = _plan(self.name_of(tag))
        return plan

    def name_of(self, tag: str) -> str:
        if tag[0] != "{":
            return tag.lower()
        uri, local = tag[1:].split("}", 1)
        lower = uri.lower()
        if "backend.userland.com/rss" in lower:
            lower = "http://backend.userland.com/rss"
        prefix = _NAMESPACES.get(lower)
        if prefix is None:
            # Expat gives feedparser no prefix: it names the element by the
            # first prefix declared for the URI, else by its bare local name.
            prefix = self.prefixes.get(uri, "")
        local = local.lower()
        return f"{prefix.lower()}:{local}" if prefix else local

    @staticmethod
    def attributes(items) -> dict:
        """feedparser's attribute dict, from an element's `items()`."""
        found = {}
        for name, value in items:
            if name[0] == "{":
                uri, local = name[1:].split("}", 1)
                prefix = _NAMESPACES.get(uri.lower(), "")
                if uri == "http://www.w3.org/XML/1998/namespace":
                    prefix = "xml"
                if not prefix:
                    if local.lower() in _READ_ATTRIBUTES:
                        raise Refused("namespace", f"attribute {local}")
                    continue
                name = f"{prefix}:{local}"
            name = name.lower()
            found[name] = value.lower() if name in ("rel", "type") else value
        return found

    def context(self) -> dict:
        if self.in_image and "image" in self.feed:
            return self.feed["image"]
        if self.in_textinput:
            return self.feed["textinput"]
        if self.in_entry:
            return self.entries[-1]
        return self.feed

    # ------------------------------------------------------------ text

    @staticmethod
    def own_text(element) -> str:
        if len(element):
            raise Refused("markup", element.tag[:100])
        return element.text or ""

    def save(self, key: str, output: str, depth: int, incontent: dict = None) -> None:
        """The save half of feedparser's pop (its text already finished)."""
        if self.in_entry:
            entry = self.entries[-1]
            if key == "content":
                entry.setdefault("content", []).append(dict(incontent or {}, value=output))
            elif key == "link":
                if self.in_image:
                    return
                if "&" in output:
                    output = _entities_unended(output.replace("&amp;", "&"))
                entry["link"] = output
                if output:
                    entry["links"][-1]["href"] = output
            else:
                if key == "description":
                    key = "summary"
                old = self.depths.get(key)
                if old is None or depth <= old:
                    self.depths[key] = depth
                    entry[key] = output
        elif self.in_feed:
            context = self.context()
            if key == "description":
                key = "subtitle"
            context[key] = output
            if key == "link":
                output = _entities_unended(output)
                context["link"] = output
                context["links"][-1]["href"] = output

    def text_of(self, key: str, element) -> str:
        if len(element):
            raise Refused("markup", element.tag[:100])
        text = element.text
        if not text:
            return ""
        text = text.strip()
        if key in _RELATIVE_URI and text and (key != "id" or self.guidislink):
            text = _join(self.baseuri, text)
        return _recode(text)

    @staticmethod
    def content_params(attrs: dict, default: str) -> dict:
        """{"type": the media type} of a text construct, or Refused. The
        dict is shared between calls: read it, do not change it."""
        probe = (attrs.get("type", default), attrs.get("mode", "")) if attrs else (default, "")
        params = _CONTENT_PARAMS.get(probe)
        if params is None:
            params = _content_params(*probe)
            if len(_CONTENT_PARAMS) < 256:
                _CONTENT_PARAMS[probe] = params
        return params

    # ------------------------------------------------------------ the walk

    def walk(self, elements, depth: int) -> None:
        """Each of `elements` (siblings at `depth`) through its handler."""
        # A loop per parent: cheaper than a call per element.
        plans = self.plans
        attributes = self.attributes
        for element in elements:
            tag = element.tag
            plan = plans.get(tag)
            if plan is None:
                plan = self.plan(tag)
            items = element.items()
            attrs = attributes(items) if items else {}
            if plan.ends_textinput:
                self.in_textinput = False
            if plan.ends_image:
                self.in_image = False
            if not self.track_bases:
                plan.handler(self, element, attrs, depth)
                continue
            # xml:base as feedparser keeps it: a stack of each open element's
            # base; at an end tag the parent's, unless that one is empty.
            base = attrs.get("xml:base", attrs.get("base"))
            if base:
                self.baseuri = (make_safe_absolute_uri(self.baseuri, base) or self.baseuri) if self.baseuri \
                    else _urljoin(self.baseuri, base)
            self.bases.append(self.baseuri)
            try:
                plan.handler(self, element, attrs, depth)
            finally:
                self.bases.pop()
                if self.bases and self.bases[-1]:
                    self.baseuri = self.bases[-1]

    def children(self, element, depth: int) -> None:
        self.walk(element, depth + 1)

    def inert(self, element, name: str, attrs: dict, depth: int) -> None:
        if name in ("rss", "channel", "feed"):
            if name == "channel" and ("href" in attrs or "lastmod" in attrs):
                raise Refused("construct", "CDF channel")
            if name != "rss":
                self.in_feed = True
            self.children(element, depth)
            if name != "rss":
                self.in_feed = False
            return
        if name == "itunes_owner" and self.in_entry:
            raise Refused("construct", "itunes:owner in an item")  # its name would become an author
        if name in _CONTAINERS:
            self.children(element, depth)
            return
        if name in ("itunes_image", "itunes_link"):
            href = attrs.get("href") or attrs.get("url")
            if href:
                self.context()["image"] = {"href": href}
        # Text-only elements whose value nothing reads.
        if len(element):
            raise Refused("markup", name)

    # -- entries and feed structure

    def _item(self, element, attrs, depth):
        if self.in_entry:
            raise Refused("construct", "nested item")
        self.entries.append({})
        self.depths = {}
        self.in_entry = True
        self.guidislink = False
        self.title_depth = -1
        about = attrs.get("rdf:about")
        if about:
            self.entries[-1]["id"] = about
        if "href" in attrs or "lastmod" in attrs:
            raise Refused("construct", "CDF item")
        self.children(element, depth)
        self.in_entry = False
        self.has_content = False

    _entry = _item

    def _image(self, element, attrs, depth):
        if not self.in_entry:
            self.feed.setdefault("image", {})
        self.in_image = True
        self.title_depth = -1
        self.children(element, depth)
        self.in_image = False

    def _textinput(self, element, attrs, depth):
        if self.in_entry:
            raise Refused("construct", "textinput in an item")
        self.feed.setdefault("textinput", {})
        self.in_textinput = True
        self.title_depth = -1
        self.children(element, depth)
        self.in_textinput = False

    def _source(self, element, attrs, depth):
        if len(element) or not self.in_entry:
            raise Refused("construct", "source")
        self.title_depth = -1

    # -- text constructs

    def _title(self, element, attrs, depth):
        params = self.content_params(attrs, "text/plain")
        value = self.text_of("title", element)
        if not (-1 < self.title_depth <= depth):
            self.save("title", value, depth, params)
        if value and self.plans[element.tag].key != "media:title":
            self.title_depth = depth

    _dc_title = _media_title = _title

    def _description(self, element, attrs, depth):
        context = self.context()
        if "summary" in context and not self.has_content:
            self.content(element, attrs, depth, "text/plain")
            return
        self.content_params(attrs, "text/html")
        self.save("description", self.text_of("description", element), depth)

    _dc_description = _media_description = _description

    def _summary(self, element, attrs, depth):
        context = self.context()
        if "summary" in context and not self.has_content:
            self.content(element, attrs, depth, "text/plain")
            return
        self.content_params(attrs, "text/plain")
        self.save("summary", self.text_of("summary", element), depth)

    _itunes_summary = _summary

    def content(self, element, attrs, depth, default):
        self.has_content = True
        params = self.content_params(attrs, default)
        value = self.text_of("content", element)
        self.save("content", value, depth, params)
        if params["type"] in _HTML_TYPES or params["type"] == "text/plain":
            self.context().setdefault("summary", value)

    def _content(self, element, attrs, depth):
        self.content(element, attrs, depth, "text/plain")

    def _content_encoded(self, element, attrs, depth):
        self.content(element, attrs, depth, "text/html")

    _fullitem = _content_encoded

    # -- links and ids

    def _link(self, element, attrs, depth):
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = _join(self.baseuri, href)
        context = self.context()
        context.setdefault("links", [])
        if not (self.in_entry and self.in_image):
            context["links"].append(attrs)
        if "href" in attrs:
            if attrs.get("rel") == "alternate" and _content_type(attrs.get("type")) in _HTML_TYPES:
                context["link"] = attrs["href"]
            if len(element):
                raise Refused("markup", "link")
            return
        if self.in_entry or self.in_feed:
            self.save("link", self.text_of("link", element), depth)

    def _guid(self, element, attrs, depth):
        self.guidislink = attrs.get("ispermalink", "true") == "true"
        value = self.text_of("id", element)
        self.save("id", value, depth)
        context = self.context()
        context.setdefault("guidislink", self.guidislink and "link" not in context)
        if self.guidislink:
            context.setdefault("link", value)

    _id = _guid

    def _feedburner_origlink(self, element, attrs, depth):
        if attrs:  # feedparser keeps no text of a generic element with attributes
            return
        self.save("feedburner_origlink", self.text_of("feedburner_origlink", element), depth)

    # -- authors, tags, dates

    def _author(self, element, attrs, depth):
        context = self.context()
        context.setdefault("authors", []).append({})
        parts = []
        plans = self.plans
        for child in element:
            part = _AUTHOR_PARTS.get((plans.get(child.tag) or self.plan(child.tag)).name)
            if part is None or len(child):
                raise Refused("construct", "author part")
            items = child.items()
            if items:
                self.attributes(items)  # refuses an attribute feedparser would read differently
            value = (child.text or "").strip()
            if part == "href" and value:
                value = _recode(_urljoin(self.baseuri, value))
            parts.append((part, value))
        shim = self.author_shim
        shim.context = context
        for part, value in parts:
            shim._save_author(part, value)
        own = element.text or ""
        if parts:
            own += "".join(child.tail or "" for child in element)
        self.save("author", _finish(own), depth)
        shim._sync_author_detail()

    _managingeditor = _dc_creator = _dc_author = _itunes_author = _author

    def add_tag(self, term, scheme, label) -> None:
        tags = self.context().setdefault("tags", [])
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

    def _category(self, element, attrs, depth):
        name = self.plans[element.tag].name
        if name == "media_category":
            attrs.setdefault("scheme", _CATEGORY[name])
        if name == "itunes_category":
            self.add_tag(attrs.get("text"), "http://www.itunes.com/", None)
        else:
            self.add_tag(attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label"))
        value = _finish(self.own_text(element))
        if not value:
            return
        tags = self.context()["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self.add_tag(value, None, None)

    _dc_subject = _keywords = _media_category = _itunes_category = _category

    def _media_keywords(self, element, attrs, depth):
        name = self.plans[element.tag].name
        if attrs:  # feedparser pushes nothing for it, then fails to split None
            raise Refused("construct", name)
        for term in _finish(self.own_text(element)).split(","):
            if term.strip():
                self.add_tag(term.strip(), _KEYWORDS[name], None)

    _itunes_keywords = _media_keywords

    def _published(self, element, attrs, depth):
        self.save("published", self.text_of("published", element), depth)

    _issued = _pubdate = _dcterms_issued = _published

    def _updated(self, element, attrs, depth):
        self.save("updated", self.text_of("updated", element), depth)

    _modified = _lastbuilddate = _dc_date = _dcterms_modified = _updated


_HANDLERS = {name[1:]: method for name, method in vars(_Walk).items()
             if name.startswith("_") and not name.startswith("__") and callable(method)}


class _Plan(NamedTuple):
    """What the walk does with an element, worked out once per tag: its
    feedparser name, whether it ends an open image or textinput (feedparser
    ends them at any unprefixed element they cannot hold), and its handler."""

    key: str
    name: str
    ends_textinput: bool
    ends_image: bool
    handler: Callable[[_Walk, object, dict, int], None]


def _plan(key: str) -> _Plan:
    prefixed = ":" in key
    name = key.replace(":", "_")
    handler = _HANDLERS.get(name)
    if handler is None:
        if name in _INERT:
            handler = functools.partial(_inert, name)
        elif _has_handler(name):
            handler = functools.partial(_unreproduced, key)
        else:
            handler = functools.partial(_generic, key, name in _READ_KEYS)
    return _Plan(key, name,
                 not prefixed and key not in ("title", "link", "description", "name"),
                 not prefixed and key not in ("title", "link", "description", "url", "href", "width", "height"),
                 handler)


def _inert(name: str, walk: _Walk, element, attrs: dict, depth: int) -> None:
    walk.inert(element, name, attrs, depth)


def _unreproduced(key: str, walk: _Walk, element, attrs: dict, depth: int) -> None:
    raise Refused("construct", key[:100])


def _generic(key: str, read: bool, walk: _Walk, element, attrs: dict, depth: int) -> None:
    # An element without a handler: feedparser keeps its text under its
    # name (when it has no attributes) and reads its children as usual.
    if read and walk.in_entry:
        raise Refused("construct", key[:100])
    walk.children(element, depth)


def _root_version(root, key: str, attrs: dict) -> str:
    if key == "rss":
        return "rss"
    if key == "feed" and root.tag.lower().startswith("{" + _ATOM10 + "}"):
        return "atom10"
    if key == "rdf:rdf":
        uris = {uri.lower() for uri in root.nsmap.values()}
        if _RSS10 in uris or _RSS090 in uris:
            return "rss10"
    raise Refused("format", key[:100])


_ROOT_TAG = re.compile(rb"<[A-Za-z_]")
_PREFIX_DECLARATION = re.compile(rb"""xmlns:([^\s=/>]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")


def _unknown_prefixes(document: bytes, root) -> Dict[str, str]:
    """URI -> the first prefix the root declares for it, for namespaces
    feedparser does not know (it names their elements by that prefix).
    Refused when an element below the root binds a prefix to such a
    namespace other than as the root does: which prefix is first would then
    depend on where each element sits."""
    start = _ROOT_TAG.search(document)
    end = document.find(b">", start.start()) if start else -1
    if end < 0:
        raise Refused("format", "no root element")
    declared = [(m.group(1).decode(), (m.group(2) if m.group(2) is not None else m.group(3)).decode())
                for m in _PREFIX_DECLARATION.finditer(document, start.start(), end)]
    on_root = {prefix: uri for prefix, uri in root.nsmap.items() if prefix is not None}
    if dict(declared) != on_root:
        raise Refused("namespace", "root declarations")
    pairs = set(declared)
    for match in _PREFIX_DECLARATION.finditer(document, end):
        pair = (match.group(1).decode(), (match.group(2) if match.group(2) is not None else match.group(3)).decode())
        if pair not in pairs and pair[1].lower() not in _NAMESPACES:
            raise Refused("namespace", f"xmlns:{pair[0][:50]} below the root")
    prefixes: Dict[str, str] = {}
    for prefix, uri in declared:
        if uri.lower() not in _NAMESPACES:
            prefixes.setdefault(uri, prefix)
    return prefixes


def _well_formed_for_expat(document: bytes) -> bool:
    # feedparser's strict parser is expat with namespaces (xml.sax): what it
    # rejects, feedparser reads with its loose parser instead.
    parser = expat.ParserCreate(None, " ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_UNLESS_STANDALONE)
    try:
        parser.Parse(document, True)
    except expat.ExpatError:
        return False
    return True


def read_fast(body: bytes, headers: Optional[dict] = None) -> FastFeed:
    """feedparser's `feed` and `entries` (the fields transforms.parse reads)
    for a document the fast path reads exactly; raises Refused otherwise.
    The caller checks entity declarations first (transforms.entity_guard)."""
    return read_fast_document(*feedparser_input(body, dict(headers or {})))


def read_fast_document(document: bytes, result: dict) -> FastFeed:
    """read_fast on feedparser_input's output (the body in UTF-8, and
    feedparser's charset verdict)."""
    # feedparser's strict parser reads whatever its charset rules settled on,
    # a charset it overrode included (then with a warning, carried here).
    if not result["encoding"]:
        raise Refused("encoding", str(result.get("bozo_exception") or "")[:100])
    if _DOCTYPE.search(document, 0, 4096) or b"<!ENTITY" in document[:65536]:
        raise Refused("doctype")
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Refused("not_well_formed", str(exc)[:100])
    if not _well_formed_for_expat(document):
        raise Refused("not_well_formed", "expat")
    walk = _Walk(_settings(result).baseuri, _unknown_prefixes(document, root))
    walk.track_bases = _BASE_ATTRIBUTE.search(document) is not None
    key = walk.key(root)
    _root_version(root, key, walk.attributes(root.items()))
    walk.walk((root,), 1)
    return FastFeed(walk.feed, walk.entries,
                    bool(result.get("bozo")), result.get("bozo_exception"))
