"""A large feed read in pieces (transforms/feed_split.py through
transforms/parse.py's open_feed) gives the same records as feedparser on the
whole document: row by row, on this module's feeds and on every file of the
shared corpora; and it never holds the whole feed's entries at once."""
import tracemalloc

import pytest

from benchmarks import huge_feed
from tests.support.fetched import fetched
from tests.support.paths import CORPORA
from transforms import feed_split
from transforms.feed_split import feedparser_input, split_feed
from transforms.parse import iter_parse_fetch, open_feed

WHOLE = 1 << 40     # split_above no body reaches: feedparser on the whole document
SPLIT = 0           # split_above every body reaches


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    # Two items a piece, so every feed of more than two items is read in several.
    monkeypatch.setattr(feed_split, "CHUNK_ITEMS", 2)


def records(body, split_above, **kw):
    # feedparser on the whole document is what the pieces must equal (the
    # fast path is held to feedparser in tests/transforms/test_parse_parity.py).
    return list(iter_parse_fetch(fetched(body, **kw), "r1", split_above=split_above, parser="feedparser"))


def was_split(body, headers=None):
    document, result = feedparser_input(body, dict(headers or {}))
    return split_feed(document, result) is not None


def item(n, extra=""):
    return (f"<item><title>Story {n} &amp; more</title><link>https://example.org/{n}</link>"
            f"<guid isPermaLink='false'>g{n}</guid><pubDate>Tue, 28 Sep 2021 0{n % 10}:00:00 GMT</pubDate>"
            f"<description>&lt;p&gt;Text {n}&lt;/p&gt;</description>{extra}</item>\n")


def rss(items, head="", tail="", channel_attrs="", root_attrs=""):
    return (f"<?xml version='1.0' encoding='utf-8'?>\n<rss version='2.0' {root_attrs}>"
            f"<channel {channel_attrs}>{head}" + "".join(items) + f"{tail}</channel></rss>").encode()


NAMESPACED = rss(
    [item(n, "<dc:creator>Ann</dc:creator><content:encoded><![CDATA[<p>Full <item> text</p>]]>"
             "</content:encoded><category>World</category>") for n in range(7)],
    head="<title>Wire</title><link>https://example.org/</link>",
    root_attrs="xmlns:dc='http://purl.org/dc/elements/1.1/' "
               "xmlns:content='http://purl.org/rss/1.0/modules/content/'")
LATIN1 = ("<?xml version='1.0' encoding='iso-8859-1'?><rss version='2.0'><channel><title>Caf\xe9</title>"
          + "".join(f"<item><title>R\xe9sum\xe9 {n}</title><link>https://ex.org/{n}</link></item>"
                    for n in range(5)) + "</channel></rss>").encode("iso-8859-1")
ATOM = ("<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' xml:base='https://ex.org/a/' "
        "xml:lang='fr'><title>Atom</title><link href='https://ex.org/'/>"
        + "".join(f"<entry><id>tag:ex,2021:{n}</id><title type='html'>&lt;b&gt;T{n}&lt;/b&gt;</title>"
                  f"<link href='p/{n}'/><updated>2021-09-2{n}T10:00:00Z</updated>"
                  f"<author><name>Au {n}</name></author><summary>S{n}</summary></entry>" for n in range(5))
        + "</feed>").encode()
RDF = (b"<?xml version='1.0'?><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
       b"xmlns='http://purl.org/rss/1.0/'><channel rdf:about='https://ex.org/'><title>RDF</title>"
       b"<link>https://ex.org/</link></channel>"
       + b"".join(b"<item rdf:about='https://ex.org/%d'><title>I%d</title><link>https://ex.org/%d</link></item>"
                  % (n, n, n) for n in range(5)) + b"</rdf:RDF>")
# The channel's title after its items, and an element between two items.
TITLE_LAST = rss([item(0), item(1), "<image><url>https://ex.org/i.png</url></image>", item(2), item(3)],
                 tail="<title>Late title</title><link>https://ex.org/late</link>")
ITEM_IN_ITEM = rss([item(0), item(1), item(2, item(9)), item(3), item(4)])
# Not read in pieces: feedparser's loose parser reads them whole (an
# undefined entity; a DOCTYPE, which feedparser's own rewriting of it leaves
# unreadable to its strict parser), an item nested in another element.
UNDEFINED_ENTITY = rss([item(n) for n in range(5)]).replace(b"Story 3", b"Story&nbsp;3")
ITEM_ELSEWHERE = rss([item(0), item(1), f"<x-wrap>{item(2)}</x-wrap>", item(3)])
ENTITIES = rss([item(n, "<author>x@ex.org (&co;)</author>") for n in range(5)]).replace(
    b"?>\n", b"?>\n<!DOCTYPE rss [<!ENTITY nbsp '&#160;'><!ENTITY co 'Example Co'>]>", 1).replace(
    b"Story", b"Story&nbsp;")

# State feedparser carries from one entry to the next: a base URI or a
# language set inside an entry, a namespace prefix declared inside an item.
BASE_IN_ENTRY = ("<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>Atom</title>"
                 + "".join(f"<entry{' xml:base=' + chr(39) + 'http://a.example/dir/' + chr(39) if n == 1 else ''}>"
                           f"<id>tag:ex,2021:{n}</id><title>T{n}</title><link href='p{n}.html'/></entry>"
                           for n in range(6)) + "</feed>").encode()
