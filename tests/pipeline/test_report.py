"""`newswatch report` on real runs: the sample's feeds (wire without
validators, asia with an ETag so its second fetch is a 304), a feed whose
items carry a <script> title and a javascript: link, and a feed that
answers 404, fetched by two batch runs on the local feed server; plus one
stories file with a 10 MB title and text written beside them. The page is
opened in headless Chromium (Debian's package) over the DevTools protocol.
"""
import html
import html.parser
import struct
import sys
from base64 import b64decode
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import report
from pipeline.cli import main
from pipeline.dataset import read_fetches, read_matches, read_stories
from pipeline.report import tables as report_tables
from pipeline.report.tables import SHOWN_CHARS, with_fetch_columns
from tests.support.browser import Browser, find_chromium
from tests.support.feedserver import FeedServer
from tests.support.sample import run, serve_sample
from transforms.schema import STORIES_SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTILE_TITLE = 'North Korea <script>window.pwned = 1</script><img src=x onerror="window.pwned=2"> "quoted" & more'
HOSTILE_URL = "javascript:window.pwned=3//north-korea"
# The title as text (an article about markup): escaped once for the XML and
# once for the HTML that feed titles may hold, so the pipeline keeps it.
HOSTILE = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile &amp;lt;b&amp;gt;desk&amp;lt;/b&amp;gt;</title><link>https://hostile.example/</link>
<item><title>{html.escape(html.escape(HOSTILE_TITLE))}</title>
  <link>{HOSTILE_URL}</link><guid>hostile-1</guid>
  <description>Pyongyang said so on Monday.</description>
  <pubDate>Mon, 27 Sep 2021 08:00:00 GMT</pubDate></item>
<item><title>North Korea fired a missile, officials said</title>
  <link>https://hostile.example/a?x=1&amp;y="2"</link><guid>hostile-2</guid>
  <description>North Korea fired a ballistic missile on Monday.</description>
  <pubDate>Mon, 27 Sep 2021 09:00:00 GMT</pubDate></item>
</channel></rss>"""
HUGE_CHARS = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """OUT after runs r1 and r2 of the same feeds, and a stories file of
    another writer holding one story with a 10 MB title and content."""
    folder = tmp_path_factory.mktemp("report")
    out = folder / "out"
    with FeedServer() as server:
        feeds, topics = serve_sample(server, folder)
        server.add("/hostile.xml", HOSTILE)
        server.add("/gone.xml", "not here", status=404)
        feeds.write_text(feeds.read_text() + server.url("/hostile.xml") + "\n" + server.url("/gone.xml") + "\n")
        assert run(feeds, topics, out, "--run-id", "r1") == 0
        assert run(feeds, topics, out, "--run-id", "r2") == 0
        urls = {name: server.url(f"/{name}") for name in ("wire.xml", "asia.atom", "hostile.xml", "gone.xml")}
    write_huge_story(out)
    return {"out": out, "urls": urls, "folder": folder}


def write_huge_story(out):
    when = pd.Timestamp("2021-09-26 12:00", tz="UTC").to_pydatetime()
    text = "North Korea " + "x" * HUGE_CHARS
    row = {name: None for name in STORIES_SCHEMA.names}
    row.update(story_id="huge-1", url="https://huge.example/" + "p" * 5000, title=text, content=text,
               published_at=when, fetched_at=when, feed_url="https://huge.example/feed", source="huge.example",
               language="en", topics=["dprk"], matched_terms=["North Korea"], run_id="other",
               matches=[{"topic": "dprk", "term": "North Korea", "field": "title", "offset": 0}])
    folder = out / "stories" / "date=2021-09-26"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([row], schema=STORIES_SCHEMA), folder / "other-huge-000.parquet")


@pytest.fixture(scope="module")
def made(world):
    """`newswatch report` with --html and --csv on the world's output."""
    page, tables = world["folder"] / "report.html", world["folder"] / "tables"
    assert main(["report", "--output", str(world["out"]), "--html", str(page), "--csv", str(tables)]) == 0
    return {"page": page, "html": page.read_text(encoding="utf-8"), "csv": tables,
            "tables": report.build(world["out"])}


