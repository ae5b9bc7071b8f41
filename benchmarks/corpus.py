"""A synthetic but realistic feed corpus whose right answer is known.

`generate(spec, topics)` builds N feeds x P polls x M items as RSS 2.0 and Atom
1.0 documents with real-world item sizes (title 60-120 characters, summary
200-800, a share with 3-10 KB of content:encoded HTML), in six languages. A
share of the items are copies of a story already seen, in the ways copies
happen:

  poll      the feed polled again: the item is still there, unchanged
  url       syndicated: the same article link (plus tracking parameters) in another feed
  text      a wire copy: the same title and text under another site's link
  edit      the same guid in the same feed again, title edited

Copies are always published after the original, so the original is the copy
the dedup rules keep, and the generator knows the output exactly: the story
ids (and languages) of the unique stories that match the topics. Nothing is
stored in the repository; everything comes from a seed.
"""
from __future__ import annotations

import collections
import html
import json
import os
import random
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from benchmarks.phrasebook import JA_TITLE_WORDS, LANGUAGES, UPDATED_SUFFIX
from transforms import identity
from transforms.html_text import html_to_text
from transforms.topics import TopicMatcher, as_topic, fold_accents, tokenize

BASE_TIME = datetime(2026, 11, 2, tzinfo=timezone.utc)
SPREAD = timedelta(days=3)           # originals are published over three days
RECENT = 3000                        # copies are of one of the last RECENT originals
AUTHORS = ["A. Martin", "J. Kim", "M. Rossi", "S. Tanaka", "L. Garcia", "K. Müller",
           "P. Dubois", "H. Park", "R. Silva", "E. Novak", "Desk", "Staff"]
