"""A fault-injecting feed server for the tests: every hostile server and feed
the pipeline must survive, as routes on a FeedServer (127.0.0.1 only).

    with Secrets(tmp_path) as secrets, FaultServer(secrets) as server:
        for fault in FAULTS:
            result = fetch_feed(FeedSource(server.url(fault.path)), FAULT_SETTINGS)

Each Fault states what the pipeline must make of it: the dead letter it gives
(stage and error category; one fetch row carries the same error) or, for a
feed that parses, how many stories it yields. The
`Secrets` are things that must never reach the output: a local file (for
external entities and file:// redirects), a local feed whose path is served
as a body, and a second server on 127.0.0.2 that stands for an internal
address; each carries a marker the tests look for everywhere in the output.
"""
from __future__ import annotations

import functools
import gzip as gzip_module
import socket
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from tests.support.feedserver import FeedServer
from transforms.fetch import FetchSettings

MAX_REDIRECTS = 5
MAX_BYTES = 8 * 1024 * 1024  # under the 5 MB title, over nothing else that is honest

# The guard stays on for everything but the fault server itself (127.0.0.1);
# short timeouts keep the slow faults quick. The read timeout is well above
# the trickle's 1 s between bytes, so the trickle always meets the deadline.
FAULT_SETTINGS = FetchSettings(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=3,
                               max_bytes=MAX_BYTES, max_redirects=MAX_REDIRECTS,
                               allowed_networks=("127.0.0.1/32",))
FAULT_CLI_ARGS = ["--allow-private-addresses", "127.0.0.1", "--fetch-timeout", "2",
                  "--fetch-deadline", "3", "--max-feed-bytes", str(MAX_BYTES)]
TOPIC = "Korea"  # every story of the fault feeds mentions it, so all are kept


@dataclass(frozen=True)
class Fault:
    name: str
    stage: Optional[str] = None  # dead letter stage: "fetch" or "parse"; None when the feed parses
    category: Optional[str] = None  # error category of that dead letter and of the fetch row
    stories: int = 0  # stories the feed gives

    @property
    def path(self) -> str:
        return f"/fault/{self.name}"


FAULTS = [
    # the server misbehaves
    Fault("never_starts", "fetch", "timeout"),
    Fault("trickle_1_byte_per_s", "fetch", "timeout"),
    Fault("reset_mid_body", "fetch", "connection"),
    Fault("body_cut_short", "fetch", "connection"),
    Fault("chunked_without_last_chunk", "fetch", "connection"),
    Fault("status_500", "fetch", "http_status"),
    Fault("status_503", "fetch", "http_status"),
    Fault("status_404", "fetch", "http_status"),
    Fault("status_410", "fetch", "http_status"),
    Fault("status_429_retry_after", "fetch", "http_status"),
    Fault("redirect_loop", "fetch", "too_many_redirects"),
    Fault("redirect_chain_too_long", "fetch", "too_many_redirects"),
    Fault("redirect_to_file", "fetch", "bad_redirect"),
    Fault("redirect_to_metadata", "fetch", "blocked_address"),
    Fault("redirect_to_private", "fetch", "blocked_address"),
    Fault("redirect_to_internal_server", "fetch", "blocked_address"),
    Fault("gzip_bomb", "fetch", "too_large"),
    Fault("body_past_cap", "fetch", "too_large"),
    Fault("body_past_cap_chunked", "fetch", "too_large"),
    Fault("endless_body", "fetch", "too_large"),
    # the body is not a feed, or a dangerous one
    Fault("html_page", "parse", "not_a_feed"),
    Fault("json_document", "parse", "not_a_feed"),
    Fault("empty_body", "parse", "not_a_feed"),
    Fault("body_is_a_local_path", "parse", "not_a_feed"),
    Fault("entity_bomb", "parse", "unsafe_xml"),
    Fault("quadratic_entity_bomb", "parse", "unsafe_xml"),
    Fault("external_entity_file", "parse", "unsafe_xml"),
    Fault("external_parameter_entity", "parse", "unsafe_xml"),
    # feeds that parse despite what is wrong with them
    Fault("wrong_charset", stories=1),
    Fault("missing_charset", stories=1),
    Fault("no_entries"),
    Fault("entries_missing_fields", stories=3),
    Fault("extreme_dates", stories=5),
    Fault("gzip_two_members", stories=14),
    Fault("title_5mb", stories=1),
    Fault("control_characters", stories=1),
    Fault("scripts_in_summary", stories=1),
    Fault("invalid_character_references", stories=1),
]
FAULTS_BY_NAME = {f.name: f for f in FAULTS}
# The cases memory must stay bounded for (tests/transforms/test_memory_bounded.py).
MEMORY_CASES = ["gzip_bomb", "body_past_cap", "endless_body", "entity_bomb",
                "quadratic_entity_bomb", "title_5mb"]

