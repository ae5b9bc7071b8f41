"""Plain text from feed fields (transforms/html_text.py): markup, entities,
control characters, whitespace, field caps."""
import random
import re

from transforms.html_text import (CONTROL_CHARACTERS, FIELD_CAPS, TextMemo, _simple_html_text, capped_text,
                                  collapse_whitespace, html_to_text, html_to_text_reference, unique_texts)


def test_html_to_text_removes_markup_decodes_entities_collapses_space():
    assert html_to_text("<p>Kim&#8217;s <b>speech</b></p>\n\n<p>A &amp; B&nbsp;C</p>") == "Kim’s speech A & B C"


def test_every_unicode_space_and_control_character_becomes_one_space():
    # The definition: runs of regex whitespace and of the characters removed
    # (controls, zero-width space, BOM, lone surrogates) -> one space, trimmed.
    def reference(text):
        return re.sub(r"\s+", " ", CONTROL_CHARACTERS.sub(" ", text)).strip()

    chars = [chr(c) for c in range(0x3001)] + ["\ufeff", "\u200b", "\udfff"]
    for i in range(0, len(chars), 40):
        chunk = "".join(chars[i:i + 40])
        text = f"  a{chunk}b {chunk}\x00\u3000c  "
        assert collapse_whitespace(text) == reference(text)
    assert collapse_whitespace("\u2003Kim\x85Jong\xa0\x1cUn\u200b ") == "Kim Jong Un"
    # Printable text already collapsed is returned as it is: every printable
    # character, single spaces between, must be neither whitespace nor removed.
    printable = [chr(c) for c in range(0x110000) if chr(c).isprintable() and chr(c) != " "]
    for i in range(0, len(printable), 500):
        text = " ".join(printable[i:i + 500])
        assert collapse_whitespace(text) == reference(text) == text
    for text in ["a  b", " a", "a ", "a\tb", "a\u00a0b", "", " "]:
        assert collapse_whitespace(text) == reference(text)


def test_html_to_text_drops_scripts_styles_and_control_characters():
    assert html_to_text('<script>alert("x")</script><style>p{}</style>ok\x00 <i onclick="x()">go</i>') == "ok go"


def test_html_to_text_keeps_words_apart_at_block_boundaries():
    assert html_to_text("<p>one</p><p>two</p>line<br/>break") == "one two line break"
    assert html_to_text("in<b>line</b>") == "inline"


def test_html_to_text_plain_text_and_empty():
    assert html_to_text("  plain   text ") == "plain text"
    assert html_to_text(None) == ""
    assert html_to_text("a < b and c > d") == "a < b and c > d"


def test_capped_text_joins_distinct_values_and_says_when_it_cut():
    assert capped_text(["<p>Hello</p>", None, "Hello", "world"], 100) == ("Hello world", False)
    long = capped_text(["word " * 300], FIELD_CAPS["title"])
    assert long.cut and len(long.text) <= FIELD_CAPS["title"] and not long.text.endswith(" ")


def test_unique_texts_cleans_drops_empties_and_repeats():
    assert unique_texts([" Jane  Doe ", None, "", "Jane Doe", "A\x00B"]) == ["Jane Doe", "A B"]
    assert unique_texts(["abcdef"], cap=3) == ["abc"]


# ------------------------------------------------------------ the fast reading against HTMLParser

_NAMES = ["p", "P", "br", "div", "a", "b", "img", "script", "Style", "iframe", "h1", "x", "li", "Td",
          "noscript", "svg", "math", "title"]
_SPACES = [" ", "  ", "\t", "\n", "\r", "\f", "\v", "\xa0", "", "/"]
_ATTRIBUTES = ["href", "src", "class", "data-x", "x:y", "_a", "a.b", "1a", "-a", "é"]
_VALUES = ['"v"', "'v'", "v", '"a>b"', "'a<b'", '"', "'", "v/", "/v", "", '"x y"', "a=b", "`x`",
           "v\xa0w", '"&amp;"', "a&b"]
_TEXTS = ["word", " ", "&amp;", "&amp", "&#39;", "&nbsp;x", "é", "e\u0301", "<", ">", "&", "\x00", "",
          "Kim's", "&lt;b&gt;", "<!-- c -->", "</script>", "</SCRIPT >", "</ script>", "x</style>",
          "<script>", "</scriptx>", "<?pi?>", "<!DOCTYPE html>"]


def _markup(rng: random.Random) -> str:
    def tag():
        if rng.random() < 0.3:
            return "</" + rng.choice(["", "", " "]) + rng.choice(_NAMES) + rng.choice(_SPACES) + \
                rng.choice([">", ">", " x>", ""])
        text = "<" + rng.choice(_NAMES)
        for _ in range(rng.randint(0, 3)):
            text += rng.choice(_SPACES) + rng.choice(_ATTRIBUTES)
            if rng.random() < 0.7:
                text += rng.choice(["", " "]) + rng.choice(["=", "=", "=="]) + rng.choice(["", " "]) + \
                    rng.choice(_VALUES)
        return text + rng.choice(_SPACES) + rng.choice([">", "/>", ">", ">", ""])
    return "".join(tag() if rng.random() < 0.5 else rng.choice(_TEXTS) for _ in range(rng.randint(1, 10)))


def test_the_fast_reading_gives_htmlparsers_text_on_generated_markup():
    rng = random.Random(17)
    read_fast = 0
    for _ in range(30_000):
        markup = _markup(rng)
        read_fast += _simple_html_text(markup) is not None
        assert html_to_text(markup) == html_to_text_reference(markup), markup
    assert read_fast > 2_000   # the comparison covers the fast reading, not only the fallback


def test_plain_feed_markup_is_read_without_htmlparser():
    markup = ('<p class="lead">Kim&#8217;s <a href="https://example.com/a?b=1&amp;c=2">speech</a></p>'
              '<script type="text/javascript">if (a < b) { x("</p>") }</script><br/><IMG SRC=x.png>'
              '<iframe src="v"><p>hidden</p></iframe>tail')
    assert _simple_html_text(markup) is not None
    assert html_to_text(markup) == html_to_text_reference(markup) == "Kim’s speech tail"
    # what it leaves to HTMLParser
    for markup in ("a <!-- c --> b", "a < b <i>c</i>", "<a href=x/>t", "<script>never closed", "<p\xa0x>t"):
        assert _simple_html_text(markup) is None
        assert html_to_text(markup) == html_to_text_reference(markup)


def test_a_memo_converts_each_value_once():
    memo = TextMemo()
    assert capped_text(["<p>same</p>"], 10, memo) == capped_text(["<p>same</p>", "same"], 100, memo) == ("same", False)
    assert dict(memo) == {"<p>same</p>": "same", "same": "same"}
