"""Whole runs (--runner DirectRunner) over a FeedBurner-style feed served on
127.0.0.1: the stories name the publisher (url, canonical_url, source from
feedburner:origLink) and keep the feed's link in `feed_link`; a story stored
under the redirector's link by an earlier run is not written again once the
feed adds origLink. Real HTTP, real Parquet read back through pipeline.dataset."""
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import read_stories
from tests.support.sample import TOPICS, run

pytestmark = [pytest.mark.integration]

PROXY = "http://feedproxy.google.com/~r/desk/world/~3/{slug}/"
FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
<channel><title>Desk - World</title><link>https://www.desk.example.org/world</link>
{items}
</channel></rss>"""
ITEM = """<item><title>{title}</title><link>{link}</link><guid isPermaLink="false">{guid}</guid>
  <description>{text}</description><pubDate>Tue, 28 Sep 2021 0{hour}:00:00 GMT</pubDate>{orig}</item>"""


def item(slug, title, text, guid, hour, origlink=True):
    orig = (f"<feedburner:origLink>https://www.desk.example.org/world/{slug}.html?utm_source=feedburner"
            f"</feedburner:origLink>" if origlink else "")
    return ITEM.format(title=title, link=PROXY.format(slug=slug), guid=guid, text=text, hour=hour, orig=orig)


LAUNCH = dict(slug="launch", title="North Korea fires a ballistic missile",
              text="Pyongyang fired a ballistic missile into the sea, Seoul said.")
HOTLINE = dict(slug="hotline", title="Pyongyang says hotline will reopen",
               text="State media said the lines to the South would be restored.")
SUBMARINE = dict(slug="submarine", title="North Korea shows a new submarine",
                 text="State media showed a submarine said to carry missiles.")


@pytest.fixture
def world(feed_server, tmp_path):
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(feed_server.url("/desk.xml") + "\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text(TOPICS)
    return feed_server, feeds, topics, tmp_path / "out"


def test_stories_name_the_publisher_and_keep_the_feed_link(world):
    server, feeds, topics, out = world
    server.add("/desk.xml", FEED.format(items=item(**LAUNCH, guid="desk-1", hour=1)
                                        + item(**HOTLINE, guid="desk-2", hour=2, origlink=False)))
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    df = read_stories(out).set_index("guid")
    launch, hotline = df.loc["desk-1"], df.loc["desk-2"]
    assert launch.url == "https://www.desk.example.org/world/launch.html?utm_source=feedburner"
    assert launch.canonical_url == "https://www.desk.example.org/world/launch.html"
    assert launch.source == "desk.example.org"
    assert launch.feed_link == PROXY.format(slug="launch")
    # without origLink: the feed's link stays the URL; the source is the feed's site
    assert hotline.url == hotline.feed_link == PROXY.format(slug="hotline")
    assert hotline.source == "desk.example.org"
    for path in (out / "stories").rglob("*.parquet"):
        assert pq.read_schema(path).metadata[b"newswatch.schema_version"] == b"5"


def test_a_story_stored_under_the_redirector_link_is_not_written_again_after_origlink_appears(world, capsys):
    """The first version of the feed has no origLink: its stories are stored
    under the redirector's links, with the identities an earlier version of
    newswatch gave them (url = canonical = the feedproxy link). The second
    version adds origLink to the same items; one of them also got a reissued
    guid and a revised text, so only its old link can tie it to the stored row."""
    server, feeds, topics, out = world
    server.add("/desk.xml", FEED.format(items=item(**LAUNCH, guid="desk-1", hour=1, origlink=False)
                                        + item(**HOTLINE, guid="desk-2", hour=2, origlink=False)))
    assert run(feeds, topics, out, "--run-id", "r1") == 0
    before = read_stories(out)
    assert len(before) == 2 and (before.url == before.feed_link).all()
    assert before.url.str.startswith("http://feedproxy.google.com/").all()

    revised = dict(HOTLINE, text="State media said the lines to the South would be restored next month.")
    server.add("/desk.xml", FEED.format(items=item(**LAUNCH, guid="desk-1", hour=1)
                                        + item(**revised, guid="tag:desk.example.org,2021:hotline", hour=2)
                                        + item(**SUBMARINE, guid="desk-3", hour=3)))
    capsys.readouterr()
    assert run(feeds, topics, out, "--run-id", "r2") == 0
    summary = capsys.readouterr().out
    after = read_stories(out)
    assert len(after) == 3 and after.story_id.is_unique
    new = after[after.run_id == "r2"]
    assert list(new.title) == [SUBMARINE["title"]]
    assert new.iloc[0].url == "https://www.desk.example.org/world/submarine.html?utm_source=feedburner"
    assert new.iloc[0].feed_link == PROXY.format(slug="submarine")
    assert "seen before 2" in summary
