"""Topic rules: query language, matcher and the MatchTopics transform."""
import pickle

import pytest

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.records import Story
from transforms.topics import (
    And,
    MatchTopics,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    Topic,
    TopicError,
    TopicMatcher,
    compile_topics,
    parse_query,
    tag_story,
    tokenize,
)


def T(text):
    return Term.from_text(text)


# ---------------------------------------------------------------- parsing


class TestParsing:
    def test_single_term(self):
        assert parse_query("DPRK") == Term("DPRK", ("dprk",))

    def test_quoted_phrase_keeps_its_words_in_order(self):
        assert parse_query('"Kim Jong Un"') == Term("Kim Jong Un", ("kim", "jong", "un"))
        assert parse_query('"Kim Jong Un"').is_phrase

    def test_hyphenated_word_is_the_phrase_of_its_tokens(self):
        assert parse_query("Jong-un").tokens == ("jong", "un")

    def test_implicit_and(self):
        assert parse_query("missile launch") == And((T("missile"), T("launch")))

    def test_and_chains_are_flat(self):
        assert parse_query("a AND b c") == And((T("a"), T("b"), T("c")))

    def test_and_binds_tighter_than_or(self):
        assert parse_query("a OR b AND c") == Or((T("a"), And((T("b"), T("c")))))
        assert parse_query("a b OR c") == Or((And((T("a"), T("b"))), T("c")))

    def test_not_binds_tighter_than_and(self):
        assert parse_query("NOT a b") == And((Not(T("a")), T("b")))
        assert parse_query("a NOT b") == And((T("a"), Not(T("b"))))

    def test_parentheses_override_precedence(self):
        assert parse_query("(a OR b) c") == And((Or((T("a"), T("b"))), T("c")))
        assert parse_query("NOT (a OR b)") == Not(Or((T("a"), T("b"))))

    def test_lower_case_keywords_are_plain_terms(self):
        assert parse_query("rock and roll") == And((T("rock"), T("and"), T("roll")))
        assert parse_query("not or") == And((T("not"), T("or")))

    def test_quoted_keyword_is_a_term(self):
        assert parse_query('"AND"') == Term("AND", ("and",))

    def test_canonical_string_shows_grouping(self):
        assert str(parse_query('a OR b NOT c "North Korea"')) == (
            'a OR (b AND NOT c AND "North Korea")'
        )

    def test_canonical_string_round_trips(self):
        q = parse_query('(DPRK OR "North Korea") AND NOT (sport OR "K-pop") Jong-un')
        assert parse_query(str(q)) == q

    def test_terms_are_listed_in_query_order(self):
        q = parse_query('DPRK OR ("North Korea" NOT sport)')
        assert [t.text for t in q.terms()] == ["DPRK", "North Korea", "sport"]

    def test_positions_are_recorded(self):
        q = parse_query('a  "b c"')
        assert [t.position for t in q.terms()] == [0, 3]


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        "query, position, message",
        [
            ("", 0, "empty query"),
            ("   ", 0, "empty query"),
            ("DPRK OR (Kim AND missile", 8, "unbalanced parenthesis"),
            ("((a OR b)", 0, "unbalanced parenthesis"),
            ("(a OR (b", 6, "unbalanced parenthesis"),
            ("DPRK)", 4, "unexpected ')'"),
            ("(a) b)", 5, "unexpected ')'"),
            ('DPRK "Kim Jong', 5, "unterminated quote"),
            ("DPRK AND", 5, "expected a term after AND"),
            ("DPRK OR", 5, "expected a term after OR"),
            ("DPRK OR OR x", 5, "expected a term after OR"),
            ("(DPRK AND) x", 6, "expected a term after AND"),
            ("NOT", 0, "expected a term after NOT"),
            ("DPRK NOT", 5, "expected a term after NOT"),
            ("NOT )", 0, "expected a term after NOT"),
            ("OR DPRK", 0, "expected a term before OR"),
            ("(AND a)", 1, "expected a term before AND"),
            ("a ()", 2, "empty parentheses"),
            ('a ""', 2, "empty phrase"),
            ("a - b", 2, "term '-' has no letters or digits"),
        ],
    )
    def test_error_position_and_message(self, query, position, message):
        with pytest.raises(QuerySyntaxError) as err:
            parse_query(query)
        assert err.value.position == position
        assert err.value.message == message
        assert str(err.value) == f"at position {position}: {message}"

    def test_is_a_value_error(self):
        assert issubclass(QuerySyntaxError, ValueError)

    @pytest.mark.parametrize(
        "query, position",
        [("missile*", 7), ("a title:missile", 2), ("a NEAR/3 b", 2)],
    )
    def test_syntax_reserved_for_later_features_is_rejected(self, query, position):
        # So that adding wildcards, field scopes or NEAR later cannot
        # silently change what an existing rule matches.
        with pytest.raises(QuerySyntaxError) as err:
            parse_query(query)
        assert err.value.position == position
        assert "not supported" in str(err.value)

    def test_quoting_makes_reserved_syntax_literal(self):
        assert parse_query('"title:missile"').tokens == ("title", "missile")

    def test_very_deep_nesting_is_a_syntax_error_not_a_crash(self):
        with pytest.raises(QuerySyntaxError, match="nested too deeply"):
            parse_query("(" * 500 + "a" + ")" * 500)
        with pytest.raises(QuerySyntaxError, match="nested too deeply"):
            parse_query("NOT " * 500 + "a")


