"""A FetchResult as the fetch stage hands it to the parse stage, for tests of parsing."""
from datetime import datetime, timezone

from transforms.records import FetchResult

FETCHED_AT = datetime(2021, 9, 30, 12, 0, tzinfo=timezone.utc)


def fetched(body: bytes, url="https://feeds.example.org/world.xml", **kw) -> FetchResult:
    """A successful fetch of `body` (an RSS content type, fetched at FETCHED_AT);
    keyword arguments override any field."""
    defaults = dict(feed_url=url, final_url=url, status=200,
                    headers={"content-type": "application/rss+xml; charset=utf-8"},
                    body=body, elapsed_s=0.1, fetched_at=FETCHED_AT)
    defaults.update(kw)
    return FetchResult(**defaults)
