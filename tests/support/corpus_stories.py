"""The stories of every test corpus, for tests that check a quick reading
against its definition on real text: seeds/, the three corpora of
../shared/corpora when they are there, and a generated benchmark corpus."""
from __future__ import annotations

from typing import List

from tests.support.fetched import fetched
from tests.support.paths import CORPORA, SEEDS
from transforms.parse import parse_fetch
from transforms.records import Story


def stories_by_document(generated_entries: int = 600) -> List[List[Story]]:
    """Each document's stories, parsed as the pipeline parses them (sketched)."""
    from tests.transforms.test_corpora import GOFEED, REALFEEDS, feedparser_files

    bodies = [p.read_bytes() for p in sorted(SEEDS.glob("*.xml")) + sorted(SEEDS.glob("*.rdf"))]
    if CORPORA.is_dir():
        bodies += [p.read_bytes() for p in sorted(REALFEEDS.glob("*")) if p.suffix != ".tsv"]
        bodies += [p.read_bytes() for p in feedparser_files()]
        bodies += [p.read_bytes() for p in sorted(GOFEED.glob("*/*.xml")) if not p.stem.endswith("_expected")]
    from benchmarks import corpus
    from benchmarks.run import TOPICS
    from pipeline.config import load_topic_definitions
    documents, _ = corpus.build(corpus.CorpusSpec(entries=generated_entries), load_topic_definitions(str(TOPICS)))
    bodies += [body for _, body in documents]
    return [parse_fetch(fetched(body)).stories for body in bodies]
