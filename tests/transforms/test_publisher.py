"""The publisher's link (transforms/publisher.py) and how the parse stage uses
it: feedburner:origLink and the other hints of a redirected entry become
`url`, `canonical_url` and `source`; the entry's own link stays in
`feed_link`; hostile hints are ignored."""
import collections

import pytest

from tests.support.fetched import fetched
from tests.support.paths import CORPORA
from transforms import identity
from transforms.parse import parse_fetch
from transforms.publisher import (MAX_URL_LENGTH, REDIRECTOR_HOSTS, is_redirector, publisher_link,
                                  publisher_url, redirector_host)

PROXY = "http://feedproxy.google.com/~r/example/world/~3/AbC123/"
ARTICLE = "https://www.publisher.example/world/2021/09/28/story.html"


# --------------------------------------------------------------------------- the redirector list

@pytest.mark.parametrize("host", sorted(REDIRECTOR_HOSTS) + ["rss.feedsportal.com", "da.feedsportal.com",
                                                             "FeedProxy.Google.com", "rss.cnn.com."])
def test_listed_hosts_and_feedsportal_subdomains_are_redirectors(host):
    assert redirector_host(host)
    assert is_redirector(f"http://{host}/some/path")


@pytest.mark.parametrize("host", ["cnn.com", "www.cnn.com", "google.com", "notfeedsportal.com",
                                  "feedproxy.google.com.example.org", "washingtonpost.com", "", None])
def test_publishers_and_lookalikes_are_not_redirectors(host):
    assert not redirector_host(host)


def test_the_four_redirectors_the_issue_measured_are_listed():
    for host in ("feedproxy.google.com", "rss.cnn.com", "rss.feedsportal.com", "feeds.washingtonpost.com"):
        assert redirector_host(host), host


# --------------------------------------------------------------------------- choosing the link

def test_origlink_is_the_publishers_link():
    assert publisher_link(PROXY, ARTICLE) == ARTICLE
    assert publisher_link(PROXY, f"  {ARTICLE}\n") == ARTICLE      # surrounding whitespace is not part of it
    # FeedBurner writes it, so it names the article even beside a link that is no redirector
    assert publisher_link("https://www.publisher.example/?p=1", ARTICLE) == ARTICLE


def test_without_origlink_a_link_off_the_redirectors_is_kept():
    assert publisher_link("https://www.publisher.example/a", None, ["https://other.example/b"],
                          "https://www.publisher.example/permalink") is None
    assert publisher_link(None) is None and publisher_link(PROXY) is None


def test_a_redirected_link_falls_back_to_its_url_parameter_then_alternates_then_a_url_guid():
    google = f"https://news.google.com/news/url?sa=t&fd=R&url={ARTICLE}&usg=AFQ"
    assert publisher_link(google) == ARTICLE
    wapo = "http://feeds.washingtonpost.com/click.phdo?i=cc0c5fb09865354bbec8415210a554da"
    assert publisher_link(wapo, guid=ARTICLE) == ARTICLE
    assert publisher_link(wapo, guid="cc0c5fb09865354bbec8415210a554da") is None
    assert publisher_link(PROXY, alternates=["/relative", ARTICLE], guid="https://x.example/g") == ARTICLE
    # the strongest hint wins
    assert publisher_link(google, "https://www.publisher.example/orig", guid="https://x.example/g") == \
        "https://www.publisher.example/orig"


