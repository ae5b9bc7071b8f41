"""The size limits of topic rules (transforms/topics/limits.py).

They are checked when the rules compile, before either scan builds
anything, so both scans accept exactly the same rules: a rule at a limit
builds and matches with each scan, one past it is the same TopicError with
each. The numbers are the documented ones (docs/query-language.md, Limits);
the engines' own limits they stay inside are measured here too."""
import sys

import hyperscan
import pytest

from transforms.topics import Topic, TopicError, TopicMatcher, compile_rules
from transforms.topics.limits import (
    MAX_LITERALS,
    MAX_TERM_CHARS,
    MAX_TERM_LITERALS,
    MAX_TOPIC_LITERALS,
    MAX_WILDCARD_PHRASES,
    literal_count,
    written_length,
)
from transforms.topics.scan import hyperscan_scan


def refusal(topics) -> str:
    """The one-line error a matcher with these topics raises."""
    with pytest.raises(TopicError) as err:
        TopicMatcher(topics)
    return str(err.value)


def found(matcher, text):
    """Topic names matching a story with `text` as its title."""
    return [name for name, _ in matcher.match(title=text)]


def _phrase(words, length):
    """A phrase of `words` joined by spaces, its last word padded with "s"
    to `length` characters."""
    text = " ".join(words)
    return text + "s" * (length - len(text))


# (what, the query at the limit, a title it matches, the query one past the limit)
LATIN = "a" * MAX_TERM_CHARS
HANGUL = "가" * MAX_TERM_CHARS
PHRASE = _phrase(["missile"] * 25, MAX_TERM_CHARS)
WILD = _phrase(["nordkorea*"] * 17 + ["rakete"], MAX_TERM_CHARS - 1) + "*"
AT_THE_LIMIT = [
    ("a Latin word", LATIN, f"x {LATIN} y", LATIN + "a"),
    ("a Korean word", HANGUL, f"북{HANGUL}는", HANGUL + "가"),
    ("a prefix", LATIN[:-1] + "*", LATIN + "aaaa", LATIN + "*"),
    ("a phrase", f'"{PHRASE}"', f"The {PHRASE}.", f'"{PHRASE}s"'),
    ("a phrase with wildcards", f'"{WILD}"', WILD.replace("*", "n") + " x", f'"{WILD[:-1]}s*"'),
    # ﷺ is one character as written and 18 once normalised (NFKC)
    ("a word normalisation lengthens", "ﷺ" * 11, "x " + "ﷺ" * 11, "ﷺ" * 12),
    # 64 literals: a space or none at each of 6 switches between Latin and Korean
    ("a mixed-script phrase", '"a 가 a 가 a 가 a"', "x a가 a 가a가 a y", '"a 가 a 가 a 가 a 가"'),
    # 2 spellings (kim jong un, kimjongun) of 32 literals each
    ("spellings times switches", '"Kim-Jong-un 가 a 가 a 가"', "Kimjongun가 a 가a 가",
     '"Kim-Jong-un 가 a 가 a 가 a"'),
]


def test_the_written_cases_sit_at_the_limits():
    assert {written_length(q.strip('"')) for _, q, _, _ in AT_THE_LIMIT[:5]} == {MAX_TERM_CHARS}
    assert {written_length(q.strip('"')) for _, _, _, q in AT_THE_LIMIT[:5]} == {MAX_TERM_CHARS + 1}
    assert literal_count(["a", "가"] * 3 + ["a"]) == MAX_TERM_LITERALS


@pytest.mark.usefixtures("matcher_engine")
class TestOneTerm:
    @pytest.mark.parametrize("what, query, text, over", AT_THE_LIMIT, ids=[c[0] for c in AT_THE_LIMIT])
    def test_at_the_limit_builds_and_matches(self, what, query, text, over):
        assert found(TopicMatcher([("t", query)]), text) == ["t"]

    @pytest.mark.parametrize("query, message", [
        (LATIN + "a", "topic 't', position 0: a word or phrase may have at most 200 characters; "
                      "this one has 201"),
        (HANGUL + "가", "topic 't', position 0: a word or phrase may have at most 200 characters; "
                       "this one has 201"),
        (LATIN + "*", "topic 't', position 0: a word or phrase may have at most 200 characters; "
                      "this one has 201"),
        (f'x OR "{PHRASE}s"', "topic 't', position 5: a word or phrase may have at most 200 "
                              "characters; this one has 201"),
        ("ﷺ" * 12, "topic 't', position 0: a word or phrase may have at most 200 characters once "
                   "normalised; this one has 216"),
        ('"a 가 a 가 a 가 a 가"', "topic 't', position 1: a word or phrase may expand to at most 64 "
                                "literals; this one expands to 128 (its spellings, doubled wherever "
                                "Korean, Japanese, Chinese or Thai words meet others)"),
        ('"Kim-Jong-un 가 a 가 a 가 a"', "topic 't', position 1: a word or phrase may expand to at "
                                       "most 64 literals; this one expands to 128 (its spellings, doubled "
                                     "wherever Korean, Japanese, Chinese or Thai words meet others)"),
    ], ids=["Latin word", "Korean word", "prefix", "phrase", "normalised", "mixed scripts",
            "spellings times switches"])
    def test_one_past_the_limit_is_the_same_error_with_either_scan(self, query, message):
        assert refusal([("t", query)]) == message

    def test_the_reported_megabyte_word_and_long_phrase_are_refused(self):
        # Before these limits: "Pattern length exceeds limit" from Hyperscan
        # while the matcher was built in a worker, and a RecursionError from
        # the pure-Python scan for the same length of Korean.
        for query, length in [("a" * 1_000_000, 1_000_000), ("가" * 1_000_000, 1_000_000),
                              ('"' + _phrase(["ab"] * 66_667, 200_000) + '"', 200_000),
                              ("title:" + "a" * 300_000, 300_000),
                              ("source:" + "a" * 300_000 + ".com", 300_004),
                              ("topic:" + "n" * 300_000, 300_000)]:
            message = refusal([("t", query), ("n" * 300_000, "x")])
            assert message.endswith(f": a word or phrase may have at most 200 characters; "
                                    f"this one has {length:,}")
            assert len(message) < 200  # the term itself is not quoted back

    def test_an_unknown_field_that_long_is_refused_for_its_length(self):
        assert refusal([("t", "x" * 300 + ":a")]).endswith("this one has 302")

    @pytest.mark.parametrize("query, text", [
        # Each term a prefix of the next: the pure-Python scan's trie regexes
        # nest one level per term (~450 levels end in RecursionError).
        (" OR ".join("가" * n for n in range(1, MAX_TERM_CHARS + 1)), "북" + HANGUL),
        (" OR ".join("a" * n + "*" for n in range(3, MAX_TERM_CHARS)), LATIN),
        (" OR ".join('"' + " ".join(["가"] * n) + '"' for n in range(1, 101)), " ".join(["가"] * 100)),
    ], ids=["Korean words", "prefixes", "Korean phrases"])
    def test_terms_nested_as_deep_as_the_limits_allow_build_on_a_deep_stack(self, query, text):
        # A Beam worker builds the matcher some way down its stack: 300
        # frames more must still leave room.
        def deep(n):
            return TopicMatcher([("t", query)]) if n == 0 else deep(n - 1)

        assert sys.getrecursionlimit() == 1000
        assert found(deep(300), text) == ["t"]


