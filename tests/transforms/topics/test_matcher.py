"""What matches what: normalisation, the operators, fields, references and
the explanation (topic, term, field, offset) of every match."""
import pytest

from transforms.records import Match
from transforms.topics import Not, Or, Topic, TopicMatcher, tokenize

# Every test once with each scan of the matcher (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("matcher_engine")


def matches(query, title="", summary="", content="", fold=False, **story):
    """The matches of a single topic `t`, as (term, field, offset); None when
    it does not match."""
    result = dict(TopicMatcher([Topic("t", query, fold)]).match(title, summary, content, **story))
    if "t" not in result:
        return None
    return [(m.term, m.field, m.offset) for m in result["t"]]


def terms(query, *args, **kwargs):
    found = matches(query, *args, **kwargs)
    return None if found is None else sorted({term for term, _, _ in found})


class TestNormalisation:
    def test_offsets_after_characters_that_normalisation_joins(self):
        # "e" + U+0301 becomes one "é": what follows keeps its own offset.
        for text in ("Caf" + "e\u0301" + " stories about North Korea",  # another chunk
                     "Caf" + "e\u0301" + "/North Korea"):                # the same chunk
            assert matches('"North Korea"', title=text) == [("North Korea", "title", text.index("North"))]

    def test_combining_marks_stay_inside_words(self):
        # Python's \w leaves out Indic vowel signs; a word must not break there.
        assert tokenize("उत्तर कोरिया") == ["उत्तर", "कोरिया"]
        assert terms("कोरिया", content="उत्तर कोरिया ने मिसाइल दागी") == ["कोरिया"]

    def test_case_and_width_insensitive(self):
        assert terms("dprk", title="ＤＰＲＫ fires missile") == ["dprk"]
        assert terms("STRASSE", title="die Straße") == ["STRASSE"]

    def test_whole_words_in_spaced_scripts(self):
        assert terms("missile", content="two missiles were fired") is None
        assert terms("Korea", content="Koreans celebrated") is None
        assert terms("Korea", content="in Korea, today") == ["Korea"]

    @pytest.mark.parametrize("text", ["Kim Jong-un inspects", "Kim Jong Un inspects",
                                      "KIM JONG‐UN inspects", "Kim Jongun inspects"])
    def test_hyphen_variants(self, text):
        assert terms('"Kim Jong-un"', title=text) == ["Kim Jong-un"]

    def test_spaced_query_matches_hyphenated_text(self):
        assert terms('"Kim Jong Un"', title="Kim Jong-un inspects") == ["Kim Jong Un"]
        assert terms('"Kim Jong Un"', title="Kim Jongun inspects") is None  # nothing to join on

    @pytest.mark.parametrize("text", ["People's Republic", "People’s Republic", "Peoples Republic"])
    def test_apostrophe_variants(self, text):
        assert terms('"People\'s Republic"', content=f"the {text} of Korea") == ["People's Republic"]

    def test_accent_folding_is_per_topic(self):
        assert terms("Corée", title="La Coree du Nord", fold=True) == ["Corée"]
        assert terms("Coree", title="La Corée du Nord", fold=True) == ["Coree"]
        assert terms("Pjöngjang", title="PJONGJANG meldet", fold=True) == ["Pjöngjang"]
        assert terms("Corée", title="La Coree du Nord") is None
        assert terms("Corée", title="La Corée du Nord") == ["Corée"]

    def test_accent_folding_keeps_japanese_voicing_marks(self):
        # が is か + a voicing mark in NFD; folding must not turn it into か.
        assert terms("ガス", content="ガス料金", fold=True) == ["ガス"]
        assert terms("カス", content="ガス料金", fold=True) is None