# Expected values of the parsing cases, for the tests that check stories.
# (as the feed writes it, as UTC ISO 8601)
EXTREME_DATES = [("Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59+00:00"),
                 ("Wed, 01 Jan 3000 00:00:00 +1400", "2999-12-31T10:00:00+00:00"),
                 ("Sun, 20 Jul 1969 20:17:00 GMT", "1969-07-20T20:17:00+00:00"),
                 ("Mon, 01 Jan 1900 00:00:00 GMT", "1900-01-01T00:00:00+00:00"),
                 ("Mon, 01 Jan 0001 00:00:00 GMT", "0001-01-01T00:00:00+00:00")]
TITLE_5MB_CHARS = 5 * 1024 * 1024


def rss(items: str, title: str = "Fault feed", declaration: str = "", encoding: str = "utf-8") -> str:
    head = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    return (f'{head}{declaration}<rss version="2.0"><channel><title>{title}</title>'
            f'<link>https://faults.example.org/</link>{items}</channel></rss>')


def item(title="Korea story", link="https://faults.example.org/1", summary="About Korea.",
         date="Tue, 28 Sep 2021 01:00:00 GMT", guid=None, extra="") -> str:
    parts = [f"<title>{title}</title>" if title is not None else "",
             f"<link>{link}</link>" if link is not None else "",
             f"<description>{summary}</description>" if summary is not None else "",
             f"<pubDate>{date}</pubDate>" if date is not None else "",
             f"<guid>{guid}</guid>" if guid is not None else "", extra]
    return "<item>" + "".join(parts) + "</item>"


def _link(path: str) -> str:
    """A story link of its own per fault, so dedup keeps each fault's story."""
    return "https://faults.example.org" + path


def numbered_feed(path: str, count: int) -> bytes:
    """An RSS document of `count` distinct Korea stories with links under `path`."""
    return rss("".join(item(title=f"Korea story {i} of {path}", link=_link(f"{path}/{i}"),
                            guid=_link(f"{path}/{i}"))
                       for i in range(1, count + 1))).encode()


def gzip_members(*parts: bytes) -> bytes:
    """One gzip member per part, one after another: a legal gzip stream (RFC 1952)."""
    return b"".join(gzip_module.compress(part) for part in parts)