def test_a_literal_is_what_hyperscan_looks_for():
    for pieces in [("north", "korea"), ("dprk", "는"), ("a", "가", "a", "가", "a", "가", "a"),
                   ("김정은", "위원장"), ("kim", "jong", "un", "위원장", "said")]:
        assert literal_count(pieces) == len(hyperscan_scan._spellings(pieces))


def test_hyperscan_refuses_a_pattern_over_16000_bytes_and_ours_stay_far_inside():
    def compile_literal(length):
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[b"a" * length], ids=[0], literal=True)

    compile_literal(16_000)
    with pytest.raises(hyperscan.error, match="Pattern length exceeds limit"):
        compile_literal(16_001)
    # The longest pattern the limits allow: a phrase with wildcards, each
    # character 4 bytes of UTF-8 written as 4 pattern characters, plus the
    # spaces and gaps between its words.
    assert MAX_TERM_CHARS * 4 * 4 + MAX_TERM_CHARS * 9 < 16_000 / 2


def _hyphenated(count, prefix):
    """A query of `count` hyphenated words: two literals each ("k1-z" and "k1z")."""
    return " OR ".join(f"{prefix}{i}-z" for i in range(count))


def _words(count, prefix):
    return " OR ".join(f"{prefix}{i}x" for i in range(count))


@pytest.mark.slow
@pytest.mark.usefixtures("matcher_engine")
def test_a_topic_and_all_topics_at_their_literal_limits_build_and_match():
    assert MAX_TOPIC_LITERALS * 2 == MAX_LITERALS
    topics = [("a", _hyphenated(MAX_TOPIC_LITERALS // 2, "k")),   # 50,000 literals
              ("b", _words(MAX_TOPIC_LITERALS, "w"))]               # 50,000 more
    matcher = TopicMatcher(topics)
    assert found(matcher, "k24999z and w49999x") == ["a", "b"]
    assert found(matcher, "k7 z") == ["a"]


@pytest.mark.slow
def test_one_literal_past_a_limit_is_refused_naming_the_topic():
    # Refused while the rules compile, before either scan builds anything.
    assert refusal([("a", _hyphenated(MAX_TOPIC_LITERALS // 2 + 1, "k"))]) == (
        "topic 'a': its terms expand to 50,002 literals; the limit for one topic is 50,000")
    topics = [("a", _hyphenated(MAX_TOPIC_LITERALS // 2, "k")), ("b", _words(MAX_TOPIC_LITERALS, "w"))]
    # A literal the rules have already counts once.
    assert len(compile_rules(topics + [("c", "w7x OR k7z")])) == 3
    assert refusal(topics + [("c", "w7x OR new")]) == (
        "topic 'c': with this topic the rules expand to 100,001 literals; the limit for all "
        "topics together is 100,000")


@pytest.mark.slow
@pytest.mark.usefixtures("matcher_engine")
def test_wildcard_phrases_at_their_limit_build_and_one_more_is_refused():
    # Hyperscan compiles these as regexes, slower and slower: ~1,000 took
    # half a minute, 4,000 six minutes.
    wild = [f'"nord{i}x* korea"' for i in range(MAX_WILDCARD_PHRASES)]
    half = MAX_WILDCARD_PHRASES // 2
    topics = [("a", " OR ".join(wild[:half])), ("b", " OR ".join(wild[half:]))]
    assert found(TopicMatcher(topics), "nord299xern korea") == ["b"]
    assert refusal(topics + [("c", wild[0]), Topic("d", wild[1], fold_accents=True)]) == (
        "topic 'd': with this topic the rules have 301 phrases with a wildcard before their "
        "last word; the limit for all topics together is 300")
