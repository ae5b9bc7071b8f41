"""Fetch hands on whole bodies or errors: a body cut short is a `connection`
failure whose validators are not remembered, every gzip member is decoded
(over HTTP and from a local .gz file) under one size cap, and a local path
that is not a regular file is refused without being opened. Real HTTP on
127.0.0.1 and real files; no mocks."""
import gzip
import os
import socket
import tracemalloc
import zlib
from datetime import datetime, timezone

import pytest

from tests.support.faultserver import (cut_short, gzip_members, halves, numbered_feed,
                                       without_last_chunk)
from tests.support.watchdog import returns_within
from transforms.feedstate import FeedState, next_state
from transforms.fetch import FetchSettings, fetch_feed
from transforms.parse import parse_fetch
from transforms.records import FeedSource

FAST = FetchSettings(allow_private_addresses=True, connect_timeout_s=2, read_timeout_s=2,
                     total_timeout_s=5)
FEED = numbered_feed("/bodies", 14)
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def fetch(url, settings=FAST, **kw):
    return fetch_feed(FeedSource(url), settings, **kw)


def category(result):
    return result.error.split(":", 1)[0] if result.error else None


def stories(result):
    return parse_fetch(result, "r").stories


# --- bodies cut short -----------------------------------------------------------


def test_a_body_shorter_than_its_content_length_is_a_connection_error(feed_server):
    feed_server.handle("/cut", cut_short(FEED, '"v1"'))

    result = fetch(feed_server.url("/cut"))

    assert result.error == f"connection: body cut short: {len(FEED) // 2:,} of {len(FEED):,} bytes"
    assert result.body == b""
    parsed = parse_fetch(result, "r")
    assert parsed.stories == [] and [d.stage for d in parsed.dead_letters] == ["fetch"]


def test_a_cut_short_answer_leaves_the_remembered_validators_as_they_were(feed_server):
    feed_server.handle("/cut", cut_short(FEED, '"v2"'))  # a new version, half sent

    remembered = FeedState(etag='"v1"', last_modified="Wed, 01 May 2024 10:00:00 GMT")
    after = next_state(remembered, fetch(feed_server.url("/cut"), etag='"v1"'), NOW)
    first_ever = next_state(FeedState(), fetch(feed_server.url("/cut")), NOW)

    assert (after.etag, after.last_modified) == (remembered.etag, remembered.last_modified)
    assert after.consecutive_failures == 1
    assert first_ever.etag is None  # so the next poll asks for the whole feed


def test_a_chunked_body_without_its_last_chunk_is_a_connection_error(feed_server):
    feed_server.handle("/chunked", without_last_chunk(FEED, '"v1"'))

    result = fetch(feed_server.url("/chunked"))

    assert result.error == (f"connection: body cut short: chunked body ended after "
                            f"{len(FEED) // 2:,} bytes without its last chunk")
    assert result.body == b""


def test_a_chunked_body_cut_inside_a_chunk_is_a_connection_error(feed_server):
    def mid_chunk(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"3e8\r\n" + FEED[:500])  # promises 1,000 bytes, sends 500
        handler.close_connection = True

    feed_server.handle("/mid", mid_chunk)
    result = fetch(feed_server.url("/mid"))
    assert category(result) == "connection" and "cut short" in result.error


def test_a_gzip_body_cut_short_is_a_connection_error_not_a_decode_error(feed_server):
    feed_server.handle("/cut.gz", cut_short(gzip.compress(FEED), '"v1"', {"Content-Encoding": "gzip"}))
    result = fetch(feed_server.url("/cut.gz"))
    assert category(result) == "connection" and "cut short" in result.error


def test_a_body_without_framing_ends_where_the_server_closes_and_is_whole(feed_server):
    def until_close(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + FEED)
        handler.close_connection = True

    feed_server.handle("/close", until_close)
    result = fetch(feed_server.url("/close"))
    assert result.ok and result.body == FEED


# --- every gzip member ----------------------------------------------------------


def test_every_member_of_a_gzip_body_is_decoded(feed_server):
    feed_server.add("/two", gzip_members(*halves(FEED)), headers={"Content-Encoding": "gzip"})
    result = fetch(feed_server.url("/two"))
    assert result.ok and result.body == FEED
    assert len(stories(result)) == 14


def test_members_split_anywhere_across_reads_are_all_decoded(feed_server):
    """The second member starts in a later read, once exactly at a read's
    start and once with its first byte at the end of the read before."""
    first, second = (gzip.compress(part) for part in halves(FEED))

    def in_two_sends(split):
        def respond(handler):
            body = first + second
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                b"Content-Length: %d\r\n\r\n" % len(body))
            handler.wfile.write(body[:split])
            handler.wfile.flush()
            feed_server._stopping.wait(0.2)  # the client reads what has come so far
            handler.wfile.write(body[split:])
        return respond

    for split in (len(first), len(first) + 1):
        feed_server.handle(f"/split{split}", in_two_sends(split))
        result = fetch(feed_server.url(f"/split{split}"))
        assert result.ok and result.body == FEED, split


