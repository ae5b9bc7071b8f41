"""A real HTTP server on 127.0.0.1 for tests: feeds, redirects and scripted faults.

    with FeedServer() as server:
        server.add("/feed.xml", rss_bytes, etag='"v1"', gzip=True)
        server.redirect("/old", "/feed.xml", status=301)
        fetch_feed(FeedSource(server.url("/old")), FetchSettings(allow_private_addresses=True))
        assert server.hits["/feed.xml"] == 1

Routes can be replaced at any time (a feed that changes between polls). Every
request is recorded, and `max_in_flight` is the largest number of requests
being served at once, so tests can prove concurrency without timing asserts;
`spans` has each request's (path, start, end) in wall-clock seconds
(time.time()), for tests of gaps between requests and of polling lag.
"""
from __future__ import annotations

import collections
import gzip as gzip_module
import http.server
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable, Dict, List, Optional, Tuple, Union


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait before the status line (read timeouts)
    trickle_s: float = 0.0  # pause between body bytes, sent one at a time
    chunked: bool = False  # Transfer-Encoding: chunked (ignored when trickling)
    etag: Optional[str] = None
    last_modified: Optional[str] = None
    handler: Optional[Callable[[http.server.BaseHTTPRequestHandler], None]] = None


@dataclass(frozen=True)
class Scripted:
    """One answer in a FeedServer.script sequence."""

    body: Union[bytes, str] = b""
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    etag: Optional[str] = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, query string included
    headers: Dict[str, str]  # lower-case names
    time: float  # time.monotonic() when the request line arrived


class FeedServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>, served from a daemon thread.

    `host` may be another loopback address (127.0.0.2 ...) and `port` a fixed
    one, for tests that need a second server the address guard must not reach.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        if not host.startswith("127."):
            raise ValueError("test servers listen on loopback addresses only")
        self.host, self._port = host, port
        self.routes: Dict[str, Route] = {}
        self.requests: List[Request] = []
        self.hits: collections.Counter = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.spans: List[Tuple[str, float, float]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> "FeedServer":
        handler = type("Handler", (_Handler,), {"feed_server": self})
        self._httpd = _Server((self.host, self._port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="FeedServer", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._stopping.set()  # wakes handlers sleeping in delays/trickles
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FeedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    # -- routes ---------------------------------------------------------------
    def add(
        self,
        path: str,
        body: Union[bytes, str] = b"",
        *,
        status: int = 200,
        headers: Optional[Dict[str, str]] = None,
        delay_s: float = 0.0,
        trickle_s: float = 0.0,
        chunked: bool = False,
        gzip: bool = False,
        deflate: Union[bool, str] = False,
        etag: Optional[str] = None,
        last_modified: Optional[str] = None,
    ) -> Route:
        """Serves `body` at `path` (replacing any earlier route).

        gzip=True / deflate=True (zlib-wrapped) / deflate="raw" compress the body
        and set Content-Encoding, whatever the request's Accept-Encoding says.
        With etag / last_modified the route answers 304 to matching validators.
        """
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        headers = dict(headers or {})
        if gzip:
            data, headers["Content-Encoding"] = gzip_module.compress(data), "gzip"
        elif deflate:
            wbits = -zlib.MAX_WBITS if deflate == "raw" else zlib.MAX_WBITS
            c = zlib.compressobj(wbits=wbits)
            data, headers["Content-Encoding"] = c.compress(data) + c.flush(), "deflate"
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        route = Route(data, status, headers, delay_s, trickle_s, chunked, etag, last_modified)
        with self._lock:
            self.routes[path] = route
        return route

    def redirect(self, path: str, location: str, status: int = 302) -> Route:
        return self.add(path, b"", status=status, headers={"Location": location})

    def handle(self, path: str, func: Callable[[http.server.BaseHTTPRequestHandler], None]) -> None:
        """Lets `func(handler)` write the raw response itself (scripted faults)."""
        with self._lock:
            self.routes[path] = Route(handler=func)

    def script(self, path: str, responses: List["Scripted"]) -> None:
        """The n-th request to `path` gets responses[n] (the last one repeats):
        a feed that changes, fails or vanishes from one poll to the next. A
        response with an etag answers 304 to a request that sends it back."""
        count = [0]
        lock = threading.Lock()

        def respond(handler):
            with lock:
                answer = responses[min(count[0], len(responses) - 1)]
                count[0] += 1
            headers = dict(answer.headers)
            if answer.etag:
                headers["ETag"] = answer.etag
                if handler.headers.get("If-None-Match") == answer.etag:
                    handler._respond(304, {"ETag": answer.etag}, b"", False)
                    return
            handler._respond(answer.status, headers, answer.body.encode("utf-8")
                             if isinstance(answer.body, str) else answer.body, True)

        self.handle(path, respond)

    def requests_for(self, path: str) -> List[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- called from handler threads ------------------------------------------
    def _enter(self, req: Request) -> Optional[Route]:
        with self._lock:
            self.requests.append(req)
            self.hits[req.path] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.routes.get(req.path) or self.routes.get(req.path.split("?", 1)[0])

    def _leave(self, req: Request, started: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.spans.append((req.path, started, time.time()))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # don't wait for handlers a client gave up on
    request_queue_size = 128  # many concurrent test clients

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-response is what fault tests do


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed for chunked bodies
    feed_server: FeedServer  # set on the per-server subclass

    def do_GET(self):
        self._serve(send_body=True)

    def do_HEAD(self):
        self._serve(send_body=False)

    def log_message(self, *args):
        pass

    def _serve(self, send_body: bool) -> None:
        server = self.feed_server
        started = time.time()
        req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                      time.monotonic())
        route = server._enter(req)
        try:
            if route is None:
                self._respond(404, {"Content-Type": "text/plain"}, b"not found\n", send_body)
            elif route.handler is not None:
                route.handler(self)
            else:
                if route.delay_s and server._stopping.wait(route.delay_s):
                    return
                if _not_modified(route, req.headers):
                    self._respond(304, {k: v for k, v in route.headers.items()
                                        if k in ("ETag", "Last-Modified")}, b"", False)
                else:
                    self._respond(route.status, route.headers, route.body, send_body, route)
        except (ConnectionError, OSError):
            self.close_connection = True  # the client hung up (timeouts, caps)
        finally:
            server._leave(req, started)

    def _respond(self, status, headers, body, send_body, route: Optional[Route] = None):
        self.send_response(status)
        chunked = bool(route and route.chunked and not route.trickle_s)
        names = {k.lower() for k in headers}
        for k, v in headers.items():
            self.send_header(k, v)
        if "content-type" not in names and body:
            self.send_header("Content-Type", "application/rss+xml")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif status != 304 and "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not send_body or status == 304:
            return
        if route and route.trickle_s:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                if self.feed_server._stopping.wait(route.trickle_s):
                    return
        elif chunked:
            for i in range(0, len(body), 1000):
                piece = body[i:i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)


def _not_modified(route: Route, headers: Dict[str, str]) -> bool:
    """RFC 9110 conditional GET: If-None-Match wins over If-Modified-Since."""
    inm = headers.get("if-none-match")
    if inm is not None and route.etag:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or route.etag.removeprefix("W/") in tags
    ims = headers.get("if-modified-since")
    if ims and route.last_modified:
        try:
            return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def fetch_direct(url: str, timeout: float = 10) -> bytes:
    """The body at `url`, asked for with no proxy (the environment's would
    answer for 127.0.0.1 in place of the server)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


def listening_ports(pid: int) -> set:
    """The TCP ports process `pid` listens on: which process serves a URL."""
    import psutil   # here: the server alone needs nothing of it

    return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN}
