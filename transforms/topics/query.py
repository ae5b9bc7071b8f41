"""The topic query language: lexer, parser and syntax tree.

Grammar (operators in upper case only; `and`, `or`, `near` are plain words)::

    query    := or_expr EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := not_expr (["AND"] not_expr)*        -- juxtaposition is AND
    not_expr := "NOT" not_expr | "ATLEAST/n" except | near
    near     := except ["NEAR/n" except]            -- operands: terms or OR-groups of terms
    except   := scoped ["EXCEPT" scoped]            -- both sides: terms or OR-groups of terms
    scoped   := FIELD ":" scoped | "topic:" NAME | primary
    primary  := WORD | PHRASE | "(" or_expr ")"

FIELD is title, summary, content (text fields), source or language (values).
A WORD may end in `*` (prefix wildcard); so may each word of a PHRASE. A
WORD of Korean, Japanese, Chinese or Thai may start with `<` and end with
`>`: word edges (`<북>`: 북 as a word of its own, not inside 북쪽 or 노트북).

Precedence, loosest first: OR, AND, NOT/ATLEAST, NEAR, EXCEPT, field scope. Each
node answers: is it true for a story (evaluate), which found terms make it so
(evidence), and which terms it contains (terms, for the matcher's index).
`ctx` is the matcher's per-story scan (matcher._StoryScan); it answers from
the field scans of scan/ (scan.FieldScan).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterator, List, NamedTuple, Optional, Tuple

from transforms.topics import limits
from transforms.topics.text import JOINERS, fold_accents, is_unspaced, normalize, tokenize

TEXT_FIELDS: Tuple[str, ...] = ("title", "summary", "content")
VALUE_FIELDS: Tuple[str, ...] = ("source", "language")
SCOPE_NAMES = TEXT_FIELDS + VALUE_FIELDS + ("topic",)

MAX_DISTANCE = 1000      # NEAR/n and ATLEAST/n
MIN_PREFIX = 3           # letters before the wildcard of a one-word term
MAX_DEPTH = 100          # deeper nesting would end in RecursionError
MAX_SPELLINGS = 8        # joined/split spellings of one term ("Kim Jong-un": 2)


class Key(NamedTuple):
    """A term's identity in the matcher's index: one spelling of it. Equal
    keys are looked up once, whichever topics use them. A NamedTuple: it
    hashes, compares and unpacks as the tuple (folded, pieces)."""

    folded: bool               # accent-folded (the topic folds accents): match folded words
    pieces: Tuple[str, ...]    # normalised words; one ending in "*" is a prefix


# Word edges of a one-word unspaced key, kept in its piece as the written
# `<` and `>` (as a prefix keeps its `*`): normalised words never hold them.
START_EDGE, END_EDGE = "<", ">"


def piece_edges(piece: str) -> Tuple[bool, bool]:
    """(must start a word, must end a word) for a key's piece."""
    return piece.startswith(START_EDGE), piece.endswith(END_EDGE)


def piece_core(piece: str) -> str:
    """A key's piece without its markers: the text the scans look for."""
    return piece.strip(START_EDGE + END_EDGE + "*")


def piece_matches(piece: str, word: str) -> bool:
    """Whether a normalised word of text is a key's piece: the same word,
    or, for a piece ending in "*", a word starting with what comes before."""
    if piece[-1] == "*":
        return word.startswith(piece[:-1])
    return word == piece


_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
_HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
# Invisible characters that make a term silently unmatchable. Tab, CR and LF
# are whitespace; ZWNJ/ZWJ (U+200C/D) are parts of words in some scripts.
_FORBIDDEN_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)


class QuerySyntaxError(ValueError):
    """A query that does not parse; `.position` is a 0-based offset."""

    def __init__(self, message: str, position: int):
        super().__init__(f"at position {position}: {message}")
        self.message = message
        self.position = position


# --------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------


class Node:
    """Base class of query nodes."""

    __slots__ = ()

    def evaluate(self, ctx) -> bool:
        raise NotImplementedError

    def evidence(self, ctx, value: bool = True) -> list:
        """(term, field, offset) of found terms that make this node `value`."""
        raise NotImplementedError

    def terms(self) -> Iterator["Term"]:
        """The text terms in this node (for the matcher's index)."""
        return iter(())

    def children_nodes(self) -> Tuple["Node", ...]:
        return ()

    def scoped(self, fields: Tuple[str, ...], position: int) -> "Node":
        """This node restricted to text `fields` (a `title:` in front of it)."""
        raise NotImplementedError

    @cached_property
    def needs_language(self) -> bool:
        return any(c.needs_language for c in self.children_nodes())

    @cached_property
    def needs_source(self) -> bool:
        return any(c.needs_source for c in self.children_nodes())