HOSTILE = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)//https://www.publisher.example/",
    "data:text/html,<script>alert(1)</script>",
    "/world/2021/09/28/story.html",                       # relative
    "//www.publisher.example/story.html",                 # scheme-relative
    "www.publisher.example/story.html",
    "ftp://www.publisher.example/story.html",
    "file:///etc/passwd",
    "https://",                                           # no host
    "https://[::1/story",                                 # unparseable
    "https://www.publisher.example:99999/story",          # port out of range
    "https://www.publisher.example/" + "a" * MAX_URL_LENGTH,  # huge
    "https://www.publisher.example/a\x00b",               # control characters
    "https://www.publisher.example/a\nb",
    "https://www.publisher.example/a\x85b",
    "https://www.publisher.example/a b",
    "https://www.publisher.example/a\ud800",              # lone surrogate
    "http://feedproxy.google.com/~r/other/~3/x/",         # another redirect
    "",
    None,
    42,
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_hostile_or_useless_hint_is_ignored(bad):
    assert publisher_url(bad) is None
    assert publisher_link(PROXY, bad) is None
    assert publisher_link(f"https://news.google.com/news/url?url={bad}", guid=bad) is None


def test_a_long_but_sane_link_is_accepted():
    long = "https://www.publisher.example/" + "a" * (MAX_URL_LENGTH - 30)
    assert len(long) <= MAX_URL_LENGTH and publisher_url(long) == long


# --------------------------------------------------------------------------- in the parse stage

FEEDBURNER = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
<channel><title>Publisher - World</title><link>https://www.publisher.example/world</link>
<item><title>North Korea fires missile</title>
  <link>http://feedproxy.google.com/~r/example/world/~3/AbC123/story.html</link>
  <guid isPermaLink="false">tag:publisher.example,2021:1</guid>
  <description>Pyongyang fired a missile.</description>
  <feedburner:origLink>https://www.publisher.example/world/2021/09/28/story.html?utm_source=feedburner</feedburner:origLink>
</item>
<item><title>Hostile origLink</title>
  <link>http://feedproxy.google.com/~r/example/world/~3/DeF456/other.html</link>
  <guid isPermaLink="false">tag:publisher.example,2021:2</guid>
  <description>Something else.</description>
  <feedburner:origLink>{hostile}</feedburner:origLink>
</item>
</channel></rss>"""


def _feed(hostile="javascript:alert(1)"):
    return FEEDBURNER.format(hostile=hostile).encode()


def test_parse_takes_url_canonical_url_and_source_from_origlink():
    first = parse_fetch(fetched(_feed()), run_id="r1").stories[0]
    assert first.url == "https://www.publisher.example/world/2021/09/28/story.html?utm_source=feedburner"
    assert first.canonical_url == "https://www.publisher.example/world/2021/09/28/story.html"
    assert first.source == "publisher.example"
    assert first.feed_link == "http://feedproxy.google.com/~r/example/world/~3/AbC123/story.html"
    assert first.story_id == identity.story_id(first.canonical_url, first.feed_url, first.guid,
                                               first.content_hash)


@pytest.mark.parametrize("hostile", ["javascript:alert(1)", "/relative/story.html",
                                     "https://www.publisher.example/" + "x" * 5000,
                                     "https://www.publisher.example/a&#1;b"])
def test_parse_ignores_a_hostile_origlink_and_keeps_the_feed_link(hostile):
    second = parse_fetch(fetched(_feed(hostile)), run_id="r1").stories[1]
    assert second.url == second.feed_link == "http://feedproxy.google.com/~r/example/world/~3/DeF456/other.html"
    assert second.canonical_url == identity.canonical_url(second.feed_link)
    # a link still on a redirector names the feed's own site, not the redirector
    assert second.source == "publisher.example"


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
<title>Atom desk</title><id>urn:desk</id><link href="http://feeds.feedburner.com/desk"/>
<updated>2021-09-29T00:00:00Z</updated>
<entry><title>Talks resume</title><id>urn:desk:1</id>
  <link rel="alternate" href="http://feeds.feedburner.com/~r/desk/~3/xyz/"/>
  <updated>2021-09-28T09:00:00Z</updated><summary>Talks resumed.</summary>
  <feedburner:origLink>https://desk.example.org/2021/talks</feedburner:origLink></entry>
<entry><title>No origLink</title><id>https://desk.example.org/2021/permalink</id>
  <link rel="alternate" href="http://feeds.feedburner.com/~r/desk/~3/abc/"/>
  <updated>2021-09-28T10:00:00Z</updated><summary>A story.</summary></entry>
</feed>"""


