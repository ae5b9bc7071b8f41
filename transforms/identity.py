"""Story identity: canonical URLs, stable story ids, content hashes, dedup keys.

Pure functions only. Every id here is derived from the story's own data (never
from a counter, a clock or the machine), so it is stable across runs and hosts.
"""
from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from typing import List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the click and never select content.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid",
        "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
        "oly_enc_id", "rb_clickid", "s_cid", "vero_id", "wickedid",
        "ncid", "ocid", "cmpid", "icid", "xtor", "ito", "sr_share", "spm",
        "ref_src", "ref_url", "smid", "from_rss",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


# An absolute http(s) URL of the shape most feed links have: lower-case
# scheme, a host of ASCII letters, digits, dots and hyphens (no port,
# userinfo or IPv6 literal), then a path of printable ASCII without a query,
# and perhaps a fragment. urlsplit reads it exactly as these groups (nothing
# it strips or checks can occur), so canonical_url needs no more than them;
# tests/transforms/test_identity.py compares the two readings.
_PLAIN_URL = re.compile(r"(https?)://([a-zA-Z0-9][-a-zA-Z0-9.]*)((?:/[ -\"$->@-~]*)?)(?:#[ -~]*)?")
# The host of an http(s) URL whose host is of that plain shape, whatever follows it.
_PLAIN_HOST = re.compile(r"https?://([a-zA-Z0-9][-a-zA-Z0-9.]*)(?:[/?#]|\Z)")


# A story's links are canonicalised again for its remembered identities
# (given_url), in the same process: the answers for the latest links are kept.
@functools.lru_cache(maxsize=1024)
def canonical_url(url: Optional[str]) -> Optional[str]:
    """The URL two copies of a story share.

    Tracking parameters removed (the rest sorted, so their order does not
    matter), scheme and host lower-cased, default port, fragment and
    userinfo dropped, empty path made "/". Returns None for an empty or
    non-http(s) URL.
    """
    if not url:
        return None
    url = url.strip()
    plain = _PLAIN_URL.fullmatch(url)
    if plain:
        scheme, host, path = plain.groups()
        return f"{scheme}://{host.lower().rstrip('.')}{path or '/'}"
    return canonical_url_reference(url)


def canonical_url_reference(url: Optional[str]) -> Optional[str]:
    """canonical_url by urlsplit alone: the reference its plain-URL reading is tested against."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not is_tracking_param(k)]
    query.sort()
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


@functools.lru_cache(maxsize=1024)
def url_host(url: str) -> Optional[str]:
    """urlsplit(url.strip()).hostname, None when urlsplit refuses the URL.
    Remembered: the parse stage asks for the host of one entry's link
    several times (redirector, source), and of its feed's for every entry."""
    url = url.strip()
    plain = _PLAIN_HOST.match(url)
    if plain:   # the netloc urlsplit finds is exactly this host
        return plain.group(1).lower()
    return url_host_reference(url)


def url_host_reference(url: str) -> Optional[str]:
    """url_host by urlsplit alone: the reference its plain-host reading is tested against."""
    try:
        return urlsplit(url.strip()).hostname
    except ValueError:
        return None


def site_host(url: Optional[str]) -> Optional[str]:
    """The site's host name, lower-case and without a leading "www."."""
    if not url:
        return None
    host = url_host(url)
    if not host:
        return None
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


# bytes.translate table for UTF-8 text: an ASCII character regex \w matches
# (a letter or digit; not "_") to itself, any other ASCII character to a
# space; the bytes of other characters unchanged.
_ASCII_NON_WORD_TO_SPACE = (bytes(c if chr(c).isalnum() and c != ord("_") else ord(" ") for c in range(128))
                            + bytes(range(128, 256)))
# A character outside ASCII that regex \w does not match ("’", "—", "。").
_OTHER_NON_WORD = re.compile(r"[^\w\x00-\x7f]")