# --------------------------------------------------------------------------- the tables


def test_stories_per_topic_per_day_count_every_story_under_each_topic(world, made):
    stories = read_stories(world["out"])
    expected = stories.explode("topics").groupby(["date", "topics"]).size()
    counted = made["tables"].stories_per_day.set_index(["date", "topic"])["stories"]
    assert counted.sort_index().to_dict() == expected.sort_index().to_dict()
    assert counted.sum() == sum(len(t) for t in stories.topics)


def test_top_sources_rank_each_topic_s_sources(world):
    stories = read_stories(world["out"])
    top = report.build(world["out"], top=2).top_sources
    for topic, rows in top.groupby("topic"):
        of_topic = stories[stories.topics.map(lambda t: topic in t)]
        counts = of_topic.source.value_counts()
        assert list(rows["rank"]) == list(range(1, min(2, len(counts)) + 1))
        assert list(rows.stories) == sorted(counts, reverse=True)[:2]
        assert all(counts[s] == n for s, n in zip(rows.source, rows.stories))
        assert rows.share.tolist() == pytest.approx([n / len(of_topic) for n in rows.stories])
    assert set(top.topic) == {t for ts in stories.topics for t in ts}


def test_language_mix_counts_every_story_once(world, made):
    stories = read_stories(world["out"])
    languages = made["tables"].languages
    assert languages.set_index("language")["stories"].to_dict() == stories.language.value_counts().to_dict()
    assert {"en", "ko"} <= set(languages.language) and languages.share.sum() == pytest.approx(1)


def test_the_newest_stories_per_topic_say_why_they_matched(world):
    tables = report.build(world["out"], newest=3)
    stories = read_stories(world["out"])
    matches = read_matches(world["out"])
    when = stories.published_at.fillna(stories.fetched_at)
    for topic, rows in tables.newest.groupby("topic"):
        of_topic = stories[stories.topics.map(lambda t: topic in t)]
        expected = when[of_topic.index].sort_values(ascending=False).head(3)
        assert list(rows.published_at) == list(expected)
        for row in rows.itertuples():
            terms = matches[(matches.story_id == row.story_id) & (matches.topic == topic)]
            assert row.why == "; ".join(dict.fromkeys(f"{t} ({f})" for t, f in zip(terms.term, terms.field)))
    assert len(tables.newest.groupby("topic").size()) == len({t for ts in stories.topics for t in ts})


def test_feed_health_names_failing_and_silent_feeds_304s_and_last_successes(world, made):
    urls = world["urls"]
    feeds = made["tables"].feeds.set_index("feed_url")
    fetches = read_fetches(world["out"])
    assert set(feeds.index) == set(fetches.feed_url) == set(urls.values())
    # the 404: failing, its last error, never a success
    gone = feeds.loc[urls["gone.xml"]]
    assert gone.failing and gone.failures == 2 and gone.last_status == 404
    assert gone.last_error == fetches[fetches.feed_url == urls["gone.xml"]].sort_values("fetched_at").error.iloc[-1]
    assert "404" in gone.last_error and pd.isna(gone.last_success_at)
    assert list(made["tables"].failing.feed_url) == [urls["gone.xml"]]
    assert made["tables"].feeds.feed_url.iloc[0] == urls["gone.xml"]         # worst first
    # asia has an ETag: its second request was a 304
    assert feeds.loc[urls["asia.atom"], "not_modified_share"] == 0.5
    assert feeds.loc[urls["wire.xml"], "not_modified_share"] == 0.0
    assert feeds.loc[urls["wire.xml"], "last_success_at"] == fetches[fetches.feed_url == urls["wire.xml"]].fetched_at.max()
    assert feeds.loc[urls["wire.xml"], "feed_title"] == "Wire"
    # silent for 3 days before the latest fetch: every feed whose stories are from 2021;
    # asia's undated story counts at the time it was fetched
    assert set(made["tables"].silent.feed_url) == {urls["wire.xml"], urls["hostile.xml"], urls["gone.xml"]}
    patient = report.build(world["out"], silent_days=365 * 20)
    assert set(patient.silent.feed_url) == {urls["gone.xml"]}                   # no story at all
    summary = made["tables"].summary.set_index("measure")["value"]
    made_requests = fetches[fetches.skipped_until.isna()]
    assert summary["304 share"] == f"{(made_requests.status == 304).sum() / len(made_requests):.1%}"
    assert summary["failing feeds"] == "1" and summary["dead letters"] == "2"


