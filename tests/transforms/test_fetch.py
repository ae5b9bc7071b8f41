"""Fetch stage, specified against a real HTTP server on 127.0.0.1 (no mocks)."""
import gzip
import socket
import time
import tracemalloc
import zlib
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.fetch import FetchFeeds, FetchSettings, fetch_feed
from transforms.metrics import NAMESPACE
from transforms.records import FeedSource

RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def local(**kw) -> FetchSettings:
    """Settings for the test server on 127.0.0.1, which the address guard
    refuses by default (tests/transforms/test_address_guard.py covers the guard)."""
    return FetchSettings(allow_private_addresses=True, **kw)


FAST = local(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=5)


def fetch(url, settings=FAST, **kw):
    return fetch_feed(FeedSource(url), settings, **kw)


def category(result):
    return result.error.split(":", 1)[0] if result.error else None


# --- success ------------------------------------------------------------------


def test_ok_returns_status_headers_body_and_final_url(feed_server):
    feed_server.add("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    fixed = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

    result = fetch(feed_server.url("/feed.xml"), now=lambda: fixed)

    assert result.ok and result.error is None
    assert result.status == 200
    assert result.body == RSS
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.feed_url == result.final_url == feed_server.url("/feed.xml")
    assert result.redirects == 0
    assert result.fetched_at == fixed
    assert result.elapsed_s >= 0


def test_fetched_at_defaults_to_aware_utc_now(feed_server):
    feed_server.add("/feed.xml", RSS)
    assert fetch(feed_server.url("/feed.xml")).fetched_at.tzinfo is not None


def test_sends_identity_and_feed_accept_headers(feed_server):
    feed_server.add("/feed.xml", RSS)
    fetch(feed_server.url("/feed.xml"))
    (req,) = feed_server.requests_for("/feed.xml")
    assert req.headers["user-agent"] == FetchSettings().user_agent
    assert "application/rss+xml" in req.headers["accept"]
    assert req.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in req.headers


def test_gzip_body_is_decoded(feed_server):
    feed_server.add("/g", RSS, gzip=True)
    result = fetch(feed_server.url("/g"))
    assert result.ok and result.body == RSS
    assert result.headers["content-encoding"] == "gzip"


def test_deflate_body_is_decoded_zlib_wrapped_or_raw(feed_server):
    feed_server.add("/zlib", RSS, deflate=True)
    feed_server.add("/raw", RSS, deflate="raw")
    assert fetch(feed_server.url("/zlib")).body == RSS
    assert fetch(feed_server.url("/raw")).body == RSS


def test_chunked_body_is_reassembled(feed_server):
    body = RSS * 500
    feed_server.add("/c", body, chunked=True)
    assert fetch(feed_server.url("/c")).body == body


# --- redirects ----------------------------------------------------------------


def test_redirects_are_followed_and_counted(feed_server):
    feed_server.add("/final.xml", RSS)
    feed_server.redirect("/a", feed_server.url("/b"), status=301)
    feed_server.redirect("/b", "/final.xml", status=307)  # relative Location

    result = fetch(feed_server.url("/a"))

    assert result.ok and result.body == RSS
    assert result.redirects == 2
    assert result.feed_url == feed_server.url("/a")
    assert result.final_url == feed_server.url("/final.xml")


def test_relative_location_is_resolved_against_the_current_url(feed_server):
    feed_server.add("/news/feeds/rss.xml", RSS)
    feed_server.redirect("/news/old/feed", "../feeds/rss.xml", status=308)
    result = fetch(feed_server.url("/news/old/feed"))
    assert result.ok and result.final_url == feed_server.url("/news/feeds/rss.xml")


def test_redirect_loop_is_too_many_redirects(feed_server):
    feed_server.redirect("/x", "/y")
    feed_server.redirect("/y", "/x")
    result = fetch(feed_server.url("/x"))
    assert category(result) == "too_many_redirects"
    assert result.body == b""
    assert feed_server.hits["/x"] == 1  # the loop is noticed, not walked max_redirects times


def test_redirect_chain_longer_than_max_is_refused(feed_server):
    for i in range(4):
        feed_server.redirect(f"/r{i}", f"/r{i + 1}")
    feed_server.add("/r4", RSS)
    settings = local(max_redirects=3)

    result = fetch(feed_server.url("/r0"), settings)

    assert category(result) == "too_many_redirects"
    assert feed_server.hits["/r4"] == 0
    assert fetch(feed_server.url("/r1"), settings).ok  # exactly 3 hops is fine


def test_redirect_to_a_local_file_is_refused(feed_server):
    feed_server.redirect("/evil", "file:///etc/passwd")
    result = fetch(feed_server.url("/evil"))
    assert category(result) == "bad_redirect"
    assert result.body == b"" and b"root" not in result.body


def test_redirect_without_location_is_bad_redirect(feed_server):
    feed_server.add("/nowhere", b"", status=302)
    assert category(fetch(feed_server.url("/nowhere"))) == "bad_redirect"


# --- HTTP errors and conditional GET -----------------------------------------


def test_404_and_500_are_errors_that_keep_status_and_headers(feed_server):
    feed_server.add("/busy", b"try later", status=503, headers={"Retry-After": "120"})

    missing = fetch(feed_server.url("/missing"))
    busy = fetch(feed_server.url("/busy"))
    feed_server.add("/boom", b"stack trace", status=500)
    boom = fetch(feed_server.url("/boom"))

    assert (missing.status, missing.error) == (404, "http_status: 404 Not Found")
    assert (boom.status, boom.error) == (500, "http_status: 500 Internal Server Error")
    assert busy.status == 503 and busy.headers["retry-after"] == "120"
    assert missing.body == boom.body == busy.body == b""


def test_matching_etag_gives_304_which_is_not_an_error(feed_server):
    feed_server.add("/feed.xml", RSS, etag='"v1"', last_modified="Wed, 01 May 2024 10:00:00 GMT")

    first = fetch(feed_server.url("/feed.xml"))
    again = fetch(feed_server.url("/feed.xml"), etag=first.headers["etag"],
                  last_modified=first.headers["last-modified"])

    assert first.status == 200 and first.headers["etag"] == '"v1"'
    assert (again.status, again.error, again.body) == (304, None, b"")
    sent = feed_server.requests_for("/feed.xml")[1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Wed, 01 May 2024 10:00:00 GMT"


def test_changed_feed_is_fetched_again_despite_old_validators(feed_server):
    feed_server.add("/feed.xml", RSS, etag='"v1"')
    feed_server.add("/feed.xml", RSS + b"<!-- new -->", etag='"v2"')  # the feed changed
    result = fetch(feed_server.url("/feed.xml"), etag='"v1"')
    assert result.status == 200 and result.body.endswith(b"<!-- new -->")


def test_last_modified_alone_gives_304(feed_server):
    feed_server.add("/feed.xml", RSS, last_modified="Wed, 01 May 2024 10:00:00 GMT")
    result = fetch(feed_server.url("/feed.xml"), last_modified="Wed, 01 May 2024 10:00:00 GMT")
    assert (result.status, result.error) == (304, None)


# --- network faults -----------------------------------------------------------


def test_connection_refused_is_a_connection_error():
    with socket.socket() as s:  # a port that was free a moment ago, now closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert category(result) == "connection"
    assert result.status is None and result.body == b""


def test_silent_server_is_a_timeout(feed_server):
    feed_server.add("/slow", RSS, delay_s=3)
    result = fetch(feed_server.url("/slow"), local(read_timeout_s=0.3, total_timeout_s=5))
    assert category(result) == "timeout"
    assert result.elapsed_s < 2


def test_trickled_body_hits_the_total_deadline(feed_server):
    # One byte every 0.1 s: each read is quick, the whole body would take 30 s.
    feed_server.add("/trickle", b"x" * 300, trickle_s=0.1)
    settings = local(read_timeout_s=0.5, total_timeout_s=0.8)

    result = fetch(feed_server.url("/trickle"), settings)

    assert category(result) == "timeout"
    assert "deadline" in result.error
    assert result.elapsed_s < 2 and result.body == b""


def test_trickled_headers_hit_the_total_deadline(feed_server):
    def slow_headers(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(100):
            handler.wfile.write(b"X-Pad-%d: 1\r\n" % i)
            handler.wfile.flush()
            if feed_server._stopping.wait(0.1):
                return

    feed_server.handle("/slowheaders", slow_headers)
    result = fetch(feed_server.url("/slowheaders"), local(read_timeout_s=0.5, total_timeout_s=0.8))
    assert category(result) == "timeout" and result.elapsed_s < 2


def test_garbage_instead_of_http_is_a_protocol_error(feed_server):
    def garbage(handler):
        handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        handler.close_connection = True

    feed_server.handle("/garbage", garbage)
    assert category(fetch(feed_server.url("/garbage"))) == "protocol"


def test_bad_url_is_reported_not_raised():
    assert category(fetch("http:///no-host")) == "bad_url"
    assert category(fetch("http://127.0.0.1:notaport/")) == "bad_url"


# --- size caps ----------------------------------------------------------------


def test_body_over_max_bytes_is_too_large(feed_server):
    feed_server.add("/big", b"x" * 2000)
    feed_server.add("/big-chunked", b"x" * 2000, chunked=True)  # no Content-Length to trust
    settings = local(max_bytes=1000)
    for path in ("/big", "/big-chunked"):
        result = fetch(feed_server.url(path), settings)
        assert result.error.startswith("too_large: ") and "1000 bytes" in result.error
        assert result.body == b""


def test_gzip_bomb_stops_at_the_cap_without_inflating(feed_server):
    # 50 MB of zeros compressed to ~50 KB, built without holding 50 MB.
    c = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    zero_mb = bytes(1 << 20)
    bomb = b"".join(c.compress(zero_mb) for _ in range(50)) + c.flush()
    del zero_mb
    assert len(bomb) < 100_000
    feed_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})

    tracemalloc.start()
    try:
        result = fetch(feed_server.url("/bomb"), local(max_bytes=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.error.startswith("too_large: decoded body exceeds 1048576 bytes")
    assert result.body == b""
    assert peak < 8 * (1 << 20), f"peak {peak} bytes: the bomb was inflated"


def test_corrupt_gzip_is_a_decode_error(feed_server):
    feed_server.add("/bad.gz", b"\x1f\x8b\x08\x00 definitely not gzip", headers={"Content-Encoding": "gzip"})
    assert category(fetch(feed_server.url("/bad.gz"))) == "decode"


# --- local (FileSystems) sources ----------------------------------------------


def test_local_file_is_read(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    result = fetch(str(path))
    assert (result.status, result.error, result.body) == (200, None, RSS)
    assert result.final_url == str(path) and result.headers == {}


def test_gzipped_local_file_is_decoded(tmp_path):
    path = tmp_path / "feed.xml.gz"
    path.write_bytes(gzip.compress(RSS))
    assert fetch(str(path)).body == RSS


def test_missing_local_file_is_not_found(tmp_path):
    result = fetch(str(tmp_path / "nope.xml"))
    assert category(result) == "not_found" and result.status is None


def test_local_file_over_max_bytes_is_too_large(tmp_path):
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2000)
    assert category(fetch(str(path), local(max_bytes=1000))) == "too_large"


# --- Beam wrapper -------------------------------------------------------------


def test_fetch_feeds_fetches_concurrently_in_a_pipeline(feed_server):
    urls = []
    for i in range(40):
        feed_server.add(f"/feed{i}.xml", RSS, delay_s=0.2)
        urls.append(feed_server.url(f"/feed{i}.xml"))

    with test_pipeline.TestPipeline(runner="DirectRunner") as p:
        results = (
            p
            | beam.Create([FeedSource(u) for u in urls])
            | FetchFeeds(local(concurrency=16))
            | beam.Map(lambda r: (r.feed_url, r.status, r.error, r.body))
        )
        assert_that(results, equal_to([(u, 200, None, RSS) for u in urls]))

    assert sum(feed_server.hits.values()) == 40
    assert feed_server.max_in_flight >= 8


def test_a_slow_feed_does_not_hold_up_the_feeds_after_it(feed_server):
    """Fetches keep flowing past a slow feed. The slow feeds here answer only
    once 20 more requests have reached the server after them (or after 10 s):
    fetching batch by batch, waiting for each batch's slowest feed, lets at
    most one batch (4 x concurrency = 16) through meanwhile, so they would
    time out; fetching on past them releases them."""
    more = 20
    released = {}

    def held_until_more_requests(handler):
        arrived = len(feed_server.requests)
        deadline = time.monotonic() + 10
        while len(feed_server.requests) < arrived + more and time.monotonic() < deadline:
            time.sleep(0.01)
        released[handler.path] = len(feed_server.requests) >= arrived + more
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(RSS)))
        handler.end_headers()
        handler.wfile.write(RSS)

    slow = {f"/feed{i}.xml" for i in (5, 120, 230)}
    urls = []
    for i in range(250):
        path = f"/feed{i}.xml"
        if path in slow:
            feed_server.handle(path, held_until_more_requests)
        else:
            feed_server.add(path, RSS)
        urls.append(feed_server.url(path))

    settings = local(concurrency=4)
    assert 4 * settings.concurrency < more
    with test_pipeline.TestPipeline(runner="DirectRunner") as p:
        results = p | beam.Create([FeedSource(u) for u in urls]) | FetchFeeds(settings)
        errors = results | beam.Filter(lambda r: r.error is not None) | beam.Map(lambda r: r.error)
        assert_that(errors, equal_to([]))

    assert sorted(released) == sorted(slow)
    # (one of them may be among the last 20 feeds fetched, with no 20 after it)
    assert sum(released.values()) >= 2, released


def test_fetch_feeds_counts_attempts_successes_and_failures(feed_server, tmp_path):
    feed_server.add("/ok.xml", RSS)
    sources = [FeedSource(feed_server.url("/ok.xml")), FeedSource(feed_server.url("/gone")),
               FeedSource(str(tmp_path / "missing.xml"))]

    p = test_pipeline.TestPipeline(runner="DirectRunner")
    _ = p | beam.Create(sources) | FetchFeeds(FAST)
    result = p.run()
    result.wait_until_finish()

    def counter(name):
        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))
        return sum(c.committed for c in found["counters"])

    assert counter("fetch_attempts") == 3
    assert counter("fetch_ok") == 1
    assert counter("fetch_failed") == 2
    assert counter("fetch_not_modified") == 0
