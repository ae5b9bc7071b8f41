"""Address guard for the fetch stage: a feed URL (or a redirect) must not make
the pipeline reach this machine, the local network or a cloud metadata server.

On Dataflow the workers sit next to a metadata server that hands out
credentials; a feed that redirects to http://169.254.169.254/ must not get an
answer from it into our output. So every http(s) connection, each redirect hop
included, goes through `connect_to_checked_address`:

  1. the host name is resolved once (getaddrinfo),
  2. every address is checked (`block_reason`),
  3. the socket connects to one of the addresses that passed, never to the name,
     so DNS cannot answer differently between check and connect (no TOCTOU).

Refused by default: loopback, private (RFC 1918, unique-local IPv6), link-local,
carrier-grade NAT, multicast, unspecified, reserved and documentation ranges -
anything not globally routable - including such addresses wrapped in IPv6
(IPv4-mapped, 6to4, Teredo, NAT64). `AddressPolicy.allow_private` lifts that for
intranet feeds and tests, `allowed_networks` lifts it for chosen networks only.
Cloud metadata addresses and host names, and the other platform endpoints
beside them (Azure's 168.63.129.16, AWS's resolver and time servers), stay
refused whatever the policy, in any IPv6 wrapping: no feed lives there.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# Cloud platform endpoints, each as its provider documents it (the source in
# brackets). Some are link-local or private, refused anyway unless private
# addresses are allowed; 168.63.129.16 is public. Listed here, they stay
# refused whatever the policy.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # instance metadata: AWS, GCP, Azure, OCI, OpenStack ... (each one's IMDS page)
    "fd00:ec2::254",    # AWS IMDS over IPv6 (AWS whitepaper "IPv6 on AWS": supporting VPC services)
    "169.254.170.2",    # AWS ECS task metadata and credentials (ECS developer guide)
    "169.254.169.253",  # AWS Route 53 Resolver (VPC user guide: Amazon DNS server)
    "fd00:ec2::253",    # the same over IPv6 (same page)
    "169.254.169.123",  # AWS Time Sync Service (EC2 user guide: configure-ec2-ntp)
    "fd00:ec2::123",    # the same over IPv6 (same page)
    "168.63.129.16",    # Azure WireServer: VM agent, DNS, DHCP (Microsoft Learn: what-is-ip-address-168-63-129-16)
    "100.100.100.200",  # Alibaba Cloud ECS metadata (Alibaba Cloud ECS: instance metadata)
    "192.0.0.192",      # Oracle Cloud at Customer metadata (Oracle: retrieve predefined instance metadata)
    "169.254.42.42",    # Scaleway metadata (Scaleway Instance API: user data; cloud-init Scaleway datasource)
    "fd00:42::42",      # the same over IPv6 (same pages)
    "fe80::a9fe:a9fe",  # OpenStack metadata over IPv6 (Neutron release note "metadata-ipv6")
    "100.96.0.96",      # Volcengine / BytePlus ECS metadata (BytePlus ECS: viewing instance metadata)
))
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(OSError):
    """The host resolves only to addresses the policy refuses."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: Tuple[str, ...] = ()  # CIDRs exempt from the block, e.g. "10.20.0.0/16"

    @functools.cached_property
    def _networks(self):
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)

    def exempt(self, ip: IPAddress) -> bool:
        return self.allow_private or any(ip.version == n.version and ip in n for n in self._networks)


def parse_networks(text: str) -> Tuple[str, ...]:
    """'10.0.0.0/8, 127.0.0.1' -> normalised CIDR strings; ValueError when one is invalid."""
    return tuple(str(ipaddress.ip_network(part.strip(), strict=False))
                 for part in text.split(",") if part.strip())


def _embedded_ipv4(ip: IPAddress) -> Optional[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 address carries (and a router may forward to)."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> Optional[str]:
    """Why an address is not a public internet address (None when it is)."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _is_metadata(ip: IPAddress, embedded: Optional[ipaddress.IPv4Address]) -> bool:
    """A cloud platform endpoint, as itself or wrapped in IPv6 (the deprecated
    IPv4-compatible ::a.b.c.d form included)."""
    compatible = ipaddress.IPv4Address(int(ip)) if ip.version == 6 and int(ip) < 1 << 32 else None
    return ip in METADATA_ADDRESSES or embedded in METADATA_ADDRESSES or compatible in METADATA_ADDRESSES


def block_reason(ip: IPAddress, policy: AddressPolicy = AddressPolicy()) -> Optional[str]:
    """Why `ip` must not be connected to under `policy` ("loopback", ...), or None."""
    ip = ipaddress.ip_address(ip)
    if ip.version == 6 and ip.scope_id:  # fe80::a9fe:a9fe%eth0 is fe80::a9fe:a9fe
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    embedded = _embedded_ipv4(ip)
    if _is_metadata(ip, embedded):
        return "cloud metadata address"
    if policy.exempt(ip):
        return None
    if embedded is not None and _kind(embedded):
        return f"wraps {embedded}, {_kind(embedded)}"
    return _kind(ip)


Resolver = Callable[..., List[tuple]]


def connect_to_checked_address(address: Tuple[str, int], timeout: Optional[float] = None,
                               source_address=None, *, policy: AddressPolicy,
                               resolve: Resolver = socket.getaddrinfo) -> socket.socket:
    """socket.create_connection with the guard: resolve once, check, connect to
    an address that passed. Raises BlockedAddress when none did."""
    host, port = address
    if host.rstrip(".").lower() in METADATA_HOSTS:
        raise BlockedAddress(f"{host} is a cloud metadata host")
    checked, refused = [], {}
    for family, kind, proto, _, sockaddr in resolve(host, port, 0, socket.SOCK_STREAM):
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])  # drop an IPv6 zone
        reason = block_reason(ip, policy)
        if reason:
            refused[str(ip)] = reason
        elif (family, sockaddr) not in [(c[0], c[3]) for c in checked]:
            checked.append((family, kind, proto, sockaddr))
    if not checked:
        listed = ", ".join(f"{ip} ({reason})" for ip, reason in refused.items()) or "no address"
        raise BlockedAddress(listed if _is_literal(host) else f"{host} -> {listed}")
    return _connect_first(checked, timeout, source_address)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _connect_first(candidates: Iterable[tuple], timeout, source_address) -> socket.socket:
    """Tries the checked addresses in order, like socket.create_connection."""
    error: Optional[OSError] = None
    for family, kind, proto, sockaddr in candidates:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            error = e
            sock.close()
    raise error
