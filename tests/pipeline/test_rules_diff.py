"""`newswatch rules diff OLD NEW --output OUT`: a run with rules A archives
its entries; the diff of A against B over that archive must name, per
topic, exactly the stories a fresh run with B writes and the run with A did
not (entering) and the reverse (leaving), each with the term that made the
difference. Feeds over real HTTP on 127.0.0.1, Parquet read back with pandas."""
import json
import shutil
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from pipeline import dataset
from pipeline.cli import main
from tests.support.feedserver import FeedServer
from tests.support.sample import ASIA, WIRE, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# B against A: dprk gains 북한 (the Korean story enters) and loses Pyongyang
# (the hotline story leaves); the topic hotline is removed; sport and
# korean_missiles (a `language:` rule, through a topic: reference) are added.
RULES_A = """topics:
  - name: dprk
    query: '"North Korea" OR Pyongyang'
  - name: missile_tests
    query: '(missile OR missiles OR 미사일) AND (test OR "test fires" OR fired OR 발사)'
  - name: hotline
    query: hotline
"""
RULES_B = """topics:
  - name: dprk
    query: '"North Korea" OR 북한'
  - name: missile_tests
    query: '(missile OR missiles OR 미사일) AND (test OR "test fires" OR fired OR 발사)'
  - name: sport
    query: derby
  - name: korean_missiles
    query: 'topic:missile_tests AND language:ko'
"""
# An item without guid, link or date: its identity is its text, its fields null.
LOCAL = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local desk</title><link>https://local.example.net/</link>
<item><title>Derby day: roads close near the stadium</title>
  <description>Roads around the stadium close two hours before Sunday's derby kicks off.</description></item>
</channel></rss>"""
# The term whose addition or removal makes each topic's difference.
DIFFERENCE = {("dprk", "entering"): "북한", ("dprk", "leaving"): "Pyongyang",
              ("hotline", "leaving"): "hotline", ("sport", "entering"): "derby",
              ("korean_missiles", "entering"): "ko"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Runs with A (out_a, whose archive the diff reads) and, fresh, with B
    (out_b) over the same feeds; the topics files."""
    folder = tmp_path_factory.mktemp("rules_diff")
    with FeedServer() as server:
        server.add("/wire.xml", WIRE, headers={"Content-Type": "application/rss+xml"})
        server.add("/asia.atom", ASIA, headers={"Content-Type": "application/atom+xml"})
        server.add("/local.xml", LOCAL, headers={"Content-Type": "application/rss+xml"})
        feeds = folder / "feeds.txt"
        feeds.write_text("".join(f"{server.url(path)}\n" for path in ("/wire.xml", "/asia.atom", "/local.xml")))
        rules_a, rules_b = folder / "a.yaml", folder / "b.yaml"
        rules_a.write_text(RULES_A)
        rules_b.write_text(RULES_B)
        assert run(feeds, rules_a, folder / "out_a", "--run-id", "with-a", "--quiet") == 0
        assert run(feeds, rules_b, folder / "out_b", "--run-id", "with-b", "--quiet") == 0
        yield {"folder": folder, "feeds": feeds, "a": rules_a, "b": rules_b,
               "out_a": folder / "out_a", "out_b": folder / "out_b", "server": server}