def test_zero_padding_or_a_stray_newline_after_the_last_member_is_skipped(feed_server):
    feed_server.add("/padded", gzip_members(*halves(FEED)) + bytes(100),
                    headers={"Content-Encoding": "gzip"})
    feed_server.add("/newline", gzip_members(*halves(FEED)) + b"\n",
                    headers={"Content-Encoding": "gzip"})
    assert fetch(feed_server.url("/padded")).body == FEED
    assert fetch(feed_server.url("/newline")).body == FEED


def test_a_truncated_second_member_is_a_decode_error(feed_server):
    first, second = (gzip.compress(part) for part in halves(FEED))
    feed_server.add("/torn", first + second[:len(second) // 2], headers={"Content-Encoding": "gzip"})
    assert category(fetch(feed_server.url("/torn"))) == "decode"


def test_the_size_cap_applies_to_all_members_together(feed_server, tmp_path):
    # Each member decodes to 600 bytes, under the cap; the two together are over it.
    body = gzip_members(b"a" * 600, b"b" * 600)
    feed_server.add("/two-600", body, headers={"Content-Encoding": "gzip"})
    path = tmp_path / "two-600.xml.gz"
    path.write_bytes(body)
    capped = FetchSettings(allow_private_addresses=True, max_bytes=1000)

    for result in (fetch(feed_server.url("/two-600"), capped), fetch(str(path), capped)):
        assert result.error == "too_large: decoded body exceeds 1000 bytes"
        assert result.body == b""


def test_a_bomb_of_many_members_stops_at_the_cap_without_inflating(feed_server):
    # 64 members of 1 MiB of zeros each, about 1 KB compressed apiece.
    member = gzip.compress(bytes(1 << 20))
    feed_server.add("/bombs", member * 64, headers={"Content-Encoding": "gzip"})

    tracemalloc.start()
    try:
        result = fetch(feed_server.url("/bombs"), FetchSettings(allow_private_addresses=True,
                                                                max_bytes=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.error == f"too_large: decoded body exceeds {1 << 20} bytes"
    assert peak < 8 * (1 << 20), f"peak {peak} bytes: the members were inflated"


def test_a_local_gz_file_of_two_members_gives_every_entry(tmp_path):
    path = tmp_path / "feed.xml.gz"
    path.write_bytes(gzip_members(*halves(FEED)))

    result = fetch(str(path))

    assert result.ok and result.body == FEED
    assert len(stories(result)) == 14


def test_a_local_gz_file_larger_than_one_read_is_decoded_whole(tmp_path):
    # Several reads of the file, with member boundaries wherever they fall.
    text = os.urandom(3 << 20).hex().encode()  # 6 MiB that hardly compresses
    pieces = [text[i:i + 700_000] for i in range(0, len(text), 700_000)]
    path = tmp_path / "big.xml.gz"
    path.write_bytes(gzip_members(*pieces))
    result = fetch(str(path), FetchSettings(max_bytes=8 << 20))
    assert result.ok and result.body == text


def test_deflate_is_still_one_stream(feed_server):
    c = zlib.compressobj()
    feed_server.add("/deflate", c.compress(FEED) + c.flush(), headers={"Content-Encoding": "deflate"})
    assert fetch(feed_server.url("/deflate")).body == FEED


# --- special files in the feed list --------------------------------------------


def fetch_within(path: str, seconds: float = 10.0):
    """fetch_feed(path), failing the test if it blocks (a FIFO opened for reading)."""
    return returns_within(seconds, lambda: fetch(path), path)


def test_a_fifo_in_the_feed_list_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "feed.xml"
    os.mkfifo(fifo)

    result = fetch_within(str(fifo))

    assert result.error == f"bad_url: {fifo} is a FIFO (named pipe), not a regular file"
    assert result.status is None and result.body == b""
    (letter,) = parse_fetch(result, "r").dead_letters
    assert letter.stage == "fetch" and letter.reason.startswith("bad_url: ")


def test_a_symlink_to_a_fifo_is_refused_too(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "feed.xml").symlink_to(tmp_path / "pipe")
    assert "is a FIFO" in fetch_within(str(tmp_path / "feed.xml")).error


@pytest.fixture
def listening_socket(tmp_path):
    path = tmp_path / "feed.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "feeds.d"
    folder.mkdir()
    assert fetch_within(str(folder)).error == f"bad_url: {folder} is a directory, not a regular file"


def test_a_socket_is_refused(listening_socket):
    assert fetch_within(str(listening_socket)).error == (
        f"bad_url: {listening_socket} is a socket, not a regular file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused():
    # /dev/null would read as an empty feed, /dev/zero as an endless one.
    for device in ("/dev/null", "/dev/zero"):
        assert fetch_within(device).error == f"bad_url: {device} is a character device, not a regular file"


def test_a_regular_file_beside_them_is_read_as_before(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    result = fetch_within(str(path))
    assert (result.status, result.error, result.body) == (200, None, FEED)