def normalize_for_hash(text: str) -> str:
    """Case, width, punctuation and spacing differences do not change a story:
    NFKC, case-folded, every run of characters that are not regex \\w (or
    are "_") one space, trimmed (normalize_for_hash_reference)."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    # When every non-word character is ASCII (all ASCII text, and most other
    # text but for typographic punctuation): one bytes.translate and a split,
    # ~2-4x faster than the substitution, which pays per run of punctuation.
    # No word character is whitespace, and all whitespace is non-word.
    if text.isascii():
        return " ".join(text.encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).decode("ascii").split())
    if not _OTHER_NON_WORD.search(text):
        return " ".join(text.encode("utf-8", "surrogatepass").translate(_ASCII_NON_WORD_TO_SPACE)
                        .decode("utf-8", "surrogatepass").split())
    return _NON_WORD.sub(" ", text).strip()


def normalize_for_hash_reference(text: str) -> str:
    """normalize_for_hash by its definition, a regex substitution: the reference it is tested against."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return _NON_WORD.sub(" ", text).strip()


def _digest(first: str, *rest: str) -> str:
    """The first 32 hex digits of the SHA-256 of the parts, each followed by U+001F."""
    return hashlib.sha256(("\x1f".join((first,) + rest) + "\x1f").encode("utf-8", "surrogatepass")).hexdigest()[:32]


def content_hash(title: str, text: str) -> str:
    """Hash of the normalised title and text (summary, or content when no summary)."""
    return _digest("text", normalize_for_hash(title), normalize_for_hash(text))


def story_id(canonical: Optional[str], feed_url: str, guid: Optional[str],
             content_digest: str) -> str:
    """A stable id: from the canonical URL, else the feed's guid, else the text.

    The canonical URL is that of the story's `url`, the publisher's link when
    the feed links through a redirector (transforms.publisher), so copies
    from the publisher's own feed and from a redirected one share an id."""
    if canonical:
        return _digest("url", canonical)
    if guid:
        return _digest("guid", feed_url, guid)
    return _digest("hash", content_digest)


DEDUP_KINDS = ("guid", "url", "text")   # the kinds dedup_keys gives, strongest first


def dedup_keys(canonical: Optional[str], feed_url: str, guid: Optional[str],
               has_text: bool, content_digest: str) -> List[Tuple[str, str]]:
    """The identities under which two entries are the same story, strongest first.

    Same guid in the same feed; same canonical URL; same normalised title and
    text (only when there is some text, so empty entries are not merged).
    """
    keys = []
    if guid:
        keys.append(("guid", _digest(feed_url, guid)))
    if canonical:
        keys.append(("url", canonical))
    if has_text:
        keys.append(("text", content_digest))
    return keys


def story_dedup_keys(story) -> dict:
    """dedup_keys of a Story (transforms.records), as kind -> value."""
    return dict(dedup_keys(story.canonical_url, story.feed_url, story.guid,
                           bool(story.title or story.summary or story.content), story.content_hash))


def remembered_keys(canonical: Optional[str], feed_link: Optional[str], feed_url: str,
                    guid: Optional[str], has_text: bool,
                    content_digest: str) -> List[Tuple[str, str]]:
    """The identities under which a story is remembered across runs (the
    seen index): its dedup_keys, and also the canonical URL of the link its
    feed gave (`feed_link`) when that differs from `canonical`, as a "url"
    identity. A story stored while its URL was still the redirector's link
    (by a version that did not read the publisher's link, or from a feed
    that drops feedburner:origLink again) is so recognised under either."""
    keys = dedup_keys(canonical, feed_url, guid, has_text, content_digest)
    given = given_url(canonical, feed_link)
    if given:
        keys.append(("url", given))
    return keys


def given_url(canonical: Optional[str], feed_link: Optional[str]) -> Optional[str]:
    """The canonical URL of the link the feed gave, when remembered_keys
    adds it as a second "url" identity (it differs from `canonical`); else None."""
    given = canonical_url(feed_link)
    return given if given and given != canonical else None