def _bare(text: str) -> bool:
    return (
        bool(text)
        and not any(ch.isspace() or ch in '()"' for ch in text)
        and text not in ("AND", "OR", "NOT", "NEAR", "ATLEAST", "EXCEPT")
        and not text.startswith(START_EDGE) and not text.endswith(END_EDGE)
        and not _OPERATOR_RE.fullmatch(text)
        and not _SCOPE_RE.match(text)
    )


def _scope_prefix(fields: Tuple[str, ...]) -> str:
    return "" if fields == TEXT_FIELDS else f"{fields[0]}:"


def _narrowed(node, fields: Tuple[str, ...], position: int):
    """`node` (a Term or a TopicRef) looked for only in those of its text
    fields that are also in `fields`."""
    kept = tuple(f for f in node.fields if f in fields)
    if not kept:
        raise QuerySyntaxError(
            f"field scopes {fields[0]}: and {node.fields[0]}: exclude each other", position)
    return replace(node, fields=kept)


@dataclass(frozen=True)
class Term(Node):
    """A word or "phrase" (words in this order, next to each other).

    `text` is the term as written (reported in `matches`); `keys` are its
    spellings (the written one first, then joined forms of hyphenated words);
    `fields` the text fields it is looked for in.
    """

    text: str
    keys: Tuple[Key, ...]
    fields: Tuple[str, ...] = TEXT_FIELDS
    position: int = field(default=0, compare=False, repr=False)

    @classmethod
    def from_text(cls, text: str, *, fold: bool = False, position: int = 0) -> "Term":
        return cls(text, term_keys(text, fold, position), TEXT_FIELDS, position)

    @property
    def tokens(self) -> Tuple[str, ...]:
        """Pieces of the written spelling (a trailing * marks a prefix)."""
        return self.keys[0].pieces

    @cached_property
    def everywhere(self) -> bool:
        return self.fields == TEXT_FIELDS

    def evaluate(self, ctx) -> bool:
        if self.everywhere:
            found = ctx.found_any
            for key in self.keys:
                if key in found:
                    return True
            return False
        for f in self.fields:
            found = ctx.found[f]
            for key in self.keys:
                if key in found:
                    return True
        return False

    def evidence(self, ctx, value=True):
        if not value:
            return []
        out = []
        for f in self.fields:
            first = ctx.first_offset(self.keys, f)
            if first is not None:
                out.append((self.text, f, first))
        return out

    def terms(self):
        yield self

    def scoped(self, fields, position):
        return _narrowed(self, fields, position)

    @property
    def edged(self) -> bool:
        """Whether the term was written with word edges (<북>)."""
        return piece_edges(self.keys[0].pieces[0]) != (False, False)

    def __str__(self) -> str:
        body = self.text if self.edged or _bare(self.text) else f'"{self.text}"'
        return _scope_prefix(self.fields) + body


@dataclass(frozen=True)
class _Group(Node):
    """What AND and OR share: a tuple of children, joined by an operator."""

    children: Tuple[Node, ...]
    OPERATOR = ""

    def evidence(self, ctx, value=True):
        # AND true / OR false: every child contributes; otherwise only the
        # children whose value decided the outcome.
        return [e for c in self.children if c.evaluate(ctx) == value for e in c.evidence(ctx, value)]

    def terms(self):
        for c in self.children:
            yield from c.terms()

    def children_nodes(self):
        return self.children

    def scoped(self, fields, position):
        return type(self)(tuple(c.scoped(fields, position) for c in self.children))

    def __str__(self):
        return f" {self.OPERATOR} ".join(_wrap(c) for c in self.children)


@dataclass(frozen=True)
class And(_Group):
    OPERATOR = "AND"

    def evaluate(self, ctx):
        for c in self.children:
            if not c.evaluate(ctx):
                return False
        return True


