"""The topic query language: what parses to what, and the errors a user sees."""
import pytest

from transforms.topics import (
    And,
    AtLeast,
    LanguageIs,
    Near,
    Not,
    Or,
    QuerySyntaxError,
    SourceIs,
    Term,
    TopicRef,
    parse_query,
)
from transforms.topics.query import _lex


def T(text, fields=("title", "summary", "content"), fold=False):
    term = Term.from_text(text, fold=fold)
    return Term(term.text, term.keys, fields)


class TestBooleans:
    def test_single_term(self):
        assert parse_query("DPRK") == Term("DPRK", ((False, ("dprk",)),))

    def test_quoted_phrase_keeps_its_words_in_order(self):
        assert parse_query('"Kim Jong Un"').tokens == ("kim", "jong", "un")

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
        assert parse_query("near the border") == And((T("near"), T("the"), T("border")))

    def test_quoted_keyword_is_a_term(self):
        assert parse_query('"AND"') == T("AND")
        assert parse_query('"NEAR/3"').tokens == ("near", "3")


class TestSpellings:
    def test_hyphenated_word_matches_split_and_joined(self):
        assert parse_query("Jong-un").keys == ((False, ("jong", "un")), (False, ("jongun",)))

    def test_apostrophe_variants(self):
        keys = parse_query('"People’s Republic"').keys
        assert keys == ((False, ("people", "s", "republic")), (False, ("peoples", "republic")))
        assert parse_query('"People\'s Republic"').keys == keys

    def test_periods_do_not_join(self):
        # "U.S." must not turn into the word "us".
        assert parse_query("U.S.").keys == ((False, ("u", "s")),)

    def test_trailing_wildcard(self):
        assert parse_query("missile*").keys == ((False, ("missile*",)),)
        assert parse_query("Missile*") == Term("Missile*", ((False, ("missile*",)),))

    def test_wildcards_inside_a_phrase(self):
        assert parse_query('"Северн* Коре*"').tokens == ("северн*", "коре*")

    def test_wildcard_on_a_hyphenated_word(self):
        assert parse_query("nord-coréen*").keys == (
            (False, ("nord", "coréen*")), (False, ("nordcoréen*",)))

    def test_accent_folding_applies_to_the_terms_of_folding_topics(self):
        assert parse_query("Corée", fold_accents=True).keys == ((True, ("coree",)),)
        assert parse_query("Corée").keys == ((False, ("corée",)),)

    def test_unspaced_scripts_ignore_wildcards_and_folding(self):
        assert parse_query("북한*", fold_accents=True).keys == ((False, ("북한",)),)


class TestNearAndAtLeast:
    def test_near_between_terms_and_phrases(self):
        q = parse_query('missile NEAR/5 "test fire"')
        assert q == Near(T("missile"), T("test fire"), 5)

    def test_near_with_or_groups(self):
        q = parse_query("(missile OR rocket) NEAR/3 (test OR launch)")
        assert [t.text for t in q.left_terms] == ["missile", "rocket"]
        assert [t.text for t in q.right_terms] == ["test", "launch"]

    def test_near_binds_tighter_than_and_and_not(self):
        assert parse_query("a NEAR/2 b c") == And((Near(T("a"), T("b"), 2), T("c")))
        assert parse_query("NOT a NEAR/2 b") == Not(Near(T("a"), T("b"), 2))

    def test_atleast(self):
        q = parse_query('ATLEAST/3 (Korea OR "Kim Jong Un")')
        assert q == AtLeast(Or((T("Korea"), T("Kim Jong Un"))), 3)


