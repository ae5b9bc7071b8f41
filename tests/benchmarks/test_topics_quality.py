"""The rule quality benchmark's harness (benchmarks/topics_quality.py): how it
counts, and that it skips cleanly where the evaluation texts are absent (a
fresh clone: they are rebuilt from public archives, never committed)."""
import json

import pytest

from benchmarks import topics_quality
from benchmarks.topics_eval import LabelledItem
from transforms.topics import Topic

pytestmark = [pytest.mark.bench]


def item(title, label, lead=""):
    return LabelledItem(lang="ko", source="test", id=title, url="", date="2026-01-01", section="politics",
                        publisher="test", title=title, lead=lead, label=label, stratum="random", read=True,
                        note="")


RULES = [Topic("dprk_mentions", "북한 OR <北>"),
         Topic("dprk", "title:topic:dprk_mentions OR ATLEAST/2 summary:topic:dprk_mentions")]


def test_the_three_figures():
    items = [item("북한 미사일 발사", "about"),             # hit
             item("北, 탄도미사일", "about"),               # hit
             item("정책 발표", "about", "북한 북한"),        # hit: twice in the lead
             item("정부 발표", "about"),                    # missed
             item("북한 출신 요리사", "mentions"),          # taken: strict counts it wrong
             item("청년 지원", "mentions", "탈북"),         # not taken
             item("北京 여행", "not"),                      # left alone
             item("북한산 등산", "not")]                    # taken: wrong
    figures = topics_quality.score(RULES, items)
    strict, aside, mentions = (figures[k] for k in ("dprk, strict", "dprk, mentions aside", "dprk_mentions"))
    assert (strict.true_positives, strict.false_positives, strict.false_negatives) == (3, 2, 1)
    assert (aside.true_positives, aside.false_positives, aside.false_negatives) == (3, 1, 1)
    assert (mentions.true_positives, mentions.false_positives, mentions.false_negatives) == (4, 1, 2)
    assert strict.precision == 3 / 5 and strict.recall == 3 / 4
    assert str(aside) == "P 0.750 R 0.750 (3 hits, 1 wrong, 1 missed)"


def test_without_the_texts_it_says_how_to_rebuild_them_and_reports_nothing(tmp_path, capsys):
    assert topics_quality.measure(cache=str(tmp_path / "items.jsonl")) is None
    out = capsys.readouterr().out
    assert out.startswith("topics quality: skipped") and "benchmarks.topics_eval.build" in out


def test_old_and_new_rules_in_one_run(tmp_path, capsys):
    # A cache as build.py writes it, one record per labelled item, each with
    # the same made-up title in place of the publisher's.
    from benchmarks.topics_eval.build import read_labels

    rows = read_labels()
    cache = tmp_path / "items.jsonl"
    with open(cache, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"lang": row["lang"], "id": row["id"], "url": "", "date": "", "section": "",
                                 "publisher": "", "title": "北, 미사일 발사", "lead": ""},
                                ensure_ascii=False) + "\n")
    r = topics_quality.measure(cache=str(cache))
    assert set(r) == {"ko", "ja", "zh"}
    for lang in r:
        # every item is titled "北, 미사일 발사": only the new rules know 北 as a word
        assert r[lang]["old"]["dprk_mentions"].true_positives == 0
        assert r[lang]["new"]["dprk_mentions"].false_negatives == 0


def test_the_three_rounds_share_no_item_and_are_scored_apart(tmp_path):
    from benchmarks.topics_eval import SPLITS
    from benchmarks.topics_eval.build import read_labels

    rounds = {name: read_labels(path) for name, path in SPLITS.items()}
    keys = {name: {(r["lang"], r["id"]) for r in rows} for name, rows in rounds.items()}
    assert keys["tuning"].isdisjoint(keys["review"]) and keys["tuning"].isdisjoint(keys["heldout"])
    assert keys["review"].isdisjoint(keys["heldout"])
    # a cache whose held-out items all read "北, 미사일 발사" and the others "날씨"
    cache = tmp_path / "items.jsonl"
    with open(cache, "w", encoding="utf-8") as fh:
        for rows in rounds.values():
            for row in rows:
                title = "北, 미사일 발사" if (row["lang"], row["id"]) in keys["heldout"] else "날씨"
                fh.write(json.dumps({"lang": row["lang"], "id": row["id"], "url": "", "date": "", "section": "",
                                     "publisher": "", "title": title, "lead": ""}, ensure_ascii=False) + "\n")
    for name, rows in rounds.items():
        figures = topics_quality.measure(cache=str(cache), split=name)
        for lang in ("ko", "ja", "zh"):
            assert figures[lang]["items"] == sum(r["lang"] == lang for r in rows)
            mentions = figures[lang]["new"]["dprk_mentions"]
            if name == "heldout":
                assert mentions.false_negatives == 0 and mentions.true_positives > 0   # everything named
            else:
                assert mentions.true_positives == 0 and mentions.false_positives == 0  # nothing named


def test_the_saved_figures_render_as_printed():
    items = [item("북한 미사일 발사", "about"), item("北京 여행", "not"), item("정부 발표", "about")]
    results = {"tuning": {"ko": {"items": 3, "old": topics_quality.score(RULES, items),
                                 "new": topics_quality.score(RULES, items)}}}
    data = json.loads(json.dumps(topics_quality.to_json(results)))
    assert topics_quality.render(topics_quality.from_json(data)) == topics_quality.render(results)
    assert "dprk, strict          old P 1.000 R 0.500 (1 hits, 0 wrong, 1 missed)" in topics_quality.render(results)


def test_a_later_round_leaves_out_every_earlier_item_and_headline_and_draws_the_same_again():
    from benchmarks.topics_eval.build import select_later
    from benchmarks.topics_eval.sources import Item

    def made(n, title, lead="리드"):
        return Item(lang="ko", source="test", id=f"id{n}", url="", date=f"2026-01-{1 + n % 28:02d}",
                    section="politics", raw_section="politics", publisher="test", title=title, lead=lead)

    items = [made(n, f"제목 {n}" + (" 북한" if n % 5 == 0 else "")) for n in range(3000)]
    items.append(made(3000, "제목 7"))              # the headline of an earlier item, under another id
    items.append(made(3001, "리드 없는 제목", lead=""))  # Korean items need a lead
    earlier = {f"id{n}" for n in range(0, 3000, 3)}
    first = select_later("ko", items, earlier, "heldout")
    ids = [item.id for item, _ in first]
    assert len(ids) == len(set(ids)) == 600 + 150 + 0   # random, North Korea words, no look-alike here
    assert not set(ids) & earlier
    assert "id3000" not in ids and "id3001" not in ids
    assert [item.id for item, _ in select_later("ko", items, earlier, "heldout")] == ids
    assert [item.id for item, _ in select_later("ko", items, earlier, "review")] != ids  # its own stream