@dataclass(frozen=True)
class Or(_Group):
    OPERATOR = "OR"

    @cached_property
    def _term_sets(self) -> Tuple[Tuple[Tuple[str, ...], frozenset], ...]:
        """The keys of the Term children, by the fields they are looked for
        in: one set test replaces a call per term."""
        by_fields: dict = {}
        for c in self.children:
            if isinstance(c, Term):
                by_fields.setdefault(c.fields, set()).update(c.keys)
        return tuple((f, frozenset(keys)) for f, keys in by_fields.items())

    @cached_property
    def _other_children(self) -> Tuple[Node, ...]:
        return tuple(c for c in self.children if not isinstance(c, Term))

    @cached_property
    def _children_by_key(self) -> Tuple[frozenset, dict, Tuple[int, ...]]:
        """(keys of the Term children, key -> their indices, the indices of
        the other children)."""
        by_key: dict = {}
        others = []
        for i, c in enumerate(self.children):
            if isinstance(c, Term):
                for key in c.keys:
                    by_key.setdefault(key, []).append(i)
            else:
                others.append(i)
        return frozenset(by_key), by_key, tuple(others)

    def evidence(self, ctx, value=True):
        if not value:
            return super().evidence(ctx, value)
        # A true OR of many terms (monitoring rules have tens): only the
        # terms with a key found somewhere can be true; one set operation
        # finds them.
        keys, by_key, others = self._children_by_key
        chosen = set(others)
        for key in keys.intersection(ctx.found_any):
            chosen.update(by_key[key])
        out = []
        for i in sorted(chosen):
            c = self.children[i]
            if c.evaluate(ctx):
                out.extend(c.evidence(ctx, True))
        return out

    def evaluate(self, ctx):
        for fields, keys in self._term_sets:
            if fields == TEXT_FIELDS:
                if not keys.isdisjoint(ctx.found_any):
                    return True
            elif any(not keys.isdisjoint(ctx.found[f]) for f in fields):
                return True
        for c in self._other_children:
            if c.evaluate(ctx):
                return True
        return False


@dataclass(frozen=True)
class Not(Node):
    child: Node

    def evaluate(self, ctx):
        return not self.child.evaluate(ctx)

    def evidence(self, ctx, value=True):
        # Polarity flips: terms under NOT never count as positive evidence,
        # except through a double negation.
        return self.child.evidence(ctx, not value)

    def terms(self):
        return self.child.terms()

    def children_nodes(self):
        return (self.child,)

    def scoped(self, fields, position):
        return Not(self.child.scoped(fields, position))

    def __str__(self):
        return f"NOT {_wrap(self.child)}"


def operand_terms(node: Node, plain: bool = False) -> Optional[Tuple["Term | Except", ...]]:
    """The terms of a NEAR/ATLEAST operand: a term, a `term EXCEPT longer`
    (unless `plain`: EXCEPT's own operands) or an OR of them; None for
    anything else."""
    if isinstance(node, Term) or (isinstance(node, Except) and not plain):
        return (node,)
    if isinstance(node, Or):
        out: list = []
        for c in node.children:
            sub = operand_terms(c, plain)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    return None


def _check_operand(node: Node, operator: str, position: int) -> Tuple["Term | Except", ...]:
    terms = operand_terms(node, plain=operator == "EXCEPT")
    if terms is None:
        raise QuerySyntaxError(
            f"{operator} works on terms, phrases or (a OR b) groups of them", position)
    return terms


def _flat(key: Key) -> str:
    """A key's letters, without spaces, markers or accents: what a key
    that contains it has somewhere in its own (check_except)."""
    return "".join(fold_accents(piece_core(p)) for p in key.pieces)


def check_except(node: "Except") -> None:
    """Raise QuerySyntaxError for an EXCEPT whose sides are not terms or
    OR-groups of them, whose longer words have a field scope, or one of
    whose longer words cannot contain any term before it (it could never
    exclude anything: a typo, or the sides swapped)."""
    if isinstance(node.left, Except):
        raise QuerySyntaxError("EXCEPT takes one list of longer words; join them with OR: "
                               "a EXCEPT (b OR c)", node.position)
    left = _check_operand(node.left, "EXCEPT", node.position)
    right = _check_operand(node.right, "EXCEPT", node.position)
    for longer in right:
        if longer.fields != TEXT_FIELDS:
            raise QuerySyntaxError(
                "the words after EXCEPT take no field scope: they are looked for where the "
                "term before EXCEPT is found", longer.position)
        if any(p.endswith("*") for key in longer.keys for p in key.pieces):
            continue  # a prefix may run on to contain anything: no telling
        if not any(_flat(short) in _flat(key) for key in longer.keys
                   for term in left for short in term.keys):
            shorter = " or ".join(repr(t.text) for t in left)
            raise QuerySyntaxError(
                f"{longer.text!r} does not contain {shorter}: EXCEPT drops the occurrences of a "
                "term that are part of a longer word or phrase (평양 EXCEPT 태평양)", longer.position)