def test_atom_feedburner_entries_and_a_url_guid_on_a_redirected_link():
    talks, permalink = parse_fetch(fetched(ATOM.encode()), run_id="r1").stories
    assert (talks.url, talks.source) == ("https://desk.example.org/2021/talks", "desk.example.org")
    assert talks.feed_link == "http://feeds.feedburner.com/~r/desk/~3/xyz/"
    assert (permalink.url, permalink.source) == ("https://desk.example.org/2021/permalink", "desk.example.org")
    assert permalink.feed_link == "http://feeds.feedburner.com/~r/desk/~3/abc/"


def test_a_plain_feed_keeps_its_link_as_url_and_feed_link():
    body = _feed().replace(b"feedproxy.google.com/~r/example/world/~3/AbC123", b"www.publisher.example")
    body = body.replace(b"<feedburner:origLink>https://www.publisher.example/world/2021/09/28/story.html"
                        b"?utm_source=feedburner</feedburner:origLink>", b"")
    first = parse_fetch(fetched(body), run_id="r1").stories[0]
    assert first.url == first.feed_link == "http://www.publisher.example/story.html"


# --------------------------------------------------------------------------- identity across the change

def test_remembered_keys_add_the_feed_links_url_only_when_it_differs():
    digest = identity.content_hash("t", "x")
    plain = identity.remembered_keys("https://p.example/a", "https://p.example/a?utm_source=x", "feed", "g",
                                     True, digest)
    assert plain == identity.dedup_keys("https://p.example/a", "feed", "g", True, digest)
    redirected = identity.remembered_keys("https://p.example/a", PROXY, "feed", "g", True, digest)
    assert redirected == plain + [("url", identity.canonical_url(PROXY))]
    assert identity.remembered_keys(None, None, "feed", None, False, digest) == []


# --------------------------------------------------------------------------- real feeds

REDIRECTOR_BYTES = tuple(h.encode() for h in REDIRECTOR_HOSTS) + (b"feedsportal.com",)


def test_real_feeds_name_the_publisher_not_the_redirector():
    """Over corpora/realfeeds: how many stories the redirectors used to be the
    `source` of, and how many are left (run with -s for the figures)."""
    folder = CORPORA / "realfeeds"
    if not folder.is_dir():
        pytest.skip(f"real feeds not found at {folder}")
    before, after, total = collections.Counter(), collections.Counter(), 0
    publishers_behind = collections.defaultdict(set)
    for path in sorted(folder.glob("*.xml")):
        body = path.read_bytes()
        if not any(host in body for host in REDIRECTOR_BYTES):
            continue  # no entry of it can be on a redirector
        for story in parse_fetch(fetched(body, feed_url=path.as_uri()), run_id="corpus").stories:
            total += 1
            old_source = identity.site_host(story.feed_link)
            if redirector_host(old_source):
                before[old_source] += 1
                publishers_behind[old_source].add(story.source)
            if redirector_host(story.source):
                after[story.source] += 1
            if story.url != story.feed_link:
                assert not is_redirector(story.url) and story.canonical_url == identity.canonical_url(story.url)
    print(f"\nrealfeeds, feeds with redirector links: {total} stories; source a redirector "
          f"before {sum(before.values())} {dict(before)}, after {sum(after.values())} {dict(after)}; "
          f"publishers behind each: { {h: sorted(p) for h, p in publishers_behind.items()} }")
    assert sum(before.values()) >= 60 and set(before) >= {"feedproxy.google.com", "rss.cnn.com",
                                                          "rss.feedsportal.com", "feeds.washingtonpost.com"}
    assert len(publishers_behind["feedproxy.google.com"]) >= 2   # two publishers were merged under it
    assert sum(after.values()) == 0
