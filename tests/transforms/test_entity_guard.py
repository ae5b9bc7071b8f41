"""XML entities: what feedparser 6.0.14 does on its own (pinned here, so an
upgrade that changes it shows up), and what the entity guard adds."""
import io
from datetime import datetime, timezone

import feedparser
import pytest

from transforms.entity_guard import MAX_EXPANSION, as_feedparser_reads, entity_hazard
from transforms.parse import UnreadableFeed, parse_fetch, read_feed
from transforms.records import FetchResult

MARKER = "SECRET-MARKER-7f3a"
RSS_HEADERS = {"content-type": "application/rss+xml"}


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(f"{MARKER}\n")
    return path


def rss(description="x", declaration="", title="t", broken=False):
    # `broken` adds a stray "&" so expat fails and feedparser's loose parser runs.
    return (f'<?xml version="1.0"?>\n{declaration}<rss version="2.0"><channel><title>t</title>'
            f'<item><title>{title}{" & " if broken else ""}</title>'
            f'<description>{description}</description></item></channel></rss>').encode()


def laughs(one_line=False):
    decls = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    sep = "" if one_line else "\n"
    return f"<!DOCTYPE rss [{sep}{sep.join(decls)}{sep}]>\n"


def quadratic(value_chars, refs):
    return f'<!DOCTYPE rss [\n<!ENTITY a "{"A" * value_chars}">\n]>\n', "&a;" * refs


def feedparser_alone(body, headers=RSS_HEADERS):
    return feedparser.parse(io.BytesIO(body), response_headers=headers,
                            sanitize_html=False, resolve_relative_uris=False)


def fetched(body, headers=RSS_HEADERS):
    return FetchResult("https://feeds.example/f.xml", "https://feeds.example/f.xml", 200, headers,
                       body, 0.1, datetime(2021, 9, 30, tzinfo=timezone.utc))


# --- feedparser 6.0.14 on its own ----------------------------------------------