@dataclass(frozen=True)
class Near(Node):
    """`left NEAR/n right`: an occurrence of each within n words, in either
    order, in the same field."""

    left: Node
    right: Node
    distance: int
    position: int = field(default=0, compare=False, repr=False)

    @cached_property
    def left_terms(self) -> Tuple[Term, ...]:
        return _check_operand(self.left, "NEAR", self.position)

    @cached_property
    def _keys(self) -> Tuple[frozenset, frozenset]:
        return (frozenset(k for t in self.left_terms for k in t.keys),
                frozenset(k for t in self.right_terms for k in t.keys))

    @cached_property
    def right_terms(self) -> Tuple[Term, ...]:
        return _check_operand(self.right, "NEAR", self.position)

    def evaluate(self, ctx):
        left, right = self._keys
        if left.isdisjoint(ctx.found_any) or right.isdisjoint(ctx.found_any):
            return False
        return ctx.near(self) is not None

    def evidence(self, ctx, value=True):
        if not value:
            return []
        return ctx.near(self) or []

    def terms(self):
        yield from self.left.terms()
        yield from self.right.terms()

    def children_nodes(self):
        return (self.left, self.right)

    def scoped(self, fields, position):
        return replace(self, left=self.left.scoped(fields, position),
                       right=self.right.scoped(fields, position))

    def __str__(self):
        return f"{_wrap(self.left, near=True)} NEAR/{self.distance} {_wrap(self.right, near=True)}"


@dataclass(frozen=True)
class AtLeast(Node):
    """`ATLEAST/n operand`: n or more occurrences of the operand's terms in
    the story (counted once per position)."""

    operand: Node
    count: int
    position: int = field(default=0, compare=False, repr=False)

    @cached_property
    def operand_terms(self) -> Tuple[Term, ...]:
        return _check_operand(self.operand, "ATLEAST", self.position)

    @cached_property
    def _terms_by_key(self) -> Tuple[frozenset, dict]:
        """(the keys of the operand's terms, key -> indices of its terms)."""
        by_key: dict = {}
        for i, t in enumerate(self.operand_terms):
            for key in t.keys:
                by_key.setdefault(key, []).append(i)
        return frozenset(by_key), by_key

    def _present(self, ctx) -> list:
        """The operand's terms with a key found in the story, in order: a
        rule's mentions topic may have hundreds of terms, a story a few."""
        keys, by_key = self._terms_by_key
        chosen: set = set()
        for key in keys.intersection(ctx.found_any):
            chosen.update(by_key[key])
        terms = self.operand_terms
        return [terms[i] for i in sorted(chosen)]

    def evaluate(self, ctx):
        return ctx.count(self._present(ctx), self.count) >= self.count

    def evidence(self, ctx, value=True):
        if not value:
            return []
        return [e for t in self._present(ctx) for e in t.evidence(ctx, True)]

    def terms(self):
        return self.operand.terms()

    def children_nodes(self):
        return (self.operand,)

    def scoped(self, fields, position):
        return replace(self, operand=self.operand.scoped(fields, position))

    def __str__(self):
        return f"ATLEAST/{self.count} {_wrap(self.operand, near=True)}"


