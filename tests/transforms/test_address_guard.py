"""The address guard: by default no feed or redirect reaches this machine, the
local network or a metadata server; checked after DNS, connected to what was
checked. The test server on 127.0.0.1 is exactly what the guard refuses, so
these tests run with the guard on and everything else in the suite lifts it."""
import ipaddress
import socket

import pandas as pd
import pytest

from pipeline.cli import main
from tests.support.feedserver import FeedServer
from transforms.address_guard import (AddressPolicy, BlockedAddress, block_reason,
                                      connect_to_checked_address, parse_networks)
from transforms.fetch import FetchSettings, fetch_feed
from transforms.records import FeedSource

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Intranet</title>
<item><title>North Korea test</title><link>https://intranet.example/1</link></item></channel></rss>"""
GUARDED = FetchSettings(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=5)  # the default guard


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("224.0.0.1", "multicast"),
    ("169.254.169.254", "cloud metadata address"),
    ("fd00:ec2::254", "cloud metadata address"),
    ("::ffff:127.0.0.1", "wraps 127.0.0.1, loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "cloud metadata address"),
    ("64:ff9b::10.0.0.1", "wraps 10.0.0.1, private"),  # NAT64
    ("2002:a00:1::", "wraps 10.0.0.1, private"),  # 6to4
    ("93.184.216.34", None),
    ("2606:4700:4700::1111", None),
])
def test_block_reason(address, reason):
    assert block_reason(ipaddress.ip_address(address)) == reason


def test_allowing_private_addresses_never_allows_metadata():
    everything = AddressPolicy(allow_private=True)
    assert block_reason(ipaddress.ip_address("10.1.2.3"), everything) is None
    assert block_reason(ipaddress.ip_address("127.0.0.1"), everything) is None
    assert block_reason(ipaddress.ip_address("169.254.169.254"), everything) == "cloud metadata address"
    assert block_reason(ipaddress.ip_address("fd00:ec2::254"), everything) == "cloud metadata address"
    only = AddressPolicy(allowed_networks=parse_networks("10.20.0.0/16, 127.0.0.1"))
    assert block_reason(ipaddress.ip_address("10.20.3.4"), only) is None
    assert block_reason(ipaddress.ip_address("127.0.0.1"), only) is None
    assert block_reason(ipaddress.ip_address("10.21.0.1"), only) == "private"
    assert block_reason(ipaddress.ip_address("127.0.0.2"), only) == "loopback"


def test_parse_networks():
    assert parse_networks("10.20.0.0/16,127.0.0.1 , ::1") == ("10.20.0.0/16", "127.0.0.1/32", "::1/128")
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/33")


# --- fetches with the guard on (the default) -----------------------------------


def test_loopback_by_address_and_by_name_is_refused_before_any_request(feed_server):
    feed_server.add("/feed.xml", RSS)
    port = feed_server.port
    for url, error in [
        (f"http://127.0.0.1:{port}/feed.xml", "blocked_address: 127.0.0.1 (loopback)"),
        (f"http://localhost:{port}/feed.xml", "blocked_address: localhost -> 127.0.0.1 (loopback)"),
        (f"http://2130706433:{port}/feed.xml", "blocked_address: 2130706433 -> 127.0.0.1 (loopback)"),
        (f"http://127.1:{port}/feed.xml", "blocked_address: 127.1 -> 127.0.0.1 (loopback)"),
        (f"http://0.0.0.0:{port}/feed.xml", "blocked_address: 0.0.0.0 (unspecified)"),
    ]:
        result = fetch_feed(FeedSource(url), GUARDED)
        assert (result.error, result.status, result.body) == (error, None, b""), url
    assert FetchSettings().allow_private_addresses is False  # the default is the guard
    assert feed_server.requests == []


def test_metadata_is_refused_even_when_private_addresses_are_allowed():
    lifted = FetchSettings(connect_timeout_s=1, total_timeout_s=2, allow_private_addresses=True)
    for url, error in [
        ("http://169.254.169.254/latest/meta-data/", "blocked_address: 169.254.169.254 (cloud metadata address)"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "blocked_address: fd00:ec2::254 (cloud metadata address)"),
        ("http://metadata.google.internal/computeMetadata/v1/",
         "blocked_address: metadata.google.internal is a cloud metadata host"),
    ]:
        assert fetch_feed(FeedSource(url), lifted).error == error