def halves(body: bytes, at: bytes = b"<item>"):
    """`body` split at the `at` nearest its middle, so each half holds about half the items."""
    cut = body.find(at, len(body) // 2)
    return body[:cut], body[cut:]


def cut_short(body: bytes, etag: str, headers: Optional[Dict[str, str]] = None):
    """A handler that promises all of `body` (Content-Length, ETag, any other
    `headers`), sends its first half and closes the connection cleanly: no
    reset, no error."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items()).encode()

    def respond(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                            b"Content-Length: %d\r\nETag: %s\r\n%s\r\n"
                            % (len(body), etag.encode(), extra))
        handler.wfile.write(body[:len(body) // 2])
        handler.close_connection = True  # the server then shuts the socket down cleanly (FIN)
    return respond


def without_last_chunk(body: bytes, etag: str):
    """A handler that sends the first half of `body` chunked (with an ETag) and
    closes cleanly without the last, zero-length chunk that ends the body."""
    def respond(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                            b"Transfer-Encoding: chunked\r\nETag: %s\r\n\r\n" % etag.encode())
        half = body[:len(body) // 2]
        for i in range(0, len(half), 1000):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(half[i:i + 1000]), half[i:i + 1000]))
        handler.close_connection = True
    return respond


class Secrets:
    """What the output must never contain, each with its own marker."""

    def __init__(self, folder: Path):
        tag = uuid.uuid4().hex[:12]
        self.file_marker = f"SECRET-FILE-{tag}"
        self.path_marker = f"SECRET-PATH-{tag}"
        self.server_marker = f"SECRET-SERVER-{tag}"
        self.file = folder / "secret.txt"
        self.file.write_text(f"{self.file_marker}\nroot:x:0:0:root:/root:/bin/bash\n")
        self.feed_file = folder / "secret-feed.xml"
        self.feed_file.write_text(rss(item(title=f"{self.path_marker} Korea"), title=self.path_marker))
        self.server = FeedServer(host="127.0.0.2")  # an "internal" address the guard refuses

    @property
    def markers(self):
        return [self.file_marker, self.path_marker, self.server_marker]

    def __enter__(self) -> "Secrets":
        self.server.start()
        feed = rss(item(title=f"{self.server_marker} Korea"), title=self.server_marker)
        for path in ("/", "/feed.xml", "/latest/meta-data/"):
            self.server.add(path, feed)
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


class FaultServer(FeedServer):
    """A FeedServer with a route per Fault in FAULTS (at Fault.path)."""

    def __init__(self, secrets: Secrets):
        super().__init__()
        self.secrets = secrets

    def start(self) -> "FaultServer":
        super().start()
        for fault in FAULTS:
            _BUILDERS[fault.name](self, fault.path)
        return self

    def feed_list(self) -> str:
        return "".join(self.url(f.path) + "\n" for f in FAULTS)


# --------------------------------------------------------------------------- #
# One builder per fault: (server, path) -> installs the route(s).
# --------------------------------------------------------------------------- #

_BUILDERS: Dict[str, Callable[[FaultServer, str], None]] = {}


def _builds(name):
    def register(func):
        _BUILDERS[name] = func
        return func
    return register


@_builds("never_starts")
def _never_starts(server, path):
    # Accepts the request, then says nothing until the server stops.
    server.handle(path, lambda handler: server._stopping.wait(60))


@_builds("trickle_1_byte_per_s")
def _trickle(server, path):
    server.add(path, rss(item()), trickle_s=1.0)


@_builds("reset_mid_body")
def _reset_mid_body(server, path):
    def reset(handler):
        body = rss(item() * 200).encode()
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(body))
        handler.wfile.write(body[:len(body) // 3])
        handler.wfile.flush()
        # SO_LINGER 0: close() sends a TCP reset instead of a clean end.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
    server.handle(path, reset)


@_builds("body_cut_short")
def _body_cut_short(server, path):
    server.handle(path, cut_short(numbered_feed(path, 12), '"cut-v1"'))


@_builds("chunked_without_last_chunk")
def _chunked_without_last_chunk(server, path):
    server.handle(path, without_last_chunk(numbered_feed(path, 12), '"chunked-v1"'))


@_builds("status_500")
def _status_500(server, path):
    server.add(path, "Traceback (most recent call last): ...", status=500)


@_builds("status_503")
def _status_503(server, path):
    server.add(path, "down for maintenance", status=503, headers={"Retry-After": "3600"})


@_builds("status_404")
def _status_404(server, path):
    server.add(path, "not found", status=404)


@_builds("status_410")
def _status_410(server, path):
    server.add(path, "this feed is gone", status=410)


@_builds("status_429_retry_after")
def _status_429(server, path):
    server.add(path, "slow down", status=429, headers={"Retry-After": "120"})


@_builds("redirect_loop")
def _redirect_loop(server, path):
    server.redirect(path, path + "/b")
    server.redirect(path + "/b", path)


@_builds("redirect_chain_too_long")
def _redirect_chain(server, path):
    hops = [path] + [f"{path}/{i}" for i in range(1, MAX_REDIRECTS + 2)]
    for here, there in zip(hops, hops[1:]):
        server.redirect(here, there)
    server.add(hops[-1], rss(item()))


@_builds("redirect_to_file")
def _redirect_to_file(server, path):
    server.redirect(path, server.secrets.file.as_uri())


@_builds("redirect_to_metadata")
def _redirect_to_metadata(server, path):
    server.redirect(path, "http://169.254.169.254/latest/meta-data/iam/security-credentials/")


@_builds("redirect_to_private")
def _redirect_to_private(server, path):
    server.redirect(path, "http://10.0.0.1/feed.xml", status=301)


@_builds("redirect_to_internal_server")
def _redirect_to_internal_server(server, path):
    server.redirect(path, server.secrets.server.url("/feed.xml"), status=307)


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A valid gzip stream of 1 GiB of zeros in ~1 MB: one compressed MiB,
    ended with a full flush so that it can be repeated, 1,024 times."""
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    mebibyte = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + mebibyte * 1024 + deflate.flush() + struct.pack("<II", crc, (1 << 30) & 0xFFFFFFFF)


@_builds("gzip_bomb")
def _gzip_bomb(server, path):
    server.add(path, gzip_bomb(), headers={"Content-Encoding": "gzip"})


@_builds("body_past_cap")
def _body_past_cap(server, path):
    server.add(path, rss(item()).encode() + b" " * (MAX_BYTES + 1))


@_builds("body_past_cap_chunked")
def _body_past_cap_chunked(server, path):
    server.add(path, rss(item()).encode() + b" " * (MAX_BYTES + 1), chunked=True)


@_builds("endless_body")
def _endless_body(server, path):
    # No Content-Length, no end: 64 KiB after 64 KiB until the client hangs up.
    def endless(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                            b"Connection: close\r\n\r\n<rss version='2.0'><channel>")
        block = b"<!-- padding -->" * 4096
        while not server._stopping.is_set():
            handler.wfile.write(block)
        handler.close_connection = True
    server.handle(path, endless)


@_builds("gzip_two_members")
def _gzip_two_members(server, path):
    # Each member holds 7 of the 14 items; a decoder that stops at the first gives 7.
    server.add(path, gzip_members(*halves(numbered_feed(path, 14))),
               headers={"Content-Encoding": "gzip"})


@_builds("html_page")
def _html_page(server, path):
    server.add(path, "<!DOCTYPE html><html><head><title>Korea news</title></head>"
                     "<body><h1>Subscribe to our newsletter</h1></body></html>",
               headers={"Content-Type": "text/html; charset=utf-8"})


@_builds("json_document")
def _json_document(server, path):
    server.add(path, '{"status": "ok", "items": [{"title": "Korea"}]}',
               headers={"Content-Type": "application/json"})


@_builds("empty_body")
def _empty_body(server, path):
    server.add(path, b"")


@_builds("body_is_a_local_path")
def _body_is_a_local_path(server, path):
    # feedparser.parse(bytes) would open() this path and parse the local feed.
    server.add(path, str(server.secrets.feed_file))


@_builds("entity_bomb")
def _entity_bomb(server, path):
    entities = '<!ENTITY lol "lol">\n' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10))
    server.add(path, rss(item(summary="Korea &lol9;"), declaration=f"<!DOCTYPE rss [\n{entities}]>\n"))