@dataclass(frozen=True)
class Except(Node):
    """`term EXCEPT longer`: the occurrences of `left` (a term or an OR of
    terms) that are not part of an occurrence of one of the `right` terms,
    the longer words that contain it (평양 EXCEPT 태평양), in the same field.
    True when at least one occurrence is left; NEAR and ATLEAST see only
    those (ctx.surviving works them out)."""

    left: Node
    right: Node
    position: int = field(default=0, compare=False, repr=False)

    @cached_property
    def left_terms(self) -> Tuple[Term, ...]:
        return _check_operand(self.left, "EXCEPT", self.position)

    @cached_property
    def right_terms(self) -> Tuple[Term, ...]:
        return _check_operand(self.right, "EXCEPT", self.position)

    @cached_property
    def keys(self) -> Tuple[Key, ...]:
        """The keys of the terms before EXCEPT: one must be found for it to
        be true (NEAR's quick test, the matcher's triggers)."""
        return tuple(dict.fromkeys(k for t in self.left_terms for k in t.keys))

    @cached_property
    def _key_sets(self) -> Tuple[frozenset, frozenset]:
        return (frozenset(self.keys),
                frozenset(k for t in self.right_terms for k in t.keys))

    def evaluate(self, ctx):
        left, right = self._key_sets
        if left.isdisjoint(ctx.found_any):
            return False
        if right.isdisjoint(ctx.found_any):  # nothing longer anywhere: as the terms alone
            return any(t.evaluate(ctx) for t in self.left_terms)
        return any(ctx.surviving(self, f) for f in TEXT_FIELDS)

    def evidence(self, ctx, value=True):
        if not value:
            return []
        left, right = self._key_sets
        if right.isdisjoint(ctx.found_any):
            return [e for t in self.left_terms for e in t.evidence(ctx, True)]
        out = []
        for f in TEXT_FIELDS:
            first: dict = {}  # term -> its first occurrence left in this field
            for start, _, text in ctx.surviving(self, f):
                if text not in first or start < first[text]:
                    first[text] = start
            out.extend((text, f, ctx.original_offset(f, start)) for text, start in first.items())
        return out

    def terms(self):
        yield from self.left.terms()
        yield from self.right.terms()

    def children_nodes(self):
        return (self.left, self.right)

    def scoped(self, fields, position):
        # The longer words are looked for wherever the term is found.
        return replace(self, left=self.left.scoped(fields, position))

    def __str__(self):
        return f"{_wrap(self.left, near=True)} EXCEPT {_wrap(self.right, near=True)}"


@dataclass(frozen=True)
class SourceIs(Node):
    """`source:host`: the story's site is `host` or one of its subdomains."""

    host: str
    position: int = field(default=0, compare=False, repr=False)

    def evaluate(self, ctx):
        return self._offset(ctx.source) is not None

    def _offset(self, source: Optional[str]) -> Optional[int]:
        if not source:
            return None
        if source == self.host:
            return 0
        if source.endswith("." + self.host):
            return len(source) - len(self.host)
        return None

    def evidence(self, ctx, value=True):
        if value and self.evaluate(ctx):
            return [(self.host, "source", self._offset(ctx.source))]
        return []

    def scoped(self, fields, position):
        raise QuerySyntaxError(f"source: cannot be used inside {fields[0]}:", position)

    @cached_property
    def needs_source(self):
        return True

    def __str__(self):
        return f"source:{self.host}"


@dataclass(frozen=True)
class LanguageIs(Node):
    """`language:xx`: the story's detected language (ISO 639-1) is xx."""

    code: str
    position: int = field(default=0, compare=False, repr=False)

    def evaluate(self, ctx):
        return ctx.language() == self.code

    def evidence(self, ctx, value=True):
        if value and self.evaluate(ctx):
            return [(self.code, "language", 0)]
        return []

    def scoped(self, fields, position):
        raise QuerySyntaxError(f"language: cannot be used inside {fields[0]}:", position)

    @cached_property
    def needs_language(self):
        return True

    def __str__(self):
        return f"language:{self.code}"


@dataclass(frozen=True)
class TopicRef(Node):
    """`topic:name`: the other topic's query, in place. Replaced by the
    compiler (rules.compile_rules); never evaluated."""

    name: str
    fields: Tuple[str, ...] = TEXT_FIELDS
    position: int = field(default=0, compare=False, repr=False)

    def scoped(self, fields, position):
        return _narrowed(self, fields, position)

    def __str__(self):
        name = self.name if _bare(self.name) and ":" not in self.name else f'"{self.name}"'
        return f"{_scope_prefix(self.fields)}topic:{name}"


def _wrap(node: Node, near: bool = False) -> str:
    grouped = (And, Or, Near, AtLeast, Except) if near else (And, Or)
    return f"({node})" if isinstance(node, grouped) else str(node)


def walk(node: Node) -> Iterator[Node]:
    yield node
    for c in node.children_nodes():
        yield from walk(c)


# --------------------------------------------------------------------------
# Terms: written text -> index keys
# --------------------------------------------------------------------------


def _word_spellings(word: str, position: int) -> List[Tuple[str, ...]]:
    """Token tuples a written word stands for: "Jong-un" -> (jong, un) and
    (jongun,); "missile*" -> (missile*,)."""
    star = word.endswith("*")
    core = word[:-1] if star else word
    if "*" in core:
        raise QuerySyntaxError("only a trailing wildcard is supported (missile*)",
                               position + core.index("*"))
    tokens = tokenize(core)
    if not tokens:
        if star:
            raise QuerySyntaxError("a wildcard needs letters before it (missile*)", position)
        return []
    spellings = [tuple(tokens)]
    if len(tokens) > 1:
        joined = tokenize(re.sub(f"[{re.escape(JOINERS)}]", "", core))
        if len(joined) == 1:
            spellings.append(tuple(joined))
    if star:
        spellings = [s[:-1] + (s[-1] + "*",) for s in spellings]
    return spellings


