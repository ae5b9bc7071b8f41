"""A unit prepared in several parts (one per worker) is joined in the order
the in-process replay reads it, so both keep the same copy of a story."""
from datetime import datetime, timedelta, timezone

from pipeline.retag import _dump, _merge_unit, load_prepared, prepared_path
from transforms import identity
from transforms.records import Story

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def polled(minutes: int) -> Story:
    """The same item at the same place in one feed, as served on a poll
    `minutes` after T0: equally preferred copies but for their fetch time."""
    url, title, summary = "https://news.example/a", "Kim dismisses talks", "Body"
    canonical = identity.canonical_url(url)
    digest = identity.content_hash(title, summary)
    return Story(story_id=identity.story_id(canonical, "feed-a", "g-1", digest), url=url,
                 canonical_url=canonical, guid="g-1", title=title, summary=summary, content="",
                 published_at=T0, fetched_at=T0 + timedelta(minutes=minutes), feed_url="feed-a",
                 content_hash=digest, entry_index=0)


def merged(tmp_path, parts):
    folder = str(tmp_path)
    paths = []
    for shard, stories in enumerate(parts):
        paths.append(prepared_path(folder, 1, shard))
        _dump(paths[-1], stories)
    list(_merge_unit(folder, False, (1, paths)))
    return load_prepared(prepared_path(folder, 1))


def test_the_earlier_poll_wins_whatever_part_it_was_read_in(tmp_path):
    one_part = merged(tmp_path / "one", [[polled(0), polled(5)]])
    later_first = merged(tmp_path / "two", [[polled(5)], [polled(0)]])
    assert [s.fetched_at for s in one_part] == [T0]
    assert [s.fetched_at for s in later_first] == [T0]
