"""The fast parse path (transforms/fast_parse.py): what it reads as feedparser
does, what it refuses and why, and how the parse stage falls back.

The whole-corpus comparison with feedparser is tests/transforms/test_parse_parity.py."""
import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tests.support.fetched import fetched
from transforms.fast_parse import FALLBACK_REASONS, Refused, read_fast
from transforms.parse import (FAST, FEEDPARSER, ParseFeeds, iter_parse_fetch, open_feed, parse_fetch,
                              read_feed)

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
READ_KEYS = ("title", "link", "id", "summary", "author", "published", "updated", "feedburner_origlink")

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
<channel><title>Wire</title><dc:title>Not the title</dc:title><link>https://wire.example/</link>
<image><title>Logo</title><url>https://wire.example/logo.png</url><link>https://wire.example/</link></image>
<item><title>One &amp; two</title><link>https://wire.example/~r/1</link>
  <guid>https://wire.example/1</guid><description>&lt;p&gt;Lead&lt;/p&gt;</description>
  <content:encoded><![CDATA[<p>Body</p>]]></content:encoded>
  <media:content url="https://wire.example/a.jpg"><media:title>A picture</media:title>
    <media:description>Caption</media:description></media:content>
  <author>desk@wire.example (The Desk)</author><dc:creator>Ann</dc:creator>
  <category domain="x">Asia</category><category>Asia</category>
  <pubDate>Wed, 29 Sep 2021 10:00:00 +0900</pubDate>
  <feedburner:origLink>https://wire.example/one</feedburner:origLink></item>
<item><description>Only a description</description><media:description>then media</media:description>
  <guid isPermaLink="false">two</guid><dc:date>2021-09-29T11:00:00Z</dc:date></item>
</channel></rss>"""


def test_an_rss_feed_reads_as_feedparser_reads_it():
    fast, slow = read_fast(RSS, HEADERS), read_feed(RSS, HEADERS)
    assert fast.feed["title"] == slow["feed"]["title"] == "Wire"
    assert fast.feed["link"] == slow["feed"]["link"]
    assert len(fast.entries) == len(slow["entries"]) == 2
    for mine, theirs in zip(fast.entries, slow["entries"]):
        for key in READ_KEYS:
            assert mine.get(key) == dict.get(theirs, key), key
        assert [c["value"] for c in mine.get("content", [])] == [c["value"] for c in theirs.get("content", [])]
        assert [a.get("name") for a in mine.get("authors", [])] == [a.get("name") for a in theirs.get("authors", [])]
        assert [(t["term"], t["scheme"]) for t in mine.get("tags", [])] == \
            [(t["term"], t["scheme"]) for t in theirs.get("tags", [])]
    # the second description became content, as feedparser makes it
    assert [c["value"] for c in fast.entries[1]["content"]] == ["then media"]


def _rss(item: str, root_attributes: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {root_attributes}>'
            f"<channel><title>T</title><item>{item}</item></channel></rss>").encode()


REFUSED = [
    ("doctype", b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x.dtd"><rss version="2.0"><channel>'
                b"<item><title>a</title></item></channel></rss>"),
    ("not_well_formed", _rss("<title>cut short")),
    ("format", b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>a</title>'
               b"<entry><title>b</title></entry></feed>"),
    ("namespace", _rss('<x:a xmlns:x="https://elsewhere.example/">b</x:a><title>t</title>')),
    ("markup", _rss("<description>a <b>bold</b> word</description>")),
    ("content_type", _rss('<content type="xhtml">a</content>')),
    ("construct", _rss("<contributor><name>a</name></contributor>")),
]


@pytest.mark.parametrize("reason, body", REFUSED, ids=[r for r, _ in REFUSED])
def test_what_the_fast_path_does_not_reproduce_is_refused_with_its_reason(reason, body):
    assert reason in FALLBACK_REASONS
    with pytest.raises(Refused) as refused:
        read_fast(body, HEADERS)
    assert refused.value.reason == reason
    # ... and feedparser reads it instead, the reason counted
    reasons: list = []
    *_, log = iter_parse_fetch(fetched(body), "r", fallbacks=reasons)
    assert reasons == [reason]
    assert log.parser == FEEDPARSER


def test_a_large_document_goes_to_feedparser_in_pieces_and_says_so():
    opened = open_feed(RSS, HEADERS, split_above=100)
    assert (opened.parser, opened.fallback) == (FEEDPARSER, "large")
    assert len(list(opened.entries)) == 2


def test_a_document_the_fast_path_crashes_on_goes_to_feedparser_and_is_counted():
    def crashes(document, result):
        raise KeyError("a bug")

    opened = open_feed(RSS, HEADERS, fast_reader=crashes)
    assert (opened.parser, opened.fallback) == (FEEDPARSER, "crash")
    assert [e.get("title") for e in opened.entries] == ["One & two", None]


def test_the_parser_option_picks_the_path_and_the_fetch_log_names_it():
    assert parse_fetch(fetched(RSS), "r").log.parser == FAST
    assert parse_fetch(fetched(RSS), "r", parser="feedparser").log.parser == FEEDPARSER
    json_feed = b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [{"id": "1"}]}'
    assert parse_fetch(fetched(json_feed), "r").log.parser == "json"
    assert parse_fetch(fetched(b""), "r").log.parser is None              # nothing was parsed
    assert parse_fetch(fetched(RSS, error="timeout: x"), "r").log.parser is None


def test_parse_counts_documents_per_parser_and_fallbacks_per_reason():
    bodies = [RSS, RSS, _rss("<title>cut short")]
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner", "DirectRunner"]))
    _ = (pipeline | beam.Create([fetched(b, url=f"https://feeds.example.org/{i}") for i, b in enumerate(bodies)])
         | ParseFeeds("r"))
    result = pipeline.run()
    result.wait_until_finish()

    def count(name):
        return sum(c.committed for c in result.metrics().query(MetricsFilter().with_name(name))["counters"])

    assert count("parsed_fast") == 2
    assert count("parsed_feedparser") == 1
    assert count("parse_fallback_not_well_formed") == 1


_JOIN_CASES = [
    "http://wire.example", "http://wire.example/", "https://wire.example:8443/a/b.html",
    "http://wire.example/a?utm_source=x&id=1", "http://wire.example/a?", "http://wire.example/a#top",
    "http://wire.example/a#", "http://wire.example/a;params?q=1", "http://wire.example/a?q=1;2",
    "HTTP://wire.example/a", "http:///wire.example/a", "https://wire.example//a", "http://[::1]/a",
    "http://user@wire.example/a", "http://wire.example/a/../b", "http://wire.example/a b",
    "http://wire.example/caf\u00e9", "http://xn--caf-dma.example/", "mailto:desk@wire.example",
    "/relative/path", "relative", "../up", "?q=1", "#frag", "//other.example/a", "tag:wire.example,2021:1",
]


def _urls_in_corpora():
    from tests.support.paths import CORPORA
    import re
    if not CORPORA.is_dir():
        return []
    found = set()
    for path in sorted((CORPORA / "realfeeds").glob("*")):
        if path.is_file():
            found.update(re.findall(r"https?://[^\s\"'<>]+", path.read_text("utf-8", "replace")))
    return sorted(found)


@pytest.mark.parametrize("base", ["http://[x]/", "http://wire.example/news/"])
def test_links_under_any_xml_base_read_as_feedparser_reads_them(base):
    body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xml:base="{base}"><channel>'
            "<title>T</title><item><title>a</title><link>https://wire.example/a?id=1</link>"
            "<guid>https://wire.example/a?id=1</guid></item>"
            '<item><title>b</title><link>b.html</link></item></channel></rss>').encode()
    fast, slow = read_fast(body, HEADERS), read_feed(body, HEADERS)
    assert [(e.get("link"), e.get("id")) for e in fast.entries] == \
        [(dict.get(e, "link"), dict.get(e, "id")) for e in slow["entries"]]


@pytest.mark.parametrize("base", ["https://wire.example/feed/", "http://wire.example/", "", "ftp://wire.example/",
                                  "http://[x]/", "http://wire.example]/", "http://wire\uff0fexample/"])
def test_joining_a_url_gives_what_feedparser_gives(base):
    """The fast path skips urljoin for a URL it would give back unchanged:
    for every URL here and in the real feeds, the answer is feedparser's."""
    from feedparser.urls import _urljoin
    from transforms.fast_parse import _join
    urls = _JOIN_CASES + _urls_in_corpora()
    assert [_join(base, url) for url in urls] == [_urljoin(base, url) for url in urls]