def term_keys(text: str, fold: bool, position: int = 0) -> Tuple[Key, ...]:
    """Index keys of a term as written: one per spelling, accent-folded for
    topics that fold accents. Raises QuerySyntaxError for a term that cannot
    match anything, or one over the limits (limits.py)."""
    _within_limits(limits.check_written, text, position)
    per_word = []
    offset = 0
    for word in text.split():
        at = text.index(word, offset)
        offset = at + len(word)
        spellings = _word_spellings(word, position + at)
        if spellings:
            per_word.append(spellings)
    if not per_word:
        raise QuerySyntaxError(f"term {text!r} has no letters or digits", position)
    keys: list = []
    for combo in itertools.islice(itertools.product(*per_word), MAX_SPELLINGS):
        pieces = tuple(p for spelling in combo for p in spelling)
        if len(pieces) == 1 and pieces[0].endswith("*") and not is_unspaced(pieces[0]) \
                and len(pieces[0]) - 1 < MIN_PREFIX:
            # Alone, `mi*` would match half the language; in a phrase
            # ("Ким Чен Ын*") the other words hold it in place.
            raise QuerySyntaxError(f"a wildcard needs at least {MIN_PREFIX} letters before *", position)
        if any(is_unspaced(p) for p in pieces):
            # Substring matching already covers a prefix; accents do not
            # apply to these scripts.
            if any(p.endswith("*") and not is_unspaced(p) for p in pieces):
                raise QuerySyntaxError(
                    "a wildcard cannot be combined with Korean, Japanese, Chinese or Thai "
                    "text in one term (those match inside words already)", position)
            key = Key(False, tuple(p.rstrip("*") for p in pieces))
        elif fold:
            key = Key(True, tuple(fold_accents(p.rstrip("*")) + ("*" if p.endswith("*") else "")
                                  for p in pieces))
        else:
            key = Key(False, pieces)
        if key not in keys:
            keys.append(key)
    _within_limits(limits.check_term, [key.pieces for key in keys], position)
    return tuple(keys)


def edged_term_keys(word: str, position: int = 0) -> Tuple[Key, ...]:
    """The key of a bare word written with word edges: `<북>` (a word of
    its own), `<탈북` (starts a word), `북>` (ends a word). Only for one
    word of a script written without spaces: elsewhere every term is a
    whole word already."""
    start, end = word.startswith(START_EDGE), word.endswith(END_EDGE)
    core = word[len(START_EDGE) if start else 0:len(word) - (len(END_EDGE) if end else 0)]
    if "*" in core:
        raise QuerySyntaxError("a term with word edges (< >) cannot have a wildcard", position)
    keys = term_keys(core, False, position + start)
    pieces = keys[0].pieces
    if len(keys) != 1 or len(pieces) != 1 or not is_unspaced(pieces[0]):
        raise QuerySyntaxError(
            "< and > mark the edges of one Korean, Japanese, Chinese or Thai word (<북>); other "
            "words match as whole words already (quote the term to search for < or >)", position)
    piece = (START_EDGE if start else "") + pieces[0] + (END_EDGE if end else "")
    _within_limits(limits.check_term, [(piece,)], position)
    return (Key(False, (piece,)),)


def _edged(word: str) -> bool:
    """Whether a bare word is written with word edges (a lone < or > is not)."""
    return len(word) > 1 and (word.startswith(START_EDGE) or word.endswith(END_EDGE))


def _within_limits(check, value, position: int) -> None:
    try:
        check(value)
    except limits.LimitExceeded as e:
        raise QuerySyntaxError(str(e), position) from None


# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------

_OPERATOR_RE = re.compile(r"(NEAR|ATLEAST)/(\d+)")
_WORD_RE = re.compile(r'[^\s()"]+')
_SCOPE_RE = re.compile(r"([A-Za-z]+):")


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD PHRASE AND OR NOT NEAR ATLEAST EXCEPT SCOPE ( ) EOF
    text: str
    pos: int
    number: int = 0  # NEAR/n, ATLEAST/n
    end: int = 0


