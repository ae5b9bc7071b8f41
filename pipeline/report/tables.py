"""The report's tables, built from the reader's frames (pipeline.dataset):
DataFrames in, DataFrames out, no I/O. The HTML page (render.py) and the
CSV files show these same tables.

Text shown from the data (titles, URLs, errors) is cut to SHOWN_CHARS here,
so a story with megabytes of text costs the report no more than any other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Dict, Optional

import numpy as np
import pandas as pd

SHOWN_CHARS = 300
ELLIPSIS = "\u2026"
# Columns of fetches/ that older outputs lack; a frame without one reads it
# as missing (with_fetch_columns) and the report shows what it can.
OPTIONAL_FETCH_COLUMNS = {"error_category": "string", "feed_title": "string", "parse_warning": "boolean"}
NOT_MODIFIED = 304


@dataclass
class ReportTables:
    """Every table of one report, in the order the page shows them."""

    stories_per_day: pd.DataFrame    # date, topic, stories
    top_sources: pd.DataFrame        # topic, rank, source, stories, share
    languages: pd.DataFrame          # language, stories, share
    newest: pd.DataFrame             # topic, published_at, title, url, source, language, why
    feeds: pd.DataFrame              # a row per feed: its health
    failing: pd.DataFrame            # feeds whose latest fetch failed
    silent: pd.DataFrame             # feeds without a story for silent_days
    summary: pd.DataFrame            # measure, value: totals for the page's head
    extra: Dict[str, object] = field(default_factory=dict)

    def named(self) -> Dict[str, pd.DataFrame]:
        """The tables by the names their CSV files take."""
        return {"summary": self.summary, "stories_per_day": self.stories_per_day,
                "top_sources": self.top_sources, "languages": self.languages, "newest_stories": self.newest,
                "feed_health": self.feeds, "failing_feeds": self.failing, "silent_feeds": self.silent}


def build_tables(stories: pd.DataFrame, matches: pd.DataFrame, fetches: pd.DataFrame, errors: pd.DataFrame,
                 as_of: Optional[datetime] = None, silent_days: float = 3.0, top: int = 10,
                 newest: int = 10) -> ReportTables:
    """All the tables. stories: read_stories' columns story_id, title, url,
    source, language, topics, published_at, fetched_at, feed_url, date;
    matches: read_matches' story_id, topic, term, field; fetches and errors
    as read_fetches and read_errors give them. as_of: the time "silent for
    N days" counts back from (default: the latest fetch or story)."""
    fetches = with_fetch_columns(fetches)
    if as_of is None:
        as_of = latest_time(stories, fetches)
    feeds = feed_health(fetches, stories, errors, as_of, silent_days)
    return ReportTables(
        stories_per_day=stories_per_topic_per_day(stories),
        top_sources=top_sources(stories, top),
        languages=language_mix(stories),
        newest=newest_stories(stories, matches, newest),
        feeds=feeds,
        failing=feeds[feeds["failing"]].reset_index(drop=True),
        silent=feeds[feeds["silent"]].reset_index(drop=True),
        summary=summary(stories, fetches, errors, feeds, as_of, silent_days),
        extra={"as_of": as_of, "silent_days": silent_days},
    )


# --------------------------------------------------------------------------- stories


def topic_rows(stories: pd.DataFrame, columns=None) -> pd.DataFrame:
    """One row per (story, topic) it matched, with `columns` of the story
    (default: all); a story without topics has none."""
    if columns is not None:
        stories = stories[[name for name in columns if name != "topics"] + ["topics"]]
    if stories.empty:
        return stories.drop(columns="topics").assign(topic=pd.Series(dtype=object))
    exploded = stories.explode("topics").rename(columns={"topics": "topic"})
    return exploded[exploded["topic"].notna()].reset_index(drop=True)


def stories_per_topic_per_day(stories: pd.DataFrame) -> pd.DataFrame:
    """date, topic, stories: a row per day and topic with any story, days
    by the `date` partition (the UTC day of published_at, else fetched_at)."""
    rows = topic_rows(stories, ["date"])
    counts = rows.groupby(["date", "topic"], sort=True).size()
    return _counted(counts, ["date", "topic"])


