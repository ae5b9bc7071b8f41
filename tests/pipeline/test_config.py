"""Feed lists and topic files: what users write, and clear errors when it is wrong."""
import pytest

from pipeline.config import ConfigError, check_output_writable, load_feed_list, load_topic_definitions, load_topics
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


# ---------------------------------------------------------------- topic rules: where the error is

def _error_for(tmp_path, content):
    path = tmp_path / "t.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_topics(str(path))
    return str(err.value), str(path)


def _line_col_of(content, marker):
    """1-based line and column of the first `marker` character in `content`."""
    index = content.index(marker)
    line = content.count("\n", 0, index) + 1
    return line, index - content.rfind("\n", 0, index)


@pytest.mark.parametrize("content", [
    # the unbalanced "(" is the character the error must point at
    "topics:\n  - name: dprk\n    query: DPRK OR (Kim AND missile\n",
    "topics:\n  - name: dprk\n    query: 'it''s DPRK OR (Kim'\n",
    'topics:\n  - name: dprk\n    query: "DPRK OR\\t(Kim"\n',
    "topics:\n  - name: ok\n    query: x\n  - name: dprk\n    query: >-\n      \"North Korea\" OR\n"
    "      DPRK OR\n      (Kim AND missile\n",
    "topics:\n  - name: dprk\n    query: |\n      DPRK OR\n        (Kim\n",
    "dprk: 'DPRK OR (Kim'\n",
    "dprk:\n  query: >\n    DPRK\n    OR (Kim\n",
])
def test_query_errors_point_at_line_and_column_in_the_file(tmp_path, content):
    message, path = _error_for(tmp_path, content)
    line, col = _line_col_of(content, "(")
    assert message == (f"topics file {path}, line {line}, column {col}: "
                       "topic 'dprk': unbalanced parenthesis")


def test_reference_errors_point_at_the_reference(tmp_path):
    content = "topics:\n  - name: a\n    query: x OR topic:b\n  - name: b\n    query: y AND topic:a\n"
    message, path = _error_for(tmp_path, content)
    line, col = _line_col_of(content, "topic:a")
    assert message == f"topics file {path}, line {line}, column {col}: topic 'b': reference cycle a -> b -> a"


@pytest.mark.parametrize("query, reason", [
    ("''", "empty query"),
    ('\'"North Korea\'', "unbalanced quote"),
    ("'(DPRK OR Pyongyang'", "unbalanced parenthesis"),
    ("'DPRK)'", "unexpected ')'"),
    ("missile NEAR/5", "expected a term after NEAR/5"),
    ("NEAR/5 test", "expected a term before NEAR/5"),
    ("'a NEAR b'", "write NEAR/n with a whole number n, in upper case (NEAR/5); quote the term to search for it"),
    ("headline:missile", "unknown field 'headline:'; use title:, summary:, content:, source:, language: or "
                         "topic: (quote the term to search for it)"),
    ("topic:dprk OR DPRK", "refers to itself (topic:dprk)"),
    ("topic:nothing", "unknown topic 'nothing' in topic:nothing"),
    ('"DPRK\\x07 missile"', "invisible control character U+0007 in the query; retype the term"),
    ('"Kim\\u200bJong"', "invisible control character U+200B in the query; retype the term"),
    ("'language:korean'", "language: needs an ISO 639-1 code such as en, ko or zh, not 'korean'"),
])
def test_bad_queries_are_one_line_errors_naming_topic_line_and_column(tmp_path, query, reason):
    message, path = _error_for(tmp_path, f"topics:\n  - name: dprk\n    query: {query}\n")
    assert message.startswith(f"topics file {path}, line 3, column ")
    assert message.endswith(f": topic 'dprk': {reason}")
    assert "\n" not in message


@pytest.mark.parametrize("content, message", [
    ("topics:\n  - name: a\n    query: x\n  - name: a\n    query: y\n", "line 4, column 5: topic 'a': duplicate name"),
    ("a: x\nb: y\na: z\n", "line 1, column 1: topic 'a': duplicate name"),
    ("topics:\n  - name: a\n    qurey: x\n", "line 2, column 5: topic #1 needs a 'name' and a 'query'"),
    ("topics:\n  - name: a\n    query: x\n    fold_accent: true\n",
     "line 2, column 5: topic 'a': unknown key 'fold_accent' (a topic has name, query, description, "
     "fold_accents)"),
    ("topics:\n  - name: a\n    query: x\n    fold_accents: maybe\n",
     "line 2, column 5: topic 'a': fold_accents must be true or false"),
    ("topics:\n  - name: a\n    query: [1, 2]\n", "line 3, column 12: topic 'a' has a query that is not text"),
])
def test_bad_topic_entries_name_their_line(tmp_path, content, message):
    text, path = _error_for(tmp_path, content)
    assert text == f"topics file {path}, {message}"


def test_a_raw_control_character_is_a_one_line_yaml_error(tmp_path):
    text, path = _error_for(tmp_path, "topics:\n  - name: a\n    query: 'DPRK\x07'\n")
    assert text.startswith(f"topics file {path} is not valid YAML: ") and "\n" not in text


def test_fold_accents_and_descriptions_are_read(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("topics:\n  - name: fr\n    description: x\n    fold_accents: true\n    query: Corée\n",
                    encoding="utf-8")
    assert load_topics(str(path)) == [Topic("fr", "Corée", fold_accents=True)]


def test_ten_thousand_term_topic_loads(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("topics:\n  - name: big\n    query: '" + " OR ".join(f"w{i}" for i in range(10_000)) + "'\n")
    assert len(load_topics(str(path))[0].query) > 50_000


def test_references_that_expand_too_far_are_refused(tmp_path):
    # Each level doubles the one below: 2**20 terms once expanded.
    lines = ["topics:", "  - name: t0", "    query: a OR b"]
    for i in range(1, 21):
        lines += [f"  - name: t{i}", f"    query: topic:t{i - 1} OR title:topic:t{i - 1}"]
    message, path = _error_for(tmp_path, "\n".join(lines) + "\n")
    assert message.endswith("topic 't15': 65,536 terms once topic: references are expanded; the limit is 50,000")
