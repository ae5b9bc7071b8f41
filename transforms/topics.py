"""Topic rules: a small boolean query language and a fast story matcher.

Grammar (upper-case keywords only; `and`/`or`/`not` are plain terms)::

    query    := or_expr EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := not_expr (["AND"] not_expr)*      -- juxtaposition is AND
    not_expr := "NOT" not_expr | primary
    primary  := WORD | PHRASE | "(" or_expr ")"

WORD is a run of characters other than whitespace, parentheses and `"`;
PHRASE is text between double quotes. Precedence: NOT > AND > OR.

The pure core (parse_query, compile_topics, TopicMatcher) has no Beam in it;
MatchTopics is the thin Beam wrapper.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import AbstractSet, Iterable, Iterator, Optional, Union

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.records import Story

__all__ = [
    "And",
    "MatchTopics",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Term",
    "Topic",
    "TopicError",
    "TopicMatcher",
    "compile_topics",
    "normalize",
    "parse_query",
    "tag_story",
    "tokenize",
]

METRICS_NAMESPACE = "newswatch"

# --------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------

# Scripts written without spaces between words. Terms containing them match
# as substrings, because "북한의" (with a particle) or "北朝鮮は..." must still
# hit "북한" / "北朝鮮".
_CJK = (
    r"\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"  # Hangul
    r"\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    r"\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    r"\U00020000-\U0003ffff"  # Han extensions B and later
)
_CJK_RE = re.compile(f"[{_CJK}]")
# Letters/digits only (no "_"), so hyphens, apostrophes and underscores split.
# A run also breaks where CJK meets other scripts, so "DPRK는" yields "dprk".
_TOKEN_RE = re.compile(f"[^\\W_{_CJK}]+|[{_CJK}]+")


def normalize(text: str) -> str:
    """NFKC + casefold (NFKC again because casefold can un-normalise)."""
    return unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", text).casefold()
    )


def tokenize(text: str) -> list[str]:
    """Normalised word tokens of `text`; queries and stories share this."""
    return _TOKEN_RE.findall(normalize(text))


def _is_cjk(token: str) -> bool:
    return _CJK_RE.search(token) is not None


# --------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------
# Every node answers three questions: its truth value for a set of hits, the
# found terms that justify that value, and its leaves. A new node kind
# (Near, a wildcard Term, a field-scoped Term, a topic reference) only has to
# implement these; the matcher indexes whatever `terms()` yields by `key`.
# `hits` is anything supporting `key in hits`; NEAR/n will need positions and
# can get a richer hits object without changing the boolean nodes.


class Node:
    """Base class of query AST nodes."""

    __slots__ = ()

    def evaluate(self, hits: AbstractSet) -> bool:
        raise NotImplementedError

    def evidence(self, hits: AbstractSet, value: bool = True) -> set["Term"]:
        """Found terms that make this node `value` (which it must be)."""
        raise NotImplementedError

    def terms(self) -> Iterator["Term"]:
        raise NotImplementedError


@dataclass(frozen=True)
class Term(Node):
    """A word or phrase: matches its normalised tokens consecutively.

    `text` is the term as written (reported in matched_terms). A Term with
    several tokens is a phrase; so is a hyphenated word ("Jong-un").
    """

    text: str
    tokens: tuple[str, ...]
    position: int = field(default=0, compare=False, repr=False)

    @classmethod
    def from_text(cls, text: str, position: int = 0) -> "Term":
        return cls(text, tuple(tokenize(text)), position)

    @property
    def is_phrase(self) -> bool:
        return len(self.tokens) > 1

    @property
    def substring(self) -> bool:
        """CJK terms match inside words, the others whole-word."""
        return any(_is_cjk(t) for t in self.tokens)

    @property
    def key(self) -> tuple[str, ...]:
        # Matching depends only on the tokens, so equal tokens share one key
        # (and one lookup) across all topics, however they were written.
        return self.tokens

    def evaluate(self, hits):
        return self.key in hits

    def evidence(self, hits, value=True):
        return {self} if value else set()

    def terms(self):
        yield self

    def __str__(self) -> str:
        if _is_bare_word(self.text):
            return self.text
        return f'"{self.text}"'


@dataclass(frozen=True)
class And(Node):
    children: tuple[Node, ...]

    def evaluate(self, hits):
        return all(c.evaluate(hits) for c in self.children)

    def evidence(self, hits, value=True):
        # True: every child contributes. False: only the false children do.
        return set().union(
            *(c.evidence(hits, value) for c in self.children if c.evaluate(hits) == value)
        )

    def terms(self):
        for c in self.children:
            yield from c.terms()

    def __str__(self) -> str:
        return " AND ".join(_wrap(c) for c in self.children)


@dataclass(frozen=True)
class Or(Node):
    children: tuple[Node, ...]

    def evaluate(self, hits):
        return any(c.evaluate(hits) for c in self.children)

    def evidence(self, hits, value=True):
        return set().union(
            *(c.evidence(hits, value) for c in self.children if c.evaluate(hits) == value)
        )

    def terms(self):
        for c in self.children:
            yield from c.terms()

    def __str__(self) -> str:
        return " OR ".join(_wrap(c) for c in self.children)


@dataclass(frozen=True)
class Not(Node):
    child: Node

    def evaluate(self, hits):
        return not self.child.evaluate(hits)

    def evidence(self, hits, value=True):
        # Polarity flips: terms under NOT never count as positive evidence,
        # except through a double negation.
        return self.child.evidence(hits, not value)

    def terms(self):
        return self.child.terms()

    def __str__(self) -> str:
        return f"NOT {_wrap(self.child)}"


def _wrap(node: Node) -> str:
    return f"({node})" if isinstance(node, (And, Or)) else str(node)


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


class QuerySyntaxError(ValueError):
    """A query that does not parse; `.position` is a 0-based offset."""

    def __init__(self, message: str, position: int):
        super().__init__(f"at position {position}: {message}")
        self.message = message
        self.position = position


_KEYWORDS = {"AND", "OR", "NOT"}
_MAX_DEPTH = 100  # deep nesting would otherwise end in RecursionError
# Syntax reserved for later features, rejected now so that adding them
# cannot silently change what an existing rule matches.
_FIELD_SCOPE_RE = re.compile(r"[A-Za-z]+:")
_NEAR_RE = re.compile(r"NEAR/\d+")


def _is_bare_word(text: str) -> bool:
    return (
        bool(text)
        and not any(ch.isspace() or ch in '()"*' for ch in text)
        and text not in _KEYWORDS
        and not _FIELD_SCOPE_RE.match(text)
        and not _NEAR_RE.fullmatch(text)
    )


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD PHRASE AND OR NOT ( ) EOF
    text: str
    pos: int


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(_Tok(ch, ch, i))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError("unterminated quote", i)
            toks.append(_Tok("PHRASE", text[i + 1 : end], i))
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            word = text[i:j]
            toks.append(_Tok(word if word in _KEYWORDS else "WORD", word, i))
            i = j
    toks.append(_Tok("EOF", "", n))
    return toks


_OPERAND_START = {"WORD", "PHRASE", "(", "NOT"}


class _Parser:
    def __init__(self, text: str):
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect_operand_after(self, op: _Tok) -> None:
        if self.peek().kind not in _OPERAND_START:
            raise QuerySyntaxError(f"expected a term after {op.text}", op.pos)

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise QuerySyntaxError("empty query", 0)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind == ")":
            raise QuerySyntaxError("unexpected ')'", tok.pos)
        assert tok.kind == "EOF", tok
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek().kind == "OR":
            self.expect_operand_after(self.next())
            children.append(self.parse_and())
        return _combine(Or, children)

    def parse_and(self) -> Node:
        children = [self.parse_not()]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.expect_operand_after(self.next())
            elif kind not in _OPERAND_START:
                break  # OR, ')' or EOF: the caller decides
            children.append(self.parse_not())
        return _combine(And, children)

    def parse_not(self) -> Node:
        tok = self.peek()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise QuerySyntaxError("query nested too deeply", tok.pos)
        try:
            if tok.kind == "NOT":
                self.next()
                self.expect_operand_after(tok)
                return Not(self.parse_not())
            return self.parse_primary()
        finally:
            self.depth -= 1

    def parse_primary(self) -> Node:
        tok = self.next()
        if tok.kind == "WORD":
            return _word_term(tok)
        if tok.kind == "PHRASE":
            term = Term.from_text(tok.text, tok.pos)
            if not term.tokens:
                raise QuerySyntaxError("empty phrase", tok.pos)
            return term
        if tok.kind == "(":
            if self.peek().kind == ")":
                raise QuerySyntaxError("empty parentheses", tok.pos)
            if self.peek().kind == "EOF":
                raise QuerySyntaxError("unbalanced parenthesis", tok.pos)
            node = self.parse_or()
            if self.peek().kind != ")":  # only EOF can stop parse_or here
                raise QuerySyntaxError("unbalanced parenthesis", tok.pos)
            self.next()
            return node
        if tok.kind in ("AND", "OR"):
            raise QuerySyntaxError(f"expected a term before {tok.text}", tok.pos)
        if tok.kind == ")":
            raise QuerySyntaxError("unexpected ')'", tok.pos)
        raise QuerySyntaxError("expected a term", tok.pos)  # EOF; not reached


def _word_term(tok: _Tok) -> Term:
    word = tok.text
    star = word.find("*")
    if star >= 0:
        raise QuerySyntaxError(
            "wildcards (*) are not supported; quote the term", tok.pos + star
        )
    if _NEAR_RE.fullmatch(word):
        raise QuerySyntaxError("NEAR/n is not supported; quote the term", tok.pos)
    if _FIELD_SCOPE_RE.match(word):
        raise QuerySyntaxError(
            "field scopes (name:) are not supported; quote the term", tok.pos
        )
    term = Term.from_text(word, tok.pos)
    if not term.tokens:
        raise QuerySyntaxError(f"term {word!r} has no letters or digits", tok.pos)
    return term


def _combine(cls, children: list[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for c in children:  # a AND (b AND c) == a AND b AND c: keep trees shallow
        flat.extend(c.children if isinstance(c, cls) else (c,))
    return cls(tuple(flat))


def parse_query(text: str) -> Node:
    """Parse a topic query into an AST; raises QuerySyntaxError."""
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, not {type(text).__name__}")
    return _Parser(text).parse()


# --------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    name: str
    query: str


class TopicError(ValueError):
    """A bad topic definition; str() is one line naming the topic."""

    def __init__(self, label: str, message: str, *, name=None, position: Optional[int] = None):
        super().__init__(f"topic {label}: {message}")
        self.topic = name  # as given; None or blank for an empty name
        self.position = position


TopicDef = Union[Topic, tuple[str, str]]


def _parse_topics(defs: Iterable[TopicDef]) -> list[tuple[Topic, Node]]:
    out: list[tuple[Topic, Node]] = []
    seen: set[str] = set()
    for index, d in enumerate(defs, 1):
        name, query = (d.name, d.query) if isinstance(d, Topic) else tuple(d)
        if not isinstance(name, str) or not name.strip():
            raise TopicError(f"#{index}", "empty name", name=name)
        label = repr(name)
        if name in seen:
            raise TopicError(label, "duplicate name", name=name)
        seen.add(name)
        if not isinstance(query, str):
            raise TopicError(label, "query must be a string", name=name)
        try:
            node = parse_query(query)
        except QuerySyntaxError as e:
            raise TopicError(
                label, f"query syntax error {e}", name=name, position=e.position
            ) from None
        out.append((Topic(name, query), node))
    return out


def compile_topics(defs: Iterable[TopicDef]) -> list[Topic]:
    """Validate (name, query) pairs or Topics; raises TopicError."""
    return [t for t, _ in _parse_topics(defs)]


# --------------------------------------------------------------------------
# Matcher
# --------------------------------------------------------------------------

_END = ""  # trie marker; no character key is empty


class TopicMatcher:
    """Matches stories against many topics in one pass over each field.

    Work per story grows with its length and the topics it hits, not with
    the number of rules: whole-word terms are looked up by their first token,
    CJK terms through a character trie, and only topics with a hit (or that
    can match without one, such as `NOT sport`) are evaluated.
    """

    def __init__(self, topics: Iterable[TopicDef]):
        parsed = sorted(_parse_topics(topics), key=lambda tn: tn[0].name)
        self.topics = [t for t, _ in parsed]
        self._names = [t.name for t in self.topics]
        self._nodes = [n for _, n in parsed]
        by_key: dict[tuple[str, ...], set[int]] = {}
        for i, node in enumerate(self._nodes):
            for term in node.terms():
                by_key.setdefault(term.key, set()).add(i)
        self._by_key = {k: sorted(v) for k, v in by_key.items()}
        # A topic whose query is true with nothing found never shows up via
        # the index, so it is evaluated for every story.
        self._always = [i for i, n in enumerate(self._nodes) if n.evaluate(frozenset())]

        words: set[str] = set()
        phrases: dict[str, list[tuple[str, ...]]] = {}
        self._cjk_trie: dict = {}
        for key in self._by_key:
            if any(_is_cjk(t) for t in key):
                self._add_cjk(" ".join(key), key)
            elif len(key) == 1:
                words.add(key[0])
            else:
                phrases.setdefault(key[0], []).append(key)
        self._words = frozenset(words)
        self._phrases = phrases
        self._phrase_starts = frozenset(phrases)
        # One C-level scan finds where a CJK term may start.
        self._cjk_start = (
            re.compile("[" + "".join(re.escape(c) for c in sorted(self._cjk_trie)) + "]")
            if self._cjk_trie
            else None
        )

    def _add_cjk(self, pattern: str, key: tuple[str, ...]) -> None:
        node = self._cjk_trie
        for ch in pattern:
            node = node.setdefault(ch, {})
        node[_END] = key

    def _scan(self, tokens: list[str], found: set) -> None:
        distinct = set(tokens)
        found.update((t,) for t in distinct & self._words)
        starts = distinct & self._phrase_starts
        if starts:
            for i, tok in enumerate(tokens):
                if tok in starts:
                    for phrase in self._phrases[tok]:
                        if phrase not in found and tuple(tokens[i : i + len(phrase)]) == phrase:
                            found.add(phrase)
        if self._cjk_start is not None:
            self._scan_cjk(" ".join(tokens), found)

    def _scan_cjk(self, text: str, found: set) -> None:
        n = len(text)
        for m in self._cjk_start.finditer(text):
            start = m.start()
            node = self._cjk_trie
            j = start
            while j < n:
                node = node.get(text[j])
                if node is None:
                    break
                j += 1
                key = node.get(_END)
                if key is not None and key not in found and _bounded(text, start, j):
                    found.add(key)

    def find_terms(self, *fields: str) -> set[tuple[str, ...]]:
        """Keys of all indexed terms found in the fields (each on its own)."""
        found: set[tuple[str, ...]] = set()
        for text in fields:
            if text:  # each field apart: phrases must not span fields
                self._scan(tokenize(text), found)
        return found

    def match(self, title: str, summary: str, content: str) -> list[tuple[str, list[str]]]:
        """(topic name, sorted terms as written) for each matching topic, by name."""
        found = self.find_terms(title, summary, content)
        candidates = set(self._always)
        for key in found:
            candidates.update(self._by_key[key])
        result = []
        for i in sorted(candidates):  # indices are in name order
            node = self._nodes[i]
            if node.evaluate(found):
                terms = sorted({t.text for t in node.evidence(found, True)})
                result.append((self._names[i], terms))
        return result


def _bounded(text: str, start: int, end: int) -> bool:
    # CJK chars may match inside words; a Latin edge of a mixed term
    # ("G7 정상") must still sit on a word boundary (a space after joining).
    if start > 0 and not _is_cjk(text[start]) and text[start - 1] != " ":
        return False
    if end < len(text) and not _is_cjk(text[end - 1]) and text[end] != " ":
        return False
    return True


def tag_story(story: Story, matcher: TopicMatcher) -> Optional[Story]:
    """The story with topics/matched_terms set, or None if nothing matched."""
    matches = matcher.match(story.title or "", story.summary or "", story.content or "")
    if not matches:
        return None
    return story.replace(
        topics=[name for name, _ in matches],
        matched_terms=sorted({t for _, terms in matches for t in terms}),
    )


# --------------------------------------------------------------------------
# Beam
# --------------------------------------------------------------------------


class _MatchTopicsFn(beam.DoFn):
    def __init__(self, pairs: tuple[tuple[str, str], ...]):
        self._pairs = pairs  # plain tuples pickle small and safely
        self._matcher: Optional[TopicMatcher] = None

    def setup(self):
        self._matcher = TopicMatcher(self._pairs)
        self._matched = Metrics.counter(METRICS_NAMESPACE, "matched")
        self._unmatched = Metrics.counter(METRICS_NAMESPACE, "unmatched")
        self._per_topic = {
            name: Metrics.counter(METRICS_NAMESPACE, f"matched_topic_{name}")
            for name, _ in self._pairs
        }

    def process(self, story):
        tagged = tag_story(story, self._matcher)
        if tagged is None:
            self._unmatched.inc()
            return
        self._matched.inc()
        for name in tagged.topics:
            self._per_topic[name].inc()
        yield tagged


class MatchTopics(beam.PTransform):
    """PCollection[Story] -> PCollection[Story] matching at least one topic.

    Kept stories get `topics` (sorted names) and `matched_terms` (sorted
    distinct terms as written in the queries). Topics are validated here, so a
    bad rule fails while the graph is built, before any work.
    """

    def __init__(self, topics: Iterable[TopicDef], label: Optional[str] = None):
        super().__init__(label)
        self._pairs = tuple((t.name, t.query) for t in compile_topics(topics))

    def expand(self, stories):
        return stories | "MatchTopics" >> beam.ParDo(_MatchTopicsFn(self._pairs))
