"""A huge feed (20,000 items, 12 MB: read in pieces by the parse stage) through
`newswatch run`: every entry seen, every matching story written once, the
counts reconciled; the output read back with pandas."""
import subprocess
import sys

import pandas as pd
import pytest

from benchmarks import huge_feed
from tests.support.paths import ROOT, SEEDS
from transforms.parse import SPLIT_ABOVE

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ITEMS = 20_000


def test_a_huge_feed_gives_all_its_rows(tmp_path):
    feed = huge_feed.write(str(tmp_path / "huge.xml"), items=ITEMS)
    assert feed.bytes >= SPLIT_ABOVE, "the feed should be large enough to be read in pieces"
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(feed.path + "\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--topics",
         str(SEEDS / "topics.yaml"), "--output", str(out), "--runner", "DirectRunner",
         "--max-feed-bytes", str(2 * feed.bytes)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "entries 20,000 = " in proc.stdout and "MISMATCH" not in proc.stdout, proc.stdout

    stories = pd.read_parquet(out / "stories")
    expected = {f"https://news.example.com/{n % 97:02d}/story-{n}.html"
                for n in range(huge_feed.MATCH_EVERY, ITEMS + 1, huge_feed.MATCH_EVERY)}
    assert len(stories) == feed.matching == len(expected)
    assert set(stories["url"]) == expected
    assert stories["story_id"].is_unique
    assert all(stories["feed_title"] == "Example Wire (everything)")
    fetches = pd.read_parquet(out / "fetches")
    assert fetches["entry_count"].tolist() == [ITEMS] and fetches["error"].isna().all()
    assert not (out / "errors").exists() or len(pd.read_parquet(out / "errors")) == 0