# Texts for feedparser's re-decoding and cp1252 rules: Latin-1 text with and
# without C1 controls, UTF-8 read as Latin-1 (with a C1 control once decoded),
# and text beyond Latin-1 with and without one.
# (U+0085 is followed by a character: str.strip takes it for a space.)
_RECODE_CASES = ["Caf\u00e9 au lait", "Caf\u00e9 \u0093quoted\u0094 \u0085.", "Caf\u00c3\u00a9 cr\u00c3\u00a8me",
                 "\u00c3\u00a9t\u00c3\u00a9 \u00c2\u0085x", "\u00c2\u0093", "\u0080", "\ud55c\uad6d \u0080 \u0099",
                 "\ud55c\uad6d \uc5b4", "\u041c\u043e\u0441\u043a\u0432\u0430 \u0096 2026"]


@pytest.mark.parametrize("text", _RECODE_CASES)
def test_text_outside_ascii_reads_as_feedparser_reads_it(text):
    """Title, summary and author of such text are what feedparser gives."""
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>{text}</title><description>{text} {text}</description>"
            f"<author>{text}</author><guid>a</guid></item></channel></rss>").encode("utf-8")
    fast, slow = read_fast(body, HEADERS), read_feed(body, HEADERS)
    assert [(e["title"], e["summary"], e["author"]) for e in fast.entries] == \
        [(e["title"], e["summary"], e["author"]) for e in slow["entries"]]


@pytest.mark.parametrize("text", _RECODE_CASES)
def test_atom_author_parts_read_as_feedparser_reads_them(text):
    """An author's name, email and (relative) uri, under an xml:base."""
    body = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            'xml:base="https://wire.example/news/"><title>T</title><entry><id>a</id><title>t</title>'
            f"<author><name>{text}</name><email>desk@wire.example</email><uri>people/{text}</uri></author>"
            f"<author><uri>/desk</uri></author></entry></feed>").encode("utf-8")
    headers = {"content-type": "application/atom+xml; charset=utf-8"}
    fast, slow = read_fast(body, headers), read_feed(body, headers)
    assert [(e["authors"], e["author"]) for e in fast.entries] == \
        [([dict(a) for a in e["authors"]], e["author"]) for e in slow["entries"]]