def test_each_redirect_hop_is_checked(feed_server):
    with FeedServer(host="127.0.0.2") as internal:
        internal.add("/secret.xml", RSS)
        feed_server.redirect("/hop1", "/hop2")
        feed_server.redirect("/hop2", internal.url("/secret.xml"))
        only_the_feed_server = FetchSettings(allowed_networks=("127.0.0.1/32",))

        result = fetch_feed(FeedSource(feed_server.url("/hop1")), only_the_feed_server)

        assert result.error == "blocked_address: 127.0.0.2 (loopback)"
        assert result.final_url == internal.url("/secret.xml") and result.redirects == 2
        assert internal.requests == [] and feed_server.hits["/hop2"] == 1


def test_allowing_private_addresses_lifts_the_guard(feed_server):
    feed_server.add("/feed.xml", RSS)
    for settings in (FetchSettings(allow_private_addresses=True),
                     FetchSettings(allowed_networks=("127.0.0.0/8",))):
        result = fetch_feed(FeedSource(feed_server.url("/feed.xml").replace("127.0.0.1", "localhost")),
                            settings)
        assert result.ok and result.body == RSS.encode()


def test_local_paths_in_the_feed_list_stay_allowed(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text(RSS)
    assert fetch_feed(FeedSource(str(path)), GUARDED).body == RSS.encode()


# --- resolved once, connected to what was checked ------------------------------


class RebindingResolver:
    """DNS that answers differently on each call: a rebinding attack."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), 0

    def __call__(self, host, port, family=0, kind=0, *args):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer]


@pytest.fixture
def two_listeners():
    """Listening sockets on 127.0.0.1 and 127.0.0.2 with the same port."""
    allowed = socket.create_server(("127.0.0.1", 0))
    port = allowed.getsockname()[1]
    try:
        internal = socket.create_server(("127.0.0.2", port))
    except OSError:
        allowed.close()
        pytest.skip("cannot bind 127.0.0.2 with the same port")
    internal.setblocking(False)
    yield port, allowed, internal
    allowed.close()
    internal.close()


def test_connects_to_the_address_that_was_checked_without_resolving_again(two_listeners):
    port, _, internal = two_listeners
    resolver = RebindingResolver(["127.0.0.1"], ["127.0.0.2"])
    policy = AddressPolicy(allowed_networks=("127.0.0.1/32",))

    with connect_to_checked_address(("feeds.example", port), 2, policy=policy, resolve=resolver) as sock:
        assert sock.getpeername() == ("127.0.0.1", port)
    assert resolver.calls == 1
    with pytest.raises(BlockingIOError):
        internal.accept()  # nothing ever knocked on the internal address


def test_refused_addresses_among_the_answers_are_skipped(two_listeners):
    port, _, internal = two_listeners
    resolver = RebindingResolver(["127.0.0.2", "127.0.0.1"])
    policy = AddressPolicy(allowed_networks=("127.0.0.1/32",))
    with connect_to_checked_address(("feeds.example", port), 2, policy=policy, resolve=resolver) as sock:
        assert sock.getpeername() == ("127.0.0.1", port)
    with pytest.raises(BlockingIOError):
        internal.accept()

    only_internal = RebindingResolver(["127.0.0.2"])
    with pytest.raises(BlockedAddress, match=r"feeds.example -> 127.0.0.2 \(loopback\)"):
        connect_to_checked_address(("feeds.example", port), 2, policy=policy, resolve=only_internal)


# --- the command line ----------------------------------------------------------


@pytest.fixture
def run_files(feed_server, tmp_path):
    feed_server.add("/feed.xml", RSS)
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"{feed_server.url('/feed.xml')}\nhttp://localhost:{feed_server.port}/feed.xml\n")
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  - name: dprk\n    query: Korea\n")
    return feeds, topics, tmp_path / "out"


def run(feeds, topics, out, *extra):
    return main(["run", "--feeds", str(feeds), "--topics", str(topics), "--output", str(out),
                 "--runner", "DirectRunner", *extra])


def test_by_default_a_run_refuses_loopback_feeds_and_records_them(run_files, feed_server, capsys):
    feeds, topics, out = run_files
    assert run(feeds, topics, out) == 0
    assert "reconcile: fetch attempts 2 = ok 0 + not modified 0 + failed 2 -> ok" in capsys.readouterr().out
    fetches = pd.read_parquet(out / "fetches").sort_values("feed_url")
    assert list(fetches["error"]) == ["blocked_address: 127.0.0.1 (loopback)",
                                      "blocked_address: localhost -> 127.0.0.1 (loopback)"]
    errors = pd.read_parquet(out / "errors")
    assert list(errors["stage"]) == ["fetch", "fetch"]
    assert not (out / "stories").exists()
    assert feed_server.requests == []


def test_allow_private_addresses_flag_lifts_the_guard(run_files, feed_server):
    feeds, topics, out = run_files
    assert run(feeds, topics, out, "--allow-private-addresses", "127.0.0.1") == 0
    assert pd.read_parquet(out / "fetches")["error"].isna().all()
    assert list(pd.read_parquet(out / "stories")["title"]) == ["North Korea test"]
    assert feed_server.hits["/feed.xml"] == 2


def test_a_bad_network_is_a_configuration_error(run_files, feed_server, capsys):
    feeds, topics, out = run_files
    assert run(feeds, topics, out, "--allow-private-addresses", "10.0.0.0/33") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("newswatch: error: --allow-private-addresses:")
    assert feed_server.requests == []


# --- cloud platform endpoints: refused whatever the policy ---------------------

# Each as its provider documents it; transforms/address_guard.py names the sources.
PLATFORM_ENDPOINTS = [
    "169.254.169.254",  # instance metadata (AWS, GCP, Azure, OCI, OpenStack ...)
    "fd00:ec2::254",    # AWS IMDS over IPv6
    "169.254.170.2",    # AWS ECS task metadata and credentials
    "169.254.169.253",  # AWS Route 53 Resolver
    "fd00:ec2::253",
    "169.254.169.123",  # AWS Time Sync Service
    "fd00:ec2::123",
    "168.63.129.16",    # Azure WireServer (a public address)
    "100.100.100.200",  # Alibaba Cloud metadata
    "192.0.0.192",      # Oracle Cloud at Customer metadata
    "169.254.42.42",    # Scaleway metadata
    "fd00:42::42",
    "fe80::a9fe:a9fe",  # OpenStack metadata over IPv6
    "100.96.0.96",      # Volcengine / BytePlus metadata
]
EVERY_POLICY = [AddressPolicy(), AddressPolicy(allow_private=True),
                AddressPolicy(allowed_networks=parse_networks("0.0.0.0/0, ::/0"))]


@pytest.mark.parametrize("address", PLATFORM_ENDPOINTS)
def test_cloud_platform_endpoints_are_refused_under_every_policy(address):
    for policy in EVERY_POLICY:
        assert block_reason(ipaddress.ip_address(address), policy) == "cloud metadata address", policy


def _teredo(client: str) -> ipaddress.IPv6Address:
    """A Teredo address (2001::/32) whose client is `client` (stored inverted)."""
    server = int(ipaddress.IPv4Address("65.54.227.120"))
    inverted = ~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF
    return ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | inverted)


@pytest.mark.parametrize("wrapped", [
    "::ffff:168.63.129.16",          # IPv4-mapped
    "0:0:0:0:0:ffff:a83f:8110",      # the same, written out in hex
    "::168.63.129.16",               # IPv4-compatible (deprecated)
    "64:ff9b::168.63.129.16",        # NAT64
    "2002:a83f:8110::1",             # 6to4
    str(_teredo("168.63.129.16")),   # Teredo
    "fe80::a9fe:a9fe%eth0",          # with a zone
])
def test_wrapped_platform_endpoints_are_refused_under_every_policy(wrapped):
    for policy in EVERY_POLICY:
        assert block_reason(ipaddress.ip_address(wrapped), policy) == "cloud metadata address", policy


def test_the_azure_wire_server_is_refused_before_any_connection_even_with_private_addresses_allowed():
    lifted = FetchSettings(connect_timeout_s=1, total_timeout_s=2, allow_private_addresses=True)
    for url, error in [
        ("http://168.63.129.16/machine?comp=goalstate",
         "blocked_address: 168.63.129.16 (cloud metadata address)"),
        ("http://168.63.129.16:32526/vmSettings", "blocked_address: 168.63.129.16 (cloud metadata address)"),
        ("http://[::ffff:168.63.129.16]/machine",  # Python writes it ::ffff:a83f:8110 or ::ffff:168.63.129.16
         f"blocked_address: {ipaddress.ip_address('::ffff:168.63.129.16')} (cloud metadata address)"),
        ("http://[fd00:ec2::253]/", "blocked_address: fd00:ec2::253 (cloud metadata address)"),
    ]:
        result = fetch_feed(FeedSource(url), lifted)
        assert (result.error, result.status) == (error, None), url


def test_a_name_that_resolves_to_the_wire_server_is_refused():
    resolver = RebindingResolver(["168.63.129.16"])
    with pytest.raises(BlockedAddress, match=r"^wire.example -> 168.63.129.16 \(cloud metadata address\)$"):
        connect_to_checked_address(("wire.example", 80), 1, policy=AddressPolicy(allow_private=True),
                                   resolve=resolver)
    assert resolver.calls == 1