def _lex(text: str) -> List[_Tok]:
    bad = _FORBIDDEN_RE.search(text)
    if bad:
        raise QuerySyntaxError(
            f"invisible control character U+{ord(bad.group()):04X} in the query; retype the term",
            bad.start())
    toks: List[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(_Tok(ch, ch, i, end=i + 1))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError("unbalanced quote", i)
            _within_limits(limits.check_written, text[i + 1:end], i)
            toks.append(_Tok("PHRASE", text[i + 1:end], i, end=end + 1))
            i = end + 1
        else:
            j = _WORD_RE.match(text, i).end()
            word = text[i:j]
            scope = _SCOPE_RE.match(word)
            if scope and scope.group(1).lower() in SCOPE_NAMES:
                after = i + len(scope.group(0))
                toks.append(_Tok("SCOPE", scope.group(1).lower(), i, end=after))
                i = after  # what follows the colon is lexed on its own
                continue
            _within_limits(limits.check_written, word, i)  # before a message quotes it
            if scope:
                raise QuerySyntaxError(
                    f"unknown field {scope.group(0)!r}; use title:, summary:, content:, "
                    "source:, language: or topic: (quote the term to search for it)", i)
            toks.append(_word_token(word, i, j))
            i = j
    toks.append(_Tok("EOF", "", n, end=n))
    return toks


def _word_token(word: str, start: int, end: int) -> _Tok:
    if word in ("AND", "OR", "NOT", "EXCEPT"):
        return _Tok(word, word, start, end=end)
    op = _OPERATOR_RE.fullmatch(word)
    if op:
        number = int(op.group(2))
        low = 0 if op.group(1) == "NEAR" else 1
        if not low <= number <= MAX_DISTANCE:
            raise QuerySyntaxError(f"{op.group(1)}/n needs n from {low} to {MAX_DISTANCE}", start)
        return _Tok(op.group(1), word, start, number, end)
    if word in ("NEAR", "ATLEAST") or re.fullmatch(r"(?i)(near|atleast)/\S*", word):
        name = word.split("/")[0].upper()
        raise QuerySyntaxError(f"write {name}/n with a whole number n, in upper case "
                               f"({name}/5); quote the term to search for it", start)
    return _Tok("WORD", word, start, end=end)


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------

_OPERAND_START = {"WORD", "PHRASE", "(", "NOT", "SCOPE", "ATLEAST"}
_TERM_START = {"WORD", "PHRASE", "(", "SCOPE"}


class _Parser:
    def __init__(self, text: str, fold: bool):
        self.toks = _lex(text)
        self.fold = fold
        self.i = 0
        self.depth = 0
        self.value_field: Optional[str] = None  # inside source:( ... ) / language:( ... )

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kinds, op: _Tok, where: str = "after") -> None:
        if self.peek().kind not in kinds:
            raise QuerySyntaxError(f"expected a term {where} {op.text}", op.pos)

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
            self.expect(_OPERAND_START, self.next())
            children.append(self.parse_and())
        return _combine(Or, children)

    def parse_and(self) -> Node:
        children = [self.parse_not()]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.expect(_OPERAND_START, self.next())
            elif kind not in _OPERAND_START:
                break  # OR, ')' or EOF: the caller decides
            children.append(self.parse_not())
        return _combine(And, children)

    def parse_not(self) -> Node:
        tok = self.peek()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError("query nested too deeply", tok.pos)
        try:
            if tok.kind == "NOT":
                self.next()
                self.expect(_OPERAND_START, tok)
                return Not(self.parse_not())
            if tok.kind == "ATLEAST":
                self.next()
                self.no_operator_in_values(tok)
                self.expect(_TERM_START, tok)
                operand = self.parse_except()
                node = AtLeast(operand, tok.number, tok.pos)
                if not _has_ref(operand):  # references are checked once resolved
                    _check_operand(operand, "ATLEAST", tok.pos)
                return node
            return self.parse_near()
        finally:
            self.depth -= 1

    def parse_near(self) -> Node:
        left = self.parse_except()
        if self.peek().kind != "NEAR":
            return left
        op = self.next()
        self.no_operator_in_values(op)
        self.expect(_TERM_START, op)
        right = self.parse_except()
        if self.peek().kind == "NEAR":
            raise QuerySyntaxError("NEAR joins two operands; combine more with AND: "
                                   "(a NEAR/3 b) AND (b NEAR/3 c)", self.peek().pos)
        node = Near(left, right, op.number, op.pos)
        if not (_has_ref(left) or _has_ref(right)):
            _check_operand(left, "NEAR", op.pos)
            _check_operand(right, "NEAR", op.pos)
        return node

    def parse_except(self) -> Node:
        left = self.parse_scoped()
        if self.peek().kind != "EXCEPT":
            return left
        op = self.next()
        self.no_operator_in_values(op)
        self.expect(_TERM_START, op)
        right = self.parse_scoped()
        if self.peek().kind == "EXCEPT":
            raise QuerySyntaxError("EXCEPT takes one list of longer words; join them with OR: "
                                   "a EXCEPT (b OR c)", self.peek().pos)
        node = Except(left, right, op.pos)
        if not (_has_ref(left) or _has_ref(right)):  # references are checked once resolved
            check_except(node)
        return node

    def no_operator_in_values(self, op: _Tok) -> None:
        if self.value_field:
            raise QuerySyntaxError(f"{op.text} cannot be used inside {self.value_field}:", op.pos)

    def parse_scoped(self) -> Node:
        tok = self.peek()
        if tok.kind != "SCOPE":
            return self.parse_primary()
        self.next()
        if self.value_field:
            raise QuerySyntaxError(f"{tok.text}: cannot be used inside {self.value_field}:", tok.pos)
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError("query nested too deeply", tok.pos)
        target = self.peek()
        if target.pos != tok.end or target.kind not in _TERM_START:
            raise QuerySyntaxError(
                f"{tok.text}: must be followed directly by a term, \"phrase\" or (group)", tok.pos)
        if tok.text == "topic":
            self.next()
            if target.kind not in ("WORD", "PHRASE") or not target.text.strip():
                raise QuerySyntaxError("topic: needs a topic name (topic:dprk)", tok.pos)
            return TopicRef(target.text.strip(), TEXT_FIELDS, tok.pos)
        if tok.text in VALUE_FIELDS:
            self.value_field = tok.text
            try:
                return self.parse_primary()
            finally:
                self.value_field = None
        self.depth += 1
        try:
            return self.parse_scoped().scoped((tok.text,), tok.pos)
        finally:
            self.depth -= 1

    def parse_primary(self) -> Node:
        tok = self.next()
        if tok.kind in ("WORD", "PHRASE"):
            if self.value_field:
                return _value_leaf(self.value_field, tok)
            if tok.kind == "PHRASE" and not tok.text.strip():
                raise QuerySyntaxError("empty phrase", tok.pos)
            if tok.kind == "WORD" and _edged(tok.text):
                return Term(tok.text, edged_term_keys(tok.text, tok.pos), TEXT_FIELDS, tok.pos)
            offset = 1 if tok.kind == "PHRASE" else 0
            return Term(tok.text.strip() if offset else tok.text,
                        term_keys(tok.text, self.fold, tok.pos + offset), TEXT_FIELDS, tok.pos)
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
        if tok.kind in ("AND", "OR", "NEAR", "EXCEPT"):
            raise QuerySyntaxError(f"expected a term before {tok.text}", tok.pos)
        if tok.kind == ")":
            raise QuerySyntaxError("unexpected ')'", tok.pos)
        raise QuerySyntaxError("expected a term", tok.pos)