def test_columns_the_fetches_lack_read_as_missing_and_show_once_they_exist(world):
    fetches = read_fetches(world["out"])
    for name in report_tables.OPTIONAL_FETCH_COLUMNS:
        if name in fetches.columns:
            fetches = fetches.drop(columns=name)
    padded = with_fetch_columns(fetches)
    assert set(report_tables.OPTIONAL_FETCH_COLUMNS) <= set(padded.columns)
    assert padded[list(report_tables.OPTIONAL_FETCH_COLUMNS)].isna().all().all()
    stories = read_stories(world["out"], columns=report.STORY_COLUMNS)
    errors = pd.DataFrame({"feed_url": pd.Series(dtype=object)})
    as_of = fetches.fetched_at.max()
    without = report_tables.feed_health(fetches, stories, errors, as_of).set_index("feed_url")
    assert without.last_error_category.isna().all() and (without.parse_warnings == 0).all()
    # the columns of schema v4 (error_category, feed_title, parse_warning) reach the table as given
    gone = fetches.feed_url == world["urls"]["gone.xml"]
    wire = fetches.feed_url == world["urls"]["wire.xml"]
    given = fetches.assign(error_category=fetches.error.str.split(":").str[0].where(gone).astype("string"),
                           feed_title=pd.Series("Wire title from fetches", index=fetches.index).where(wire),
                           parse_warning=wire)
    health = report_tables.feed_health(given, stories, errors, as_of).set_index("feed_url")
    assert health.loc[world["urls"]["gone.xml"], "last_error_category"] == "http_status"
    assert health.loc[world["urls"]["wire.xml"], "parse_warnings"] == 2
    assert health.loc[world["urls"]["wire.xml"], "feed_title"] == "Wire title from fetches"