@_builds("quadratic_entity_bomb")
def _quadratic_entity_bomb(server, path):
    # 100 KB entity used 20,000 times: a 160 KB feed that would expand to 2 GB.
    declaration = f'<!DOCTYPE rss [\n<!ENTITY a "{"A" * 100_000}">\n]>\n'
    server.add(path, rss(item(summary="Korea " + "&a;" * 20_000), declaration=declaration))


@_builds("external_entity_file")
def _external_entity_file(server, path):
    declaration = f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{server.secrets.file.as_uri()}">\n]>\n'
    server.add(path, rss(item(title="Korea &xxe;", summary="&xxe;"), declaration=declaration))


@_builds("external_parameter_entity")
def _external_parameter_entity(server, path):
    declaration = (f'<!DOCTYPE rss [\n<!ENTITY % xxe SYSTEM "{server.secrets.file.as_uri()}">\n'
                   f'%xxe;\n]>\n')
    server.add(path, rss(item(), declaration=declaration))


@_builds("wrong_charset")
def _wrong_charset(server, path):
    # Says UTF-8, is Latin-1.
    body = rss(item(title="Corée du Nord: Korea", link=_link(path)), encoding="")
    server.add(path, body.encode("latin-1"), headers={"Content-Type": "application/rss+xml; charset=utf-8"})