def diff(capsys, *args):
    code = main(["rules", "diff", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ids_by_topic(out):
    stories = pd.read_parquet(out / "stories").explode("topics")
    return {topic: set(group["story_id"]) for topic, group in stories.groupby("topics")}


def expected_changes(world):
    """Per topic, from the stories the two runs wrote: (entering, leaving)."""
    with_a, with_b = ids_by_topic(world["out_a"]), ids_by_topic(world["out_b"])
    return {topic: (with_b.get(topic, set()) - with_a.get(topic, set()),
                    with_a.get(topic, set()) - with_b.get(topic, set()))
            for topic in sorted(set(with_a) | set(with_b))}


def as_json(capsys, *args):
    code, out, err = diff(capsys, *args, "--json", "--limit", "0")
    assert code == 0, err
    return json.loads(out)


def changes_of(document):
    return {t["topic"]: ({c["story_id"] for c in t["entering"]}, {c["story_id"] for c in t["leaving"]})
            for t in document["topics"]}


def test_entering_and_leaving_stories_are_those_of_a_fresh_run_with_the_new_rules(world, capsys):
    document = as_json(capsys, world["a"], world["b"], "--output", world["out_a"])
    expected = expected_changes(world)
    got = changes_of(document)
    # every kind of change is there, so the comparison below cannot pass empty
    assert expected["dprk"][0] and expected["dprk"][1]
    assert expected["hotline"][1] and expected["sport"][0] and expected["korean_missiles"][0]
    assert {t: c for t, c in got.items() if c != (set(), set())} == \
        {t: c for t, c in expected.items() if c != (set(), set())}
    status = {t["topic"]: t["status"] for t in document["topics"]}
    assert status == {"dprk": "changed", "hotline": "removed", "korean_missiles": "added",
                      "missile_tests": "same", "sport": "added"}
    # counts: old and new per topic are what each run wrote
    with_a, with_b = ids_by_topic(world["out_a"]), ids_by_topic(world["out_b"])
    for t in document["topics"]:
        assert t["old"] == len(with_a.get(t["topic"], ())) and t["new"] == len(with_b.get(t["topic"], ()))
        assert t["unchanged"] == len(with_a.get(t["topic"], set()) & with_b.get(t["topic"], set()))
    # each story names the term that made the difference, flagged new or gone
    for t in document["topics"]:
        for direction, flag in (("entering", "new"), ("leaving", "gone")):
            for change in t[direction]:
                differing = [term["term"] for term in change["terms"] if term[flag]]
                assert DIFFERENCE[(t["topic"], direction)] in differing, (t["topic"], change)
    assert document["entries"]["read"] == len(dataset.read_entries(world["out_a"]))
    assert document["entries"]["without_text"] == 0


def test_text_output_lists_each_story_with_its_reason(world, capsys):
    code, out, err = diff(capsys, world["a"], world["b"], "--output", world["out_a"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "(the last 30 days of the archive)" in lines[0]
    header = {line.split(":")[0]: line for line in lines if line.startswith("topic ")}
    assert header["topic dprk"].endswith("entering 1, leaving 1, unchanged 1")
    assert header["topic hotline (removed)"].startswith("topic hotline (removed): old 1, new 0")
    assert "topic sport (added)" in header and "topic korean_missiles (added)" in header
    stories = pd.concat([pd.read_parquet(world["out_a"] / "stories"), pd.read_parquet(world["out_b"] / "stories")])
    urls = {sid: url if isinstance(url, str) else "(no url)" for sid, url in zip(stories["story_id"], stories["url"])}
    expected = expected_changes(world)
    for topic, (entering, leaving) in expected.items():
        block = out.split(f"\ntopic {topic}")[1].split("\n\n")[0].splitlines()
        for sign, ids, direction in (("+", entering, "entering"), ("-", leaving, "leaving")):
            for story_id in ids:
                at = next(i for i, line in enumerate(block) if line.startswith(f"  {sign} ")
                          and line.endswith(urls[story_id]))
                reason = block[at + 1]
                assert reason.strip().startswith("NEW terms:" if sign == "+" else "OLD terms gone:")
                assert DIFFERENCE[(topic, direction)] in reason


def test_limit_caps_each_direction_and_says_how_many_more(world, capsys, tmp_path):
    # a topic that matches every story: more entering stories than the limit
    everything = tmp_path / "everything.yaml"
    everything.write_text(RULES_A + "  - name: all\n    query: 'the OR a OR 북한 OR Pyongyang OR derby'\n")
    full = as_json(capsys, world["a"], everything, "--output", world["out_a"])
    entering = next(t for t in full["topics"] if t["topic"] == "all")["entering"]
    assert len(entering) > 2
    code, out, _ = diff(capsys, world["a"], everything, "--output", world["out_a"], "--limit", "2", "--json")
    capped = next(t for t in json.loads(out)["topics"] if t["topic"] == "all")
    assert capped["entering"] == entering[:2] and capped["entering_more"] == len(entering) - 2
    assert capped["entering_count"] == len(entering)
    code, out, _ = diff(capsys, world["a"], everything, "--output", world["out_a"], "--limit", "2")
    block = out.split("\ntopic all (added)")[1].split("\n\n")[0]
    assert block.count("\n  + ") == 2 and f"  ... and {len(entering) - 2} more entering" in block
    # sorted by published date (undated last), then story_id
    order = [(c["published_at"] is None, c["published_at"] or "", c["story_id"]) for c in entering]
    assert order == sorted(order)


def test_versions_resolve_from_the_rules_archive(world, capsys, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out_a"], out)
    version_a = pd.read_parquet(out / "stories")["topics_version"].unique()
    assert len(version_a) == 1
    version_a = version_a[0]
    # the run stored its rules (transforms/rules_archive.py)
    assert (out / "_rules" / f"{version_a}.yaml").read_text() == RULES_A
    by_file = as_json(capsys, world["a"], world["b"], "--output", out)
    by_version = as_json(capsys, version_a, world["b"], "--output", out)
    assert by_version["old"]["stored_as"] == version_a and by_version["old"]["topics_version"] == version_a
    assert by_version["topics"] == by_file["topics"]
    code, text, _ = diff(capsys, version_a, world["b"], "--output", out)
    assert code == 0 and f"OLD: {version_a} (topics_version {version_a})" in text


def test_unknown_version_is_one_line_and_exit_2(world, capsys):
    code, out, err = diff(capsys, "0123456789abcdef", world["b"], "--output", world["out_a"])
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "rules diff: OLD" in err and "no version 0123456789abcdef" in err


def test_a_version_prefix_resolves_and_a_short_one_is_exit_2(world, capsys):
    version_a = pd.read_parquet(world["out_a"] / "stories")["topics_version"].unique()[0]
    whole = as_json(capsys, version_a, world["b"], "--output", world["out_a"])
    by_prefix = as_json(capsys, version_a[:6], world["b"], "--output", world["out_a"])
    assert by_prefix["old"]["stored_as"] == version_a and by_prefix["topics"] == whole["topics"]
    code, out, err = diff(capsys, version_a[:2], world["b"], "--output", world["out_a"])
    assert code == 2 and out == "" and err.count("\n") == 1 and "rules diff: OLD" in err


def test_a_reversed_range_is_exit_2(world, capsys):
    code, out, err = diff(capsys, world["a"], world["b"], "--output", world["out_a"],
                          "--since", "2026-12-10", "--until", "2026-12-01")
    assert code == 2 and out == "" and err.count("\n") == 1 and "is not before" in err


def test_rules_that_do_not_compile_stop_before_any_read(world, capsys, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out_a"], out)
    day = dataset.last_day(out, "entries")
    (out / "entries" / f"date={day}" / "zz-not-parquet.parquet").write_text("not a parquet file")
    code, _, err = diff(capsys, world["a"], world["b"], "--output", out)
    assert code == 1 and "rules diff failed" in err    # the archive, read, fails
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics:\n  - name: broken\n    query: 'missile NEAR/5'\n")
    code, stdout, err = diff(capsys, world["a"], bad, "--output", out)
    assert code == 2 and stdout == "" and err.count("\n") == 1
    assert err.startswith("newswatch: error: topics file") and "line 3" in err


def test_since_and_until_limit_the_partitions_read(world, capsys, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out_a"], out)
    entries = len(dataset.read_entries(out))
    last = datetime.now(timezone.utc).date()
    assert dataset.last_day(out, "entries") == last
    old = last - timedelta(days=60)
    # a file that cannot be read, in a partition 60 days before the archive's last day
    (out / "entries" / f"date={old}").mkdir()
    (out / "entries" / f"date={old}" / "zz-not-parquet.parquet").write_text("not a parquet file")

    def read(*window):
        code, text, err = diff(capsys, world["a"], world["b"], "--output", out, "--json", *window)
        return code, (json.loads(text)["entries"]["read"] if code == 0 else err)

    assert read() == (0, entries)                                   # the default: the last 30 days
    assert read("--since", str(old + timedelta(days=1))) == (0, entries)
    code, err = read("--since", str(old))
    assert code == 1 and "rules diff failed" in err
    assert read("--since", str(old - timedelta(days=10)), "--until", str(old - timedelta(days=1))) == (0, 0)
    assert read("--since", str(old - timedelta(days=10)), "--until", str(old))[0] == 1
    # --until alone: the 30 days before it
    assert read("--until", str(old + timedelta(days=29)))[0] == 1
    assert read("--until", str(old + timedelta(days=30)))[0] == 0  # old is the 31st day back


def test_entries_archived_without_text_are_counted_and_reported(world, capsys, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world["out_a"], out)
    # a second run archives the same entries without text (it writes no story: all seen before)
    assert run(world["feeds"], world["a"], out, "--run-id", "ids-only", "--archive-text", "none", "--quiet") == 0
    capsys.readouterr()
    archived = dataset.read_entries(out)
    without_text = int((archived.title.isna() & archived.summary.isna() & archived.content.isna()).sum())
    assert without_text == (archived.run_id == "ids-only").sum() > 0
    document = as_json(capsys, world["a"], world["b"], "--output", out)
    assert document["entries"]["read"] == len(archived)
    assert document["entries"]["without_text"] == without_text
    assert changes_of(document) == changes_of(as_json(capsys, world["a"], world["b"], "--output", world["out_a"]))
    code, text, _ = diff(capsys, world["a"], world["b"], "--output", out)
    assert code == 0
    assert f"{without_text} without text" in text
    assert f"note: {without_text} entries were archived without text (--archive-text none)" in text


def test_help_says_the_default_window(capsys):
    with pytest.raises(SystemExit) as done:
        main(["rules", "diff", "--help"])
    assert done.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "the last 30 days of the archive" in help_text and "--limit" in help_text