class TestUnspacedScripts:
    @pytest.mark.parametrize("text", ["북한의 미사일 발사", "북한은 오늘", "북한", "남북한 회담"])
    def test_korean_with_particles(self, text):
        assert terms("북한", title=text) == ["북한"]

    def test_japanese_inside_a_sentence(self):
        assert terms("北朝鮮", summary="北朝鮮は弾道ミサイルを発射した") == ["北朝鮮"]
        assert terms("ミサイル", summary="北朝鮮は弾道ミサイルを発射した") == ["ミサイル"]

    def test_chinese_inside_a_sentence(self):
        assert terms("朝鲜", content="朝鲜发射了导弹。") == ["朝鲜"]

    def test_thai_inside_a_sentence(self):
        assert terms("เกาหลีเหนือ", content="วันนี้เกาหลีเหนือยิงขีปนาวุธ") == ["เกาหลีเหนือ"]

    def test_latin_term_next_to_korean_particle(self):
        assert terms("DPRK", title="DPRK는 발표했다") == ["DPRK"]

    def test_phrase_across_punctuation(self):
        assert terms('"김정은 위원장"', content="김정은, 위원장은") == ["김정은 위원장"]

    def test_mixed_script_term_keeps_latin_word_boundary(self):
        assert terms("G7정상", content="G7 정상회의") == ["G7정상"]
        assert terms("G7정상", content="AG7 정상회의") is None


class TestWildcards:
    def test_prefix(self):
        assert terms("missile*", content="two missiles") == ["missile*"]
        assert terms("missile*", content="a missile") == ["missile*"]
        assert terms("missile*", content="a missil") is None

    def test_inflected_russian(self):
        q = '"Северн* Коре*"'
        for text in ("Северная Корея", "в Северной Корее", "лидер Северной Кореи"):
            assert terms(q, content=text) == ["Северн* Коре*"], text
        assert terms(q, content="Южная Корея") is None

    def test_prefix_with_accent_folding(self):
        q = "nord-coréen*"
        assert terms(q, title="les forces nord-coréennes", fold=True) == [q]
        assert terms(q, title="les forces nordcoreennes", fold=True) == [q]


class TestNear:
    @pytest.mark.parametrize("text, distance, expected", [
        ("missile test", 0, True),
        ("test missile", 0, True),               # order-free
        ("missile was a test", 1, False),
        ("missile was a test", 2, True),         # n = words in between
        ("test, then a missile", 2, True),
    ])
    def test_distance_in_words(self, text, distance, expected):
        assert (matches(f"missile NEAR/{distance} test", content=text) is not None) == expected

    def test_phrases_and_groups(self):
        q = '"North Korea" NEAR/3 (missile OR rocket)'
        assert terms(q, content="North Korea fired a rocket") == ["North Korea", "rocket"]
        assert terms(q, content="North Korea said on Monday that a rocket") is None

    def test_same_field_only(self):
        assert matches("missile NEAR/5 test", title="missile", summary="test") is None

    def test_korean_words_count_as_words(self):
        assert terms("미사일 NEAR/1 발사", content="북한이 미사일 한 발을 발사했다") is None
        assert terms("미사일 NEAR/2 발사", content="북한이 미사일 한 발을 발사했다") == ["미사일", "발사"]

    def test_within_one_run_of_japanese(self):
        assert terms("ミサイル NEAR/0 発射", content="弾道ミサイルを発射した") == ["ミサイル", "発射"]

    def test_a_place_is_not_near_itself(self):
        assert matches("missile NEAR/3 missile*", content="one missile") is None
        assert matches("missile NEAR/3 missile*", content="one missile, two missiles") is not None

    def test_many_occurrences_on_both_sides(self):
        # 20,000 x 20,000 candidate pairs, none close enough: one sweep, not n*m.
        content = "missile " * 20_000 + "a b c d e " + "test " * 20_000
        assert matches("missile NEAR/4 test", content=content) is None
        assert matches("missile NEAR/5 test", content=content) == [
            ("missile", "content", 8 * 19_999), ("test", "content", 8 * 20_000 + 10)]

    def test_reports_the_pair_found(self):
        content = "A test. Then, much later, a missile test."
        assert matches("missile NEAR/2 test", content=content) == [
            ("missile", "content", content.index("missile")),
            ("test", "content", content.rindex("test"))]


