"""SSRF protection for bureau-supplied URLs: which URLs the platform may call, checked twice.

A bureau registers its connector's `base_url`; the platform then makes requests to it from inside our
network, so a URL pointing at ourselves (loopback, private ranges, the cloud metadata service) would turn the
platform into a proxy for the bureau. `UrlGuard` refuses such URLs:

1. `check(url)` — at registration and on every URL change: the URL's form (`check_syntax`), then DNS
   resolution through the injectable `resolver`; every resolved address must be public (`address_problem`).
2. At connect time — on every new connection the client opens (`GuardedAdapter`): the address the socket
   actually connected to is checked again before a byte is sent. This is what limits **DNS rebinding** (a name
   that resolved to a public address at registration and resolves to 127.0.0.1 later): whatever DNS answers
   at call time, a connection to a forbidden peer is closed and the call fails with `unsafe_url`. We re-check
   rather than pin the first address, so a bureau may move its service without re-registering.

Rules: https only; no userinfo; the host is a DNS name of letters, digits, hyphens and dots (IDNs in their
punycode form) or a canonical IP literal. Numeric tricks (`2130706433`, `0x7f000001`, `0177.0.0.1`,
`127.1`) are refused outright as `non_canonical_ip`, before any resolver can normalise them. Plain http and
forbidden addresses are allowed only for the exact `scheme://host:port` origins in `allowed_insecure`
(configuration; the development sandbox's own services on 127.0.0.1).

Limits: the connect-time check needs the session to connect directly (`GuardedAdapter` users must not route
through a proxy, which would make the proxy the peer); connections reused from the pool were checked when
they were opened; name resolution itself (getaddrinfo) is not bounded by the request timeout. Redirects are
never followed by the client (`allow_redirects=False`), so a redirect cannot lead past these checks.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from httpkit.session import RetryingAdapter
from shared_data.errors import UnsafeUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's signature; tests inject a fake so that no real DNS is consulted.
Resolver = Callable[..., list[tuple]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters a network location may contain at all: no userinfo (@), no percent-encoding, no backslash
# (parsers disagree on it), no whitespace.
NETLOC_CHARS = re.compile(r"[A-Za-z0-9.\-\[\]:]+")
DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# A last label like these makes URL parsers (WHATWG, curl, glibc's inet_aton) read the host as an IPv4 number.
NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
IETF_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")


def address_problem(ip: IPAddress) -> str | None:
    """Why the platform must not connect to `ip` (a snake_case reason), or None if it is a public address."""
    if ip in METADATA_ADDRESSES:
        return "metadata_address"
    if ip.is_unspecified:
        return "unspecified_address"
    if ip.is_loopback:
        return "loopback_address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "ipv4_mapped_address"
        if ip in IPV4_COMPATIBLE:
            return "ipv4_compatible_address"
        if ip in NAT64_LOCAL_USE:
            return "nat64_address"
        if ip in NAT64_WELL_KNOWN:  # 64:ff9b::a.b.c.d reaches a.b.c.d through the NAT64 gateway
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return None if address_problem(embedded) is None else "nat64_address"
        if ip.sixtofour is not None and address_problem(ip.sixtofour) is not None:
            return "6to4_address"
        if ip.is_site_local:
            return "private_address"
    if ip.is_link_local:
        return "link_local_address"
    if ip.is_multicast:
        return "multicast_address"
    if isinstance(ip, ipaddress.IPv4Address) and (
        ip in SHARED_ADDRESS_SPACE or ip in IETF_PROTOCOL_ASSIGNMENTS
    ):
        return "private_address"
    if ip.is_private:
        return "private_address"
    if ip.is_reserved:
        return "reserved_address"
    if not ip.is_global:
        return "non_global_address"
    return None


@dataclass(frozen=True)
class Target:
    """A URL that passed `check_syntax`: its scheme, host, port and `scheme://host:port` origin."""

    scheme: str
    host: str
    port: int
    origin: str
    allowed_insecure: bool
    address: IPAddress | None  # the host as an IP address, when it is an IP literal


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host:port` with the default port filled in and IPv6 hosts in brackets."""
    port = port or DEFAULT_PORTS.get(scheme, 0)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def _normalise_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"not a scheme://host:port origin: {origin!r}")
    return origin_of(parts.scheme, parts.hostname, parts.port)


