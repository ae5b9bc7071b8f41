"""Feed lists and topic files: what users write, and clear errors when it is wrong."""
import pytest

from pipeline.config import ConfigError, check_output_writable, load_feed_list, load_topic_definitions
from transforms.topics import Topic

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My feeds</title></head><body>
  <outline text="News" title="News">
    <outline type="rss" text="World" title="World wire" xmlUrl="https://news.example.org/world.rss"/>
    <outline type="rss" text="Local copy" xmlurl="feeds/local.xml"/>
    <outline text="folder without feed"/>
  </outline>
  <outline type="rss" text="dup" xmlUrl="https://news.example.org/world.rss"/>
</body></opml>"""


def test_opml_export_lists_feeds_and_resolves_relative_paths(tmp_path):
    path = tmp_path / "lists" / "feeds.opml"
    path.parent.mkdir()
    path.write_text(OPML)
    feeds = load_feed_list(str(path))
    assert [f.url for f in feeds] == [str(tmp_path / "lists" / "feeds" / "local.xml"),
                                      "https://news.example.org/world.rss"]
    assert feeds[1].title == "World wire"


def test_text_list_with_comments_blank_lines_and_file_urls(tmp_path):
    path = tmp_path / "feeds.txt"
    path.write_text("# my feeds\n\nhttps://a.example/rss  # the A feed\n  local.xml\nfile:///abs/x.xml\n")
    assert [f.url for f in load_feed_list(str(path))] == [
        "/abs/x.xml", str(tmp_path / "local.xml"), "https://a.example/rss"]


@pytest.mark.parametrize("content,message", [
    ("# only comments\n", "names no feeds"),
    ("<opml><body><outline", "not valid OPML"),
    ("ftp://old.example/feed\n", "unsupported feed location"),
])
def test_bad_feed_lists_are_config_errors(tmp_path, content, message):
    path = tmp_path / "feeds.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_feed_list(str(path))


def test_missing_feed_list(tmp_path):
    with pytest.raises(ConfigError, match="cannot read feed list"):
        load_feed_list(str(tmp_path / "nope.opml"))


def test_topics_as_list_or_mapping(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("topics:\n  - name: dprk\n    query: DPRK OR Pyongyang\n")
    b = tmp_path / "b.yaml"
    b.write_text("dprk: DPRK OR Pyongyang\nmissiles:\n  query: missile\n")
    assert load_topic_definitions(str(a)) == [Topic("dprk", "DPRK OR Pyongyang")]
    assert load_topic_definitions(str(b)) == [Topic("dprk", "DPRK OR Pyongyang"), Topic("missiles", "missile")]


@pytest.mark.parametrize("content,message", [
    ("topics: [\n", "not valid YAML"),
    ("topics: []\n", "defines no topics"),
    ("topics:\n  - name: x\n", "needs a 'name' and a 'query'"),
    ("topics:\n  - name: x\n    query: [1, 2]\n", "not text"),
])
def test_bad_topic_files_are_config_errors(tmp_path, content, message):
    path = tmp_path / "t.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_topic_definitions(str(path))


def test_unwritable_output_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write to output"):
        check_output_writable(str(blocker / "out"))
    check_output_writable(str(tmp_path / "new" / "out"))
    assert (tmp_path / "new" / "out").is_dir()
    assert list((tmp_path / "new" / "out").iterdir()) == []