class TestFields:
    def test_text_field_scopes(self):
        assert parse_query("title:missile") == T("missile", ("title",))
        assert parse_query('summary:"North Korea"') == T("North Korea", ("summary",))
        assert parse_query("content:(a OR b)") == Or((T("a", ("content",)), T("b", ("content",))))

    def test_scope_reaches_into_near(self):
        q = parse_query("title:(a NEAR/2 b)")
        assert q == Near(T("a", ("title",)), T("b", ("title",)), 2)

    def test_scope_names_are_case_insensitive(self):
        assert parse_query("Title:x") == parse_query("title:x")

    def test_source_and_language_take_values(self):
        assert parse_query("source:www.BBC.co.uk") == SourceIs("bbc.co.uk")
        assert parse_query("language:(ko OR ja)") == Or((LanguageIs("ko"), LanguageIs("ja")))
        assert parse_query("NOT language:en") == Not(LanguageIs("en"))

    def test_topic_reference(self):
        assert parse_query("topic:dprk AND topic:missile_tests") == And(
            (TopicRef("dprk"), TopicRef("missile_tests")))
        assert parse_query("title:topic:dprk") == TopicRef("dprk", ("title",))

    def test_numbers_with_colons_are_terms(self):
        assert parse_query("10:30").tokens == ("10", "30")


class TestCanonicalForm:
    @pytest.mark.parametrize("query", [
        '(DPRK OR "North Korea") AND NOT (sport OR "K-pop") Jong-un',
        'title:missile* AND (a OR b) NEAR/3 "c d"',
        'ATLEAST/2 summary:(x OR "y z") OR source:bbc.co.uk OR language:ko',
        'topic:dprk AND title:topic:missile_tests',
        '"title:x" OR "NEAR/3" OR "AND"',
    ])
    def test_round_trips(self, query):
        q = parse_query(query)
        assert parse_query(str(q)) == q

    def test_shows_grouping(self):
        assert str(parse_query('a OR b NOT c "North Korea"')) == 'a OR (b AND NOT c AND "North Korea")'

    def test_terms_listed_in_query_order_with_positions(self):
        q = parse_query('DPRK OR ("North Korea" NOT sport)')
        assert [(t.text, t.position) for t in q.terms()] == [
            ("DPRK", 0), ("North Korea", 9), ("sport", 27)]


