"""Many small RSS feeds as local files, for whole runs that must be quick
(no HTTP) yet write many files: item k of feed n is about Korea and is
published on one of `dates` days, so stories spread over `dates` partitions."""
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

START = datetime(2011, 3, 1, 9, tzinfo=timezone.utc)
TOPICS = "topics:\n  - name: dprk\n    query: Korea\n"


def write_feeds(folder: Path, feeds: int, items: int, dates: int) -> Path:
    """Writes feed0.xml ... and feeds.txt (relative paths) into `folder`; returns the list."""
    folder.mkdir(parents=True)
    for n in range(feeds):
        entries = []
        for i in range(items):
            k = n * items + i
            published = format_datetime(START + timedelta(days=k % dates, minutes=k), usegmt=True)
            entries.append(f"<item><title>Korea bulletin {k}</title>"
                           f"<link>https://local-feeds.example.org/{n}/{i}</link>"
                           f"<description>Talks on the Korean peninsula, item {k} of feed {n}.</description>"
                           f"<pubDate>{published}</pubDate></item>")
        (folder / f"feed{n}.xml").write_text(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
            f'{"".join(entries)}</channel></rss>')
    listing = folder / "feeds.txt"
    listing.write_text("".join(f"feed{n}.xml\n" for n in range(feeds)))
    return listing


def write_topics(folder: Path) -> Path:
    topics = folder / "topics.yaml"
    topics.write_text(TOPICS)
    return topics
