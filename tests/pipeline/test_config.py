"""Feed lists and topic files: what users write, and clear errors when it is wrong."""
import os
import pty
import socket
import subprocess
import sys
import threading

import pandas as pd
import pytest

from pipeline.config import ConfigError, check_output_writable, load_feed_list, load_topic_definitions, load_topics
from tests.support.paths import ROOT, SEEDS
from tests.support.watchdog import returns_within
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


def test_runs_starting_together_both_create_the_output_folder(tmp_path):
    # Two runs sharing a new OUT both find it missing; the second mkdirs must
    # not turn into "cannot write to output" (CI met this under load).
    for round_ in range(10):
        out = str(tmp_path / f"out{round_}")
        barrier, errors = threading.Barrier(6), []

        def start():
            barrier.wait()
            try:
                check_output_writable(out)
            except ConfigError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=start) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


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


# ---------------------------------------------------------------- hostile topics files

def _refusal(tmp_path, content):
    """The one-line error for a topics file, and the file's path."""
    path = tmp_path / "t.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_topics(str(path))
    message = str(err.value)
    assert "\n" not in message and len(message) < 400
    return message, str(path)


def _laughs(levels):
    """A topics file whose last name is an alias that expands to 9**levels strings."""
    lines = ["topics:", "  - name: a", "    query: x",
             '    description: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines += [f"  - name: b{i}", "    query: x", f"    description: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]"]
    lines += [f"  - name: *l{levels - 1}", "    query: x"]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_where_they_are_used(tmp_path):
    # 9**6 strings once expanded: a few MB here, gigabytes with a few more levels
    content = _laughs(6)
    message, path = _refusal(tmp_path, content)
    line, col = _line_col_of(content, "*l0")
    assert message == (f"topics file {path}, line {line}, column {col}: YAML aliases (*l0) are not "
                       "accepted in a topics file; write the value out")
    message, path = _refusal(tmp_path, "topics:\n  - name: &n dprk\n    query: *n\n")
    assert message == (f"topics file {path}, line 3, column 12: YAML aliases (*n) are not "
                       "accepted in a topics file; write the value out")


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_is_accepted_up_to_64_levels_and_refused_beyond(tmp_path, style):
    def topics_file(levels):  # the root mapping, the list and the topic are 3 levels
        if style == "flow":
            nested = "[" * levels + "]" * levels
        else:
            nested = "\n" + "".join(" " * (6 + 2 * i) + "-" + ("\n" if i < levels - 1 else " x\n")
                                    for i in range(levels))
        return f"topics:\n  - name: a\n    query: x\n    description: {nested}\n"

    assert load_topic_definitions(_write(tmp_path, topics_file(61))) == [Topic("a", "x")]
    message, path = _refusal(tmp_path, topics_file(62))
    assert message.startswith(f"topics file {path}, line ")
    assert message.endswith(": lists and mappings nested deeper than 64 levels are not accepted")


def _write(tmp_path, content, name="t.yaml"):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


MB = 1 << 20


@pytest.mark.parametrize("content, where, reason", [
    # 1 MB each: a parser that were quadratic or worse in the depth or the
    # number of aliases would take hours here, not a fraction of a second
    ("topics: " + "[" * MB + "\n", "line 1, column 72", "nested deeper than 64 levels"),
    ("topics: " + "{a: " * (MB // 4) + "\n", "line 1, column 261", "nested deeper than 64 levels"),
    ("topics:\n" + "".join(" " * i + "-\n" for i in range(1, 1450)), "line 65, column 65",
     "nested deeper than 64 levels"),
    ("x: &a [1]\ntopics: [" + ", ".join(["*a"] * (MB // 4)) + "]\n", "line 2, column 10",
     "YAML aliases (*a) are not accepted"),
])
def test_a_megabyte_of_nesting_or_aliases_is_refused_at_once(tmp_path, content, where, reason):
    assert len(content) >= MB - 4096
    message, path = _refusal(tmp_path, content)
    assert message.startswith(f"topics file {path}, {where}: ") and reason in message


def test_an_error_after_half_a_megabyte_of_escapes_points_at_its_column(tmp_path):
    # Each \t is two characters in the file and one in the query: the column
    # is found by walking the escapes once, not once per character.
    content = 'topics:\n  - name: dprk\n    query: "' + "\\t" * (MB // 4) + '(Kim"\n'
    message, path = _refusal(tmp_path, content)
    line, col = _line_col_of(content, "(")
    assert message == f"topics file {path}, line {line}, column {col}: topic 'dprk': unbalanced parenthesis"


def test_very_long_scalars_load_and_their_errors_stay_short(tmp_path):
    query = " OR ".join(["missile"] * (MB // 8))  # 1.4 MB, a single scalar
    assert load_topic_definitions(_write(tmp_path, f"topics:\n  - name: big\n    query: '{query}'\n")) \
        == [Topic("big", query)]
    long_name = "n" * (MB // 4)
    message, path = _refusal(tmp_path, f"topics:\n  - name: {long_name}\n    query: a\n"
                                       f"  - name: {long_name}\n    query: b\n")
    assert message == (f"topics file {path}, line 4, column 5: topic '{'n' * 60}'... "
                       f"(262,144 characters): duplicate name")
    message, path = _refusal(tmp_path, "k" * (MB // 16) + ": x\n")  # a key longer than YAML allows
    assert message.startswith(f"topics file {path} is not valid YAML: ")


@pytest.mark.parametrize("content, where, reason", [
    ("topics:\n  - name: " + "9" * 5000 + "\n    query: x\n", "line 2, column 11",
     "value cannot be read: Exceeds the limit (4300 digits) for integer string conversion"),
    ("topics:\n  - name: a\n    description: 2024-13-45\n    query: x\n", "line 3, column 18",
     "value cannot be read: month must be in 1..12"),
    ("topics:\n  - name: [a, b]\n    query: x\n", "line 2, column 5",
     "topic #1: the name must be text, not a list or mapping"),
])
def test_values_python_cannot_build_are_one_line_errors(tmp_path, content, where, reason):
    message, path = _refusal(tmp_path, content)
    assert message.startswith(f"topics file {path}, {where}: {reason}")


@pytest.mark.parametrize("load, what", [(load_topics, "topics file"), (load_feed_list, "feed list")])
def test_a_file_that_is_not_utf8_names_its_line(tmp_path, load, what):
    path = tmp_path / "latin1"
    path.write_bytes("topics:\n  - name: fr\n    query: Corée\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert str(err.value) == f"{what} {path}, line 3: not UTF-8 text (byte 0xe9 at offset 35)"


# ---------------------------------------------------------------- special files and standard input

@pytest.mark.parametrize("load, what", [(load_feed_list, "feed list"), (load_topics, "topics file")])
def test_a_fifo_is_refused_without_opening_it(tmp_path, load, what):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as err:
        returns_within(20, lambda: load(str(fifo)), fifo)
    hint = "; give - to read the feed list from standard input" if what == "feed list" else ""
    assert str(err.value) == f"{what} {fifo} is a named pipe (FIFO), not a regular file{hint}"


@pytest.mark.parametrize("load, what", [(load_feed_list, "feed list"), (load_topics, "topics file")])
def test_directories_devices_and_sockets_are_refused(tmp_path, load, what):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "sock"))
    try:
        for path, kind in [(tmp_path, "a directory"), ("/dev/null", "a character device"),
                           ("/dev/zero", "a character device"), (tmp_path / "sock", "a socket")]:
            with pytest.raises(ConfigError) as err:
                returns_within(20, lambda: load(str(path)))
            assert str(err.value).startswith(f"{what} {path} is {kind}, not a regular file")
    finally:
        server.close()


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    target = tmp_path / "feeds.txt"
    target.write_text("https://a.example/rss\n")
    (tmp_path / "link").symlink_to(target)
    assert [f.url for f in load_feed_list(str(tmp_path / "link"))] == ["https://a.example/rss"]


@pytest.fixture
def stdin_from(monkeypatch):
    """Makes standard input a real pipe carrying the given bytes."""
    opened = []

    def feed(data: bytes):
        read_end, write_end = os.pipe()
        os.write(write_end, data)
        os.close(write_end)
        stream = open(read_end, "r", encoding="utf-8")
        opened.append(stream)
        monkeypatch.setattr(sys, "stdin", stream)

    yield feed
    for stream in opened:
        stream.close()


def test_the_feed_list_can_come_from_standard_input(tmp_path, monkeypatch, stdin_from):
    monkeypatch.chdir(tmp_path)
    stdin_from(b"# generated\nhttps://a.example/rss\nfeeds/local.xml\n")
    assert [f.url for f in load_feed_list("-")] == [str(tmp_path / "feeds" / "local.xml"), "https://a.example/rss"]
    stdin_from(OPML.encode())
    assert [f.title for f in load_feed_list("-")] == ["Local copy", "World wire"]
    stdin_from(b"")
    with pytest.raises(ConfigError, match=r"^feed list \(standard input\) names no feeds$"):
        load_feed_list("-")


def test_a_terminal_on_standard_input_is_refused_not_waited_for(monkeypatch):
    leader, follower = pty.openpty()
    terminal = open(follower, "r")
    monkeypatch.setattr(sys, "stdin", terminal)
    try:
        with pytest.raises(ConfigError) as err:
            returns_within(20, lambda: load_feed_list("-"))
        assert str(err.value).startswith("feed list (standard input) is a terminal: pipe the feed list in")
    finally:
        terminal.close()
        os.close(leader)


def test_topics_cannot_come_from_standard_input():
    with pytest.raises(ConfigError) as err:
        load_topics("-")
    assert str(err.value) == "topics file cannot be read from standard input (-): only the feed list can; give a file"


# ---------------------------------------------------------------- the same through the command line

def _newswatch(args, timeout=120, **kwargs):
    """`python -m pipeline` in a child process: a regression that blocks fails here, it does not hang."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_GCE_CHECK="true")
    try:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=kwargs.pop("cwd", ROOT), env=env,
                              capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"newswatch {' '.join(args)} still running after {timeout} s")


@pytest.mark.integration
@pytest.mark.parametrize("option", ["--feeds", "--topics"])
def test_a_fifo_on_the_command_line_is_a_config_error_before_any_work(tmp_path, option):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    given = {"--feeds": str(SEEDS / "feeds.opml"), "--topics": str(SEEDS / "topics.yaml"), option: str(fifo)}
    proc = _newswatch(["run", "--feeds", given["--feeds"], "--topics", given["--topics"],
                       "--output", str(tmp_path / "out"), "--runner", "DirectRunner"])
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("newswatch: error: ") and f"{fifo} is a named pipe (FIFO), not a regular file" in line
    assert not (tmp_path / "out").exists()


# The child caps its own address space before reading the topics file, so a
# regression dies of MemoryError instead of taking the machine's memory.
CAPPED_MAIN = """
import resource, sys
from pipeline.cli import main
with open("/proc/self/status") as status:
    size = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (512 << 20), size + (512 << 20)))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.integration
def test_a_670_byte_billion_laughs_is_a_one_line_config_error(tmp_path):
    topics = tmp_path / "topics.yaml"
    topics.write_text(_laughs(9))  # 9**9 strings once expanded: gigabytes
    assert topics.stat().st_size < 1000
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_GCE_CHECK="true")
    proc = subprocess.run([sys.executable, "-c", CAPPED_MAIN, "run", "--feeds", str(SEEDS / "feeds.opml"),
                           "--topics", str(topics), "--output", str(tmp_path / "out"), "--runner", "DirectRunner"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"newswatch: error: topics file {topics}, line ")
    assert line.endswith("YAML aliases (*l0) are not accepted in a topics file; write the value out")
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_a_generated_feed_list_piped_into_feeds_dash(tmp_path):
    # generate | newswatch run --feeds - ...: relative paths are the working directory's
    listing = "\n".join(["# from a generator", "voa_east_asia.xml", "yonhap_ko.xml"]) + "\n"
    proc = _newswatch(["run", "--feeds", "-", "--topics", "topics.yaml", "--output", str(tmp_path / "out"),
                       "--runner", "DirectRunner"], timeout=300, cwd=SEEDS, input=listing)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fetches = pd.read_parquet(tmp_path / "out" / "fetches")
    assert sorted(fetches["feed_url"]) == [str(SEEDS / "voa_east_asia.xml"), str(SEEDS / "yonhap_ko.xml")]
    assert fetches["error"].isna().all()
    stories = pd.read_parquet(tmp_path / "out" / "stories")
    assert len(stories) > 0 and set(stories["feed_url"]) <= set(fetches["feed_url"])


@pytest.mark.parametrize("flags, reason", [
    (["--output", ""], "--output is empty"),
    (["--output", "   "], "--output is empty"),
    (["--wait-for-lease", "-1"], "--wait-for-lease must be zero or a positive"),
    (["--lease-ttl", "0.5"], "--lease-ttl must be at least 1 second"),
], ids=["empty-output", "blank-output", "negative-wait", "tiny-ttl"])
def test_output_and_lease_options_are_checked_before_any_work(flags, reason, tmp_path, capsys, monkeypatch):
    """An unset $OUT in a cron line (`--output ''`) must not mean the filesystem
    root: refused with one line and exit 2, and nothing is written anywhere."""
    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    base = ["run", "--feeds", str(SEEDS / "feeds.opml"), "--topics", str(SEEDS / "topics.yaml"),
            "--output", str(tmp_path / "out"), "--runner", "DirectRunner"]
    assert main(base + flags) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and reason in err
    assert list(tmp_path.iterdir()) == []
