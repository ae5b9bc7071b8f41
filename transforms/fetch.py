"""Fetch stage: download each feed's raw bytes, politely and within limits.

`fetch_feed` is the pure-Python core: one FeedSource in, one FetchResult out.
It never raises for network or HTTP trouble; a failure is a FetchResult whose
`error` starts with a stable category followed by ": " and a short detail:

  timeout             connect/read timeout or the whole-request deadline
  connection          refused, reset, DNS failure; a body cut short (fewer bytes than
                      its Content-Length, or chunked without its last chunk): never
                      passed on as a whole feed, its validators never remembered
  tls                 TLS handshake or certificate problem
  protocol            the server did not speak valid HTTP/1.x
  http_status         a 4xx/5xx (or unhandled 3xx) answer; status and headers kept
  too_large           wire or decoded body (all gzip members together) over
                      FetchSettings.max_bytes
  too_many_redirects  more than max_redirects hops, or a redirect loop
  bad_redirect        a redirect without Location or to a non-http(s) URL
  blocked_address     the host (of the feed or of a redirect hop) resolves only to
                      loopback, private, link-local or metadata addresses
                      (transforms.address_guard; lifted by allow_private_addresses)
  bad_url             the feed URL (or path) cannot be requested at all, such as a
                      local path that is not a regular file (directory, FIFO,
                      socket, device): refused on its stat, never opened
  decode              bad or unsupported Content-Encoding (or .gz file) data
  not_found / io      a local (or gs://, s3://) file missing / unreadable
  internal            a bug in this module (logged with its traceback)

The HTTP code uses http.client directly so that every redirect hop, timeout,
connected address and byte count is ours to control. `FetchFeeds` is the thin
Beam wrapper.
"""
from __future__ import annotations

import concurrent.futures
import functools
import http
import http.client
import io
import logging
import os
import socket
import ssl
import stat
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator, List, Optional, Tuple, Union
from urllib.parse import quote, urljoin, urlsplit

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.utils.windowed_value import WindowedValue

from transforms import metrics
from transforms.address_guard import AddressPolicy, BlockedAddress, connect_to_checked_address
from transforms.feedstate import FeedState, Politeness, is_due, next_state
from transforms.records import FeedSource, FetchResult

_log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/feed+json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "application/json;q=0.5, */*;q=0.1"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_FILE_CHUNK = 1024 * 1024  # reads of local and cloud files (cloud readers buffer anyway)
_GZIP_MAGIC = b"\x1f\x8b"
# Characters left as they are when a URL path/query is made ASCII-safe:
# RFC 3986 reserved and unreserved characters plus '%' (already-escaped URLs).
_URL_SAFE = "/?#[]@!$&'()*+,;=:-._~%"


@dataclass(frozen=True)
class FetchSettings:
    """Limits and identity for fetching; shared by every feed of a run."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0  # per socket read: a silent server
    total_timeout_s: float = 60.0  # whole request: a server trickling bytes
    max_bytes: int = 10 * 1024 * 1024  # wire body and decoded body
    max_redirects: int = 5
    user_agent: str = (
        "newswatch/0.1 (news monitoring pipeline; +https://github.com/newswatch/newswatch)"
    )
    concurrency: int = 32  # fetch threads per DoFn instance
    # The address guard (transforms.address_guard) refuses loopback, private,
    # link-local and metadata addresses; intranet feeds and tests lift it, for
    # every address or for the listed networks (CIDR strings) only.
    allow_private_addresses: bool = False
    allowed_networks: Tuple[str, ...] = ()

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy(self.allow_private_addresses, tuple(self.allowed_networks))


class FetchError(Exception):
    """A failure with a stable category; becomes FetchResult.error."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")
        self.category = category


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- #
# Pure core
# --------------------------------------------------------------------------- #


