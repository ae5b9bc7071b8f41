"""Parse stage (transforms/parse.py): entries -> stories, bodies that are
not feeds, failed and skipped fetches."""
from datetime import datetime, timezone

import pytest

from tests.support.fetched import FETCHED_AT as FETCHED
from tests.support.fetched import fetched
from transforms.parse import UnreadableFeed, parse_fetch, read_feed

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>World &amp; More</title><link>https://www.example.org/</link>
<item>
  <title>North Korea fires &lt;b&gt;missile&lt;/b&gt;</title>
  <link>https://www.example.org/a?utm_source=rss#top</link>
  <guid isPermaLink="false">id-1</guid>
  <description>&lt;p&gt;Pyongyang said &amp;quot;test&amp;quot;.&lt;/p&gt;</description>
  <content:encoded><![CDATA[<p>Full <em>text</em> here.</p>]]></content:encoded>
  <dc:creator>Jane Doe</dc:creator>
  <category>Asia</category><category>Defence</category><category>Asia</category>
  <pubDate>Wed, 29 Sep 2021 10:00:00 +0900</pubDate>
</item>
<item><title>No date, relative link</title><link>/b</link><description>x</description>
  <pubDate>not a date</pubDate></item>
</channel></rss>"""


def test_rss_entries_become_normalised_stories():
    result = parse_fetch(fetched(RSS), run_id="r1")
    assert result.ok and not result.dead_letters
    first, second = result.stories
    assert first.title == "North Korea fires missile"
    assert first.summary == 'Pyongyang said "test".'
    assert first.content == "Full text here."
    assert first.url == "https://www.example.org/a?utm_source=rss#top"
    assert first.canonical_url == "https://www.example.org/a"
    assert first.guid == "id-1"
    assert first.authors == ["Jane Doe"]
    assert first.tags == ["Asia", "Defence"]
    assert first.published_at == datetime(2021, 9, 29, 1, 0, tzinfo=timezone.utc)
    assert first.fetched_at == FETCHED
    assert first.feed_title == "World & More"
    assert first.source == "example.org"
    assert first.run_id == "r1"
    # relative links resolve against the site; unparseable dates are null
    assert second.url == "https://www.example.org/b"
    assert second.published_at is None and second.updated_at is None
    assert result.log.entry_count == 2 and result.log.error is None and result.log.status == 200


def test_story_id_does_not_depend_on_fetch_time_or_run():
    a = parse_fetch(fetched(RSS), run_id="r1").stories[0]
    b = parse_fetch(fetched(RSS, fetched_at=datetime(2030, 1, 1, tzinfo=timezone.utc)), run_id="r2").stories[0]
    assert a.story_id == b.story_id and a.content_hash == b.content_hash


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">East &amp;lt;Asia&amp;gt;</title>
<link href="https://www.voanews.example/"/><id>urn:feed</id><updated>2021-09-30T00:00:00Z</updated>
<entry><title>Only updated</title><id>urn:1</id><link rel="alternate" href="https://www.voanews.example/x"/>
<updated>2021-09-29T23:30:00-02:00</updated><author><name>A</name></author><author><name>B</name></author>
<summary type="html">&lt;p&gt;Hello&lt;/p&gt;</summary></entry>
</feed>""".encode()


def test_atom_entry_only_updated_gives_published_too():
    (story,) = parse_fetch(fetched(ATOM, headers={"content-type": "application/atom+xml"})).stories
    assert story.updated_at == datetime(2021, 9, 30, 1, 30, tzinfo=timezone.utc)
    assert story.published_at == story.updated_at
    assert story.authors == ["A", "B"]
    assert story.summary == "Hello"


def test_charset_from_response_headers_is_used():
    body = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Corée du Nord</title><link>http://e.fr/1</link></item></channel></rss>""".encode("latin-1")
    (story,) = parse_fetch(fetched(body, headers={"content-type": "text/xml; charset=iso-8859-1"})).stories
    assert story.title == "Corée du Nord"


def test_html_page_is_a_dead_letter_not_a_crash():
    result = parse_fetch(fetched(b"<html><body><h1>Welcome</h1></body></html>"), run_id="r")
    assert not result.ok and result.stories == []
    (letter,) = result.dead_letters
    assert letter.stage == "parse" and letter.reason.startswith("not_a_feed")
    assert "Welcome" in letter.excerpt
    assert result.log.error.startswith("not_a_feed")


def test_failed_fetch_is_a_dead_letter_and_a_log_row():
    result = parse_fetch(fetched(b"", status=404, error="http_status: 404 Not Found"))
    assert [d.stage for d in result.dead_letters] == ["fetch"]
    assert result.log.status == 404 and result.log.entry_count == 0


def test_not_modified_is_neither_entries_nor_an_error():
    result = parse_fetch(fetched(b"", status=304))
    assert result.ok and not result.stories and not result.dead_letters
    assert result.log.status == 304


def test_empty_feed_is_ok_with_zero_entries():
    result = parse_fetch(fetched(b'<rss version="2.0"><channel><title>t</title></channel></rss>'))
    assert result.ok and result.log.entry_count == 0 and not result.dead_letters


def test_updated_at_is_null_when_the_feed_gives_only_a_publication_date():
    story = parse_fetch(fetched(RSS)).stories[0]
    assert story.published_at is not None and story.updated_at is None


@pytest.mark.parametrize("body", [b"  ", b"<html><body>hi</body></html>"])
def test_a_body_that_is_not_a_feed_raises_unreadable_feed(body):
    with pytest.raises(UnreadableFeed, match="^not_a_feed: "):
        read_feed(body)


def test_join_link_gives_what_urljoin_gives():
    # join_link keeps an absolute link without urljoin's work: on relative
    # links, dot segments, IDNs, other schemes, IPv6 hosts, empty queries and
    # fragments, path parameters and bases urlsplit refuses it must agree
    # with urljoin, raising where it raises.
    import itertools
    from urllib.parse import urljoin

    from transforms.parse import join_link

    bases = ["https://www.example.org/news/", "http://www.example.org/a/b", "https://example.org", "HTTPS://x.org/",
             "https://[::1]/feed", "https://[::1/feed", "https://bücher.de/", "https://x.org/[a]", "ftp://x.org/",
             "https://exa\tmple.org/", "/relative/base", "https:", "http://x.org/a;p?q#f"]
    links = ["https://example.org/a/b.html", "http://example.org/a", "https://example.org", "https://Example.ORG/A",
             "https://example.org/./a/../b", "https://example.org/a/..", "https://bücher.de/x", "https://xn--bcher-kva.de/",
             "https://example.org/a?", "https://example.org/a#", "https://example.org/a?#f", "https://example.org/a?q#",
             "https://example.org/a;p", "https://example.org/a;", "https://example.org/a?x=1;y=2", "https://[::1]/a",
             "https://[::1/a", "https://example.org]/", "https://example.org/a b", "https://example.org/a\tb",
             "https:///a", "https://?q", "https://#f", "https://", "HTTPS://example.org/", "https:example.org/a",
             "//example.org/a", "/a/b", "a/b", "../a", "./a", "?q=1", "#f", "mailto:x@example.org", "https://ex.org/ä"]
    kept = 0
    for base, link in itertools.product(bases, links):
        try:
            expected = urljoin(base, link)
        except ValueError as exc:
            expected = type(exc)
        try:
            got = join_link(base, link)
        except ValueError as exc:
            got = type(exc)
        assert got == expected, (base, link)
        kept += got is link
    assert kept > 20, kept   # the link kept as it is, not only urljoin's answers