@pytest.mark.parametrize("broken", [False, True], ids=["strict", "loose"])
def test_feedparser_alone_never_reads_an_external_entity_or_dtd(secret, broken):
    uri = secret.as_uri()
    for declaration, text in [
        (f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{uri}">\n]>\n', "&xxe;"),
        (f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>\n', "&xxe;"),
        (f'<!DOCTYPE rss [\n<!ENTITY % xxe SYSTEM "{uri}">\n%xxe;\n]>\n', "x"),
        (f'<!DOCTYPE rss SYSTEM "{uri}">\n', "x"),
    ]:
        result = feedparser_alone(rss(text, declaration, broken=broken))
        assert MARKER not in repr(result), declaration


@pytest.mark.parametrize("one_line", [False, True])
def test_feedparser_alone_does_not_expand_a_nested_bomb(one_line):
    result = feedparser_alone(rss("&lol9;", laughs(one_line)))
    assert result.bozo and len(result.entries[0].get("summary", "")) < 100


def test_feedparser_alone_expands_a_quadratic_bomb_which_is_why_the_guard_exists():
    declaration, refs = quadratic(1_000, 1_000)
    body = rss(refs, declaration, broken=True)
    result = feedparser_alone(body)
    assert len(body) < 10_000 and len(result.entries[0].summary) == 1_000_000  # 100x its size


def test_feedparser_alone_opens_a_body_that_is_a_path(tmp_path):
    feed = tmp_path / "local.xml"
    feed.write_bytes(rss(MARKER))
    assert feedparser.parse(str(feed).encode()).entries[0].summary == MARKER  # why we pass a file object
    with pytest.raises(UnreadableFeed, match="not_a_feed"):
        read_feed(str(feed).encode(), RSS_HEADERS)


def test_feedparser_alone_raises_on_references_to_surrogates():
    with pytest.raises(UnicodeEncodeError):
        feedparser_alone(rss(title="a &#xD800; b"))
    (story,) = parse_fetch(fetched(rss(title="a &#xD800; b &#x110000; c"))).stories
    assert story.title == "a \ufffd b \ufffd c"


# --- the guard -----------------------------------------------------------------


def hazard(body, headers=RSS_HEADERS):
    return entity_hazard(as_feedparser_reads(body, headers))


@pytest.mark.parametrize("declaration, reason", [
    (laughs(), "entity 'lol1' refers to other entities"),
    (laughs(one_line=True), "entity 'lol1' refers to other entities"),
    ('<!DOCTYPE rss [<!ENTITY a "x"><!ENTITY b "&#38;a;&#38;a;">]>', "entity 'b' builds a reference"),
    ('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "external entity 'xxe' is never resolved"),
    ('<!DOCTYPE rss [<!ENTITY xxe PUBLIC "-//x//y" "http://169.254.169.254/">]>', "external entity 'xxe'"),
    ('<!DOCTYPE rss [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "external parameter entity 'p'"),
    ('<!DOCTYPE rss [<!ENTITY % p "<!ENTITY x \'y\'>"> %p;]>', "parameter entity 'p' declared"),
    ('<!DOCTYPE rss [<!ENTITY broken>]>', "unreadable entity declaration"),
    # quoted ">" and "]", comments with quotes, "<" in a value: the subset is still read right
    ('<!DOCTYPE rss [<!-- it\'s ]> --><!ENTITY x "<b>]>"><!ENTITY y SYSTEM "file:///x">]>',
     "external entity 'y'"),
    # junk before the prolog: feedparser's loose parser would still use the entities
    ('junk\n<!DOCTYPE rss [\n<!ENTITY y SYSTEM "file:///x">\n]>', "external entity 'y'"),
])
def test_unsafe_declarations_are_named(declaration, reason):
    assert reason in hazard(rss("x", declaration + "\n"))


def test_the_expansion_budget_counts_every_reference():
    declaration, refs = quadratic(1_000, MAX_EXPANSION // 1_000)
    assert hazard(rss(refs, declaration)) is None  # exactly at the budget
    declaration, refs = quadratic(1_000, MAX_EXPANSION // 1_000 + 1)
    assert "would expand to more than 1,000,000 bytes" in hazard(rss(refs, declaration))


@pytest.mark.parametrize("charset", ["utf-16", "utf-16-be", "utf-32", "utf-7", "cp500"])
def test_no_charset_hides_a_declaration(charset):
    body = rss("&xxe;", '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n').decode()
    body = body.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{charset}"?>')
    headers = {"content-type": f"application/rss+xml; charset={charset}"}
    assert "external entity 'xxe'" in hazard(body.encode(charset), headers)


def test_harmless_documents_pass():
    assert hazard(rss("x")) is None
    assert hazard(rss("x", '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                           '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n')) is None
    # markup about XXE inside an article is text, not a declaration
    article = "<![CDATA[<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]>]]>"
    assert hazard(rss(article)) is None


def test_small_internal_entities_still_parse():
    # as in feedparser's own corpus (wellformed/rss/entity_in_doctype.xml)
    body = (b'<!DOCTYPE rss [\n  <!ENTITY id "tag:example.com,">\n  <!ENTITY nbsp "&#160;">\n]>\n'
            b'<rss version="2.0"><channel><item><title>a&nbsp;b</title>'
            b'<guid isPermaLink="false">&id;2006-05-04:/blog/</guid></item></channel></rss>')
    result = parse_fetch(fetched(body))
    assert result.ok and not result.dead_letters
    (story,) = result.stories
    assert story.guid == "tag:example.com,2006-05-04:/blog/" and story.title == "a b"


@pytest.mark.parametrize("declaration", [laughs(), quadratic(100_000, 20_000)[0],
                                         '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>'])
def test_parse_sets_an_unsafe_feed_aside_as_one_dead_letter(declaration, secret):
    body = rss("&xxe; &lol9; " + "&a;" * 20_000, declaration.replace("{uri}", secret.as_uri()))
    result = parse_fetch(fetched(body), run_id="r")
    assert result.stories == [] and not result.ok
    (letter,) = result.dead_letters
    assert letter.stage == "parse" and letter.reason.startswith("unsafe_xml: ")
    assert result.log.error == letter.reason
    assert MARKER not in repr(result)