def test_csv_files_hold_the_same_tables(made):
    for name, frame in made["tables"].named().items():
        written = pd.read_csv(made["csv"] / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(written.columns) == list(frame.columns), name
        assert len(written) == len(frame), name
    per_day = pd.read_csv(made["csv"] / "stories_per_day.csv")
    assert per_day.stories.sum() == made["tables"].stories_per_day.stories.sum()
    health = pd.read_csv(made["csv"] / "feed_health.csv")
    assert health.failing.tolist() == made["tables"].feeds.failing.tolist()
    assert pd.to_datetime(health.last_fetch_at).tolist() == made["tables"].feeds.last_fetch_at.tolist()


def test_since_and_until_narrow_every_table(world):
    day = report.build(world["out"], since="2021-09-28", until="2021-09-28")
    assert {str(d) for d in day.stories_per_day.date} == {"2021-09-28"}
    assert day.feeds.empty and day.silent.empty        # no fetch happened that day
    later = report.build(world["out"], since=read_fetches(world["out"]).fetched_at.min() - timedelta(seconds=1))
    assert set(later.feeds.feed_url) == set(world["urls"].values())


# --------------------------------------------------------------------------- the page


class _Page(html.parser.HTMLParser):
    """The tags and attributes of a page."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_page_is_one_file_with_its_images_inside_and_nothing_to_load_or_run(made):
    page = _Page()
    page.feed(made["html"])
    tags = page.tags
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == 2                              # stories per day, languages
    for src in images:
        assert src.startswith("data:image/png;base64,")
        width, height = png_size(b64decode(src.split(",", 1)[1]))
        assert width > 100 and height > 100
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed", "form", "base")]
    assert not [a for _, a in tags for name in a if name.startswith("on")]          # no event handlers
    assert not [a for t, a in tags if t != "img" and "src" in a]
    hrefs = [a["href"] for t, a in tags if t == "a"]
    assert hrefs and all(h.startswith(("http://", "https://", "#")) for h in hrefs)
    csp = [a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    ids = [a["id"] for t, a in tags if t == "section"]
    assert ids == ["summary", "stories-per-day", "top-sources", "languages", "newest", "feed-health"]


def test_hostile_titles_and_urls_are_shown_as_text(made):
    text = made["html"]
    assert "<script>window.pwned" not in text and "onerror=\"window" not in text
    assert "North Korea &lt;script&gt;window.pwned = 1&lt;/script&gt;&lt;img src=x onerror=&quot;" in text
    assert 'href="javascript:' not in text.lower()
    assert "(javascript:window.pwned=3//north-korea)" in text           # shown, not linked
    assert 'href="https://hostile.example/a?x=1&amp;y=&quot;2&quot;"' in text
    assert "Hostile &lt;b&gt;desk&lt;/b&gt;" in text                    # the feed's title, escaped


def test_a_story_with_10_mb_of_text_is_shown_cut(made, world):
    assert read_stories(world["out"], columns=["title"]).title.map(len).max() > HUGE_CHARS   # stored whole
    assert len(made["page"].read_bytes()) < 2_000_000
    huge = made["tables"].newest[made["tables"].newest.story_id == "huge-1"]
    assert len(huge) == 1 and len(huge.title.iloc[0]) == SHOWN_CHARS and huge.title.iloc[0].endswith("\u2026")
    assert "North Korea " + "x" * (SHOWN_CHARS - len("North Korea ") - 1) + "\u2026" in made["html"]
    assert "x" * SHOWN_CHARS not in made["html"]
    # Its 5,021-character URL is cut where shown, never where it leads (page and CSV).
    url = "https://huge.example/" + "p" * 5000
    assert huge.url.iloc[0] == url
    assert f'href="{url}"' in made["html"] and f">{url}<" not in made["html"]
    assert url in (made["csv"] / "newest_stories.csv").read_text(encoding="utf-8")


@pytest.mark.skipif(find_chromium() is None,
                    reason="no chromium on PATH: install Debian's package (apt-get install chromium), "
                           "as .ci/run does")
def test_chromium_renders_every_section_and_image_and_runs_nothing(made, tmp_path):
    with Browser() as browser:
        page = browser.open(made["page"])
        page.evaluate("Promise.all([...document.images].map(i => i.decode()))")
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight, "
                               "i.getBoundingClientRect().width])")
        sections = page.evaluate("[...document.querySelectorAll('section')].map(s => "
                                 "[s.id, s.querySelector('h2').innerText, s.getBoundingClientRect().height])")
        links = page.evaluate("[...document.links].map(a => a.protocol)")
        pwned = page.evaluate("typeof window.pwned")
        shown = page.evaluate("document.body.innerText")
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot = page.screenshot(tmp_path / "report.png")
    assert len(images) == 2
    for complete, width, height, shown_width in images:
        assert complete and width > 100 and height > 100 and shown_width > 100
    assert [s[0] for s in sections] == ["summary", "stories-per-day", "top-sources", "languages", "newest",
                                        "feed-health"]
    assert all(height > 20 for _, _, height in sections)
    assert set(links) <= {"http:", "https:", "file:"}    # file: the page's own #anchors
    assert pwned == "undefined"
    assert HOSTILE_TITLE in shown                        # the hostile title, as text
    assert fits                                          # long words wrap: no sideways scrolling
    width, height = png_size(shot.read_bytes())
    assert width >= 1000 and height > 2000               # the whole page


def test_a_report_on_s3_is_the_report_on_disk(world, s3, tmp_path):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(s3.use_from_beam()))
    root = f"s3://{s3.bucket}/report/out"
    for path in sorted(world["out"].rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            with FileSystems.create(f"{root}/{path.relative_to(world['out']).as_posix()}") as handle:
                handle.write(path.read_bytes())
    FileSystems.set_options(PipelineOptions([]))             # the command line sets them again
    assert main(["report", "--output", root, "--csv", str(tmp_path / "s3"), *s3.use_from_beam()]) == 0
    assert main(["report", "--output", str(world["out"]), "--csv", str(tmp_path / "disk")]) == 0
    assert len(list((tmp_path / "disk").glob("*.csv"))) == 8
    for csv in sorted((tmp_path / "disk").glob("*.csv")):
        assert (tmp_path / "s3" / csv.name).read_text() == csv.read_text(), csv.name


# --------------------------------------------------------------------------- bad input


def test_a_missing_or_empty_output_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for out, said in [(tmp_path / "missing", "no output folder at"),
                      (tmp_path / "empty", "holds no stories, fetches or dead letters")]:
        assert main(["report", "--output", str(out), "--html", str(tmp_path / "r.html")]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and said in err and err.startswith("newswatch: error: report:")
    assert not (tmp_path / "r.html").exists()


def test_a_range_without_data_and_bad_options_are_refused(world, tmp_path, capsys):
    cases = [(["--since", "1999-01-01", "--until", "1999-01-31", "--html", "r.html"], "holds no stories"),
             (["--since", "last week", "--html", "r.html"], "not a date or time: 'last week'"),
             ([], "give --html FILE, --csv DIR or both"),
             (["--html", str(tmp_path / "nowhere" / "r.html")], f"no folder {tmp_path / 'nowhere'}"),
             (["--html", "r.html", "--top", "0"], "--top and --newest 1 or more"),
             (["--html", "r.html", "--no-such-option"], "unknown option or argument '--no-such-option'")]
    for extra, said in cases:
        assert main(["report", "--output", str(world["out"]), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and said in err, (extra, err)


def test_without_matplotlib_the_page_is_refused_in_one_line_and_csv_still_works(world, tmp_path, capsys,
                                                                                monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # what `import matplotlib` sees when absent
    assert main(["report", "--output", str(world["out"]), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["newswatch: error: report needs matplotlib, not installed here: "
                                "pip install 'newswatch[report]'"]
    assert main(["report", "--output", str(world["out"]), "--csv", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "csv" / "feed_health.csv").exists()


def test_an_unreadable_file_in_range_fails_with_exit_1_and_says_so(world, tmp_path, capsys):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    (out / "stories" / "date=2021-09-28" / "zz-broken-000.parquet").write_bytes(b"not parquet at all")
    assert main(["report", "--output", str(out), "--html", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("newswatch: report failed:")
    assert not (tmp_path / "r.html").exists()
    # outside the range the broken file is not opened
    assert main(["report", "--output", str(out), "--since", "2021-09-29", "--html", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize("quiet", [False, True])
def test_a_long_report_prints_progress_lines_unless_quiet(world, tmp_path, capsys, monkeypatch, quiet):
    # A tiny interval stands in for a report that takes longer than the default 5 s.
    monkeypatch.setenv("NEWSWATCH_PROGRESS_INTERVAL", "0.000001")
    argv = ["report", "--output", str(world["out"]), "--html", str(tmp_path / "r.html"),
            "--csv", str(tmp_path / "csv")] + (["--quiet"] if quiet else [])
    assert main(argv) == 0
    err, out = capsys.readouterr()[::-1]
    lines = [line for line in err.splitlines() if line.startswith("newswatch report:")]
    assert "report on" in out
    if quiet:
        assert lines == []
        return
    steps = [int(line.split("/")[0].rsplit(" ", 1)[1]) for line in lines]
    assert steps == sorted(steps) and len(lines) >= 2
    assert lines[-1].startswith("newswatch report: done: 7/7 steps"), lines[-1]