def fetch_feed(
    source: FeedSource,
    settings: FetchSettings = FetchSettings(),
    *,
    etag: Optional[str] = None,
    last_modified: Optional[str] = None,
    now: Optional[Callable[[], datetime]] = None,
) -> FetchResult:
    """Fetches one feed and reports what happened; never raises for I/O trouble.

    http(s) URLs get a conditional GET when `etag`/`last_modified` are given
    (a 304 is a success with an empty body). Anything else is a path read via
    Beam's FileSystems (local, gs://, s3://), so cloud paths work too.
    """
    fetched_at = (now or _utc_now)()
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=timezone.utc)
    started = time.monotonic()
    out = _Outcome(final_url=source.url)
    try:
        if source.is_http:
            _fetch_http(source.url, settings, etag, last_modified, out)
        else:
            out.status, out.body = 200, _read_path(source.url, settings.max_bytes)
    except FetchError as e:
        out.error, out.body = str(e), b""
    except Exception as e:  # a bug here must not sink the other feeds of the run
        _log.exception("fetch_feed crashed on %s", source.url)
        out.error, out.body = f"internal: {type(e).__name__}: {e}"[:300], b""
    return FetchResult(
        feed_url=source.url,
        final_url=out.final_url,
        status=out.status,
        headers=out.headers,
        body=out.body,
        elapsed_s=time.monotonic() - started,
        fetched_at=fetched_at,
        error=out.error,
        redirects=out.redirects,
    )


class _Outcome:
    """Mutable scratch state, so a failure mid-chain still reports its hop."""

    def __init__(self, final_url: str):
        self.final_url = final_url
        self.status: Optional[int] = None
        self.headers: dict = {}
        self.body = b""
        self.error: Optional[str] = None
        self.redirects = 0


def _fetch_http(url, settings, etag, last_modified, out: _Outcome) -> None:
    request_headers = {
        "User-Agent": settings.user_agent,
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip, deflate",
        # One request per connection: no pool to manage, servers free sockets early.
        "Connection": "close",
    }
    if etag:
        request_headers["If-None-Match"] = etag
    if last_modified:
        request_headers["If-Modified-Since"] = last_modified

    deadline = _Deadline(settings.total_timeout_s)
    policy = settings.address_policy
    seen = {url}
    try:
        while True:
            out.final_url, out.status, out.headers = url, None, {}
            conn, resp = _send(url, request_headers, settings, policy, deadline)
            try:
                out.status, out.headers = resp.status, _header_dict(resp)
                if resp.status in REDIRECT_STATUSES:
                    url = _next_hop(url, out.headers.get("location"), out.redirects, settings)
                    if url in seen:
                        raise FetchError("too_many_redirects", f"redirect loop back to {url}")
                    seen.add(url)
                    out.redirects += 1
                    continue
                if resp.status == 304:
                    return  # not modified: success, nothing to read
                if not 200 <= resp.status < 300:
                    reason = resp.reason or _phrase(resp.status)
                    # Kept for whoever schedules the next poll (429, 503).
                    retry_after = out.headers.get("retry-after", "")[:40]
                    reason += f" (Retry-After: {retry_after})" if retry_after else ""
                    raise FetchError("http_status", f"{resp.status} {reason}".strip())
                out.body = _read_body(resp, out.headers, settings.max_bytes, deadline)
                return
            finally:
                conn.close()
    except FetchError:
        raise
    except Exception as e:
        # Once the deadline fired, whatever broke (reset, EOF, short read) is its doing.
        if deadline.expired:
            raise FetchError("timeout", f"exceeded total deadline of {settings.total_timeout_s}s") from e
        raise _categorise(e) from e
    finally:
        deadline.cancel()