# ---------------------------------------------------------------- topics


class TestCompileTopics:
    def test_returns_topics(self):
        assert compile_topics([("dprk", "DPRK OR 북한")]) == [Topic("dprk", "DPRK OR 북한")]

    def test_accepts_topic_objects(self):
        assert compile_topics([Topic("a", "x")]) == [Topic("a", "x")]

    def test_syntax_error_names_topic_and_position_on_one_line(self):
        with pytest.raises(TopicError) as err:
            compile_topics([("ok", "x"), ("dprk", "DPRK OR (Kim AND missile")])
        assert str(err.value) == (
            "topic 'dprk': query syntax error at position 8: unbalanced parenthesis"
        )
        assert "\n" not in str(err.value)
        assert err.value.topic == "dprk"
        assert err.value.position == 8

    def test_duplicate_name(self):
        with pytest.raises(TopicError, match="^topic 'a': duplicate name$"):
            compile_topics([("a", "x"), ("a", "y")])

    @pytest.mark.parametrize("name", ["", "   ", None])
    def test_empty_name_is_named_by_its_index(self, name):
        with pytest.raises(TopicError, match="^topic #2: empty name$"):
            compile_topics([("a", "x"), (name, "y")])

    def test_non_string_query(self):
        with pytest.raises(TopicError, match="^topic 'a': query must be a string$"):
            compile_topics([("a", None)])

    def test_topic_error_is_a_value_error(self):
        assert issubclass(TopicError, ValueError)


# ---------------------------------------------------------------- matching


def matches(query, title="", summary="", content=""):
    """Terms reported for a single topic `t`, or None when it does not match."""
    result = dict(TopicMatcher([("t", query)]).match(title, summary, content))
    return result.get("t")


class TestTokenize:
    def test_nfkc_casefold_and_word_runs(self):
        assert tokenize("Kim Jong-un's ＤＰＲＫ Straße") == [
            "kim", "jong", "un", "s", "dprk", "strasse",
        ]

    def test_underscores_split(self):
        assert tokenize("#north_korea") == ["north", "korea"]

    def test_cjk_and_latin_runs_are_separate_tokens(self):
        assert tokenize("DPRK는 미사일을") == ["dprk", "는", "미사일을"]


