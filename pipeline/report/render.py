"""The report as one self-contained HTML page: charts drawn with matplotlib
(Agg, no display) and embedded as data: URIs, CSS inline, no script, no
request to anywhere. Everything taken from the data is escaped; a link is
made only of an http(s) URL, any other is shown as text. A Content Security
Policy in the page forbids scripts and every load but data: images, so a
string that slipped through could still not run or call out.
"""
from __future__ import annotations

import base64
import html
import io
import re
from datetime import date, datetime
from typing import Iterable, List, Optional, Sequence

import pandas as pd

from pipeline.report.tables import ReportTables, shown_text

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
# A link only for an absolute http(s) URL, as written (no blanks or control
# characters, which browsers strip or split on); it is escaped in the href.
# Longer URLs are shown as text, not linked: a hostile page could carry megabytes in one.
LINK_CHARS = 8192
_WEB_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$", re.IGNORECASE)
# Free text from the feeds: wrapped anywhere, so one long word cannot widen the page.
_TEXT_COLUMNS = frozenset({"title", "feed_title", "last_error", "why", "source", "value"})
SECTIONS = (("summary", "Summary"), ("stories-per-day", "Stories per topic per day"),
            ("top-sources", "Top sources per topic"), ("languages", "Language mix"),
            ("newest", "Newest stories per topic"), ("feed-health", "Feed health"))

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; max-width: 100%; }
td, th { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
td.text, td.url { overflow-wrap: anywhere; } td.t { white-space: nowrap; } th { background: #f3f3f3; } td.n { text-align: right; }
td.why { color: #555; font-size: .92em; } tr.bad td { background: #fff1f0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; } nav a { margin-right: 1em; }
.note { color: #666; } .wide { overflow-x: auto; } .url { word-break: break-all; }
"""


def render_html(tables: ReportTables, output: str, since: Optional[str] = None,
                until: Optional[str] = None, generated_at: Optional[datetime] = None) -> str:
    """The whole page as a string."""
    e = _escape
    span = " to ".join(p for p in (since or "the start", until or "the end"))
    parts: List[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>newswatch report: {e(output)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>newswatch report</h1>",
        f'<p class="note">Output <code>{e(output)}</code>, {e(span)}'
        + (f"; made {e(_time(generated_at))}" if generated_at else "") + ".</p>",
        "<nav>" + "".join(f'<a href="#{key}">{e(title)}</a>' for key, title in SECTIONS) + "</nav>",
    ]
    parts += _section("summary", _table(tables.summary, ["measure", "value"]))
    parts += _section("stories-per-day", _stories_per_day(tables))
    parts += _section("top-sources", _top_sources(tables))
    parts += _section("languages", _languages(tables))
    parts += _section("newest", _newest(tables))
    parts += _section("feed-health", _feed_health(tables))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- sections


def _section(key: str, body: str) -> List[str]:
    title = dict(SECTIONS)[key]
    return [f'<section id="{key}"><h2>{_escape(title)}</h2>', body, "</section>"]


def _stories_per_day(tables: ReportTables) -> str:
    counts = tables.stories_per_day
    if counts.empty:
        return '<p class="note">No stories in this range.</p>'
    wide = counts.pivot(index="date", columns="topic", values="stories").fillna(0).astype(int)
    days = pd.date_range(min(wide.index), max(wide.index), freq="D").date
    wide = wide.reindex(days, fill_value=0)
    return _image(stories_per_day_chart(wide), "Stories per topic per day") + \
        "<details><summary>Table</summary>" + _table(wide.reset_index().rename(columns={"index": "date"}),
                                                     ["date", *wide.columns]) + "</details>"


def _top_sources(tables: ReportTables) -> str:
    sources = tables.top_sources
    if sources.empty:
        return '<p class="note">No stories in this range.</p>'
    out = []
    for topic, rows in sources.groupby("topic", sort=True):
        out.append(f"<h3>{_escape(topic)}</h3>")
        out.append(_table(rows, ["rank", "source", "stories", "share"]))
    return "\n".join(out)


def _languages(tables: ReportTables) -> str:
    languages = tables.languages
    if languages.empty:
        return '<p class="note">No stories in this range.</p>'
    return _image(language_chart(languages), "Stories by language") + \
        _table(languages, ["language", "stories", "share"])


def _newest(tables: ReportTables) -> str:
    newest = tables.newest
    if newest.empty:
        return '<p class="note">No stories in this range.</p>'
    out = []
    for topic, rows in newest.groupby("topic", sort=True):
        out.append(f"<h3>{_escape(topic)}</h3><table><tr><th>published</th><th>story</th><th>source</th>"
                   "<th>language</th><th>why it matched</th></tr>")
        for row in rows.itertuples(index=False):
            out.append(f'<tr><td class="t">{_escape(_time(row.published_at))}</td>'
                       f'<td class="text">{_link(row.url, row.title)}</td>'
                       f'<td class="text">{_escape(row.source)}</td><td>{_escape(row.language)}</td>'
                       f'<td class="why text">{_escape(row.why)}</td></tr>')
        out.append("</table>")
    return "\n".join(out)


def _feed_health(tables: ReportTables) -> str:
    days = tables.extra.get("silent_days", 3)
    columns = ["feed_url", "feed_title", "fetches", "not_modified_share", "failures", "last_status",
               "last_success_at", "last_error_category", "last_error", "dead_letters", "stories", "last_story_at"]
    out = [f"<h3>Failing feeds ({len(tables.failing)})</h3>",
           '<p class="note">The latest request to these feeds failed; their last error.</p>',
           _table(tables.failing, ["feed_url", "feed_title", "last_fetch_at", "last_status", "last_error_category",
                                   "last_error", "last_success_at", "failures", "fetches"])
           if len(tables.failing) else '<p class="note">None.</p>',
           f"<h3>Silent feeds: no story for {_escape(f'{days:g}')} days ({len(tables.silent)})</h3>",
           _table(tables.silent, ["feed_url", "feed_title", "last_story_at", "last_success_at", "fetches",
                                  "not_modified_share"])
           if len(tables.silent) else '<p class="note">None.</p>',
           f"<h3>Every feed ({len(tables.feeds)})</h3>",
           _table(tables.feeds, columns, bad=tables.feeds["failing"]) if len(tables.feeds)
           else '<p class="note">No fetches in this range.</p>']
    return "\n".join(out)


# --------------------------------------------------------------------------- charts


def stories_per_day_chart(wide: pd.DataFrame) -> bytes:
    """PNG: a line per topic (columns), days on the x axis."""
    figure, axes = _figure(10, 4)
    for topic in wide.columns:
        axes.plot(list(wide.index), wide[topic].to_numpy(), marker="o", markersize=3, linewidth=1.5,
                  label=str(topic))
    axes.set_ylabel("stories")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=.3)
    if len(wide.columns) <= 20:
        axes.legend(loc="upper left", fontsize=8, ncol=min(4, len(wide.columns)))
    figure.autofmt_xdate()
    return _png(figure)


def language_chart(languages: pd.DataFrame, shown: int = 15) -> bytes:
    """PNG: stories per language, the `shown` most frequent."""
    top = languages.head(shown).iloc[::-1]
    figure, axes = _figure(6, max(1.5, .35 * len(top) + .8))
    axes.barh([str(v) for v in top["language"]], top["stories"].to_numpy())
    axes.set_xlabel("stories")
    return _png(figure)


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot

    figure = pyplot.figure(figsize=(width, height), dpi=100)
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


# --------------------------------------------------------------------------- HTML pieces


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{_escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(frame: pd.DataFrame, columns: Sequence[str], bad: Optional[pd.Series] = None) -> str:
    rows = ['<div class="wide"><table><tr>' + "".join(f"<th>{_escape(c)}</th>" for c in columns) + "</tr>"]
    flags: Iterable[bool] = bad.tolist() if bad is not None else [False] * len(frame)
    for flag, (_, row) in zip(flags, frame[list(columns)].iterrows()):
        cells = []
        for column in columns:
            value = row[column]
            css = ' class="n"' if isinstance(value, (int, float)) and not isinstance(value, bool) else \
                (' class="url"' if column.endswith("url") else
                 ' class="text"' if column in _TEXT_COLUMNS else
                 ' class="t"' if isinstance(value, (datetime, pd.Timestamp)) else "")
            cells.append(f"<td{css}>{_cell(column, value)}</td>")
        rows.append(("<tr class=\"bad\">" if flag else "<tr>") + "".join(cells) + "</tr>")
    rows.append("</table></div>")
    return "".join(rows)


def _cell(column: str, value) -> str:
    if _missing(value):
        return ""
    if column.endswith("share"):
        return f"{float(value):.1%}"
    if column.endswith("url"):
        return _link(value, value)
    return _escape(_time(value) if isinstance(value, (datetime, pd.Timestamp)) else value)


def _link(url, text) -> str:
    """An <a> for an http(s) URL up to LINK_CHARS long; any other URL
    (javascript:, data:, relative, huge) is shown as text beside the escaped
    text. Shown text is cut to SHOWN_CHARS; the link target never is."""
    label = _escape(shown_text(text if not _missing(text) and str(text) else url))
    if isinstance(url, str) and len(url) <= LINK_CHARS and _WEB_URL.match(url):
        return f'<a href="{_escape(url)}" rel="noopener noreferrer nofollow">{label}</a>'
    if _missing(url) or url == text:
        return label
    return f'{label} <span class="url note">({_escape(shown_text(url))})</span>'


def _escape(value) -> str:
    if _missing(value):
        return ""
    if isinstance(value, (date, datetime, pd.Timestamp)):
        value = _time(value)
    return html.escape(str(value), quote=True)


def _time(value) -> str:
    if _missing(value):
        return ""
    if isinstance(value, (datetime, pd.Timestamp)):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _missing(value) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
