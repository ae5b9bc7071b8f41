"""The guards of the query language for Korean, Japanese and Chinese (issue
18): word edges (`<북>`, `<탈북`, `북>`) and `a EXCEPT (longer words)`.

What parses to what, the errors a user sees, what matches in each scan (every
matching test runs once with the Hyperscan scan and once with the pure-Python
one), the traps the issue names, that both scans find the same matches on
texts built to catch them apart, and that a megabyte of 북 costs what its
size explains."""
import random
import time

import pytest

from transforms.topics import (
    And,
    AtLeast,
    Except,
    Near,
    Or,
    QuerySyntaxError,
    Term,
    Topic,
    TopicError,
    TopicMatcher,
    parse_query,
)
from transforms.topics.limits import MAX_TERM_CHARS, MAX_TOPIC_LITERALS
from transforms.topics.query import Key
from transforms.topics.scan import hyperscan_scan


def T(text, fields=("title", "summary", "content")):
    """A term as parse_query makes it (edges included), in `fields`."""
    term = parse_query(text if text.startswith("<") or text.endswith(">") else f'"{text}"')
    return Term(term.text, term.keys, fields)


def matches(query, title="", summary="", content=""):
    """(term, field, offset) of the matches of one topic, or None."""
    result = dict(TopicMatcher([Topic("t", query)]).match(title, summary, content))
    if "t" not in result:
        return None
    return [(m.term, m.field, m.offset) for m in result["t"]]


def hit(query, title="", summary="", content=""):
    return matches(query, title, summary, content) is not None


# ---------------------------------------------------------------- parsing


class TestParsingWordEdges:
    def test_edges_live_in_the_key_as_written(self):
        assert parse_query("<북>").keys == (Key(False, ("<북>",)),)
        assert parse_query("<탈북").keys == (Key(False, ("<탈북",)),)
        assert parse_query("北>").keys == (Key(False, ("北>",)),)

    def test_an_edged_term_is_another_key_than_the_bare_one(self):
        # The scans look for each once; a topic with 북 and one with <북>
        # do not share matches.
        assert parse_query("<북>").keys != parse_query("북").keys

    def test_edges_are_normalised_like_the_word(self):
        # NFKC: half-width katakana, full-width Latin around a Korean word
        assert parse_query("<ﾐｻｲﾙ>").keys == (Key(False, ("<ミサイル>",)),)

    def test_a_quoted_word_has_no_edges(self):
        # Quoting turns syntax off, as for "NEAR/3": < and > are punctuation.
        assert parse_query('"<북>"').keys == parse_query("북").keys

    def test_lone_angle_brackets_are_punctuation_as_before(self):
        for query in ("<", ">", "->"):
            with pytest.raises(QuerySyntaxError, match="has no letters or digits"):
                parse_query(query)

    @pytest.mark.parametrize("query", [
        "<북> OR 북한", "title:<北>", '"<북>" OR <북>', "<北> NEAR/3 ミサイル", "ATLEAST/2 (<북> OR 北>)"])
    def test_round_trips(self, query):
        q = parse_query(query)
        assert parse_query(str(q)) == q


class TestParsingExcept:
    def test_shape(self):
        assert parse_query("평양 EXCEPT 태평양") == Except(T("평양"), T("태평양"))
        q = parse_query("(평양 OR 平壤) EXCEPT (태평양 OR 환태평양)")
        assert [t.text for t in q.left_terms] == ["평양", "平壤"]
        assert [t.text for t in q.right_terms] == ["태평양", "환태평양"]

    def test_binds_tighter_than_near_and_or_looser_than_scopes(self):
        assert parse_query("평양 EXCEPT 태평양 NEAR/3 미사일") == Near(
            Except(T("평양"), T("태평양")), T("미사일"), 3)
        assert parse_query("북한 OR 평양 EXCEPT 태평양") == Or((T("북한"), Except(T("평양"), T("태평양"))))
        assert parse_query("ATLEAST/2 평양 EXCEPT 태평양") == AtLeast(Except(T("평양"), T("태평양")), 2)
        assert parse_query("title:평양 EXCEPT 태평양") == Except(T("평양", ("title",)), T("태평양"))

    def test_a_scope_on_the_whole_narrows_the_term_not_the_longer_words(self):
        # The longer words are looked for where the term is found.
        assert parse_query("title:(평양 EXCEPT 태평양)") == Except(T("평양", ("title",)), T("태평양"))

    def test_works_in_every_script(self):
        assert parse_query('Korea EXCEPT "South Korea"') == Except(T("Korea"), T("South Korea"))

    def test_lower_case_except_is_a_plain_word_and_quoted_is_a_term(self):
        assert parse_query("all except one") == And((T("all"), T("except"), T("one")))
        assert parse_query('"EXCEPT"') == T("EXCEPT")

    @pytest.mark.parametrize("query", [
        "평양 EXCEPT 태평양", "(평양 EXCEPT 태평양) NEAR/3 (미사일 OR 발사)", "ATLEAST/3 (평양 EXCEPT 태평양)",
        "title:평양 EXCEPT (태평양 OR 평양냉면) OR <북> EXCEPT e북", "NOT 평양 EXCEPT 태평양",
        '"EXCEPT" OR <北>'])
    def test_round_trips(self, query):
        q = parse_query(query)
        assert parse_query(str(q)) == q


