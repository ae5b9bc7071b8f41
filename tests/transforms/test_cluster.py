"""The cluster stage's pure core (transforms/cluster.py) and the cluster index
of earlier runs (transforms/state/cluster_index.py, read from a real _state/
folder): who is a cluster's first member, how sizes count, what is
remembered and for how long. The made-up stories are in test_sketch.py."""
import collections
import itertools
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape


from transforms.cluster import ClusterMemory, assign_clusters, cluster_records, sketch_stories
from transforms.parse import iter_parse_fetch
from transforms.records import FetchResult, Story
from transforms.sketch import band_keys
from transforms.state.cluster_index import MAX_BUCKET, ClusterRecord
from transforms.state.store import StateStore
from tests.support.reprints import (FOOTER, KOREAN, MUSEUM, MUSEUM_OWN_REPORT, SHIP, SHIP_OWN_REPORT, alone, lead,
                                    linked_pairs, reprint, unrelated_stories)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LOOKBACK = timedelta(days=30)


def story(story_id, body, published=T0, feed="wire.example", content="", title=None, fetched=None):
    return Story(story_id=story_id, url=f"https://{feed}/{story_id}", canonical_url=f"https://{feed}/{story_id}",
                 guid=story_id, title=title or f"Headline of {story_id}", summary=body, content=content,
                 published_at=published, fetched_at=fetched or published, feed_url=f"https://{feed}/rss")


def sketched(*stories):
    """Each story sketched as parse does, alone in its own feed document."""
    return [s for one in stories for s in sketch_stories([one])]


def clusters(stories):
    return {s.story_id: (s.cluster_id, s.cluster_size) for s in stories}


def world():
    """A wire story, three reprints of it published later, another outlet's
    own report of the same event, and an unrelated story."""
    return sketched(
        story("reprint-b", reprint(SHIP, keep=0.5), T0 + timedelta(hours=2), feed="b.example"),
        story("own-report", SHIP_OWN_REPORT, T0 + timedelta(minutes=30), feed="c.example"),
        story("wire-1", "", T0, content=SHIP),                                      # full text only
        story("summary-d", lead(SHIP), T0 + timedelta(hours=3), feed="d.example"),  # its lead only
        story("museum", MUSEUM, T0 - timedelta(hours=1)),
        story("reprint-a", reprint(SHIP, keep=0.8, dateline="VELLMAR (Harbour News) -"),
              T0 + timedelta(hours=1), feed="a.example"),
    )


# -- one run -----------------------------------------------------------------
def test_the_first_member_earliest_published_gives_its_id_and_sizes_count_up():
    out = assign_clusters(world())
    # in dedup's preference order: earliest published first
    assert [s.story_id for s in out] == ["museum", "wire-1", "own-report", "reprint-a", "reprint-b",
                                         "summary-d"]
    assert clusters(out) == {
        "museum": ("museum", 1),
        "wire-1": ("wire-1", 1),
        "own-report": ("own-report", 1),      # the same event, written by its own reporter
        "reprint-a": ("wire-1", 2),
        "reprint-b": ("wire-1", 3),
        "summary-d": ("wire-1", 4),
    }


def test_the_order_of_the_input_does_not_change_the_result():
    stories = world()
    # a tie: the same minute, another outlet; preference (feed URL) decides the first member
    stories += sketched(story("tie", reprint(SHIP, keep=0.6, dateline="HAVEN -"), T0, feed="0-first.example"))
    expected = clusters(assign_clusters(stories))
    assert expected["tie"] == ("tie", 1) and expected["wire-1"] == ("tie", 2)
    for order in itertools.islice(itertools.permutations(stories), 0, None, 97):
        assert clusters(assign_clusters(list(order))) == expected


def test_stories_without_a_sketch_are_their_own_cluster_of_one():
    stories = sketched(story("empty-1", ""), story("empty-2", "", T0 + timedelta(minutes=1)),
                       story("word-1", "Pyongyang"), story("word-2", "Pyongyang", T0 + timedelta(minutes=1)),
                       story("korean-word", "북한"))
    assert all(s.sketch is None for s in stories)
    assert clusters(assign_clusters(stories)) == {s.story_id: (s.story_id, 1) for s in stories}
    assert [r for s in assign_clusters(stories) for r in cluster_records(s)] == []   # nothing to remember


def test_one_headline_over_different_bodies_is_not_one_story():
    same_title = "North Korea fires missile into the sea, Seoul says"
    out = assign_clusters(sketched(story("x", SHIP, title=same_title),
                                   story("y", MUSEUM, T0 + timedelta(hours=1), title=same_title),
                                   story("z", MUSEUM_OWN_REPORT, T0 + timedelta(hours=2), title=same_title)))
    assert clusters(out) == {"x": ("x", 1), "y": ("y", 1), "z": ("z", 1)}