@_builds("missing_charset")
def _missing_charset(server, path):
    # text/xml without charset means US-ASCII (RFC 3023); the body is UTF-8.
    body = rss(item(title="Корея: Korea", link=_link(path)), encoding="")
    server.add(path, body.encode("utf-8"), headers={"Content-Type": "text/xml"})


@_builds("no_entries")
def _no_entries(server, path):
    server.add(path, rss(""))


@_builds("entries_missing_fields")
def _entries_missing_fields(server, path):
    server.add(path, rss(
        item(title=None, link="https://faults.example.org/no-title", summary="Korea, untitled")
        + item(title="Korea without a link", link=None,
               extra='<guid isPermaLink="false">urn:faults:no-link</guid>')
        + item(title="Korea without a date", link="https://faults.example.org/no-date", date=None)))


@_builds("extreme_dates")
def _extreme_dates(server, path):
    items = "".join(item(title=f"Korea on {when}", link=f"https://faults.example.org/d{i}", date=when)
                    for i, (when, _) in enumerate(EXTREME_DATES))
    server.add(path, rss(items))


@_builds("title_5mb")
def _title_5mb(server, path):
    server.add(path, rss(item(title="Korea " + "x" * (TITLE_5MB_CHARS - 6), link=_link(path))))


@_builds("control_characters")
def _control_characters(server, path):
    server.add(path, rss(item(title="Korea\x00 NUL\x01\x02\x1b[31m red",
                              link="https://faults.example.org/\x00ctl",
                              summary="nul\x00 bell\x07 del\x7f &#0; done", guid="g\x00\x08")))


@_builds("scripts_in_summary")
def _scripts_in_summary(server, path):
    summary = ("&lt;p onclick=\"steal()\"&gt;Korea&lt;/p&gt;&lt;script&gt;alert('x')&lt;/script&gt;"
               "&lt;img src=x onerror=\"alert(1)\"&gt;&lt;a href=\"javascript:alert(2)\"&gt;link&lt;/a&gt;")
    cdata = "<![CDATA[<script type='text/javascript'>document.cookie</script><b onmouseover='x()'>bold</b>]]>"
    server.add(path, rss(item(summary=summary, link=_link(path), extra=f"<content:encoded xmlns:content="
                                                     f"'http://purl.org/rss/1.0/modules/content/'>"
                                                     f"{cdata}</content:encoded>")))


@_builds("invalid_character_references")
def _invalid_character_references(server, path):
    # feedparser raises on these (a surrogate, past U+10FFFF, too many digits).
    server.add(path, rss(item(title="Korea &#xD800; &#x110000; &#99999999999999999999; end",
                              link=_link(path))))


assert set(_BUILDERS) == set(FAULTS_BY_NAME), set(_BUILDERS) ^ set(FAULTS_BY_NAME)