class TestAtLeast:
    def test_counts_occurrences_of_all_operand_terms(self):
        q = 'ATLEAST/3 ("North Korea*" OR Pyongyang)'
        assert matches(q, content="North Korea said. Pyongyang said.") is None
        assert terms(q, title="North Korean troops", content="North Korea said. Pyongyang said.") == [
            "North Korea*", "Pyongyang"]

    def test_one_place_counts_once(self):
        assert matches('ATLEAST/2 ("North Korea" OR Korea*)', content="North Korea") is None

    def test_with_a_field_scope(self):
        q = "ATLEAST/2 title:(DPRK OR Korea)"
        assert matches(q, title="DPRK", content="Korea Korea") is None
        assert matches(q, title="DPRK and Korea") is not None


class TestFields:
    def test_text_fields(self):
        assert terms("title:missile", title="missile") == ["missile"]
        assert terms("title:missile", summary="missile") is None
        assert terms("summary:missile OR content:rocket", content="rocket") == ["rocket"]

    def test_matches_name_each_field_a_term_was_found_in(self):
        assert matches("DPRK", title="DPRK", summary="the DPRK", content="x DPRK") == [
            ("DPRK", "title", 0), ("DPRK", "summary", 4), ("DPRK", "content", 2)]

    def test_phrase_does_not_span_fields(self):
        assert terms('"North Korea"', title="Talks in the North", summary="Korea said") is None

    @pytest.mark.parametrize("source, expected", [
        ("yna.co.kr", True), ("en.yna.co.kr", True), ("myna.co.kr", False), (None, False)])
    def test_source(self, source, expected):
        assert (matches("source:yna.co.kr", title="x", source=source) is not None) == expected

    def test_source_match_reports_the_offset_in_the_site_name(self):
        assert matches("source:yna.co.kr", source="en.yna.co.kr") == [("yna.co.kr", "source", 3)]

    def test_language(self):
        assert matches("language:ko", title="x", language="ko") == [("ko", "language", 0)]
        assert matches("language:ko", title="x", language="en") is None
        assert matches("language:ko", title="x") is None  # unknown: "und"

    def test_language_is_asked_for_only_when_needed(self):
        asked = []

        def language():
            asked.append(1)
            return "ko"

        m = TopicMatcher([("t", "language:ko AND 북한"), ("u", "DPRK")])
        assert m.needs_language
        assert m.match("DPRK", "", "", language=language) == [("u", [Match("u", "DPRK", "title", 0)])]
        assert asked == []  # 북한 is missing: no need to know the language
        assert [name for name, _ in m.match("북한", "", "", language=language)] == ["t"]
        assert asked == [1]
        assert not TopicMatcher([("u", "DPRK")]).needs_language


class TestBooleans:
    def test_and_requires_all(self):
        assert terms("DPRK missile", title="DPRK", content="missile test") == ["DPRK", "missile"]
        assert terms("DPRK missile", title="DPRK", content="rocket test") is None

    def test_or_reports_only_the_terms_found(self):
        assert terms('DPRK OR "North Korea" OR 북한', content="North Korea") == ["North Korea"]

    def test_not_excludes_and_is_never_evidence(self):
        q = '"Kim Jong Un" NOT (visit AND Moscow)'
        assert terms(q, title="Kim Jong Un to visit Beijing") == ["Kim Jong Un"]
        assert terms(q, title="Kim Jong Un to visit Moscow") is None

    def test_double_negation_reports_the_term(self):
        assert terms("NOT NOT DPRK", title="DPRK") == ["DPRK"]

    def test_negative_only_topic_matches_without_a_hit(self):
        assert matches("NOT sport", title="Parliament votes") == []
        assert matches("NOT sport", title="sport news") is None


