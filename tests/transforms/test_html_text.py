"""Plain text from feed fields (transforms/html_text.py): markup, entities,
control characters, whitespace, field caps."""
import re

from transforms.html_text import (CONTROL_CHARACTERS, FIELD_CAPS, capped_text, collapse_whitespace,
                                  html_to_text, unique_texts)


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
