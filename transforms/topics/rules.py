"""Topic rules: named queries, validated together.

compile_rules parses every topic, resolves `topic:` references (unknown
names, self-references and cycles are errors), bounds the size of what the
references expand to and the literals the scans will look for (limits.py),
and returns the trees the matcher evaluates.
topics_version is the hash of the rules in force, written on every story row.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Optional, Tuple, Union

from transforms.topics import limits
from transforms.topics.query import (
    And,
    AtLeast,
    Except,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    TEXT_FIELDS,
    Term,
    TopicRef,
    _check_operand,
    check_except,
    parse_query,
    walk,
)

# Bump when the same rules would match differently (normalisation, syntax
# meaning), so topics_version tells such results apart too.
MATCHER_VERSION = "3"  # 3: word edges (<북>) and EXCEPT
MAX_TERMS = 50_000           # terms in one topic once its references are expanded
MAX_RESOLVED_DEPTH = 200     # nesting once references are expanded (recursion stays bounded)


@dataclass(frozen=True)
class Topic:
    """One rule: a name (kept in the `topics` column), a query, and whether
    accents are ignored when matching it (Corée = Coree)."""

    name: str
    query: str
    fold_accents: bool = False


class TopicError(ValueError):
    """A bad topic definition; str() is one line naming the topic.

    `topic` is the name as given, `reason` the problem, `position` the
    0-based offset in that topic's query when the problem has one.
    """

    def __init__(self, label: str, reason: str, *, name=None, position: Optional[int] = None):
        where = "" if position is None else f", position {position}"
        super().__init__(f"topic {label}{where}: {reason}")
        self.topic = name
        self.reason = reason
        self.position = position


TopicDef = Union[Topic, Tuple[str, str]]


@dataclass(frozen=True)
class CompiledTopic:
    topic: Topic
    parsed: Node    # as written, with topic: references (for the version hash)
    node: Node      # references replaced by the referred topics' trees


def as_topic(d: TopicDef) -> Topic:
    if isinstance(d, Topic):
        return d
    name, query = tuple(d)
    return Topic(name, query)


def _parse_all(defs: Iterable[TopicDef]) -> List[Tuple[Topic, Node]]:
    out: List[Tuple[Topic, Node]] = []
    seen = set()
    for index, d in enumerate(defs, 1):
        topic = as_topic(d)
        name = topic.name
        if not isinstance(name, str) or not name.strip():
            raise TopicError(f"#{index}", "empty name", name=name)
        label = repr(name)
        if name in seen:
            raise TopicError(label, "duplicate name", name=name)
        seen.add(name)
        if not isinstance(topic.query, str):
            raise TopicError(label, "query must be a string", name=name)
        if not isinstance(topic.fold_accents, bool):
            raise TopicError(label, "fold_accents must be true or false", name=name)
        try:
            node = parse_query(topic.query, fold_accents=topic.fold_accents)
        except QuerySyntaxError as e:
            raise TopicError(label, e.message, name=name, position=e.position) from None
        out.append((topic, node))
    return out


def _refs(node: Node) -> List[TopicRef]:
    return [n for n in walk(node) if isinstance(n, TopicRef)]


class _Resolver:
    def __init__(self, parsed: List[Tuple[Topic, Node]]):
        self.trees: Dict[str, Node] = {t.name: n for t, n in parsed}
        self.resolved: Dict[str, Node] = {}
        self.sizes: Dict[str, Tuple[int, int]] = {}
        self.checked: set = set()

    def fail(self, name: str, reason: str, position: Optional[int]) -> TopicError:
        return TopicError(repr(name), reason, name=name, position=position)

    def check_graph(self, start: str) -> None:
        """Unknown names, self-references and cycles, before any expansion
        (depth-first, with a stack of our own: chains may be long)."""
        if start in self.checked:
            return
        path: List[str] = [start]
        stack = [iter(_refs(self.trees[start]))]
        while stack:
            ref = next(stack[-1], None)
            if ref is None:
                self.checked.add(path.pop())
                stack.pop()
                continue
            name = path[-1]
            if ref.name == name:
                raise self.fail(name, f"refers to itself (topic:{name})", ref.position)
            if ref.name not in self.trees:
                raise self.fail(name, f"unknown topic {ref.name!r} in topic:{ref.name}", ref.position)
            if ref.name in path:
                cycle = " -> ".join(path[path.index(ref.name):] + [ref.name])
                raise self.fail(name, f"reference cycle {cycle}", ref.position)
            if ref.name not in self.checked:
                path.append(ref.name)
                stack.append(iter(_refs(self.trees[ref.name])))

    def size(self, name: str) -> Tuple[int, int]:
        """(terms, depth) of the topic once expanded, without expanding it:
        references can multiply (a topic used twice in each of ten levels).
        Topics are measured in reference order, so no chain recurses deep."""
        if name not in self.sizes:
            for dependency in self._dependencies_first(name):
                if dependency not in self.sizes:
                    self.sizes[dependency] = self._measure(self.trees[dependency])
        return self.sizes[name]

    def _dependencies_first(self, name: str) -> List[str]:
        order: List[str] = []
        seen = set()
        stack = [(name, False)]
        while stack:
            current, expanded = stack.pop()
            if expanded:
                order.append(current)
                continue
            if current in seen or current in self.sizes:
                continue
            seen.add(current)
            stack.append((current, True))
            stack.extend((ref.name, False) for ref in _refs(self.trees[current]))
        return order

    def _measure(self, node: Node) -> Tuple[int, int]:
        if isinstance(node, TopicRef):  # measured already: a reference is one more level
            terms, depth = self.sizes[node.name]
            return terms, depth + 1
        if isinstance(node, Term):
            return 1, 1
        terms, depth = 0, 0
        for child in node.children_nodes():
            t, d = self._measure(child)
            terms, depth = terms + t, max(depth, d)
        return terms, depth + 1

    def resolve(self, name: str) -> Node:
        if name not in self.resolved:
            self.resolved[name] = self._expand(name, self.trees[name])
        return self.resolved[name]

    def _expand(self, name: str, node: Node) -> Node:
        try:
            return self._substitute(node)
        except QuerySyntaxError as e:
            raise self.fail(name, e.message, e.position) from None

    def _substitute(self, node: Node) -> Node:
        if isinstance(node, TopicRef):
            target = self.resolve(node.name)
            if node.fields != TEXT_FIELDS:
                target = target.scoped(node.fields, node.position)
            return target
        if not any(isinstance(n, TopicRef) for n in walk(node)):
            return node
        if isinstance(node, (And, Or)):
            return type(node)(tuple(self._substitute(c) for c in node.children))
        if isinstance(node, Not):
            return Not(self._substitute(node.child))
        if isinstance(node, Near):
            near = replace(node, left=self._substitute(node.left), right=self._substitute(node.right))
            _check_operand(near.left, "NEAR", near.position)
            _check_operand(near.right, "NEAR", near.position)
            return near
        if isinstance(node, Except):
            except_ = replace(node, left=self._substitute(node.left), right=self._substitute(node.right))
            check_except(except_)
            return except_
        if isinstance(node, AtLeast):
            at_least = replace(node, operand=self._substitute(node.operand))
            _check_operand(at_least.operand, "ATLEAST", at_least.position)
            return at_least
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover


def _language_last(node: Node) -> Node:
    """And/Or children that need the story's language go last, so language
    detection runs only when the cheaper conditions leave it open."""
    if isinstance(node, (And, Or)) and node.needs_language:
        children = tuple(_language_last(c) for c in node.children)
        return type(node)(tuple(sorted(children, key=lambda c: c.needs_language)))
    if isinstance(node, Not) and node.needs_language:
        return Not(_language_last(node.child))
    return node


def compile_rules(defs: Iterable[TopicDef]) -> List[CompiledTopic]:
    """Validated, resolved topics in the order given; raises TopicError."""
    parsed = _parse_all(defs)
    resolver = _Resolver(parsed)
    for topic, _ in parsed:
        resolver.check_graph(topic.name)
    # Sizes first, expansion after: a chain of references resolves
    # recursively, and the depth limit keeps that recursion bounded.
    for topic, _ in parsed:
        terms, depth = resolver.size(topic.name)
        if terms > MAX_TERMS:
            raise TopicError(repr(topic.name), f"{terms:,} terms once topic: references are "
                             f"expanded; the limit is {MAX_TERMS:,}", name=topic.name)
        if depth > MAX_RESOLVED_DEPTH:
            raise TopicError(repr(topic.name), f"nested {depth} levels deep once topic: references "
                             f"are expanded; the limit is {MAX_RESOLVED_DEPTH}", name=topic.name)
    compiled = [CompiledTopic(t, n, _language_last(resolver.resolve(t.name))) for t, n in parsed]
    try:
        limits.check_topics((c.topic.name, (k for term in c.node.terms() for k in term.keys))
                            for c in compiled)
    except limits.LimitExceeded as e:
        raise TopicError(repr(e.topic), str(e), name=e.topic) from None
    return compiled


def compile_topics(defs: Iterable[TopicDef]) -> List[Topic]:
    """Validate topics (or (name, query) pairs); raises TopicError."""
    return [c.topic for c in compile_rules(defs)]


def topics_version(compiled: Iterable[CompiledTopic]) -> str:
    """Hash of the rules in force: names, queries (in canonical form, so
    re-wrapping a query in YAML does not change it), accent folding, and the
    matcher's own version. 16 hex digits."""
    rules = sorted([c.topic.name, str(c.parsed), c.topic.fold_accents] for c in compiled)
    blob = json.dumps([MATCHER_VERSION, rules], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