class TestErrors:
    @pytest.mark.parametrize("query, position, message", [
        # word edges
        ("<missile>", 0, "< and > mark the edges of one Korean, Japanese, Chinese or Thai word (<북>); "
                         "other words match as whole words already (quote the term to search for < or >)"),
        ("x OR <G7정상", 5, "< and > mark the edges of one Korean, Japanese, Chinese or Thai word (<북>); "
                           "other words match as whole words already (quote the term to search for < or >)"),
        ("<북-한>", 0, "< and > mark the edges of one Korean, Japanese, Chinese or Thai word (<북>); "
                      "other words match as whole words already (quote the term to search for < or >)"),
        ("<북한*", 0, "a term with word edges (< >) cannot have a wildcard"),
        ("<->", 1, "term '-' has no letters or digits"),
        # EXCEPT without its sides
        ("EXCEPT 태평양", 0, "expected a term before EXCEPT"),
        ("평양 EXCEPT", 3, "expected a term after EXCEPT"),
        ("평양 EXCEPT NOT 태평양", 3, "expected a term after EXCEPT"),
        ("평양 EXCEPT 태평양 EXCEPT 환태평양", 14, "EXCEPT takes one list of longer words; join them "
                                             "with OR: a EXCEPT (b OR c)"),
        # EXCEPT's sides are terms or OR-groups of them
        ("(평양 AND 북한) EXCEPT 태평양", 12, "EXCEPT works on terms, phrases or (a OR b) groups of them"),
        ("평양 EXCEPT (태평양 NEAR/2 바다)", 3, "EXCEPT works on terms, phrases or (a OR b) groups of them"),
        ("(평양 EXCEPT 태평양) EXCEPT 환태평양", 16, "EXCEPT takes one list of longer words; join them "
                                               "with OR: a EXCEPT (b OR c)"),
        ("source:(a EXCEPT b)", 10, "EXCEPT cannot be used inside source:"),
        ("language:ko EXCEPT 태평양", 12, "EXCEPT works on terms, phrases or (a OR b) groups of them"),
        # the longer words: no scope, and they must contain the term
        ("평양 EXCEPT title:태평양", 16, "the words after EXCEPT take no field scope: they are looked "
                                     "for where the term before EXCEPT is found"),
        ("평양 EXCEPT (태평양 OR 미사일)", 18, "'미사일' does not contain '평양': EXCEPT drops the "
                                         "occurrences of a term that are part of a longer word or "
                                         "phrase (평양 EXCEPT 태평양)"),
        ("태평양 EXCEPT 평양", 11, "'평양' does not contain '태평양': EXCEPT drops the occurrences of a "
                               "term that are part of a longer word or phrase (평양 EXCEPT 태평양)"),
    ])
    def test_error_position_and_message(self, query, position, message):
        with pytest.raises(QuerySyntaxError) as err:
            parse_query(query)
        assert (err.value.position, err.value.message) == (position, message)

    def test_the_checks_run_again_once_references_are_resolved(self):
        with pytest.raises(TopicError, match="'미사일' does not contain '평양'"):
            TopicMatcher([Topic("traps", "미사일"), Topic("t", "평양 EXCEPT topic:traps")])
        with pytest.raises(TopicError, match="EXCEPT works on terms"):
            TopicMatcher([Topic("x", "평양 AND 북한"), Topic("t", "topic:x EXCEPT 태평양")])
        # ... and a reference that does resolve to terms is fine
        m = TopicMatcher([Topic("traps", "태평양 OR 평양냉면"), Topic("t", "평양 EXCEPT topic:traps")])
        assert [n for n, _ in m.match("평양냉면 맛집")] == ["traps"]
        assert [n for n, _ in m.match("평양 방문")] == ["t"]

    def test_a_prefix_among_the_longer_words_is_not_second_guessed(self):
        # missile* may be "missiles", which contains... nothing we can tell
        # from the letters alone; EXCEPT takes it.
        assert isinstance(parse_query("missiles EXCEPT missile*"), Except)