class TestMatching:
    def test_case_insensitive(self):
        assert matches("dprk", title="DPRK fires missile") == ["dprk"]
        assert matches("DPRK", title="the dprk said") == ["DPRK"]

    def test_whole_word_only(self):
        assert matches("missile", content="two missiles were fired") is None
        assert matches("Korea", content="Koreans celebrated") is None
        assert matches("Korea", content="in Korea, today") == ["Korea"]

    def test_hyphen_and_space_are_equivalent(self):
        assert matches('"Kim Jong Un"', title="Kim Jong-un inspects") == ["Kim Jong Un"]
        assert matches("Jong-un", title="Kim Jong Un inspects") == ["Jong-un"]

    def test_phrase_needs_consecutive_words(self):
        assert matches('"North Korea"', content="north and south korea") is None
        assert matches('"North Korea"', content="NORTH KOREA'S army") == ["North Korea"]

    def test_punctuation_between_words_does_not_break_a_phrase(self):
        assert matches('"North Korea"', content="North, Korea") == ["North Korea"]

    @pytest.mark.parametrize("text", ["북한의 미사일 발사", "북한은 오늘", "북한", "남북한 회담"])
    def test_korean_term_matches_with_particles(self, text):
        assert matches("북한", title=text) == ["북한"]

    def test_japanese_term_inside_a_sentence(self):
        assert matches("北朝鮮", summary="北朝鮮は弾道ミサイルを発射した") == ["北朝鮮"]
        assert matches("ミサイル", summary="北朝鮮は弾道ミサイルを発射した") == ["ミサイル"]

    def test_chinese_term_inside_a_sentence(self):
        assert matches("朝鲜", content="朝鲜发射了导弹。") == ["朝鲜"]

    def test_latin_term_next_to_korean_particle(self):
        assert matches("DPRK", title="DPRK는 발표했다") == ["DPRK"]

    def test_cjk_phrase(self):
        assert matches('"김정은 위원장"', content="김정은 위원장은 말했다") == ["김정은 위원장"]
        assert matches('"김정은 위원장"', content="김정은, 위원장은") == ["김정은 위원장"]

    def test_mixed_script_term_keeps_latin_word_boundary(self):
        assert matches("G7정상", content="G7 정상회의") == ["G7정상"]
        assert matches("G7정상", content="AG7 정상회의") is None

    def test_and_requires_all(self):
        assert matches("DPRK missile", title="DPRK", content="missile test") == [
            "DPRK", "missile",
        ]
        assert matches("DPRK missile", title="DPRK", content="rocket test") is None

    def test_or_reports_only_the_terms_found(self):
        assert matches('DPRK OR "North Korea" OR 북한', content="North Korea") == [
            "North Korea",
        ]

    def test_not_excludes(self):
        q = "Korea NOT (football OR K-pop)"
        assert matches(q, title="Korea tests missile") == ["Korea"]
        assert matches(q, title="Korea wins football match") is None
        assert matches(q, content="Korea and K-pop") is None
        assert matches(q, content="Korea and pop music") == ["Korea"]

    def test_negated_terms_are_never_reported(self):
        # `visit` is found but works against the match: not evidence for it.
        q = '"Kim Jong Un" NOT (visit AND Moscow)'
        assert matches(q, title="Kim Jong Un to visit Beijing") == ["Kim Jong Un"]

    def test_double_negation_reports_the_term(self):
        assert matches("NOT NOT DPRK", title="DPRK") == ["DPRK"]

    def test_topic_with_only_negative_terms_matches_without_any_hit(self):
        assert matches("NOT sport", title="Parliament votes") == []
        assert matches("NOT sport", title="sport news") is None

    def test_phrase_does_not_span_fields(self):
        assert matches('"North Korea"', title="Talks in the North", summary="Korea said") is None
        assert matches("북한 미사일", title="북한", summary="미사일") == ["미사일", "북한"]
        assert matches('"북한 미사일"', title="북한", summary="미사일") is None

    def test_terms_reported_as_written_sorted_and_distinct(self):
        q = '"north KOREA" OR DPRK OR dprk OR Pyongyang'
        assert matches(q, title="DPRK: Pyongyang and North Korea") == [
            "DPRK", "Pyongyang", "dprk", "north KOREA",
        ]

    def test_empty_and_none_fields(self):
        assert matches("DPRK", title="DPRK", summary="", content=None) == ["DPRK"]