def _value_leaf(field_name: str, tok: _Tok) -> Node:
    value = normalize(tok.text.strip())
    if field_name == "language":
        if not _LANGUAGE_RE.fullmatch(value):
            raise QuerySyntaxError(
                f"language: needs an ISO 639-1 code such as en, ko or zh, not {tok.text!r}", tok.pos)
        return LanguageIs(value, tok.pos)
    if value.startswith("www."):
        value = value[4:]
    if not _HOST_RE.fullmatch(value) or ".." in value:
        raise QuerySyntaxError(
            f"source: needs a site name such as bbc.co.uk, not {tok.text!r}", tok.pos)
    return SourceIs(value, tok.pos)


def _has_ref(node: Node) -> bool:
    return any(isinstance(n, TopicRef) for n in walk(node))


def _combine(cls, children: List[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: List[Node] = []
    for c in children:  # a AND (b AND c) == a AND b AND c: keep trees shallow
        flat.extend(c.children if isinstance(c, cls) else (c,))
    return cls(tuple(flat))


def parse_query(text: str, *, fold_accents: bool = False) -> Node:
    """Parse a topic query into a syntax tree; raises QuerySyntaxError.

    `topic:` references stay TopicRef nodes; rules.compile_rules resolves them.
    """
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, not {type(text).__name__}")
    return _Parser(text, fold_accents).parse()