def test_a_korean_reprint_joins_the_korean_story():
    copy = ("[서울=한빛통신] 김민수 기자 = " + KOREAN[:len(KOREAN) // 2] + " <저작권자 한빛통신 무단 전재 및 재배포 금지>")
    out = assign_clusters(sketched(story("ko-1", KOREAN), story("ko-2", copy, T0 + timedelta(hours=1))))
    assert clusters(out)["ko-2"] == ("ko-1", 2)


def test_a_feed_repeating_one_text_under_500_ids_makes_no_giant_cluster():
    """Parsed as parse.py does it (sketched SKETCH_BATCH items at a time)."""
    items = "".join(
        f"<item><title>Update {n}</title><link>https://live.example/{n}</link><guid>live-{n}</guid>"
        f"<description>{escape(intro + ' ' + SHIP)}</description>"
        f"<pubDate>{format_datetime(T0 + timedelta(minutes=n))}</pubDate></item>"
        for n, intro in enumerate(unrelated_stories(500, seed=3)))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Live</title>{items}</channel></rss>'
    fetched = FetchResult(feed_url="https://live.example/rss", final_url="https://live.example/rss", status=200,
                          headers={"content-type": "application/rss+xml"}, body=body.encode(), elapsed_s=0.1,
                          fetched_at=T0)
    stories = [r for r in iter_parse_fetch(fetched) if isinstance(r, Story)]
    assert len(stories) == 500 and all(s.sketch is not None for s in stories)
    sizes = collections.Counter(s.cluster_id for s in assign_clusters(stories))
    assert sizes.most_common(1)[0][1] == 1


def test_the_last_items_of_a_long_feed_are_sketched_without_the_footer_found_in_earlier_batches():
    """202 items: the last two form a batch of their own (SKETCH_BATCH 200),
    too small to find a footer in; what the first batch found still counts."""
    last_two = ["The council of Kavlo approved the plan for a new bridge on Monday after a long debate.",
                "Fishermen of Dorvin celebrated a record catch of herring in the old harbour last week."]
    texts = [t + " " + FOOTER for t in unrelated_stories(200, seed=5) + last_two]
    items = "".join(f"<item><title>Brief {n}</title><link>https://brief.example/{n}</link>"
                    f"<description>{escape(text)}</description></item>" for n, text in enumerate(texts))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Briefs</title>{items}</channel></rss>'
    fetched = FetchResult(feed_url="https://brief.example/rss", final_url="https://brief.example/rss", status=200,
                          headers={"content-type": "application/rss+xml"}, body=body.encode(), elapsed_s=0.1,
                          fetched_at=T0)
    stories = [r for r in iter_parse_fetch(fetched) if isinstance(r, Story)]
    assert len(stories) == 202 and all(s.sketch is not None for s in stories)
    assert linked_pairs([s.sketch for s in stories]) == []
    # sketched alone, the last two are linked by the footer
    assert linked_pairs([alone(t) for t in texts[200:]]) == [(0, 1)]


def test_a_story_the_feed_repeats_keeps_its_sketch_and_its_reprints_join_it():
    """A feed serving one story four times (other guids, same headline and
    text): counted once, its text is not taken for the outlet's boilerplate."""
    repeated = [story(f"again-{n}", SHIP, title="Ship aground", feed="repeats.example") for n in range(4)]
    others = [story(f"other-{n}", text, feed="repeats.example")
              for n, text in enumerate(unrelated_stories(5, seed=9))]
    feed = sketch_stories(repeated + others)
    assert all(s.sketch is not None for s in feed)
    joined = assign_clusters(feed[:1] + sketched(story("reprint", reprint(SHIP, keep=0.6), T0 + timedelta(hours=1),
                                                       feed="elsewhere.example")))
    assert clusters(joined)["reprint"] == ("again-0", 2)


# -- across runs: the cluster index from _state/clusters ------------------------
def commit(store, run_id, stories, committed_at):
    records = [r for s in stories for r in cluster_records(s)]
    store.commit(run_id, committed_at, seen=[], feeds=[], as_of=committed_at, lookback=LOOKBACK,
                 clusters=records)
    return records


def test_a_reprint_in_a_later_run_joins_the_remembered_cluster(tmp_path):
    store = StateStore(str(tmp_path))
    first = assign_clusters(world())
    records = commit(store, "r1", first, T0 + timedelta(hours=4))
    assert {r.story_id: r.cluster_id for r in records} == {s: c for s, (c, _) in clusters(first).items()}

    index = store.load_clusters("r2", T0 + timedelta(days=1), LOOKBACK)
    assert len(index) == 6
    # tomorrow, another reprint, and one that claims an earlier publication time
    later = sketched(
        story("tomorrow", reprint(SHIP, keep=0.3, dateline="PORT (Daily) -"), T0 + timedelta(days=1),
              feed="e.example"),
        story("backdated", reprint(SHIP, keep=0.7, dateline="HAVEN -"), T0 - timedelta(days=1), feed="f.example"),
        story("museum-copy", lead(MUSEUM), T0 + timedelta(days=1), feed="g.example"),
        story("new", MUSEUM_OWN_REPORT, T0 + timedelta(days=1), feed="g.example"),
    )
    out = clusters(assign_clusters(later, index))
    # the first member's id never changes once written; sizes go on from what was written
    assert out == {"backdated": ("wire-1", 5), "tomorrow": ("wire-1", 6), "museum-copy": ("museum", 2),
                   "new": ("new", 1)}


def test_rows_beyond_the_lookback_are_forgotten(tmp_path):
    store = StateStore(str(tmp_path))
    old = assign_clusters(sketched(story("old", SHIP, T0 - timedelta(days=40))))
    recent = assign_clusters(sketched(story("recent", MUSEUM, T0 - timedelta(days=20))))
    commit(store, "r-old", old, T0 - timedelta(days=40))
    commit(store, "r-recent", recent, T0 - timedelta(days=20))
    index = store.load_clusters("now", T0, LOOKBACK)
    assert len(index) == 1
    out = clusters(assign_clusters(sketched(story("ship-copy", reprint(SHIP), T0, feed="b.example"),
                                            story("museum-copy", reprint(MUSEUM), T0, feed="b.example")), index))
    assert out == {"ship-copy": ("ship-copy", 1), "museum-copy": ("recent", 2)}


def test_rows_of_open_runs_and_of_the_run_itself_are_ignored(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "done", assign_clusters(sketched(story("ship", SHIP))), T0)
    commit(store, "again", assign_clusters(sketched(story("museum", MUSEUM))), T0)
    # a streaming unit "now" committed since it started (at T0 + 2 h): in its keyed state
    commit(store, "now-w0001", assign_clusters(sketched(story("korean", KOREAN))), T0 + timedelta(hours=3))
    store.open_run("again", T0 + timedelta(hours=1))      # being re-run: its rows count for nobody yet
    index = store.load_clusters("now", T0 + timedelta(hours=2), LOOKBACK)
    assert len(index) == 1
    out = clusters(assign_clusters(sketched(
        story("ship-copy", reprint(SHIP), T0 + timedelta(hours=2), feed="b.example"),
        story("museum-copy", reprint(MUSEUM), T0 + timedelta(hours=2), feed="b.example")), index))
    assert out == {"ship-copy": ("ship", 2), "museum-copy": ("museum-copy", 1)}
    # "done" re-run: its own rows are about to be replaced (the streaming unit's row counts)
    rerun = store.load_clusters("done", T0 + timedelta(hours=2), LOOKBACK)
    assert len(rerun) == 1
    assert clusters(assign_clusters(sketched(story("ship-copy", reprint(SHIP), T0 + timedelta(hours=2))),
                                    rerun)) == {"ship-copy": ("ship-copy", 1)}


# -- a streaming job's memory ---------------------------------------------------
def test_memory_carries_clusters_between_windows_and_forgets_old_members():
    memory = ClusterMemory()
    day = timedelta(days=1)
    first = assign_clusters(sketched(story("ship", SHIP), story("museum", MUSEUM, T0 + day)), memory=memory)
    assert clusters(first) == {"ship": ("ship", 1), "museum": ("museum", 1)} and len(memory) == 2
    window2 = assign_clusters(sketched(story("ship-copy", reprint(SHIP), T0 + day, feed="b.example")),
                              memory=memory)
    assert clusters(window2) == {"ship-copy": ("ship", 2)}

    assert memory.forget_before(int((T0 + day / 2).timestamp() * 1e6)) == 1   # "ship" only
    assert len(memory) == 2 and set(memory.sizes) == {"ship", "museum"}       # "ship-copy" keeps its cluster
    later = assign_clusters(sketched(
        story("ship-again", lead(SHIP), T0 + 2 * day, feed="c.example"),
        story("museum-copy", reprint(MUSEUM), T0 + 2 * day, feed="c.example")), memory=memory)
    # a reprint still finds the remembered reprint of the forgotten first member
    assert clusters(later) == {"ship-again": ("ship", 3), "museum-copy": ("museum", 2)}

    assert memory.forget_before(int((T0 + 3 * day).timestamp() * 1e6)) == 4
    # sizes stay: a cluster the index also holds goes on from this job's count
    assert len(memory) == 0 and memory.sizes == {"ship": 3, "museum": 2}
    assert clusters(assign_clusters(sketched(story("late", reprint(SHIP), T0 + 3 * day)), memory=memory)) == {
        "late": ("late", 1)}


def test_sizes_count_the_remembered_members_and_this_runs_own(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "r1", assign_clusters(sketched(
        story("ship", SHIP), story("ship-copy", reprint(SHIP), T0 + timedelta(hours=1), feed="b.example"))), T0)
    index = store.load_clusters("r2", T0 + timedelta(days=1), LOOKBACK)
    out = assign_clusters(sketched(
        story("third", lead(SHIP), T0 + timedelta(days=1), feed="c.example"),
        story("fourth", reprint(SHIP, keep=0.4, dateline="HAVEN -"), T0 + timedelta(days=1, hours=1),
              feed="d.example")), index)
    assert clusters(out) == {"third": ("ship", 3), "fourth": ("ship", 4)}


# -- bounded lookups -----------------------------------------------------------
GIANT = 1_000


def test_the_bucket_bound_is_far_below_the_giant_bucket():
    assert 8 <= MAX_BUCKET <= GIANT // 10


def identical_records():
    [made] = [s.sketch for s in sketched(story("x", SHIP))]
    return made, [ClusterRecord(f"copy-{n:04d}", "copy-0000", made.signature, made.shingles,
                                T0 + timedelta(seconds=n)) for n in range(GIANT)]


def test_a_giant_bucket_in_the_index_is_bounded(tmp_path):
    made, records = identical_records()
    store = StateStore(str(tmp_path))
    store.commit("r1", T0, seen=[], feeds=[], as_of=T0, lookback=LOOKBACK, clusters=records)
    index = store.load_clusters("r2", T0 + timedelta(hours=1), LOOKBACK)
    assert len(index) == GIANT
    values = made.values()
    found = index.candidates(band_keys(values[None, :])[0], values)
    assert 1 <= len(found) <= MAX_BUCKET
    out = clusters(assign_clusters(sketched(story("one-more", SHIP, T0 + timedelta(hours=1))), index))
    assert out == {"one-more": ("copy-0000", GIANT + 1)}


def test_a_giant_bucket_in_memory_is_bounded():
    made, records = identical_records()
    memory = ClusterMemory()
    keys = band_keys(made.values()[None, :])[0]
    for r in records:
        memory.add(keys, made, r.cluster_id, 0)
    memory.sizes["copy-0000"] = GIANT
    found = memory.candidates(keys, made.values())
    assert 1 <= len(found) <= MAX_BUCKET
    out = clusters(assign_clusters(sketched(story("one-more", SHIP)), memory=memory))
    assert out == {"one-more": ("copy-0000", GIANT + 1)}


def test_a_giant_bucket_in_the_index_checks_its_newest_members(tmp_path):
    # As ClusterMemory does (and cluster_index.MAX_BUCKET says): of the many
    # remembered stories behind one band key, the newest are looked at.
    made, records = identical_records()
    newest = ClusterRecord("a-newest", "a-newest", made.signature, made.shingles, T0 + timedelta(days=1))
    store = StateStore(str(tmp_path))
    store.commit("r1", T0 + timedelta(days=1), seen=[], feeds=[], as_of=T0, lookback=LOOKBACK,
                 clusters=records + [newest])
    index = store.load_clusters("r2", T0 + timedelta(days=2), LOOKBACK)
    values = made.values()
    found = index.candidates(band_keys(values[None, :])[0], values)
    assert "a-newest" in {c.cluster_id for c in found}


def test_a_streaming_job_restarted_under_its_run_id_finds_the_clusters_of_its_earlier_start(tmp_path):
    store = StateStore(str(tmp_path))
    commit(store, "job-w20260302T090000Z-p0", assign_clusters(sketched(story("ship", SHIP))), T0)
    restarted = T0 + timedelta(days=1)
    assert len(store.load_clusters("job", restarted, LOOKBACK)) == 1     # before this start: from the state
    assert len(store.load_clusters("job", T0, LOOKBACK)) == 0            # from this start on: in keyed state
    joined = assign_clusters(sketched(story("copy", reprint(SHIP), restarted, feed="b.example")),
                             store.load_clusters("job", restarted, LOOKBACK))
    assert clusters(joined) == {"copy": ("ship", 2)}


def test_a_story_recorded_twice_counts_once(tmp_path):
    """A unit cut off between its clusters and seen files is folded in again by recovery."""
    store = StateStore(str(tmp_path))
    first = assign_clusters(sketched(story("ship", SHIP), story("copy", reprint(SHIP), T0 + timedelta(hours=1),
                                                                 feed="b.example")))
    commit(store, "job-w20260302T090000Z-p0", first, T0 + timedelta(hours=2))
    commit(store, "job", first, T0 + timedelta(hours=3))
    index = store.load_clusters("next", T0 + timedelta(days=1), LOOKBACK)
    assert len(index) == 2 and index.sizes.tolist() == [2]
