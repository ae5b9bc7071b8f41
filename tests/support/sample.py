"""A small sample world for runs of the whole pipeline: a wire feed (with a
tracked copy and an off-topic story), an Asia desk in English and Korean,
and two topics."""
from pipeline.cli import main

WIRE = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example.org/</link>
<item><title>North Korea test-fires ballistic missile</title>
  <link>https://wire.example.org/world/nk-missile</link><guid>wire-1</guid>
  <description>&lt;p&gt;North Korea fired a ballistic missile into the sea on Tuesday, Seoul said.&lt;/p&gt;</description>
  <pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>
<item><title>North Korea test-fires ballistic missile</title>
  <link>https://wire.example.org/world/nk-missile?utm_source=rss&amp;utm_medium=feed</link><guid>wire-2</guid>
  <description>&lt;p&gt;North Korea fired a ballistic missile into the sea on Tuesday, Seoul said.&lt;/p&gt;</description>
  <pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>
<item><title>Late goal settles the derby</title>
  <link>https://wire.example.org/sport/derby</link><guid>wire-3</guid>
  <description>A header in stoppage time decided a tight match on Saturday evening.</description>
  <pubDate>Sat, 25 Sep 2021 20:00:00 GMT</pubDate></item>
</channel></rss>"""

ASIA = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Asia desk</title><id>urn:asia</id>
<link href="https://asia.example.com/"/><updated>2021-09-29T00:00:00Z</updated>
<entry><title>North Korea test-fires ballistic missile</title><id>urn:asia:1</id>
  <link href="https://asia.example.com/2021/09/28/nk"/><updated>2021-09-28T09:00:00Z</updated>
  <summary>North Korea fired a ballistic missile into the sea on Tuesday, Seoul said.</summary></entry>
<entry><title>북한, 동해상으로 탄도미사일 발사</title><id>urn:asia:2</id>
  <link href="https://asia.example.com/ko/1"/><updated>2021-09-28T03:00:00Z</updated>
  <summary>합동참모본부는 북한이 오늘 오전 동해상으로 탄도미사일 한 발을 발사했다고 밝혔다. 군은 추가 발사에 대비해 감시와 경계를 강화하고 있다.</summary></entry>
<entry><title>Pyongyang says hotline will reopen next month</title><id>urn:asia:3</id>
  <link href="https://asia.example.com/hotline"/>
  <summary>State media said the communication lines with the South would be restored in early October.</summary></entry>
</feed>"""

TOPICS = """topics:
  - name: dprk
    query: '"North Korea" OR Pyongyang OR 북한'
  - name: missile_tests
    query: '(missile OR missiles OR 미사일) AND (test OR "test fires" OR fired OR 발사)'
"""


def run(feeds, topics, out, *extra):
    # The test server is on 127.0.0.1, which the address guard refuses by default.
    return main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--runner", "DirectRunner", "--allow-private-addresses", *extra])


def serve_sample(feed_server, folder):
    """The sample's two feeds on `feed_server` (wire without validators, a full
    200 every time; asia with an ETag, so it can answer 304), and its feed
    list and topics written into `folder`: (feeds, topics)."""
    feed_server.add("/wire.xml", WIRE)
    feed_server.add("/asia.atom", ASIA, etag='"asia-v1"', headers={"Content-Type": "application/atom+xml"})
    feeds = folder / "feeds.txt"
    feeds.write_text(f"{feed_server.url('/wire.xml')}\n{feed_server.url('/asia.atom')}\n")
    topics = folder / "topics.yaml"
    topics.write_text(TOPICS)
    return feeds, topics