class UrlGuard:
    """Decides which URLs and peer addresses the platform may call; see the module docstring."""

    def __init__(self, *, allowed_insecure: Iterable[str] = (), resolver: Resolver = socket.getaddrinfo):
        self.allowed_insecure = frozenset(_normalise_origin(origin) for origin in allowed_insecure)
        self.resolver = resolver

    def check(self, url: str) -> None:
        """Raise UnsafeUrl unless `url` is well-formed and every address its host resolves to is public."""
        target = self.check_syntax(url)
        if target.allowed_insecure or target.address is not None:
            return  # an allowed origin, or an IP literal check_syntax has already judged
        for ip in self._resolve(target):
            problem = address_problem(ip)
            if problem:
                raise UnsafeUrl(problem, f"{target.host} resolves to {ip}")

    def check_syntax(self, url: str) -> Target:
        """Check everything but DNS (scheme, userinfo, host form, literal addresses); returns the target."""
        if not isinstance(url, str) or not url or len(url) > 2048 or not url.isprintable() or " " in url:
            raise UnsafeUrl("invalid_url")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise UnsafeUrl("scheme_not_allowed", scheme or "(none)")
        if "@" in parts.netloc:
            raise UnsafeUrl("userinfo_not_allowed")
        if not parts.netloc or not NETLOC_CHARS.fullmatch(parts.netloc):
            raise UnsafeUrl("invalid_host")
        try:
            port = parts.port
        except ValueError:
            raise UnsafeUrl("invalid_port") from None
        if port == 0:
            raise UnsafeUrl("invalid_port")
        host = parts.hostname or ""
        literal = self._literal_address(host, bracketed="[" in parts.netloc)
        origin = origin_of(scheme, host, port)
        target = Target(
            scheme, host, port or DEFAULT_PORTS[scheme], origin, origin in self.allowed_insecure, literal
        )
        if target.allowed_insecure:
            return target
        if scheme != "https":
            raise UnsafeUrl("https_required", origin)
        if literal is not None:
            problem = address_problem(literal)
            if problem:
                raise UnsafeUrl(problem, str(literal))
        elif host == "localhost" or host.endswith(".localhost"):
            raise UnsafeUrl("loopback_address", host)
        return target

    def check_address(self, scheme: str, host: str, port: int, address: str) -> None:
        """At connect time: raise UnsafeUrl if the peer `address` is forbidden for this origin."""
        if origin_of(scheme, host.strip("[]").lower(), port) in self.allowed_insecure:
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        problem = address_problem(ip)
        if problem:
            raise UnsafeUrl(problem, f"{host} connected to {ip}")

    @staticmethod
    def _literal_address(host: str, *, bracketed: bool) -> IPAddress | None:
        """The IP address an IP-literal host denotes; None for a DNS name; UnsafeUrl for anything else."""
        if bracketed:
            try:
                return ipaddress.IPv6Address(host)  # no zone id gets here: "%" is not a netloc character
            except ValueError:
                raise UnsafeUrl("invalid_host", host) from None
        labels = host.split(".")
        if NUMERIC_LABEL.fullmatch(labels[-1]):
            try:
                ip = ipaddress.IPv4Address(host)  # refuses leading zeros, short forms and 0x
            except ValueError:
                raise UnsafeUrl("non_canonical_ip", host) from None
            if str(ip) != host:
                raise UnsafeUrl("non_canonical_ip", host)
            return ip
        if len(host) > 253 or not all(DNS_LABEL.fullmatch(label) for label in labels):
            raise UnsafeUrl("invalid_host", host)
        return None

    def _resolve(self, target: Target) -> list[IPAddress]:
        try:
            answers = self.resolver(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl("unresolvable", f"{target.host}: {type(exc).__name__}") from None
        addresses = [ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for *_, sockaddr in answers]
        if not addresses:
            raise UnsafeUrl("unresolvable", target.host)
        return addresses


class _PeerCheckedConnection:
    """Mixin for urllib3 connections: after connecting, the guard checks the peer before anything is sent."""

    url_guard: UrlGuard
    guard_scheme: str

    def _new_conn(self):
        sock = super()._new_conn()
        try:
            self.url_guard.check_address(self.guard_scheme, self.host, self.port, sock.getpeername()[0])
        except UnsafeUrl:
            sock.close()
            raise
        return sock


class GuardedAdapter(RetryingAdapter):
    """A requests adapter whose every new connection is checked by `url_guard` at connect time.

    A `RetryingAdapter`: with a retry policy mounted, a read timeout of a GET (the health check) must stay a
    `requests.ReadTimeout`, not become a ConnectionError as urllib3's MaxRetryError would make it.
    """

    def __init__(self, url_guard: UrlGuard, **kwargs):
        # HTTPAdapter.__init__ calls init_poolmanager, which needs these classes: set them first.
        # Classes made per guard: urllib3 builds connections from a class, and its pool keys admit no extra
        # keyword argument through which the guard could be passed.
        http_connection = type(
            "PeerCheckedHTTPConnection",
            (_PeerCheckedConnection, HTTPConnection),
            {"url_guard": url_guard, "guard_scheme": "http"},
        )
        https_connection = type(
            "PeerCheckedHTTPSConnection",
            (_PeerCheckedConnection, HTTPSConnection),
            {"url_guard": url_guard, "guard_scheme": "https"},
        )
        self._pool_classes = {
            "http": type("PeerCheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}),
            "https": type(
                "PeerCheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}
            ),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through a proxy the peer would be the proxy, and the check meaningless: refuse rather than bypass.
        raise UnsafeUrl("proxy_not_allowed")
