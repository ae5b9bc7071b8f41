"""Topic rules over the limits of the scans, and rules files that are slow
to report on, through `newswatch run` as a user starts it: exit code 2 and
one line naming the file, the line, the column and the topic, before any
work. A rule at the limits runs, with either scan (docs/query-language.md,
Limits)."""
import pandas as pd
import pytest

from pipeline.cli import main
from tests.support.sample import run


def _refused(tmp_path, capsys, topics_text):
    """Exit code and stderr of a run with this topics file; OUT must not
    have been touched."""
    topics = tmp_path / "topics.yaml"
    topics.write_text(topics_text, encoding="utf-8")
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("http://127.0.0.1:9/never-fetched.xml\n")
    out = tmp_path / "out"
    code = main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--runner", "DirectRunner"])
    captured = capsys.readouterr()
    assert not out.exists()
    assert captured.out == ""
    return code, captured.err, topics


def _column_of(text, marker):
    """1-based line and column of the first `marker` in `text`."""
    index = text.index(marker)
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def test_a_megabyte_word_is_a_one_line_config_error(tmp_path, capsys):
    content = ("topics:\n  - name: dprk\n    query: DPRK\n"
               "  - name: big\n    query: x OR " + "a" * (1 << 20) + "\n")
    code, err, path = _refused(tmp_path, capsys, content)
    line, col = _column_of(content, "a" * 100)
    assert code == 2
    assert err == (f"newswatch: error: topics file {path}, line {line}, column {col}: topic 'big': "
                   "a word or phrase may have at most 200 characters; this one has 1,048,576\n")


def test_a_200000_character_phrase_is_a_one_line_config_error(tmp_path, capsys):
    phrase = " ".join(["kim"] * 50_000) + "s"
    content = f"topics:\n  - name: long\n    query: >-\n      DPRK AND\n      \"{phrase}\"\n"
    code, err, path = _refused(tmp_path, capsys, content)
    line, col = _column_of(content, '"')
    assert (code, line, col) == (2, 5, 7)
    assert err == (f"newswatch: error: topics file {path}, line 5, column 7: topic 'long': "
                   "a word or phrase may have at most 200 characters; this one has 200,000\n")


def test_a_syntax_error_after_64000_escapes_is_reported_at_its_column(tmp_path, capsys):
    # Each \u00e9 is six characters in the file and one in the query. Mapping
    # the error's offset back to the file by searching forward from every
    # escape took 36 s for 16,000 of them, four times as long for twice as
    # many: 64,000 would take ten minutes or more. Walked once, it is instant.
    query = ("\\u00e9" * 100 + " ") * 640 + "(Kim"
    content = f'topics:\n  - name: accents\n    query: "{query}"\n'
    assert content.count("\\u00e9") == 64_000
    code, err, path = _refused(tmp_path, capsys, content)
    line, col = _column_of(content, "(")
    assert (code, line) == (2, 3)
    assert err == (f"newswatch: error: topics file {path}, line 3, column {col}: topic 'accents': "
                   "unbalanced parenthesis\n")


def test_a_total_over_the_limits_names_the_topic_that_crosses_it(tmp_path, capsys):
    wild = [f'"nord{i}* korea"' for i in range(301)]
    content = ("topics:\n"
               f"  - name: first\n    query: '{' OR '.join(wild[:200])}'\n"
               f"  - name: second\n    query: '{' OR '.join(wild[200:])}'\n")
    code, err, path = _refused(tmp_path, capsys, content)
    assert code == 2
    assert err == (f"newswatch: error: topics file {path}, line 4, column 5: topic 'second': with "
                   "this topic the rules have 301 phrases with a wildcard before their last word; "
                   "the limit for all topics together is 300\n")


LONG_NAME = "Aaaa" * 50     # a word of 200 characters
LONG_KOREAN = "북한" * 100  # 200 characters


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.usefixtures("matcher_engine")
def test_terms_at_the_limit_run_and_match(feed_server, tmp_path, capsys):
    feed_server.add("/feed.xml", f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example.org/</link>
<item><title>Who is {LONG_NAME}?</title><link>https://wire.example.org/1</link><guid>1</guid>
  <pubDate>Tue, 28 Sep 2021 01:00:00 GMT</pubDate></item>
<item><title>{LONG_KOREAN}은 발사했다</title><link>https://wire.example.org/2</link><guid>2</guid>
  <pubDate>Tue, 28 Sep 2021 02:00:00 GMT</pubDate></item>
<item><title>Nothing to see</title><link>https://wire.example.org/3</link><guid>3</guid>
  <pubDate>Tue, 28 Sep 2021 03:00:00 GMT</pubDate></item>
</channel></rss>""", headers={"Content-Type": "application/rss+xml"})
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(feed_server.url("/feed.xml") + "\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text(f"topics:\n  - name: long\n    query: {LONG_NAME.lower()} OR {LONG_KOREAN}\n",
                      encoding="utf-8")
    assert run(feeds, topics, tmp_path / "out") == 0
    stories = pd.read_parquet(tmp_path / "out" / "stories").sort_values("title")
    assert list(stories["title"]) == [f"Who is {LONG_NAME}?", f"{LONG_KOREAN}은 발사했다"]
    assert [list(t) for t in stories["matched_terms"]] == [[LONG_NAME.lower()], [LONG_KOREAN]]