SECTIONS = ["world", "business", "sport", "culture", "science", "local", "politics", "tech"]
COPY_KINDS = ("poll", "url", "text", "edit")


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate. `entries` is rounded to whole feeds."""

    entries: int = 10_000
    items_per_feed: int = 50
    polls: int = 2
    repeat_share: float = 0.30      # items that are copies of an earlier story
    match_share: float = 0.05       # original stories that match the topics
    content_share: float = 0.10     # items with 3-10 KB of content:encoded
    atom_share: float = 0.20        # feeds written as Atom rather than RSS
    seed: int = 7

    @property
    def feeds(self) -> int:
        return max(1, round(self.entries / (self.items_per_feed * self.polls)))

    @property
    def documents(self) -> int:
        return self.feeds * self.polls


@dataclass
class GroundTruth:
    """What a correct run must produce for this corpus."""

    entries: int = 0
    documents: int = 0
    originals: int = 0
    copies: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(COPY_KINDS, 0))
    matching: Dict[str, str] = field(default_factory=dict)   # story_id -> language
    bytes: int = 0
    with_content: int = 0

    @property
    def duplicates(self) -> int:
        return self.entries - self.originals

    @property
    def expected_rows(self) -> int:
        return len(self.matching)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle)

    @classmethod
    def load(cls, path: str) -> "GroundTruth":
        with open(path, encoding="utf-8") as handle:
            return cls(**json.load(handle))


@dataclass
class _Story:
    serial: int
    lang: str
    title: str
    summary: str          # HTML fragment
    content: Optional[str]  # HTML, or None
    url: str
    guid: str
    published: datetime
    authors: List[str]
    tags: List[str]
    lead: bool = False    # a sentence matching the topics was placed in it


@dataclass
class _Feed:
    number: int
    lang: str
    atom: bool

    @property
    def host(self) -> str:
        return f"news{self.number}.example.com"

    @property
    def title(self) -> str:
        return f"Example News {self.number} ({self.lang})"

    def path(self, poll: int) -> str:
        return f"/f/{self.number:06d}/p{poll}.{'atom' if self.atom else 'xml'}"


# --------------------------------------------------------------------------- text


_OPERATOR = re.compile(r"(AND|OR|NOT|(NEAR|ATLEAST)/\d+)")
_CJK_CHAR = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def _query_terms(query: str) -> List[str]:
    """The text terms of a topic query, as written (quoted phrases and bare
    words, field scopes removed; operators and topic references left out)."""
    terms = []
    for phrase, word in re.findall(r'"([^"]*)"|([^\s()"]+)', query):
        if phrase:
            terms.append(phrase)
            continue
        if _OPERATOR.fullmatch(word) or "topic:" in word or word.startswith(("source:", "language:")):
            continue
        terms.append(word.rsplit(":", 1)[-1])  # title:word -> word
    return terms


class _TopicGuard:
    """Proves a piece of neutral text cannot make a story match any topic: it
    holds no first word of any term (for a wildcard, no word that starts like
    it; accents folded) and no CJK term (which match inside words). Pieces are
    always joined by spaces or punctuation, so no term can straddle two."""

    def __init__(self, topics):
        self.words, self.prefixes, self.cjk = set(), set(), set()
        for topic in topics:
            for term in _query_terms(as_topic(topic).query):
                words = tokenize(term)
                if not words:
                    continue
                first = term.split()[0]
                if any(_CJK_CHAR.search(w) for w in words):
                    self.cjk.add("".join(words))
                elif first.endswith("*") and len(tokenize(first)) == 1:  # missile*: a prefix
                    self.prefixes.add(fold_accents(words[0]))
                else:
                    self.words.add(fold_accents(words[0]))

    def safe(self, text: str) -> bool:
        tokens = tokenize(text)
        for token in map(fold_accents, tokens):
            if token in self.words or any(token.startswith(p) for p in self.prefixes):
                return False
        joined = "".join(tokens)
        return not any(term in joined for term in self.cjk)


class _Language:
    """Sentence and word pools of one language, checked against the topics."""

    def __init__(self, code: str, guard: _TopicGuard, matcher: TopicMatcher, entries: int):
        weight, neutral, matching = LANGUAGES[code]
        self.code, self.weight = code, weight
        self.sentences = [s for s in neutral if guard.safe(s)]
        if len(self.sentences) < 5:
            raise ValueError(f"phrasebook: too few neutral {code} sentences for these topics")
        self.matching = [s for s in matching if matcher.match(s, "", "")]
        if not self.matching:
            raise ValueError(f"phrasebook: no {code} sentence matches these topics")
        if code == "ja":
            words = JA_TITLE_WORDS
        else:
            words = {w.lower() for s in self.sentences for w in re.findall(r"[^\W\d_]{3,}", s)}
        self.words = sorted(w for w in words if guard.safe(w) and len(tokenize(w)) == 1)
        self.sep = "、" if code == "ja" else " "
        # Enough words per title that every serial number gets its own words.
        self.digits = 1
        while len(self.words) ** self.digits <= entries:
            self.digits += 1

    def serial_words(self, serial: int) -> List[str]:
        out, base = [], len(self.words)
        for _ in range(self.digits):
            serial, d = divmod(serial, base)
            out.append(self.words[d])
        return out


class _Writer:
    """Makes stories and renders them; all randomness comes from one seeded RNG."""

    def __init__(self, spec: CorpusSpec, topics: Sequence[Tuple[str, str]]):
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.matcher = TopicMatcher(topics)
        guard = _TopicGuard(topics)
        self.langs = {code: _Language(code, guard, self.matcher, spec.entries * 2) for code in LANGUAGES}

    # -- stories --------------------------------------------------------------
    def story(self, serial: int, feed: _Feed, matching: bool) -> _Story:
        rng, lang = self.rng, self.langs[feed.lang]
        title = self._title(lang, serial)
        summary_sentences = self._sentences(lang, rng.randint(200, 680))
        content = None
        if rng.random() < self.spec.content_share:
            content = self._content_html(lang, feed, rng.randint(3000, 8800))
        if matching:
            sentence = rng.choice(lang.matching)
            where = rng.random()
            headline = self._title(lang, serial, lead=sentence) if where < 0.15 else ""
            if headline and self.matcher.match(headline, "", ""):
                title = headline  # (a long sentence may lose its topic words to the cut)
            elif where < 0.3 and content is not None:
                content = f"<p>{html.escape(sentence, quote=False)}</p>\n" + content
            else:
                summary_sentences.insert(rng.randrange(len(summary_sentences) + 1), sentence)
        joiner = "" if lang.code == "ja" else " "
        summary = joiner.join(summary_sentences)
        while len(summary) > 800:  # an inserted topic sentence may push it over
            summary_sentences.remove(next(x for x in summary_sentences if x not in lang.matching))
            summary = joiner.join(summary_sentences)
        if rng.random() < 0.5:
            summary = f"<p>{html.escape(summary, quote=False)}</p>"
        else:
            summary = html.escape(summary, quote=False)
        section = rng.choice(SECTIONS)
        published = BASE_TIME + timedelta(seconds=rng.randrange(int(SPREAD.total_seconds())))
        slug = "-".join(w for w in lang.serial_words(serial) if w.isascii()) or "article"
        url = f"https://{feed.host}/{section}/{published:%Y/%m/%d}/{slug}-{serial}.html"
        return _Story(serial, lang.code, title, summary, content, url,
                      guid=f"{feed.host}-{serial}", published=published,
                      authors=rng.sample(AUTHORS, rng.choice((1, 1, 2))),
                      tags=rng.sample(SECTIONS, rng.choice((1, 2, 3))), lead=matching)

    def _title(self, lang: _Language, serial: int, lead: str = "") -> str:
        """60-120 characters; its first words spell the serial number, so no
        two stories share a title."""
        words = lang.serial_words(serial)
        head = lang.sep.join(words)
        head = head[0].upper() + head[1:]
        target = self.rng.randint(60, 120)
        filler = lead.split() if lead else []
        while sum(len(w) + 1 for w in filler) + len(head) + 3 < target:
            filler += self.rng.choice(lang.sentences).rstrip(".。").split()
        title = f"{head}: "
        for word in filler:
            if len(title) + len(word) + 1 > 120:
                break
            title += word + " "
        title = title.strip()
        return title if len(title) >= 60 else (title + " " + "·" * 60)[:60]

    def _sentences(self, lang: _Language, target: int) -> List[str]:
        out, size = [], -1
        while size < target:
            sentence = self.rng.choice(lang.sentences)
            out.append(sentence)
            size += len(sentence) + (lang.code != "ja")
        return out

    def _content_html(self, lang: _Language, feed: _Feed, target: int) -> str:
        rng, parts, size = self.rng, [], 0
        while size < target:
            sentences = [html.escape(s, quote=False) for s in rng.sample(lang.sentences, 4)]
            if rng.random() < 0.3:
                sentences[1] = (f'<a href="https://{feed.host}/{rng.choice(SECTIONS)}/{rng.randrange(10**6)}'
                                f'.html?utm_source=rss">{sentences[1]}</a>')
            if rng.random() < 0.2:
                sentences[2] = f"<strong>{sentences[2]}</strong>"
            part = "<p>" + " ".join(sentences) + "</p>\n"
            if rng.random() < 0.1:
                part += (f'<figure><img src="https://img.{feed.host}/{rng.randrange(10**6)}.jpg" '
                         f'alt="" width="640" height="360"/><figcaption>{sentences[0]}</figcaption></figure>\n')
            if rng.random() < 0.03:
                part += "<script>window.dataLayer=window.dataLayer||[];dataLayer.push({'event':'view'});</script>\n"
            parts.append(part)
            size += len(part.encode("utf-8"))  # a size in bytes, as served
        return "".join(parts)

    def copy(self, original: _Story, kind: str, feed: _Feed, serial: int) -> _Story:
        """A later copy of `original` in `feed` (url, text or edit kind)."""
        rng = self.rng
        later = original.published + timedelta(minutes=rng.randint(1, 240))
        if kind == "url":
            sep = "&" if "?" in original.url else "?"
            return _Story(serial, original.lang, original.title, original.summary,
                          original.content, f"{original.url}{sep}utm_source=rss&utm_medium=feed&utm_campaign=f{feed.number}",
                          f"{feed.host}-{serial}", later, original.authors, original.tags)
        if kind == "text":
            return _Story(serial, original.lang, original.title, original.summary, None,
                          f"https://{feed.host}/wire/{later:%Y/%m/%d}/story-{serial}.html",
                          f"{feed.host}-{serial}", later, ["Wire"], original.tags)
        if kind == "edit":
            return _Story(serial, original.lang, f"{original.title} {UPDATED_SUFFIX[original.lang]}",
                          original.summary, original.content, original.url, original.guid, later,
                          original.authors, original.tags)
        raise ValueError(kind)

    # -- rendering ------------------------------------------------------------
    @staticmethod
    def rss_item(s: _Story) -> str:
        esc = _xml_escape
        content = (f"<content:encoded><![CDATA[{s.content}]]></content:encoded>" if s.content else "")
        return (
            f"<item><title>{esc(s.title)}</title><link>{esc(s.url)}</link>"
            f'<guid isPermaLink="false">{esc(s.guid)}</guid>'
            f"<pubDate>{format_datetime(s.published, usegmt=True)}</pubDate>"
            + "".join(f"<dc:creator>{esc(a)}</dc:creator>" for a in s.authors)
            + "".join(f"<category>{esc(t)}</category>" for t in s.tags)
            + f"<description>{esc(s.summary)}</description>{content}</item>\n"
        )

    @staticmethod
    def atom_entry(s: _Story) -> str:
        esc = _xml_escape
        when = s.published.strftime("%Y-%m-%dT%H:%M:%SZ")
        content = f'<content type="html">{esc(s.content)}</content>' if s.content else ""
        return (
            f'<entry><title type="html">{esc(s.title)}</title>'
            f'<link rel="alternate" type="text/html" href="{esc(s.url)}"/>'
            f"<id>{esc(s.guid)}</id><published>{when}</published><updated>{when}</updated>"
            + "".join(f"<author><name>{esc(a)}</name></author>" for a in s.authors)
            + "".join(f'<category term="{esc(t)}"/>' for t in s.tags)
            + f'<summary type="html">{esc(s.summary)}</summary>{content}</entry>\n'
        )

    @staticmethod
    def document(feed: _Feed, items: List[str], poll: int) -> bytes:
        built = (BASE_TIME + SPREAD + timedelta(hours=poll)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if feed.atom:
            head = (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
                    f'xml:lang="{feed.lang}"><title>{_xml_escape(feed.title)}</title>'
                    f'<id>urn:example:feed:{feed.number}</id><link rel="alternate" href="https://{feed.host}/"/>'
                    f"<updated>{built}</updated>\n")
            tail = "</feed>\n"
        else:
            head = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
                    'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
                    f"<title>{_xml_escape(feed.title)}</title><link>https://{feed.host}/</link>"
                    f"<description>Latest stories</description><language>{feed.lang}</language>\n")
            tail = "</channel></rss>\n"
        return (head + "".join(items) + tail).encode("utf-8")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# --------------------------------------------------------------------------- corpus


def build(spec: CorpusSpec, topics: Sequence[Tuple[str, str]]) -> Tuple[List[Tuple[str, bytes]], GroundTruth]:
    """The whole corpus in memory (small specs) and its ground truth."""
    writer = _Writer(spec, topics)
    truth = GroundTruth()
    docs = list(_documents(spec, writer, truth))
    return docs, truth


def write(spec: CorpusSpec, topics: Sequence[Tuple[str, str]], folder: str) -> GroundTruth:
    """Writes the documents under `folder` (paths as served) and truth.json."""
    writer = _Writer(spec, topics)
    truth = GroundTruth()
    for path, data in _documents(spec, writer, truth):
        target = os.path.join(folder, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
    truth.save(os.path.join(folder, "truth.json"))
    return truth


def _documents(spec: CorpusSpec, writer: _Writer, truth: GroundTruth) -> Iterator[Tuple[str, bytes]]:
    rng = writer.rng
    codes = list(LANGUAGES)
    weights = [LANGUAGES[c][0] for c in codes]
    recent: collections.deque = collections.deque(maxlen=RECENT)
    serial = 0
    for number in range(spec.feeds):
        feed = _Feed(number, rng.choices(codes, weights)[0], rng.random() < spec.atom_share)
        render = writer.atom_entry if feed.atom else writer.rss_item
        previous: List[str] = []          # rendered items of the previous poll
        for poll in range(spec.polls):
            repeats = _round(rng, spec.items_per_feed * spec.repeat_share)
            from_poll = min(repeats // 2, len(previous)) if poll else 0
            fresh_slots = spec.items_per_feed - from_poll
            items: List[str] = []
            here: List[_Story] = []          # originals of this document
            cross = repeats - from_poll
            for slot in range(fresh_slots):
                kind = None
                if slot >= fresh_slots - cross:
                    kind = _pick(rng, ("url", "text", "edit"), (0.45, 0.40, 0.15))
                    if kind == "edit" and not here:
                        kind = "url"
                    if kind != "edit" and not recent:
                        kind = None
                serial += 1
                if kind is None:
                    story = writer.story(serial, feed, rng.random() < spec.match_share)
                    here.append(story)
                    truth.originals += 1
                    if _matches(writer, story):
                        sid = identity.story_id(identity.canonical_url(story.url), "", None, "")
                        truth.matching[sid] = story.lang
                else:
                    source = rng.choice(here) if kind == "edit" else rng.choice(recent)
                    story = writer.copy(source, kind, feed, serial)
                    truth.copies[kind] += 1
                truth.with_content += story.content is not None
                items.append(render(story))
            recent.extend(here)
            # The feed polled again still lists the top of the previous poll.
            items.extend(previous[:from_poll])
            truth.copies["poll"] += from_poll
            previous = items
            data = writer.document(feed, items, poll)
            truth.entries += len(items)
            truth.documents += 1
            truth.bytes += len(data)
            yield feed.path(poll), data


def _matches(writer: _Writer, story: _Story) -> bool:
    """Whether the story matches, as the pipeline sees it (plain text).

    Neutral text cannot match (the guard proved it), so only stories given a
    topic sentence need the real matcher, which confirms the sentence
    survived being placed."""
    if not story.lead:
        return False
    if not writer.matcher.match(html_to_text(story.title), html_to_text(story.summary),
                                html_to_text(story.content or "")):
        raise ValueError(f"story {story.serial} was given a topic sentence but does not match")
    return True


def _round(rng: random.Random, value: float) -> int:
    whole = int(value)
    return whole + (rng.random() < value - whole)


def _pick(rng: random.Random, kinds, weights):
    return rng.choices(kinds, weights)[0]