# ---------------------------------------------------------------- matching

pytestmark_engines = pytest.mark.usefixtures("matcher_engine")


@pytestmark_engines
class TestWordEdges:
    # The shorthand: 북 and 北 as a word of their own.
    @pytest.mark.parametrize("title", [
        "북, 동해상으로 탄도미사일 발사", "北 미사일 발사에 日 긴급회의", "北、弾道ミサイル発射",
        "美 \"北 도발 규탄\"", "남과 북", "북·미 대화 재개", "한미일, 北 도발에 경고 [종합]", "北 ICBM 발사",
        "「北」が発射", "北\u3000ミサイル"])  # ideographic space
    def test_a_word_of_its_own(self, title):
        assert hit("<북> OR <北>", title=title)

    @pytest.mark.parametrize("title", [
        "북쪽 지방에 한파", "북부 지역 폭우", "북미 시장 공략", "경북 포항 지진", "충북 청주", "동서남북",
        "노트북 신제품", "페이스북 접속 장애", "北京で日中首脳会談", "北海道で大雪", "台北國際書展", "東北新幹線",
        "北美票房", "美北 정상회담"])
    def test_not_inside_a_longer_word(self, title):
        assert not hit("<북> OR <北>", title=title)

    def test_start_only_and_end_only(self):
        assert hit("<탈북", title="탈북민 정착 지원") and hit("<탈북", title="탈북, 그 후")
        assert not hit("<탈북", title="반탈북 정서")  # mid-word
        assert hit("북>", title="경북") and hit("북>", title="남과 북, 다시")
        assert not hit("북>", title="북부")

    def test_a_latin_letter_or_a_digit_ends_a_word_of_these_scripts(self):
        # Words are runs of one kind (the tokenizer's words): DPRK는 is two.
        assert hit("<北>", title="北ICBM") and hit("<北>", title="3北") and hit("<북>", title="e북")

    @pytest.mark.parametrize("title", [
        "北，导弹",            # full-width comma
        "ＤＰＲＫ北 발사",      # full-width Latin before
        "北　발사",            # ideographic space
    ])
    def test_full_width_punctuation_and_spaces_are_edges(self, title):
        assert hit("<北>", title=title)

    def test_half_width_katakana_match_full_width_terms(self):
        assert hit("<ミサイル>", title="北朝鮮 ﾐｻｲﾙ 発射") and not hit("<ミサイル>", title="ﾐｻｲﾙ発射")

    def test_reported_offset_is_in_the_stored_text(self):
        title = "ＤＰＲＫ、美·北 정상회담"
        assert matches("<北>", title=title) == [("<北>", "title", title.index("北"))]

    def test_every_occurrence_counts_for_atleast_and_near(self):
        assert hit("ATLEAST/2 <北>", title="北、北") and not hit("ATLEAST/2 <北>", title="北、北京")
        assert hit("<北> NEAR/1 발사", content="北 미사일 발사") and not hit(
            "<北> NEAR/1 발사", content="北京 미사일 발사")

    def test_field_scopes(self):
        assert hit("title:<北>", title="北 발사") and not hit("title:<北>", summary="北 발사")

    def test_the_bare_term_still_matches_inside_words(self):
        m = TopicMatcher([Topic("edged", "<북>"), Topic("bare", "북")])
        assert [n for n, _ in m.match("노트북")] == ["bare"]
        assert [n for n, _ in m.match("북, 발사")] == ["bare", "edged"]