class TestSyntaxErrors:
    @pytest.mark.parametrize("query, position, message", [
        # empty
        ("", 0, "empty query"),
        ("   ", 0, "empty query"),
        ('a ""', 2, "empty phrase"),
        ("a ()", 2, "empty parentheses"),
        # unbalanced
        ("DPRK OR (Kim AND missile", 8, "unbalanced parenthesis"),
        ("((a OR b)", 0, "unbalanced parenthesis"),
        ("DPRK)", 4, "unexpected ')'"),
        ('DPRK "Kim Jong', 5, "unbalanced quote"),
        # operators without operands
        ("DPRK AND", 5, "expected a term after AND"),
        ("DPRK OR OR x", 5, "expected a term after OR"),
        ("NOT", 0, "expected a term after NOT"),
        ("OR DPRK", 0, "expected a term before OR"),
        ("missile NEAR/3", 8, "expected a term after NEAR/3"),
        ("NEAR/3 test", 0, "expected a term before NEAR/3"),
        ("(NEAR/3 test)", 1, "expected a term before NEAR/3"),
        ("missile NEAR/3 NOT test", 8, "expected a term after NEAR/3"),
        ("ATLEAST/2", 0, "expected a term after ATLEAST/2"),
        # NEAR and ATLEAST written wrong
        ("a NEAR b", 2, "write NEAR/n with a whole number n, in upper case (NEAR/5); "
                        "quote the term to search for it"),
        ("a near/3 b", 2, "write NEAR/n with a whole number n, in upper case (NEAR/5); "
                          "quote the term to search for it"),
        ("a NEAR/x b", 2, "write NEAR/n with a whole number n, in upper case (NEAR/5); "
                          "quote the term to search for it"),
        ("a NEAR/5000 b", 2, "NEAR/n needs n from 0 to 1000"),
        ("ATLEAST/0 a", 0, "ATLEAST/n needs n from 1 to 1000"),
        ("a NEAR/3 b NEAR/3 c", 11, "NEAR joins two operands; combine more with AND: "
                                    "(a NEAR/3 b) AND (b NEAR/3 c)"),
        ("(a AND b) NEAR/3 c", 10, "NEAR works on terms, phrases or (a OR b) groups of them"),
        ("ATLEAST/2 NOT a", 0, "expected a term after ATLEAST/2"),
        ("ATLEAST/2 (a b)", 0, "ATLEAST works on terms, phrases or (a OR b) groups of them"),
        # wildcards
        ("*", 0, "a wildcard needs letters before it (missile*)"),
        ("*missile", 0, "only a trailing wildcard is supported (missile*)"),
        ("mis*le", 3, "only a trailing wildcard is supported (missile*)"),
        ("a mi*", 2, "a wildcard needs at least 3 letters before *"),
        ('"Kim* 정상"', 1, "a wildcard cannot be combined with Korean, Japanese, Chinese or "
                         "Thai text in one term (those match inside words already)"),
        # fields
        ("a foo:bar", 2, "unknown field 'foo:'; use title:, summary:, content:, source:, "
                         "language: or topic: (quote the term to search for it)"),
        ("http://x.org", 0, "unknown field 'http:'; use title:, summary:, content:, source:, "
                            "language: or topic: (quote the term to search for it)"),
        ("title: missile", 0, 'title: must be followed directly by a term, "phrase" or (group)'),
        ("title:(summary:x)", 0, "field scopes title: and summary: exclude each other"),
        ("title:source:bbc.com", 0, "source: cannot be used inside title:"),
        ("source:(bbc.com OR title:x)", 19, "title: cannot be used inside source:"),
        ("source:(a NEAR/2 b)", 10, "NEAR/2 cannot be used inside source:"),
        ("source:not/a/host", 7, "source: needs a site name such as bbc.co.uk, not 'not/a/host'"),
        ("language:korean", 9, "language: needs an ISO 639-1 code such as en, ko or zh, not 'korean'"),
        ("topic:(a OR b)", 0, "topic: needs a topic name (topic:dprk)"),
        # characters
        ("a - b", 2, "term '-' has no letters or digits"),
        ("DPRK\x00", 4, "invisible control character U+0000 in the query; retype the term"),
        ("Kim\u200bJong", 3, "invisible control character U+200B in the query; retype the term"),
        ("a\u202eb", 1, "invisible control character U+202E in the query; retype the term"),
    ])
    def test_error_position_and_message(self, query, position, message):
        with pytest.raises(QuerySyntaxError) as err:
            parse_query(query)
        assert (err.value.position, err.value.message) == (position, message)
        assert str(err.value) == f"at position {position}: {message}"

    def test_whitespace_controls_are_fine(self):
        assert parse_query("a\tOR\r\nb") == Or((T("a"), T("b")))

    def test_very_deep_nesting_is_an_error_not_a_crash(self):
        for query in ["(" * 500 + "a" + ")" * 500, "NOT " * 500 + "a", "title:" * 500 + "a"]:
            with pytest.raises(QuerySyntaxError, match="nested too deeply"):
                parse_query(query)

    def test_ten_thousand_terms_parse(self):
        q = parse_query(" OR ".join(f"word{i}" for i in range(10_000)))
        assert len(q.children) == 10_000

    def test_the_lexer_reads_a_long_query_in_one_pass(self):
        # 64,000 accented words (about 700 KB): every token where it is
        # written, and the error at the very end found without re-reading.
        words = [f"é{i}é" for i in range(64_000)]
        query = " OR ".join(words) + ' AND "unclosed'
        tokens = _lex(" OR ".join(words) + " (x)")
        assert len(tokens) == 2 * 64_000 - 1 + 3 + 1
        assert [t.kind for t in tokens[-5:]] == ["WORD", "(", "WORD", ")", "EOF"]
        last = tokens[2 * 64_000 - 2]
        assert (last.kind, last.text, last.pos) == ("WORD", words[-1], query.rindex(words[-1]))
        with pytest.raises(QuerySyntaxError) as err:
            parse_query(query)
        assert (err.value.position, err.value.message) == (query.index('"'), "unbalanced quote")

    def test_non_string(self):
        with pytest.raises(TypeError):
            parse_query(None)