LANG_IN_ENTRY = BASE_IN_ENTRY.replace(b"xml:base='http://a.example/dir/'", b"xml:lang='ko'")
NAMESPACE_IN_ITEM = rss([item(0, "<a:x xmlns:a='http://u/'>1</a:x>"), item(1),
                         "<item><title xmlns='http://u/'>OTHER</title><link>https://example.org/o</link></item>",
                         item(3)])

SPLIT_FEEDS = {"namespaced": NAMESPACED, "latin1": LATIN1, "atom": ATOM, "rdf": RDF,
               "title_last": TITLE_LAST}
WHOLE_FEEDS = {"undefined_entity": UNDEFINED_ENTITY, "item_elsewhere": ITEM_ELSEWHERE,
               "entities": ENTITIES, "base_in_entry": BASE_IN_ENTRY, "lang_in_entry": LANG_IN_ENTRY,
               "namespace_in_item": NAMESPACE_IN_ITEM}


@pytest.mark.parametrize("name", sorted(SPLIT_FEEDS))
def test_pieces_give_the_whole_documents_records(name):
    body = SPLIT_FEEDS[name]
    assert was_split(body), "this feed should be read in pieces"
    whole = records(body, WHOLE)
    assert len(whole) > 3 and whole[-1].entry_count == len(whole) - 1 and whole[-1].error is None
    assert records(body, SPLIT) == whole


def test_feed_fields_come_from_the_document_without_its_items():
    stories = records(TITLE_LAST, SPLIT)[:-1]
    assert {s.feed_title for s in stories} == {"Late title"}
    assert [s.entry_index for s in stories] == [0, 1, 2, 3]


@pytest.mark.parametrize("name", sorted(WHOLE_FEEDS))
def test_documents_that_cannot_be_shown_equal_in_pieces_are_read_whole(name):
    body = WHOLE_FEEDS[name]
    assert not was_split(body)
    assert records(body, SPLIT) == records(body, WHOLE)


def test_a_piece_that_does_not_give_one_entry_an_item_hands_over_to_the_whole_document():
    # feedparser makes two entries of the item holding an item: the third
    # piece gives 3 entries for 2 items, so from there the whole document speaks.
    assert was_split(ITEM_IN_ITEM)
    whole = records(ITEM_IN_ITEM, WHOLE)
    assert whole[-1].entry_count == 6
    assert records(ITEM_IN_ITEM, SPLIT) == whole


def test_unsafe_and_empty_bodies_are_refused_as_before():
    bomb = b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>" + NAMESPACED[39:]
    for body in (bomb, b"  \n", b"<html><body>hi</body></html>"):
        whole, split = records(body, WHOLE), records(body, SPLIT)
        assert split == whole and whole[-1].error


def test_entries_are_read_as_they_are_consumed():
    opened = open_feed(NAMESPACED, {}, split_above=SPLIT)
    first = next(opened.entries)
    # A generator: the pieces after the first are not parsed yet.
    assert first["title"] == "Story 0 & more"
    assert opened.entries.gi_frame is not None
    assert len(list(opened.entries)) == 6


@pytest.mark.slow
def test_a_large_feed_in_pieces_never_holds_all_its_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(feed_split, "CHUNK_ITEMS", 500)
    path = tmp_path / "big.xml"
    feed = huge_feed.write(str(path), items=6000)
    body = path.read_bytes()

    def held_while_stories_flow(split_above):
        """Records, and the most memory (Python's own allocations) held
        between the first story and the last."""
        tracemalloc.start()
        try:
            count, held = 0, 0
            for _ in iter_parse_fetch(fetched(body), "r1", split_above=split_above, parser="feedparser"):
                count += 1
                held = max(held, tracemalloc.get_traced_memory()[0])
            return count, held
        finally:
            tracemalloc.stop()

    (whole_count, whole_held), (split_count, split_held) = map(held_while_stories_flow, (WHOLE, SPLIT))
    assert whole_count == split_count == feed.items + 1
    # feedparser on the whole document holds every entry (about three times
    # the body) until the last story; in pieces: the body as feedparser reads
    # it, the items' offsets and one piece's entries.
    assert split_held < whole_held / 2, (split_held, whole_held)
    assert split_held < 2 * feed.bytes, (split_held, feed.bytes)


def corpus_files():
    if not CORPORA.is_dir():
        return []
    return sorted(p for p in CORPORA.rglob("*") if p.is_file() and p.suffix in (".xml", ".json"))


@pytest.mark.slow
@pytest.mark.skipif(not CORPORA.is_dir(), reason="../shared/corpora is absent")
def test_every_corpus_file_gives_the_same_records_in_pieces():
    split_count, differ = 0, []
    for path in corpus_files():
        body = path.read_bytes()
        kind = "application/json" if path.suffix == ".json" else "application/xml"
        kw = {"headers": {"content-type": kind}, "url": f"https://feeds.example.org/{path.name}"}
        if records(body, SPLIT, **kw) != records(body, WHOLE, **kw):
            differ.append(str(path.relative_to(CORPORA)))
        split_count += path.suffix == ".xml" and was_split(body, kw["headers"])
    assert not differ, differ
    # The pieces really were used: most real feeds are well-formed.
    realfeeds = [p for p in corpus_files() if p.parent.name == "realfeeds"]
    # Feeds that set a base, a language or a namespace inside items are read whole.
    assert sum(was_split(p.read_bytes(), {"content-type": "application/xml"}) for p in realfeeds) >= 30
    assert split_count >= 500