@pytestmark_engines
class TestExcept:
    @pytest.mark.parametrize("query, yes, no", [
        ("평양 EXCEPT 태평양", ["평양 방문", "태평양 건너 평양으로"], ["태평양 연안", "환태평양 조산대"]),
        ("남북 EXCEPT 동서남북", ["남북 정상회담", "남북관계 경색"], ["동서남북 어디든"]),
        ("조선 EXCEPT (조선일보 OR 조선업 OR 조선소)", ["조선 왕실 행사"], ["조선일보 기자", "조선업 호황",
                                                                  "조선소 화재"]),
        ("북미 EXCEPT (북미주 OR 대북미)", ["북미 대화"], ["북미주 한인회", "대북미 수출"]),
        ("朝鲜 EXCEPT (朝鲜日报 OR 朝鲜族)", ["朝鲜发射导弹"], ["朝鲜日报报道", "朝鲜族舞蹈"]),
        ('Korea EXCEPT "South Korea"', ["North Korea fires"], ["South Korea votes"]),
    ])
    def test_the_traps(self, query, yes, no):
        for text in yes:
            assert hit(query, title=text), text
        for text in no:
            assert not hit(query, title=text), text

    def test_an_occurrence_beside_the_longer_word_still_counts(self):
        # 태평양 in the same title does not hide the 평양 elsewhere in it.
        assert matches("평양 EXCEPT 태평양", title="태평양과 평양") == [("평양", "title", 5)]

    def test_the_longer_word_must_be_in_the_same_field(self):
        assert hit("평양 EXCEPT 태평양", title="평양 방문", summary="태평양")
        assert not hit("평양 EXCEPT 태평양", title="태평양", summary="환태평양")

    def test_a_phrase_can_be_the_longer_words(self):
        # 북송 (forced repatriation) is also the Northern Song dynasty.
        q = '북송 EXCEPT ("북송 시대" OR 북송시대)'
        assert hit(q, title="탈북민 강제북송 중단하라") and not hit(q, title="북송 시대의 도자기")
        assert not hit('김정은 EXCEPT "배우 김정은"', content="배우 김정은, 드라마 복귀")
        assert hit('김정은 EXCEPT "배우 김정은"', content="배우 김정은 말고 김정은 위원장")

    def test_latin_term_inside_a_mixed_phrase(self):
        assert not hit("<북> EXCEPT e북", title="e북 시장 성장") and hit("<북> EXCEPT e북", title="북, 발사")

    def test_near_sees_only_the_occurrences_left(self):
        q = "(평양 EXCEPT 태평양) NEAR/1 미사일"
        assert not hit(q, content="태평양 미사일 시험장")
        assert hit(q, content="태평양 건너 평양 미사일")
        assert matches(q, content="태평양 건너 평양 미사일") == [
            ("평양", "content", 7), ("미사일", "content", 10)]

    def test_atleast_counts_only_the_occurrences_left(self):
        q = "ATLEAST/2 (평양 EXCEPT 태평양)"
        assert not hit(q, content="태평양, 태평양, 평양")
        assert hit(q, content="평양, 태평양, 평양")

    def test_explanation_names_the_first_occurrence_left_in_each_field(self):
        assert matches("평양 EXCEPT 태평양", title="태평양 평양", content="평양") == [
            ("평양", "title", 4), ("평양", "content", 0)]

    def test_under_not(self):
        assert hit("북한 NOT (평양 EXCEPT 태평양)", title="북한, 태평양")
        assert not hit("북한 NOT (평양 EXCEPT 태평양)", title="북한, 평양")

    def test_with_word_edges(self):
        q = '<北> EXCEPT ("北 中" OR "北 東")'  # "北、中部": north and centre, in a weather report
        assert hit(q, title="北、弾道ミサイル発射") and not hit(q, title="北、中部で大雨")

    def test_in_a_referenced_topic_under_atleast(self):
        # The bundled dprk rule: ATLEAST/3 over a topic whose terms use EXCEPT.
        m = TopicMatcher([Topic("m", "북한 OR 평양 EXCEPT 태평양"), Topic("d", "ATLEAST/3 topic:m")])
        assert [n for n, _ in m.match("", "", "평양 북한 태평양 태평양")] == ["m"]
        assert [n for n, _ in m.match("", "", "평양 북한 평양")] == ["d", "m"]


@pytestmark_engines
def test_a_phrase_of_these_scripts_is_found_wherever_its_first_word_may_start():
    # The longer words of EXCEPT are often such phrases ("배우 김정은"). The
    # pure-Python scan joins a field's words for them only when a word holds
    # a phrase's first piece: inside a longer word for Korean ("여배우"), as
    # a whole word for Latin ("e").
    assert hit('"배우 김정은"', title="여배우 김정은, 드라마 복귀")
    assert hit('"e 북"', title="국내 e북 시장") and not hit('"e 북"', title="code북 시장")
    assert not hit('"배우 김정은"', title="배우 김정")


# ---------------------------------------------------------------- both scans agree

