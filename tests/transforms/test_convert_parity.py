"""The entry -> Story conversion (transforms.parse.entry_to_story) against
the conversion as it was before it was made faster
(benchmarks/convert_reference.py): every entry of every document of the
three corpora in ../shared/corpora, of seeds/ and of the generated benchmark
corpus, read by both parse paths, gives equal stories (or the same error),
and every text field the same plain text."""
from __future__ import annotations

import dataclasses

import pytest

from benchmarks import convert_reference, corpus
from benchmarks.convert_speed import FETCHED_AT, TOPICS
from pipeline.config import load_topic_definitions
from tests.support.paths import CORPORA, SEEDS
from transforms import identity
from transforms.html_text import NAME_CAP, capped_text, html_to_text, html_to_text_reference
from transforms.parse import UnreadableFeed, entry_to_story, open_feed

pytestmark = [pytest.mark.slow]

if not CORPORA.is_dir():
    pytest.skip(f"test corpora not found at {CORPORA}", allow_module_level=True)


def _documents():
    for path in sorted(CORPORA.rglob("*")) + sorted(SEEDS.glob("*.xml")) + sorted(SEEDS.glob("*.rdf")):
        if path.is_file() and path.suffix in (".xml", ".rdf", ".atom", ".rss", ".json") \
                and not path.stem.endswith("_expected"):
            yield path.as_posix(), path.read_bytes()
    generated, _ = corpus.build(corpus.CorpusSpec(entries=1000), load_topic_definitions(str(TOPICS)))
    yield from generated


def _outcome(convert, entry, arguments):
    try:
        return dataclasses.asdict(convert(entry, **arguments))
    except Exception as exc:   # a bad entry: the same dead letter either way
        return f"{type(exc).__name__}: {exc}"


def test_every_entry_converts_as_the_reference_converts_it():
    documents = entries = texts = 0
    for name, body in _documents():
        for parser in ("auto", "feedparser"):
            try:
                opened = open_feed(body, {"content-type": "application/xml"}, parser=parser)
                items = list(opened.entries)
            except UnreadableFeed:
                continue
            documents += 1
            feed_link = opened.feed.get("link")
            arguments = dict(feed_url="http://127.0.0.1/" + name, base=feed_link or "http://127.0.0.1/",
                             site=identity.site_host(feed_link) or "127.0.0.1",
                             feed_title=capped_text([opened.feed.get("title")], NAME_CAP).text or None,
                             fetched_at=FETCHED_AT, run_id="parity")
            for index, entry in enumerate(items):
                entries += 1
                ours = _outcome(entry_to_story, entry, dict(arguments, index=index))
                assert ours == _outcome(convert_reference.entry_to_story, entry, dict(arguments, index=index)), \
                    (name, parser, index)
                raw = [entry.get("title"), entry.get("summary")] + [c.get("value") for c in entry.get("content") or []]
                for value in raw:
                    if isinstance(value, str) and value:
                        texts += 1
                        assert html_to_text(value) == html_to_text_reference(value), (name, parser, index)
    assert documents > 4000 and entries > 7000 and texts > 14_000, (documents, entries, texts)