class TestReferences:
    TOPICS = [
        Topic("dprk", '"North Korea" OR DPRK OR 북한'),
        Topic("missile_tests", "missile* NEAR/5 (test* OR launch*)"),
        Topic("dprk_missile_tests", "topic:dprk AND topic:missile_tests"),
        Topic("dprk_headlines", "title:topic:dprk"),
    ]

    def test_reference_means_the_other_topics_query(self):
        m = TopicMatcher(self.TOPICS)
        found = dict(m.match("North Korea tests missile", "", ""))
        assert sorted(found) == ["dprk", "dprk_headlines", "dprk_missile_tests", "missile_tests"]
        assert found["dprk_missile_tests"] == [
            Match("dprk_missile_tests", "North Korea", "title", 0),
            Match("dprk_missile_tests", "test*", "title", 12),
            Match("dprk_missile_tests", "missile*", "title", 18)]

    def test_field_scope_on_a_reference(self):
        m = TopicMatcher(self.TOPICS)
        assert [n for n, _ in m.match("Talks", "North Korea tests missile", "")] == [
            "dprk", "dprk_missile_tests", "missile_tests"]

    def test_accent_folding_stays_with_the_topic_that_wrote_the_term(self):
        m = TopicMatcher([Topic("fr", "Corée", fold_accents=True), Topic("all", "topic:fr")])
        assert [n for n, _ in m.match("Coree", "", "")] == ["all", "fr"]


class TestExplanations:
    def test_offsets_point_into_the_stored_text(self):
        # "…" becomes "..." and "ß" becomes "ss" when normalised; offsets
        # still count characters of the text as stored.
        content = "Straße… ＤＰＲＫ: North Korea"
        for term, field, offset in matches('DPRK OR "North Korea"', content=content):
            assert content[offset:].casefold().startswith(("ｄｐｒｋ", "north")), (term, offset)
        assert matches("DPRK", content=content) == [("DPRK", "content", 8)]

    def test_first_occurrence_per_field(self):
        assert matches("Korea*", content="Korea and Koreans; Korea") == [("Korea*", "content", 0)]

    def test_korean_offsets(self):
        assert matches("북한", summary="…오늘 북한은") == [("북한", "summary", 4)]


class TestScanShortcuts:
    """The matcher learns a field's new chunks together and skips work by
    set tests; each shortcut must leave the answer as the long way gives it."""

    def test_term_found_after_its_letters_inside_other_chunks(self):
        # "korea" first occurs inside "northkorea" and "koreans"; the chunk
        # that holds it as a word comes third.
        assert matches("korea", content="northkorea koreans korea.") == [("korea", "content", 19)]

    def test_several_new_chunks_with_terms_in_one_field(self):
        assert matches("dprk OR pyongyang", title="(DPRK) says Pyongyang: dprk,") == [
            ("dprk", "title", 1), ("pyongyang", "title", 12)]

    def test_phrase_words_present_but_apart_do_not_match(self):
        assert matches('"missile launch"', content="a missile, then a launch") is None
        assert matches('"missile launch"', content="launch missile") is None
        assert matches('"missile launch*"', content="missile test launches") is None
        assert matches('"missile launch"', content="the missile, launch") == [
            ("missile launch", "content", 4)]

    def test_phrase_continues_into_a_chunk_seen_before_without_terms(self):
        # "launch." is learnt in the first story as a chunk with nothing in
        # it; its words are worked out when the phrase asks for them.
        m = TopicMatcher([("t", '"missile launch"')])
        assert m.match("launch.", "", "") == []
        assert m.match("missile launch.", "", "") == [("t", [Match("t", "missile launch", "title", 0)])]

    def test_wildcard_prefixes_among_new_words(self):
        assert matches("missil*", content="dummy missi missiles, missile-launchers") == [
            ("missil*", "content", 12)]
        assert matches("missil* OR launch*", content="missi launc") is None
        assert matches("corée*", title="Les Coréens", fold=True) == [("corée*", "title", 4)]
        assert matches("corée*", title="Les Coreens", fold=True) == [("corée*", "title", 4)]
        assert matches("corée*", title="Les Coreens") is None

    def test_unspaced_terms_in_later_words_of_a_field(self):
        # New Korean words are scanned as one text; a hit maps back to its
        # own word and place in it.
        assert matches("북한", content="오늘은 정부가 남북한의") == [("북한", "content", 9)]
        assert matches("북한 OR 北朝鮮", content="오늘은 정부가 北朝鮮は 북한") == [
            ("北朝鮮", "content", 8), ("북한", "content", 13)]

    def test_offsets_after_characters_normalisation_changes(self):
        content = "Straße ﬁnal… ＤＰＲＫ Korea"
        assert matches("korea", content=content) == [("korea", "content", 18)]
        assert matches("final", content=content) == [("final", "content", 7)]
        # a letter and a separate accent join into one character: the
        # offsets of later chunks still count the stored characters
        assert matches("korea", content="Cafe\u0301 Korea") == [("korea", "content", 6)]