RULES = [
    Topic("edges", "<북> OR <北> OR <탈북 OR 북> OR <北이 OR <ミサイル>"),
    Topic("except", "평양 EXCEPT (태평양 OR 평양냉면) OR 남북 EXCEPT 동서남북 OR 朝鲜 EXCEPT 朝鲜日报 "
                    "OR <북> EXCEPT (e북 OR \"북 콘서트\") OR Korea EXCEPT \"South Korea\""),
    Topic("near", "(평양 EXCEPT 태평양) NEAR/2 (미사일 OR <北>)"),
    Topic("count", "ATLEAST/2 (<북> OR 평양 EXCEPT 태평양 OR korea EXCEPT \"south korea\")"),
    Topic("scoped", "title:<北> OR summary:(평양 EXCEPT 태평양)"),
    Topic("folded", "Corée EXCEPT \"Corée du Sud\" OR <북>", fold_accents=True),
]
WORDS = ["북", "北", "北京", "북한", "북쪽", "노트북", "e북", "탈북", "탈북민", "반탈북", "경북", "北이", "美北",
         "평양", "태평양", "환태평양", "평양냉면", "남북", "동서남북", "朝鲜", "朝鲜日报", "미사일", "ミサイル",
         "ﾐｻｲﾙ", "콘서트", "korea", "south", "north", "corée", "coree", "du", "sud", "Ｋｏｒｅａ", "北、", "ＤＰＲＫ",
         "😀", "ǅ"]
JOINS = [" ", " ", "", "", ", ", "、", "\u3000", "·", "-", "\n", "「", "」", "，"]


def _random_text(rng, n):
    return "".join(rng.choice(WORDS) + rng.choice(JOINS) for _ in range(n))


@pytest.mark.skipif(not hyperscan_scan.AVAILABLE, reason="hyperscan does not import here")
def test_both_scans_agree_on_guards_in_texts_built_to_catch_them_apart():
    fast = TopicMatcher(RULES, engine="hyperscan")
    python = TopicMatcher(RULES, engine="python")
    rng = random.Random(18)
    matched = set()
    for i in range(1500):
        story = (_random_text(rng, rng.randint(0, 6)), _random_text(rng, rng.randint(0, 20)),
                 _random_text(rng, rng.randint(0, 40)) if rng.random() < 0.5 else "")
        expected = python.match(*story)
        assert fast.match(*story) == expected, (i, story)
        matched.update(name for name, _ in expected)
    assert matched == {t.name for t in RULES}  # every rule is exercised


# ---------------------------------------------------------------- limits


@pytestmark_engines
def test_an_edged_word_counts_its_edges_in_the_length_limit():
    at_limit = "<" + "가" * (MAX_TERM_CHARS - 2) + ">"
    assert hit(at_limit, title="x " + "가" * (MAX_TERM_CHARS - 2) + ", y")
    assert not hit(at_limit, title="x 나" + "가" * (MAX_TERM_CHARS - 2))
    with pytest.raises(TopicError, match="at most 200 characters; this one has 201"):
        TopicMatcher([Topic("t", "<" + "가" * (MAX_TERM_CHARS - 1) + ">")])


@pytest.mark.slow
def test_the_longer_words_of_except_count_as_literals():
    # They are terms the scans look for, like any other: each of these is
    # two literals (Korean then digits, with a space or without).
    longer = " OR ".join(f"가나{i}" for i in range(MAX_TOPIC_LITERALS // 2))
    with pytest.raises(TopicError, match="its terms expand to 50,001 literals"):
        TopicMatcher([Topic("t", f"가 EXCEPT ({longer})")])
    with pytest.raises(TopicError, match="50,001 terms once topic: references are expanded"):
        TopicMatcher([Topic("t", f"가 EXCEPT ({longer} OR {longer.replace('나', '다')})")])


# ---------------------------------------------------------------- cost


def _cost_per_character(rules, text: str, repeat: int) -> float:
    """CPU seconds per character of matching `text`, the fastest of
    `repeat` runs, each by a new matcher (the pure-Python scan remembers
    the text it has read)."""
    best = float("inf")
    for _ in range(repeat):
        matcher = TopicMatcher(rules)
        start = time.process_time()
        matcher.match(text)
        best = min(best, time.process_time() - start)
    return best / len(text)


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["북", "북 ", "北、"], ids=["run", "words", "clauses"])
def test_a_megabyte_of_북_costs_what_its_size_explains(matcher_engine, unit):
    # A hostile title: every character is a candidate 북 that the edges
    # must settle. The cost per character of 1 MB is that of 10 KB, give
    # or take: no step is worse than n log n. A ratio, not a time: the
    # machine's speed cancels out; the bound is generous because a shared
    # machine is noisy, and a quadratic step would be ~100x.
    rules = [Topic("dprk", "<북> OR 北> OR <北 OR 평양 EXCEPT 태평양 OR 북한"),
             Topic("count", "ATLEAST/3 (<북> OR <北>)")]
    small, large = unit * (10_000 // len(unit)), unit * (1_000_000 // len(unit))
    _cost_per_character(rules, small, 1)  # tables built once per process
    ratio = _cost_per_character(rules, large, 2) / _cost_per_character(rules, small, 5)
    assert ratio < 5, ratio
