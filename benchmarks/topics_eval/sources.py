"""Readers for the three public archives the evaluation set is drawn from.

Each archive is a public GitHub repository whose history holds news-feed items
committed by a scheduled job. We read it as a git directory (a bare mirror or
a clone) with `git show`, at a pinned commit, so the same commit always gives
the same items. Nothing here touches the network.

Every reader yields `Item` records (lang, source, id, url, date, section,
publisher, title, lead). `id` is what labels.tsv refers to:

- ko  terajh/tera-rss (gh-pages history): the article URL.
- ja  groundcobra009/japan-news-frontpage-index: the article URL.
- zh  agora0/2511: the post path under _posts/ (one file per article).

The texts are the publishers' (headlines and the first sentences of the
article); they are rebuilt from the archive and cached locally, never committed.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import threading
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, List, Optional


@dataclass(frozen=True)
class Item:
    lang: str
    source: str
    id: str
    url: str
    date: str          # YYYY-MM-DD (publication date as the feed gives it, UTC)
    section: str       # normalised: politics, society, economy, world, sports, culture, it, opinion, local, news ...
    raw_section: str   # the archive's own category / topic / URL segment
    publisher: str
    title: str
    lead: str          # first sentence(s) of the article or the feed description; '' when the feed has none

    def to_json(self) -> Dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Archive:
    """A pinned public archive: the repository, the ref to read and the commit
    it must resolve to (the state the labels were made against)."""
    key: str
    lang: str
    repo: str
    ref: str
    commit: str
    licence: str


ARCHIVES: Dict[str, Archive] = {
    "ko": Archive("tera-rss", "ko", "terajh/tera-rss", "gh-pages",
                  "8611ff2f9222ff93edd321510a20c54d8b0005d2",
                  "README declares CC0-1.0 (no LICENSE file) for the collector; texts are the publishers'"),
    "ja": Archive("japan-news-frontpage-index", "ja", "groundcobra009/japan-news-frontpage-index", "HEAD",
                  "d87d67e7282c6eca9588d72c04b78462ed179221",
                  "MIT (the collector and its CSV layout); headlines are the publishers'"),
    "zh": Archive("agora0-2511", "zh", "agora0/2511", "HEAD",
                  "1565bc51662e64ee8b132a9df1e33e16750e3fc4",
                  "no licence file (all rights reserved by default); texts are the publishers'"),
    # The same aggregator a year earlier (November 2024): the Chinese items of
    # the held-out round, as the first archive had no North Korea story left.
    "zh-2411": Archive("agora0-2411", "zh", "agora0/2411", "HEAD",
                       "6e703f524e060a9a79526549fea30edd74b033c4",
                       "no licence file (all rights reserved by default); texts are the publishers'"),
}

LEAD_CHARS = 300


class SourceError(RuntimeError):
    pass


def _git(gitdir: str, *args: str) -> bytes:
    try:
        return subprocess.run(["git", "--git-dir", gitdir, *args], check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
    except FileNotFoundError as exc:  # pragma: no cover - git missing
        raise SourceError("git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise SourceError(f"git {' '.join(args)} failed in {gitdir}: "
                          f"{exc.stderr.decode('utf-8', 'replace').strip()}") from exc


def _show_many(gitdir: str, specs: List[str]) -> Iterator[Optional[bytes]]:
    """`git show` for many `<commit>:<path>` blobs through one `git cat-file
    --batch` process; yields None for a missing blob."""
    if not specs:
        return
    proc = subprocess.Popen(["git", "--git-dir", gitdir, "cat-file", "--batch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        def feed() -> None:
            try:
                for spec in specs:
                    proc.stdin.write(spec.encode("utf-8") + b"\n")
            finally:
                proc.stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        for _ in specs:
            header = proc.stdout.readline()
            parts = header.split()
            if len(parts) < 3 or parts[1] != b"blob":
                yield None
                continue
            size = int(parts[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            yield data
        writer.join()
    finally:
        proc.stdout.close()
        proc.wait()


def resolve_gitdir(path: str) -> str:
    """A bare mirror (…/repo) or a work tree (…/.git inside it)."""
    for candidate in (path, path.rstrip("/") + "/.git"):
        try:
            out = subprocess.run(["git", "--git-dir", candidate, "rev-parse", "--git-dir"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError as exc:  # pragma: no cover
            raise SourceError("git is not installed") from exc
        if out.returncode == 0:
            return candidate
    raise SourceError(f"{path} is not a git directory")


def check_commit(gitdir: str, archive: Archive) -> None:
    try:
        _git(gitdir, "cat-file", "-e", archive.commit + "^{commit}")
    except SourceError:
        raise SourceError(
            f"{gitdir} does not contain commit {archive.commit} of {archive.repo}; "
            f"fetch or clone https://github.com/{archive.repo} (with its {archive.ref} history)") from None


# ------------------------------------------------------------------ text helpers

_TAG = re.compile(r"<[^>]+>")
_SCRIPT = re.compile(r"<(script|style|figure|figcaption|picture|address|time|audio|noscript)\b.*?</\1>",
                     re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_WS = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """HTML → plain text: comments, scripts and figures out, tags out,
    entities decoded (twice: some feeds escape them twice), spaces collapsed."""
    text = _COMMENT.sub(" ", text or "")
    text = _SCRIPT.sub(" ", text)
    text = re.sub(r"<br\s*/?>|</p>|</div>", "\n", text, flags=re.I)
    text = _TAG.sub(" ", text)
    for _ in range(2):
        text = html.unescape(text)
    text = text.replace("\u00a0", " ")
    return _WS.sub(" ", text).strip()


def lead_of(text: str, limit: int = LEAD_CHARS) -> str:
    """The first sentence(s) of `text`, at most `limit` characters: cut at the
    last sentence end (。.!?) inside the limit when there is one."""
    text = clean_text(text)
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in re.finditer(r"[。．.!?！？](?=\s|$|[”\"」』)])", head)]
    if ends and ends[-1] > limit // 3:
        return head[:ends[-1]].strip()
    return head.rstrip() + "…"


# ------------------------------------------------------------------ ko: tera-rss

KO_SECTIONS = {
    "politics": "politics", "society": "society", "international": "world",
    "economy": "economy", "finance": "economy", "stock": "economy", "industry": "economy",
    "realestate": "economy", "sports": "sports", "culture": "culture",
    "entertainment": "culture", "it": "it", "opinion": "opinion",
}
KO_FOREIGN = {"bbc", "cnn", "nyt", "wsj", "reuters", "aljazeera"}  # English feeds in the same group


def read_ko(gitdir: str, archive: Archive = ARCHIVES["ko"]) -> Iterator[Item]:
    """Every Korean item in the gh-pages history up to the pinned commit, first
    appearance wins (oldest commit first, files in path order)."""
    check_commit(gitdir, archive)
    commits = _git(gitdir, "rev-list", "--reverse", archive.commit).decode().split()
    seen = set()
    specs = []
    for commit in commits:
        names = _git(gitdir, "ls-tree", "-r", "--name-only", commit, "economy/jsons/").decode().split("\n")
        # the per-publisher "_all_" union repeats the category feeds without a category
        specs += [f"{commit}:{n}" for n in sorted(names) if n.endswith(".json") and "-_all_" not in n]
    for blob in _show_many(gitdir, specs):
        try:
            records = json.loads(blob) if blob is not None else []
        except ValueError:
            continue
        for rec in records:
            pub = rec.get("publisherId", "")
            url = rec.get("url", "")
            if pub in KO_FOREIGN or not url or url in seen:
                continue
            seen.add(url)
            cats = rec.get("categories") or [""]
            raw = cats[0]
            yield Item(
                lang="ko", source=archive.key, id=url, url=url,
                date=(rec.get("date") or "")[:10],
                section=KO_SECTIONS.get(raw, raw or "unknown"), raw_section=raw,
                publisher=rec.get("publisherName", pub),
                title=clean_text(rec.get("title", "")),
                lead=lead_of(rec.get("partialText", "")),
            )


# ------------------------------------------------------------------ ja: japan-news-frontpage-index

JA_TOPICS = {
    "政治": "politics", "社会": "society", "国際": "world", "経済": "economy", "ビジネス": "economy",
    "スポーツ": "sports", "文化芸能": "culture", "サイエンス": "science", "おくやみ": "society",
    "地方・地域": "local", "local": "local", "national": "society", "ニュース": "news",
}
JA_SPORTS_PAPERS = {"デイリースポーツ", "日刊スポーツ", "スポニチ", "スポーツ報知", "サンケイスポーツ",
                    "東京中日スポーツ", "中日スポーツ"}
_JA_DAY = re.compile(r"^data/\d{4}/\d{2}/\d{4}-\d{2}-\d{2}\.csv$")


def read_ja(gitdir: str, archive: Archive = ARCHIVES["ja"]) -> Iterator[Item]:
    """Every headline in the daily CSVs of the pinned commit (first row per URL
    wins, days in order). The archive gives headlines only: lead is ''."""
    check_commit(gitdir, archive)
    names = _git(gitdir, "ls-tree", "-r", "--name-only", archive.commit, "data/").decode().split("\n")
    seen = set()
    for name in sorted(n for n in names if _JA_DAY.match(n)):
        text = _git(gitdir, "show", f"{archive.commit}:{name}").decode("utf-8", "replace")
        for row in csv.DictReader(io.StringIO(text)):
            url = (row.get("url") or "").strip()
            title = clean_text(row.get("headline") or "")
            if row.get("status") != "ok" or not url or not title or url in seen:
                continue
            seen.add(url)
            topic = (row.get("topic") or "").strip()
            paper = (row.get("newspaper") or "").strip()
            if paper in JA_SPORTS_PAPERS:
                section = "sports"
            else:
                # no topic: a front-page / main headline of a national or regional paper
                section = JA_TOPICS.get(topic, "front" if not topic else topic)
            yield Item(
                lang="ja", source=archive.key, id=url, url=url,
                date=(row.get("date") or "")[:10], section=section,
                raw_section=topic or (row.get("category") or ""),
                publisher=paper, title=title, lead="",
            )


# ------------------------------------------------------------------ zh: agora0/2511

ZH_PUBLISHERS = {"AJ": "半岛电视台中文网", "BBC": "BBC中文", "CHOSUN": "朝鲜日报中文网",
                 "CNA": "中央社", "DW": "德国之声中文网", "KYODO": "共同网中文", "NYT": "纽约时报中文网",
                 "RTHK": "香港电台", "NHK": "NHK中文", "RFA": "自由亚洲电台"}
# CNA puts its desk in the URL: /news/<code>/…
CNA_DESKS = {"aipl": "politics", "aopl": "world", "acn": "china", "asoc": "society", "aspt": "sports",
             "afe": "economy", "ait": "it", "ahel": "health", "acul": "culture", "aloc": "local",
             "amov": "culture", "aie": "economy", "asc": "economy", "aedu": "society", "ahot": "news",
             "firstnews": "news", "aall": "news", "aeco": "economy"}
AJ_DESKS = {"news": "world", "sport": "sports", "economy": "economy", "opinions": "opinion",
            "politics": "politics", "science": "science", "culture": "culture", "misc": "news",
            "features": "world", "interactives": "world"}
NYT_DESKS = {"china": "china", "world": "world", "business": "economy", "usa": "world",
             "opinion": "opinion", "culture": "culture", "lifestyle": "culture", "technology": "it",
             "health": "health", "sports": "sports", "asia-pacific": "world", "style": "culture",
             "education": "society", "science": "science"}
_ZH_POST = re.compile(r"^_posts/(\d{4}-\d{2}-\d{2})-([A-Z]+)-.+\.(md|html)$")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n?(.*)\Z", re.S)


def _zh_section(code: str, link: str) -> str:
    m = re.search(r"cna\.com\.tw/news/([a-z]+)/", link)
    if code == "CNA" and m:
        return CNA_DESKS.get(m.group(1), m.group(1))
    m = re.search(r"chinese\.aljazeera\.net/([a-z-]+)/", link)
    if code == "AJ" and m:
        return AJ_DESKS.get(m.group(1), m.group(1))
    m = re.search(r"cn\.nytimes\.com/([a-z-]+)/", link)
    if code == "NYT" and m:
        return NYT_DESKS.get(m.group(1), m.group(1))
    return "news"  # BBC, DW, Kyodo, Chosun, RTHK give no desk in the link


def _front_value(front: str, key: str) -> str:
    m = re.search(r"^" + key + r":\s?(.*)$", front, re.M)
    if not m:
        return ""
    value = m.group(1).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
        value = value.replace('\\"', '"') if m.group(1).strip()[0] == '"' else value.replace("''", "'")
    return value


def _zh_lead(body: str) -> str:
    # Most bodies are HTML; the first paragraph(s) of text is the lead. Drop
    # the bylines, dates and captions that some sites put first.
    text = clean_text(body)
    text = re.sub(r"^(\d{4}-\d{2}-\d{2}\s*\d{1,2}:\d{2}\s*)", "", text)
    text = re.sub(r"^图像来源[，,]\s*\S+\s*", "", text)
    text = re.sub(r"^Article Information.*?(\d+\s*(分钟|小时|天)前|\d{4}年\d{1,2}月\d{1,2}日)\s*", "", text)
    return lead_of(text)


def read_zh(gitdir: str, archive: Archive = ARCHIVES["zh"]) -> Iterator[Item]:
    """Every post of the pinned commit (Chinese editions of eight publishers,
    November 2025), in path order."""
    check_commit(gitdir, archive)
    raw = _git(gitdir, "-c", "core.quotepath=off", "ls-tree", "-r", "-z", "--name-only",
               archive.commit, "_posts/").decode("utf-8")
    names = [n for n in sorted(raw.split("\0")) if _ZH_POST.match(n)]
    blobs = _show_many(gitdir, [f"{archive.commit}:{n}" for n in names])
    for name, blob in zip(names, blobs):
        m = _ZH_POST.match(name)
        if blob is None:
            continue
        doc = blob.decode("utf-8", "replace")
        fm = _FRONT.match(doc)
        if not fm:
            continue
        front, body = fm.group(1), fm.group(2)
        link = _front_value(front, "link")
        code = m.group(2)
        yield Item(
            lang="zh", source=archive.key, id=name, url=link, date=m.group(1),
            section=_zh_section(code, link),
            raw_section=code.lower(), publisher=ZH_PUBLISHERS.get(code, code),
            title=clean_text(_front_value(front, "title")), lead=_zh_lead(body),
        )


READERS = {"ko": read_ko, "ja": read_ja, "zh": read_zh}


def read(key: str, gitdir: str) -> List[Item]:
    """Every item of the archive ARCHIVES[key] (a language code names its
    first archive), read from `gitdir` at the pinned commit."""
    archive = ARCHIVES[key]
    return list(READERS[archive.lang](resolve_gitdir(gitdir), archive))