class TestTopicMatcher:
    def test_results_sorted_by_topic_name(self):
        m = TopicMatcher([("zeta", "missile"), ("alpha", "DPRK"), ("mid", "NOT sport"), ("none", "Iran")])
        assert [name for name, _ in m.match("DPRK missile", "", "")] == ["alpha", "mid", "zeta"]

    def test_same_term_in_many_topics_reported_per_topic_as_written(self):
        m = TopicMatcher([("a", "DPRK"), ("b", "dprk AND missile"), ("c", "dprk NOT missile")])
        assert m.match("DPRK missile", "", "") == [
            ("a", [Match("a", "DPRK", "title", 0)]),
            ("b", [Match("b", "dprk", "title", 0), Match("b", "missile", "title", 5)])]

    def test_no_topics_matches_nothing(self):
        assert TopicMatcher([]).match("DPRK", "", "") == []

    def test_none_fields(self):
        assert TopicMatcher([("t", "DPRK")]).match("DPRK", None, None) == [
            ("t", [Match("t", "DPRK", "title", 0)])]

    def test_only_topics_with_a_hit_or_negative_only_are_evaluated(self, monkeypatch):
        m = TopicMatcher([("hit", "DPRK OR x"), ("miss", "Iran OR y"), ("neg", "NOT sport")])
        evaluated = []
        for cls in (Or, Not):
            def spy(self, ctx, _orig=cls.evaluate):
                evaluated.append(str(self))
                return _orig(self, ctx)

            monkeypatch.setattr(cls, "evaluate", spy)
        m.match("DPRK", "", "")
        assert evaluated == ["DPRK OR x", "NOT sport"]

    @pytest.mark.slow
    def test_many_rules_give_the_right_answer(self):
        # Speed lives in benchmarks/; here only correctness at scale.
        topics = [(f"t{i}", f'word{i} OR "phrase {i} here" OR 단어{i} OR pre{i}x*') for i in range(5000)]
        m = TopicMatcher(topics + [("dprk", "DPRK")])
        content = " ".join(["the quick brown fox jumps over the lazy dog"] * 200)
        assert [n for n, _ in m.match("DPRK news", "", content)] == ["dprk"]
        assert [n for n, _ in m.match("", "phrase 42 here and 단어7 and pre9xyz", "")] == ["t42", "t7", "t9"]

    @pytest.mark.slow
    def test_ten_thousand_term_topic(self):
        m = TopicMatcher([("big", " OR ".join(f"word{i}" for i in range(10_000))),
                          ("all", " ".join(f"w{i}" for i in range(10_000)))])
        assert m.match("nothing here", "", "") == []
        assert m.match("see word9999", "", "") == [("big", [Match("big", "word9999", "title", 4)])]
        everything = " ".join(f"w{i}" for i in range(10_000))
        assert [n for n, _ in m.match("", "", everything)] == ["all"]

    def test_odd_story_text_does_not_crash(self):
        m = TopicMatcher([("t", '"North Korea" OR 북한 OR missile* OR a NEAR/2 b OR ATLEAST/2 x')])
        for text in ["\x00\x07", "\ud800", "‮", "ﷺ" * 100, "x " * 100_000, "북" * 10_000, "a" * 1_000_000]:
            m.match(text, text, text)


class TestReferenceLimits:
    def test_a_chain_within_the_limit_matches(self):
        chain = [("t0", "w0")] + [(f"t{k}", f"topic:t{k - 1} OR w{k}") for k in range(1, 60)]
        assert [name for name, _ in TopicMatcher(chain).match("w0", "", "")] == [f"t{k}" for k in sorted(
            range(60), key=lambda k: f"t{k}")]