class _CheckedAddress:
    """Mixin for http.client connections: the socket goes to an address the
    guard has checked (transforms.address_guard)."""

    def __init__(self, *args, policy: AddressPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        # http.client opens its socket through this attribute (HTTPS too, before
        # wrapping it in TLS for the host name): resolve, check, connect once.
        self._create_connection = functools.partial(connect_to_checked_address, policy=policy)


class _GuardedHTTPConnection(_CheckedAddress, http.client.HTTPConnection):
    pass


class _GuardedHTTPSConnection(_CheckedAddress, http.client.HTTPSConnection):
    pass


def _send(url, headers, settings, policy, deadline):
    """Opens a connection for `url`, sends the GET and returns (conn, response)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
        # Explicit, so http.client does not read an IPv6 literal's last group as a port.
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not host:
            raise ValueError("no host")
        host.encode("idna")  # http.client needs an ASCII host
    except (ValueError, UnicodeError) as e:
        raise FetchError("bad_url", f"{url!r}: {e}") from e
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_URL_SAFE)
    host = host.encode("idna").decode("ascii")
    conn_cls = _GuardedHTTPSConnection if parts.scheme == "https" else _GuardedHTTPConnection

    deadline.check()
    conn = conn_cls(host, port, timeout=min(settings.connect_timeout_s, deadline.remaining()),
                    policy=policy)
    try:
        conn.connect()
        # From here each recv may wait read_timeout_s; the deadline bounds the sum.
        conn.sock.settimeout(settings.read_timeout_s)
        deadline.watch(conn.sock)
        conn.request("GET", target, headers=headers)
        return conn, conn.getresponse()
    except BaseException:
        conn.close()
        raise


def _next_hop(url: str, location: Optional[str], hops: int, settings: FetchSettings) -> str:
    if not location:
        raise FetchError("bad_redirect", f"redirect from {url} without Location")
    target = urljoin(url, location.strip())
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        # file:, ftp:, data: ... would let a feed make us read local or odd resources.
        raise FetchError("bad_redirect", f"refused redirect to non-http URL {target[:200]!r}")
    if hops >= settings.max_redirects:
        raise FetchError("too_many_redirects", f"more than {settings.max_redirects} redirects (next {target})")
    return target


def _header_dict(resp: http.client.HTTPResponse) -> dict:
    headers: dict = {}
    for name, value in resp.getheaders():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _read_body(resp, headers: dict, max_bytes: int, deadline: "_Deadline") -> bytes:
    """Reads and decodes the whole body; wire and decoded sizes are both capped.

    A body that ends early is a `connection` failure, never a short success:
    half a feed parses into half its stories, and its ETag would make the
    next poll a 304 that never brings the rest.
    """
    # http.client's own reading of the framing: the Content-Length it honours,
    # or None for a chunked body or one that runs until the connection closes.
    expected = None if resp.chunked else resp.length
    if expected is not None and expected > max_bytes:
        raise FetchError("too_large", f"body exceeds {max_bytes} bytes "
                                      f"(Content-Length {headers.get('content-length', '')})")
    decoder = _Decoder(headers.get("content-encoding", ""), max_bytes)
    wire = 0
    try:
        while True:
            # read1 returns after one recv, so a trickled body cannot hide from the deadline.
            # A clean close before Content-Length is an empty read here, not an error.
            chunk = resp.read1(_CHUNK)
            if deadline.expired or not chunk:
                break
            wire += len(chunk)
            if wire > max_bytes:
                raise FetchError("too_large", f"body exceeds {max_bytes} bytes")
            decoder.feed(chunk)
    except http.client.IncompleteRead as e:  # the chunked framing ended early
        if not deadline.expired:
            raise FetchError("connection", f"body cut short: chunked body ended after "
                                           f"{wire:,} bytes without its last chunk") from e
    if deadline.expired:  # the watchdog may have ended the read early with a clean EOF
        raise FetchError("timeout", f"exceeded total deadline of {deadline.seconds}s")
    if expected is not None and wire < expected:
        raise FetchError("connection", f"body cut short: {wire:,} of {expected:,} bytes")
    return decoder.finish()


class _Decoder:
    """Incremental Content-Encoding decoder whose output never exceeds the cap.

    zlib's max_length keeps a compression bomb compressed: we inflate at most
    cap + 1 bytes before giving up, whatever the ratio. A gzip body may be
    several members one after another (RFC 1952): each is decoded and the cap
    applies to their total. After the last member, zero padding and a tail
    that does not start another member (a stray newline some servers add)
    are skipped, as gzip(1) does (with a warning). The output grows in one
    BytesIO, whose getvalue() hands its buffer over without a copy: one body
    plus a chunk.
    """

    def __init__(self, encoding: str, cap: int):
        self.encoding = encoding.strip().lower()
        self.cap = cap
        self.size = 0
        self._out = io.BytesIO()
        self._head = b""  # first bytes of a deflate body, to tell zlib from raw deflate
        self._between = b""  # bytes after a gzip member, until they show whether another follows
        self._tail_skipped = False
        self._z = None
        self._gzip = self.encoding in ("gzip", "x-gzip")
        if self._gzip:
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding not in ("", "identity", "deflate"):
            raise FetchError("decode", f"unsupported content-encoding {self.encoding!r}")

    def feed(self, data: bytes) -> None:
        if self.encoding in ("", "identity"):
            self._append(data)
            return
        if self._z is None:  # deflate: decide on the first two bytes
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            # RFC 9110 says zlib-wrapped; some servers send raw deflate.
            is_zlib = data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS)
        try:
            while data:
                if self._z.eof:
                    data = self._next_member(data)
                    if not data:
                        return
                self._append(self._z.decompress(data, self.cap - self.size + 1))
                # At a member's end zlib keeps what follows in unused_data;
                # before it, unconsumed_tail is what the output limit left.
                data = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
        except zlib.error as e:
            raise FetchError("decode", f"bad {self.encoding} data ({e})") from e

    def _next_member(self, data: bytes) -> bytes:
        """Called once a stream has ended with `data` after it: the bytes that
        start the next gzip member (with a fresh decompressor ready), or b""
        while that is not yet known or when nothing more will be decoded."""
        if not self._gzip or self._tail_skipped:
            return b""  # a zlib or raw deflate stream is one stream
        data = (self._between + data).lstrip(b"\0")
        if len(data) < len(_GZIP_MAGIC):
            self._between = data
            return b""
        self._between = b""
        if not data.startswith(_GZIP_MAGIC):
            self._tail_skipped = True
            return b""
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return data

    def finish(self) -> bytes:
        if self._head:
            self.feed(b"\0")  # a 1-byte deflate body: let zlib reject it
        if self._z is not None:
            try:
                self._append(self._z.flush())
            except zlib.error as e:
                raise FetchError("decode", f"bad {self.encoding} data ({e})") from e
            if not self._z.eof:
                raise FetchError("decode", f"truncated {self.encoding} stream")
        return self._out.getvalue()

    def _append(self, piece: bytes) -> None:
        self._out.write(piece)
        self.size += len(piece)
        if self.size > self.cap:
            raise FetchError("too_large", f"decoded body exceeds {self.cap} bytes")


class _Deadline:
    """Whole-request deadline: on expiry, shuts down the socket being read.

    Per-recv timeouts alone cannot stop a server that sends one byte (of headers
    or body) just before each timeout; shutting the socket down wakes any read.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sock = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.at:
            raise FetchError("timeout", f"exceeded total deadline of {self.seconds}s")

    def watch(self, sock) -> None:
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired:
            self._shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock) -> None:
        try:
            # The plain-socket method: SSLSocket.shutdown would tear down TLS
            # state under the reading thread.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _categorise(e: BaseException) -> FetchError:
    detail = str(e) or type(e).__name__
    if isinstance(e, BlockedAddress):
        return FetchError("blocked_address", detail)
    if isinstance(e, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return FetchError("timeout", detail)
    if isinstance(e, ssl.SSLError) or isinstance(e, ssl.CertificateError):
        return FetchError("tls", detail)
    if isinstance(e, socket.gaierror):
        return FetchError("connection", f"cannot resolve host ({detail})")
    if isinstance(e, http.client.IncompleteRead):
        return FetchError("connection", f"body cut short after {len(e.partial)} bytes")
    if isinstance(e, OSError):  # refused, reset, unreachable; includes RemoteDisconnected
        return FetchError("connection", detail)
    if isinstance(e, http.client.InvalidURL) or isinstance(e, UnicodeError):
        return FetchError("bad_url", detail)
    if isinstance(e, http.client.HTTPException):
        return FetchError("protocol", f"{type(e).__name__}: {detail}"[:200])
    raise e  # not an I/O problem: let fetch_feed report it as internal


def _read_path(path: str, max_bytes: int) -> bytes:
    """Reads a non-http source through Beam's FileSystems, capped like HTTP.

    Read a chunk at a time (a .gz file decoded as it arrives, every member),
    so memory holds one body plus a chunk.
    """
    _refuse_special_file(path)
    decoder = _Decoder("gzip" if path.endswith(".gz") else "", max_bytes)
    wire = 0
    try:
        # UNCOMPRESSED: Beam's AUTO would inflate .gz without our cap; we do it capped.
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            while True:
                chunk = f.read(_FILE_CHUNK)
                if not chunk:
                    break
                wire += len(chunk)
                if wire > max_bytes:
                    raise FetchError("too_large", f"body exceeds {max_bytes} bytes")
                decoder.feed(chunk)
    except FileNotFoundError as e:
        raise FetchError("not_found", f"local file {path}") from e
    except ValueError as e:  # no filesystem for this scheme
        raise FetchError("bad_url", str(e)[:200]) from e
    except OSError as e:
        if not _exists(path):  # cloud filesystems wrap "missing" in their own errors
            raise FetchError("not_found", f"file {path}") from e
        raise FetchError("io", f"{type(e).__name__}: {e}"[:200]) from e
    return decoder.finish()


def _refuse_special_file(path: str) -> None:
    """A local path must name a regular file. Opening a FIFO blocks until a
    writer comes, a device may never end, a directory or socket is no feed:
    each is refused on its stat, before any open. Objects on gs:// and s3://
    are always regular; a path stat cannot see is left to the open."""
    if FileSystems.get_scheme(path) is not None:
        return
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not stat.S_ISREG(mode):
        raise FetchError("bad_url", f"{path} is {_special_file_kind(mode)}, not a regular file")


def _special_file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device")]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:
        return True


# --------------------------------------------------------------------------- #
# Beam wrapper
# --------------------------------------------------------------------------- #


class FetchBatchFn(beam.DoFn):
    """Fetches batches of feeds on a thread pool; yields one FetchResult each.

    Each element is a FeedSource or a (FeedSource, FeedState) pair: a feed
    that is not due is skipped (no request; `skipped_until` says until when),
    a due one is fetched with its validators, and every result carries the
    feed's next state. Fetching is I/O-bound, so threads (not more Beam
    workers) give concurrency. The pool is created in setup(), so the DoFn
    itself pickles cleanly.

    A batch does not wait for the previous one: fetches queue behind the ones
    in flight and results are handed on as they arrive, so the pool stays busy
    while the stages fused after this one (parsing) work on what arrived, and
    no batch's slowest feed holds up the next batch.
    """

    def __init__(self, settings: FetchSettings, politeness: Politeness = Politeness()):
        super().__init__()
        self.settings = settings
        self.politeness = politeness
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._in_flight: dict = {}  # future -> (state, now, timestamp, window)
        self.attempts = metrics.counter("fetch_attempts")
        self.fetched = metrics.counter("fetch_ok")
        self.not_modified = metrics.counter("fetch_not_modified")
        self.failed = metrics.counter("fetch_failed")
        self.skipped = metrics.counter("fetch_skipped")

    def setup(self):
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="newswatch-fetch"
        )

    def start_bundle(self):
        self._in_flight = {}

    def process(self, batch: List[Union[FeedSource, Tuple[FeedSource, FeedState]]],
                timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam
                ) -> Iterator[Union[FetchResult, WindowedValue]]:
        now = _utc_now()
        for item in batch:
            source, state = item if isinstance(item, tuple) else (item, FeedState())
            if not is_due(state, now):
                yield self._skipped(source, state, now)
                continue
            future = self._pool.submit(self._fetch, (source, state))
            self._in_flight[future] = (state, now, timestamp, window)
        # Up to two pools' worth may wait; beyond that, wait for any one.
        yield from self._hand_on(keep=2 * self.settings.concurrency)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        yield from self._hand_on(keep=0)

    def _hand_on(self, keep: int) -> Iterator[WindowedValue]:
        """Yields the results that have arrived, in the order they arrived (a
        slow feed holds up nothing); waits while more than `keep` are in flight."""
        while self._in_flight:
            must_wait = len(self._in_flight) > keep
            done, _ = concurrent.futures.wait(
                list(self._in_flight), timeout=None if must_wait else 0,
                return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                state, now, timestamp, window = self._in_flight.pop(future)
                # A result may leave during a later element's process() or at the
                # end of the bundle, so it carries its own element's timestamp and window.
                yield WindowedValue(self._finish(future.result(), state, now), timestamp, (window,))
            if not must_wait:
                return

    def fetch_due(self, pairs: List[Tuple[FeedSource, FeedState]], now: datetime
                  ) -> Iterator[FetchResult]:
        """Fetches the feeds due at `now`, all before returning (for callers
        that keep state per batch); a skipped row for the others."""
        due = [(source, state) for source, state in pairs if is_due(state, now)]
        for source, state in pairs:
            if not is_due(state, now):
                yield self._skipped(source, state, now)
        for (_, state), result in zip(due, self._pool.map(self._fetch, due)):
            yield self._finish(result, state, now)

    def _skipped(self, source: FeedSource, state: FeedState, now: datetime,
                 until: Optional[datetime] = None) -> FetchResult:
        """A feed not fetched at `now`: not due (until its next_fetch_at), or
        its host is backing off (`until`)."""
        self.skipped.inc()
        return FetchResult(feed_url=source.url, final_url=source.url, status=None,
                           headers={}, body=b"", elapsed_s=0.0, fetched_at=now,
                           feed_state=state, skipped_until=until or state.next_fetch_at)

    def _finish(self, result: FetchResult, state: FeedState, now: datetime) -> FetchResult:
        # Counters are bumped here, on the bundle's thread, where Beam's metrics
        # context lives; pool threads have none.
        self.attempts.inc()
        if result.error is not None:
            self.failed.inc()
        elif result.status == 304:
            self.not_modified.inc()
        else:
            self.fetched.inc()
        result.feed_state = next_state(state, result, now, self.politeness)
        return result

    def _fetch(self, pair: Tuple[FeedSource, FeedState]) -> FetchResult:
        source, state = pair
        return fetch_feed(source, self.settings, etag=state.etag, last_modified=state.last_modified)

    def teardown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class FetchFeeds(beam.PTransform):
    """Fetches every feed of the list that is due.

    In:  PCollection[FeedSource] or PCollection[(FeedSource, FeedState)]
         (http(s) URLs, local paths, gs:// or s3:// paths; a bare FeedSource
         is a feed we know nothing about yet)
    Out: PCollection[FetchResult] one per input, failures and skipped feeds
         included (see `error`, `skipped_until`), each with its next
         `feed_state` (transforms.feedstate).

    Feeds are redistributed (Reshuffle) so a runner can spread them over workers,
    then fetched `settings.concurrency` at a time within each worker.
    """

    def __init__(self, settings: FetchSettings = FetchSettings(),
                 politeness: Politeness = Politeness()):
        super().__init__()
        self.settings = settings
        self.politeness = politeness

    def expand(self, sources):
        n = self.settings.concurrency
        return (
            sources
            | "Redistribute" >> beam.Reshuffle()
            # A batch at least as large as the pool keeps every thread busy from the
            # first batch on; a bundle's leftovers are flushed in smaller batches.
            | "Batch" >> beam.BatchElements(min_batch_size=n, max_batch_size=4 * n)
            | "Fetch" >> beam.ParDo(FetchBatchFn(self.settings, self.politeness)).with_output_types(FetchResult)
        )