class TestTopicMatcher:
    def test_results_sorted_by_topic_name(self):
        m = TopicMatcher(
            [("zeta", "missile"), ("alpha", "DPRK"), ("mid", "NOT sport"), ("none", "Iran")]
        )
        assert m.match("DPRK missile", "", "") == [
            ("alpha", ["DPRK"]),
            ("mid", []),
            ("zeta", ["missile"]),
        ]

    def test_same_term_in_many_topics_reported_per_topic_as_written(self):
        m = TopicMatcher([("a", "DPRK"), ("b", "dprk AND missile"), ("c", "dprk NOT missile")])
        assert m.match("DPRK missile", "", "") == [("a", ["DPRK"]), ("b", ["dprk", "missile"])]

    def test_no_topics_matches_nothing(self):
        assert TopicMatcher([]).match("DPRK", "", "") == []

    def test_invalid_topic_raises_topic_error(self):
        with pytest.raises(TopicError, match="^topic 'x': query syntax error at position 0"):
            TopicMatcher([("x", ")")])

    def test_only_topics_with_a_hit_or_negative_only_are_evaluated(self, monkeypatch):
        m = TopicMatcher([("hit", "DPRK OR x"), ("miss", "Iran OR y"), ("neg", "NOT sport")])
        evaluated = []
        for cls in (Or, Not):
            def spy(self, hits, _orig=cls.evaluate):
                evaluated.append(self)
                return _orig(self, hits)

            monkeypatch.setattr(cls, "evaluate", spy)
        m.match("DPRK", "", "")
        assert evaluated == [parse_query("DPRK OR x"), parse_query("NOT sport")]

    def test_many_rules_give_the_right_answer(self):
        # Speed lives in benchmarks/; here only correctness at scale.
        topics = [(f"t{i}", f'word{i} OR "phrase {i} here" OR 단어{i}') for i in range(5000)]
        m = TopicMatcher(topics + [("dprk", "DPRK")])
        content = " ".join(["the quick brown fox jumps over the lazy dog"] * 200)
        assert m.match("DPRK news", "", content) == [("dprk", ["DPRK"])]
        assert m.match("", "phrase 42 here and 단어7", "") == [("t42", ["phrase 42 here"]), ("t7", ["단어7"])]


# ---------------------------------------------------------------- stories and Beam


def story(sid, title, summary="", content=""):
    return Story(
        story_id=sid,
        url=f"https://example.com/{sid}",
        canonical_url=f"https://example.com/{sid}",
        guid=sid,
        title=title,
        summary=summary,
        content=content,
    )


TOPICS = [
    ("dprk", 'DPRK OR "North Korea" OR 북한 OR 北朝鮮'),
    ("missiles", "missile OR 미사일 OR ミサイル"),
]


def test_tag_story_sets_topics_and_terms():
    m = TopicMatcher(TOPICS)
    tagged = tag_story(story("1", "North Korea fires missile", "북한 미사일"), m)
    assert tagged.topics == ["dprk", "missiles"]
    assert tagged.matched_terms == ["North Korea", "missile", "미사일", "북한"]
    assert tagged.story_id == "1"
    assert tag_story(story("2", "Weather"), m) is None


def test_match_topics_transform_keeps_only_matching_stories():
    stories = [
        story("1", "North Korea fires missile"),
        story("2", "Local weather", "sunny"),
        story("3", "速報", "北朝鮮は弾道ミサイルを発射した"),
        story("4", "Missiles", "plural does not count"),
    ]
    expected = [
        stories[0].replace(topics=["dprk", "missiles"], matched_terms=["North Korea", "missile"]),
        stories[2].replace(topics=["dprk", "missiles"], matched_terms=["ミサイル", "北朝鮮"]),
    ]
    p = test_pipeline.TestPipeline(runner="DirectRunner")
    out = p | beam.Create(stories) | MatchTopics(TOPICS)
    assert_that(out, equal_to(expected))
    result = p.run()
    result.wait_until_finish()

    counters = {
        r.key.metric.name: r.committed
        for r in result.metrics().query(MetricsFilter().with_namespace("newswatch"))["counters"]
    }
    assert counters["matched"] == 2
    assert counters["unmatched"] == 2
    assert counters["matched_topic_dprk"] == 2
    assert counters["matched_topic_missiles"] == 2


def test_match_topics_rejects_bad_rules_when_the_graph_is_built():
    with pytest.raises(TopicError, match="^topic 'bad': "):
        MatchTopics([("bad", "NOT")])


def test_match_topics_is_picklable():
    # Beam pickles the transform's DoFn; the matcher is built in setup().
    transform = MatchTopics(TOPICS)
    assert pickle.loads(pickle.dumps(transform))._pairs == tuple(TOPICS)