def top_sources(stories: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """topic, rank, source, stories, share (of the topic's stories): each
    topic's `top` sources by stories; ties by source name."""
    rows = topic_rows(stories, ["source"])
    rows = rows.assign(source=rows["source"].fillna("(none)").astype(str))
    counts = _counted(rows.groupby(["topic", "source"]).size(), ["topic", "source"])
    totals = counts.groupby("topic")["stories"].transform("sum")
    counts = counts.assign(share=counts["stories"] / totals)
    counts = counts.sort_values(["topic", "stories", "source"], ascending=[True, False, True])
    counts["rank"] = counts.groupby("topic").cumcount() + 1
    counts = counts[counts["rank"] <= top]
    counts = counts.assign(source=counts["source"].map(shown_text))
    return counts[["topic", "rank", "source", "stories", "share"]].reset_index(drop=True)


def language_mix(stories: pd.DataFrame) -> pd.DataFrame:
    """language, stories, share: every story once, most frequent first;
    stories whose language was not detected count as "(unknown)"."""
    languages = stories["language"].fillna("(unknown)").astype(str) if len(stories) else \
        pd.Series([], dtype=object)
    counts = languages.value_counts()
    out = pd.DataFrame({"language": counts.index.astype(str), "stories": counts.to_numpy(dtype=np.int64)})
    out = out.sort_values(["stories", "language"], ascending=[False, True]).reset_index(drop=True)
    out["share"] = out["stories"] / max(len(stories), 1)
    return out


def newest_stories(stories: pd.DataFrame, matches: pd.DataFrame, newest: int = 10) -> pd.DataFrame:
    """topic, published_at, title, url, source, language, why: each topic's
    `newest` stories by published_at (fetched_at when the feed gave none),
    with the terms that matched them for that topic ("term (field)", in
    the order found). Title, source and why are cut to SHOWN_CHARS; the URL is whole."""
    columns = ["topic", "published_at", "title", "url", "source", "language", "why", "story_id"]
    # Sort and cut a narrow frame; the shown columns join the few rows kept.
    stamped = pd.DataFrame({"row": np.arange(len(stories)), "story_id": stories["story_id"].to_numpy(),
                            "topics": stories["topics"].to_numpy(),
                            "when": stories["published_at"].fillna(stories["fetched_at"]).to_numpy()})
    rows = topic_rows(stamped)
    if rows.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    rows = rows.sort_values(["topic", "when", "story_id"], ascending=[True, False, True])
    rows = rows.groupby("topic", sort=True).head(newest).reset_index(drop=True)
    shown = stories.drop(columns=["topics", "story_id"]).iloc[rows["row"].to_numpy()].reset_index(drop=True)
    rows = pd.concat([rows, shown], axis=1)
    why = _why(matches, rows[["story_id", "topic"]])
    rows = rows.merge(why, on=["story_id", "topic"], how="left")
    rows["published_at"] = rows["when"]
    # The URL stays whole: it is the link (render.py cuts its shown text).
    for name in ("title", "source", "why"):
        rows[name] = rows[name].map(shown_text)
    return rows[columns].reset_index(drop=True)


def _why(matches: pd.DataFrame, wanted: pd.DataFrame) -> pd.DataFrame:
    """story_id, topic, why for the (story, topic) pairs in `wanted`."""
    if matches.empty:
        return wanted.assign(why=pd.Series(dtype=object)).iloc[0:0]
    hits = matches.merge(wanted, on=["story_id", "topic"], how="inner")
    hits = hits.assign(said=hits["term"].astype(str) + " (" + hits["field"].astype(str) + ")")
    why = hits.groupby(["story_id", "topic"], sort=False)["said"].agg(lambda s: "; ".join(dict.fromkeys(s)))
    return why.rename("why").reset_index()


# --------------------------------------------------------------------------- feed health


def with_fetch_columns(fetches: pd.DataFrame) -> pd.DataFrame:
    """fetches with every column of OPTIONAL_FETCH_COLUMNS: one the frame
    lacks reads as missing, so the health table has one shape whatever
    schema version the output was written with."""
    missing = {name: pd.Series(pd.NA, index=fetches.index, dtype=dtype)
               for name, dtype in OPTIONAL_FETCH_COLUMNS.items() if name not in fetches.columns}
    return fetches.assign(**missing) if missing else fetches


def feed_health(fetches: pd.DataFrame, stories: pd.DataFrame, errors: pd.DataFrame, as_of: datetime,
                silent_days: float = 3.0) -> pd.DataFrame:
    """A row per feed fetched (or skipped) in the range, worst first:

    feed_url, feed_title (the latest given), fetches (requests made; a feed
    not due is skipped, not fetched), not_modified_share (304 answers of
    the requests), failures, last_fetch_at, last_status, last_success_at
    (the latest request without an error), failing (the latest request
    failed), last_error and last_error_category (of the latest failure),
    parse_warnings, dead_letters (rows in errors/), stories, last_story_at
    (the newest story's published_at, else fetched_at), silent (no story
    since as_of - silent_days).
    """
    fetches = with_fetch_columns(fetches)
    made = fetches[fetches["skipped_until"].isna()].sort_values("fetched_at", kind="stable")
    feeds = pd.Index(sorted(str(url) for url in fetches["feed_url"].dropna().unique()), name="feed_url")
    by_feed = made.groupby("feed_url", sort=False)
    failed = made["error"].notna()
    out = pd.DataFrame(index=feeds)
    out["feed_title"] = _last_given(fetches.sort_values("fetched_at", kind="stable"), "feed_title").reindex(feeds)
    if "feed_title" in stories.columns and len(stories):
        from_stories = _last_given(stories.sort_values("fetched_at", kind="stable"), "feed_title")
        out["feed_title"] = out["feed_title"].fillna(from_stories.reindex(feeds))
    out["fetches"] = by_feed.size().reindex(feeds, fill_value=0).astype("int64")
    not_modified = made["status"].eq(NOT_MODIFIED).fillna(False)
    out["not_modified_share"] = (not_modified.groupby(made["feed_url"]).sum().reindex(feeds, fill_value=0)
                                 / out["fetches"].where(out["fetches"] > 0))
    out["failures"] = failed.groupby(made["feed_url"]).sum().reindex(feeds, fill_value=0).astype("int64")
    last = by_feed.tail(1).set_index("feed_url")
    out["last_fetch_at"] = last["fetched_at"].reindex(feeds)
    out["last_status"] = last["status"].reindex(feeds)
    out["last_success_at"] = made[~failed].groupby("feed_url")["fetched_at"].max().reindex(feeds)
    out["failing"] = last["error"].notna().reindex(feeds, fill_value=False).astype(bool)
    last_failure = made[failed].groupby("feed_url", sort=False).tail(1).set_index("feed_url")
    out["last_error"] = last_failure["error"].reindex(feeds).map(shown_text)
    out["last_error_category"] = last_failure["error_category"].reindex(feeds)
    out["parse_warnings"] = (made["parse_warning"].fillna(False).astype(bool).groupby(made["feed_url"]).sum()
                             .reindex(feeds, fill_value=0).astype("int64"))
    out["dead_letters"] = (errors.groupby("feed_url").size().reindex(feeds, fill_value=0).astype("int64")
                           if len(errors) else 0)
    stamped = stories.assign(when=stories["published_at"].fillna(stories["fetched_at"]))
    out["stories"] = stamped.groupby("feed_url").size().reindex(feeds, fill_value=0).astype("int64")
    out["last_story_at"] = stamped.groupby("feed_url")["when"].max().reindex(feeds)
    quiet_since = pd.Timestamp(as_of) - timedelta(days=silent_days)
    out["silent"] = ~(out["last_story_at"] >= quiet_since).fillna(False).astype(bool)
    out = out.reset_index()
    out["last_error_category"] = out["last_error_category"].astype("string")
    out["feed_title"] = out["feed_title"].map(shown_text).astype("string")
    order = out.assign(_never=out["last_success_at"].isna()).sort_values(
        ["failing", "_never", "last_success_at", "feed_url"], ascending=[False, False, True, True], kind="stable")
    return order.drop(columns="_never").reset_index(drop=True)


def _last_given(frame: pd.DataFrame, column: str) -> pd.Series:
    given = frame[frame[column].notna()]
    return given.groupby("feed_url")[column].last()


# --------------------------------------------------------------------------- totals


def summary(stories: pd.DataFrame, fetches: pd.DataFrame, errors: pd.DataFrame, feeds: pd.DataFrame,
            as_of: datetime, silent_days: float) -> pd.DataFrame:
    """measure, value: the figures at the head of the page, as text."""
    made = fetches[fetches["skipped_until"].isna()]
    not_modified = int(made["status"].eq(NOT_MODIFIED).fillna(False).sum())
    days = stories["date"].dropna() if len(stories) else pd.Series([], dtype=object)
    rows = [
        ("stories", len(stories)),
        ("topics", int(topic_rows(stories, [])["topic"].nunique())),
        ("days", f"{min(days)} to {max(days)}" if len(days) else "none"),
        ("feeds", len(feeds)),
        ("fetches", len(made)),
        ("304 share", f"{not_modified / len(made):.1%}" if len(made) else "n/a"),
        ("failing feeds", int(feeds["failing"].sum())),
        (f"silent feeds ({silent_days:g} days)", int(feeds["silent"].sum())),
        ("dead letters", len(errors)),
        ("as of", _when(as_of)),
    ]
    return pd.DataFrame(rows, columns=["measure", "value"]).astype({"value": str})


def latest_time(stories: pd.DataFrame, fetches: pd.DataFrame) -> Optional[datetime]:
    """The latest fetched_at of fetches and stories (None when both are empty)."""
    times = [frame["fetched_at"].max() for frame in (fetches, stories) if len(frame)]
    times = [t for t in times if not pd.isna(t)]
    return max(times).to_pydatetime() if times else None


# --------------------------------------------------------------------------- helpers


def shown_text(value, limit: int = SHOWN_CHARS):
    """Text as shown: at most `limit` characters, an ellipsis when cut."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return value
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _counted(counts: pd.Series, names) -> pd.DataFrame:
    if counts.empty:
        return pd.DataFrame({**{name: pd.Series(dtype=object) for name in names},
                             "stories": pd.Series(dtype="int64")})
    return counts.rename("stories").reset_index().astype({"stories": "int64"})


def _when(value) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
