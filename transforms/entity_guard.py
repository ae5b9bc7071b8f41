"""Entity guard for the parse stage: XML entity declarations that could read
local files or blow up memory are caught before feedparser sees the body.

What feedparser 6.0.14 does on its own (measured;
tests/transforms/test_entity_guard.py pins each point): it runs expat
(xml.sax) with external general entities switched off and, when that fails,
an sgmllib-based loose parser fed only the "safe" entity declarations it
found with a regular expression.
  - external entities (SYSTEM/PUBLIC, general or parameter) and external DTDs
    are never read: no file content reaches the result;
  - the nested "billion laughs" bomb is stopped by expat 2.5's amplification
    limit (after ~8 MiB of output) and the loose parser does not nest;
  - but a "quadratic" bomb, one plain 100 KB entity referenced 20,000 times
    (a 160 KB document), is expanded in full by the loose parser: 2 GB of
    text, 9.5 GB of memory, 100 s. expat's own limit only starts after 8 MiB
    and allows 100x the input, so it does not bound a 10 MiB feed either.

So `entity_hazard` reads the document as feedparser will (`as_feedparser_reads`:
UTF-8, whatever charset it came in), looks at its prolog (everything before
the root element) and names the first declaration that is not a bounded internal
entity: parameter entities, external entities, values that refer to other
entities (directly or by building "&" from a character reference), more than
MAX_DECLARATIONS declarations, or a total expansion over MAX_EXPANSION
bytes. The parse stage then sets the whole feed aside as a dead letter
(`unsafe_xml: ...`) instead of stripping the declarations and parsing the
rest: a document whose entities we refuse to resolve cannot be read as its
author meant, and an external entity in a feed is what an attack looks like,
so the operator should see it rather than get quietly altered text. Feeds
with small internal entities (`<!ENTITY nbsp "&#160;">`, a shorthand) are
parsed as usual.
"""
from __future__ import annotations

import re
from typing import Optional

from feedparser.encodings import convert_to_utf8

MAX_EXPANSION = 1_000_000  # bytes all entity references of one document may add
MAX_DECLARATIONS = 256

# Inside a <!...> declaration: what can change quoting or nesting.
_DECL_TOKEN = re.compile(rb"""["'\[\]>]|<!--|<\?""")
# feedparser splits its "head" at the first "<" + word character; we stop there too.
_ELEMENT_START = re.compile(rb"<[A-Za-z0-9_]")
_ENTITY_OPEN = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ENTITY_DECL = re.compile(
    rb"""<!ENTITY\s+(%\s*)?([^\s"'%>]+)\s+(?:"([^"]*)"|'([^']*)'|(SYSTEM|PUBLIC)\b)""",
    re.IGNORECASE)
_VALUE_REF = re.compile(rb"&#[xX]([0-9a-fA-F]{1,8});|&#([0-9]{1,8});|&(?:lt|gt|amp|quot|apos);|[&%]")
# Characters whose reference inside an entity value turns into markup on expansion.
_MARKUP_CODES = frozenset({ord("&"), ord("%"), ord("<")})


def as_feedparser_reads(body: bytes, headers: dict) -> bytes:
    """The bytes feedparser's parsers will see: the body in UTF-8, decoded by
    the same rules (HTTP charset, BOM, XML declaration, fallbacks) feedparser
    applies, so no charset (UTF-16, UTF-7, EBCDIC ...) hides a declaration."""
    return convert_to_utf8(dict(headers or {}), body, {})


def entity_hazard(document: bytes) -> Optional[str]:
    """Why the entity declarations of `document` (as_feedparser_reads output)
    are unsafe to hand to an XML parser, or None when it declares no entities
    or only small internal ones."""
    end = _prolog_end(document)
    declared = []
    for opening in _ENTITY_OPEN.finditer(document, 0, end):
        if len(declared) >= MAX_DECLARATIONS:
            return f"more than {MAX_DECLARATIONS} entity declarations"
        decl = _ENTITY_DECL.match(document, opening.start())
        if decl is None:
            return f"unreadable entity declaration {_show(document, opening.start())}"
        parameter, name = decl.group(1), decl.group(2).decode("utf-8", "replace")
        if decl.group(5):
            kind = "external parameter entity" if parameter else "external entity"
            return f"{kind} '{name}' is never resolved: {_show(document, opening.start())}"
        if parameter:
            return f"parameter entity '{name}' declared"
        value = decl.group(3) if decl.group(3) is not None else decl.group(4)
        problem = _value_problem(value)
        if problem:
            return f"entity '{name}' {problem}"
        declared.append((decl.group(2), len(value)))
    expansion = 0
    for name, length in declared:
        if length:
            expansion += length * document.count(b"&" + name + b";", end)
            if expansion > MAX_EXPANSION:
                return f"entity references would expand to more than {MAX_EXPANSION:,} bytes"
    return None


def _prolog_end(text: bytes) -> int:
    """Index of the root element's "<", skipping the XML declaration,
    comments, processing instructions and <!...> declarations (with their
    quoted literals and internal subsets); len(text) when there is none."""
    pos, n = 0, len(text)
    while True:
        lt = text.find(b"<", pos)
        if lt < 0 or lt + 1 >= n:
            return n
        if text.startswith(b"<?", lt):
            pos = _after(text, b"?>", lt + 2)
        elif text.startswith(b"<!--", lt):
            pos = _after(text, b"-->", lt + 4)
        elif text.startswith(b"<!", lt):
            pos = _declaration_end(text, lt + 2)
        elif _ELEMENT_START.match(text, lt):
            return lt
        else:
            pos = lt + 1
        if pos >= n:
            return n


def _declaration_end(text: bytes, pos: int) -> int:
    depth, n = 0, len(text)
    while pos < n:
        token = _DECL_TOKEN.search(text, pos)
        if token is None:
            return n
        t, pos = token.group(), token.end()
        if t in (b'"', b"'"):
            pos = _after(text, t, pos)
        elif t == b"[":
            depth += 1
        elif t == b"]":
            depth = max(0, depth - 1)
        elif t == b">":
            if depth == 0:
                return pos
        elif depth:  # a comment or processing instruction inside the internal subset
            pos = _after(text, b"-->" if t == b"<!--" else b"?>", pos)
    return n


def _after(text: bytes, closing: bytes, pos: int) -> int:
    found = text.find(closing, pos)
    return len(text) if found < 0 else found + len(closing)


def _value_problem(value: bytes) -> Optional[str]:
    for ref in _VALUE_REF.finditer(value):
        hex_code, dec_code = ref.group(1), ref.group(2)
        if hex_code or dec_code:
            if int(hex_code or dec_code, 16 if hex_code else 10) in _MARKUP_CODES:
                return "builds a reference or markup from character references"
        elif ref.group() in (b"&", b"%"):
            return "refers to other entities"
    return None


def _show(text: bytes, start: int) -> str:
    """The declaration at `start`, up to its ">" and at most 120 bytes."""
    end = text.find(b">", start, start + 120)
    shown = text[start:end + 1 if end >= 0 else start + 120].decode("utf-8", "replace")
    return " ".join(shown.split()) + ("" if end >= 0 else "...")
