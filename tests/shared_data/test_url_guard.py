"""SSRF guard: every unsafe form is refused; sandbox origins and public https names pass.

No real DNS: every guard gets a fake resolver. The connect-time check is exercised over real loopback
connections (which it must refuse).
"""

from __future__ import annotations

import socket

import pytest
import requests

from shared_data.client import build_session
from shared_data.errors import UnsafeUrl
from shared_data.urls import UrlGuard

PUBLIC_V4 = "61.163.0.10"
PUBLIC_V6 = "2400:3200::1"

DNS = {
    "data.ga.zhengzhou.example": [PUBLIC_V4],
    "v6.bureau.example": [PUBLIC_V6],
    "intranet.bureau.example": ["10.0.0.5"],
    "rebind.bureau.example": ["127.0.0.1"],
    "meta.bureau.example": ["169.254.169.254"],
    "v6meta.bureau.example": ["fd00:ec2::254"],
    "v6loop.bureau.example": ["::1"],
    "mapped.bureau.example": ["::ffff:10.0.0.1"],
    "cgnat.bureau.example": ["100.64.12.7"],
    "mixed.bureau.example": [PUBLIC_V4, "192.168.1.20"],  # one bad address is enough to refuse
    "linklocal6.bureau.example": ["fe80::1%2"],
}


def fake_resolver(host, port, *args, **kwargs):
    """getaddrinfo over the DNS table above; unknown names fail like NXDOMAIN."""
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    answers = []
    for address in DNS[host]:
        if ":" in address:
            answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        else:
            answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
    return answers


def no_dns(*args, **kwargs):
    raise AssertionError("this check must not need DNS")


@pytest.fixture
def guard() -> UrlGuard:
    return UrlGuard(
        allowed_insecure=["http://127.0.0.1:5101", "HTTP://127.0.0.1:5102/"], resolver=fake_resolver
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # scheme and form
        ("http://data.ga.zhengzhou.example/api", "https_required"),
        ("ftp://data.ga.zhengzhou.example/", "scheme_not_allowed"),
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme_not_allowed"),
        ("//data.ga.zhengzhou.example/", "scheme_not_allowed"),
        ("https://user:pw@data.ga.zhengzhou.example/", "userinfo_not_allowed"),
        ("https://data.ga.zhengzhou.example@127.0.0.1/", "userinfo_not_allowed"),
        ("https://data.ga.zhengzhou.example\\@127.0.0.1/", "userinfo_not_allowed"),
        ("https://data.ga.zhengzhou.example:99999/", "invalid_port"),
        ("https://data.ga.zhengzhou.example:0/", "invalid_port"),
        ("https://exa mple.com/", "invalid_url"),
        ("https://公安.example/", "invalid_host"),
        ("https://%31%32%37.0.0.1/", "invalid_host"),
        ("https://[fe80::1%25eth0]/", "invalid_host"),
        ("https://127.0.0.1./", "invalid_host"),
        # literal addresses
        ("https://127.0.0.1/", "loopback_address"),
        ("https://127.255.1.2:8443/", "loopback_address"),
        ("https://10.1.2.3/", "private_address"),
        ("https://172.16.0.1/", "private_address"),
        ("https://172.31.255.254/", "private_address"),
        ("https://192.168.1.1/", "private_address"),
        ("https://100.64.0.1/", "private_address"),  # carrier-grade NAT
        ("https://169.254.169.254/latest/meta-data/", "metadata_address"),
        ("https://169.254.10.1/", "link_local_address"),
        ("https://0.0.0.0/", "unspecified_address"),
        ("https://224.0.0.1/", "multicast_address"),
        ("https://[::1]/", "loopback_address"),
        ("https://[::]/", "unspecified_address"),
        ("https://[fd00:ec2::254]/", "metadata_address"),
        ("https://[fc00::1]/", "private_address"),
        ("https://[fe80::1]/", "link_local_address"),
        ("https://[ff02::1]/", "multicast_address"),
        ("https://[::ffff:127.0.0.1]/", "ipv4_mapped_address"),
        ("https://[::ffff:10.0.0.1]/", "ipv4_mapped_address"),
        ("https://[::ffff:7f00:1]/", "ipv4_mapped_address"),
        ("https://[::127.0.0.1]/", "ipv4_compatible_address"),
        ("https://[::10.0.0.1]/", "ipv4_compatible_address"),
        ("https://[2002:7f00:1::]/", "6to4_address"),  # 6to4 of 127.0.0.1
        ("https://[2002:a00:1::]/", "6to4_address"),  # 6to4 of 10.0.0.1
        ("https://[64:ff9b::a00:1]/", "nat64_address"),  # NAT64 of 10.0.0.1
        ("https://[64:ff9b::a9fe:a9fe]/", "nat64_address"),  # NAT64 of 169.254.169.254
        ("https://[64:ff9b:1::1]/", "nat64_address"),
        # numeric host tricks, refused before any resolver can normalise them
        ("https://2130706433/", "non_canonical_ip"),
        ("https://0x7f000001/", "non_canonical_ip"),
        ("https://0177.0.0.1/", "non_canonical_ip"),
        ("https://0x7f.0.0.1/", "non_canonical_ip"),
        ("https://127.1/", "non_canonical_ip"),
        ("https://127.0.1/", "non_canonical_ip"),
        ("https://017700000001/", "non_canonical_ip"),
        ("https://10.0.0.010/", "non_canonical_ip"),
        ("https://3232235777/", "non_canonical_ip"),  # 192.168.1.1
        # names
        ("https://localhost/", "loopback_address"),
        ("https://api.localhost/", "loopback_address"),
        ("https://intranet.bureau.example/", "private_address"),
        ("https://rebind.bureau.example/", "loopback_address"),
        ("https://meta.bureau.example/", "metadata_address"),
        ("https://v6meta.bureau.example/", "metadata_address"),
        ("https://v6loop.bureau.example/", "loopback_address"),
        ("https://mapped.bureau.example/", "ipv4_mapped_address"),
        ("https://cgnat.bureau.example/", "private_address"),
        ("https://mixed.bureau.example/", "private_address"),
        ("https://linklocal6.bureau.example/", "link_local_address"),
        ("https://nxdomain.bureau.example/", "unresolvable"),
        # near misses of the allowed sandbox origins
        ("http://127.0.0.1:5103/", "https_required"),
        ("https://127.0.0.1:5101/", "loopback_address"),
        ("http://localhost:5101/", "https_required"),
    ],
)
def test_unsafe_urls_are_refused(guard, url, reason):
    with pytest.raises(UnsafeUrl) as caught:
        guard.check(url)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "url",
    [
        "https://data.ga.zhengzhou.example/rkxx/v1/query",
        "https://data.ga.zhengzhou.example:8443",
        "https://DATA.GA.ZHENGZHOU.EXAMPLE/",
        "https://v6.bureau.example/",
        f"https://{PUBLIC_V4}/",
        f"https://[{PUBLIC_V6}]:443/x",
    ],
)
def test_public_https_urls_pass(guard, url):
    guard.check(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5101/rkxx/v1/query", "http://127.0.0.1:5101", "http://127.0.0.1:5102/health"]
)
def test_exactly_the_allowed_sandbox_origins_may_use_http_and_loopback(url):
    UrlGuard(allowed_insecure=["http://127.0.0.1:5101", "http://127.0.0.1:5102"], resolver=no_dns).check(url)


def test_the_resolver_gets_the_host_and_port():
    calls = []

    def resolver(host, port, *args, **kwargs):
        calls.append((host, port))
        return fake_resolver(host, port)

    UrlGuard(resolver=resolver).check("https://data.ga.zhengzhou.example:8443/x")
    UrlGuard(resolver=resolver).check("https://data.ga.zhengzhou.example/x")
    assert calls == [("data.ga.zhengzhou.example", 8443), ("data.ga.zhengzhou.example", 443)]


def test_check_syntax_needs_no_dns():
    guard = UrlGuard(resolver=no_dns)
    target = guard.check_syntax("https://data.ga.zhengzhou.example/rkxx")
    assert (target.scheme, target.host, target.port) == ("https", "data.ga.zhengzhou.example", 443)
    with pytest.raises(UnsafeUrl):
        guard.check_syntax("https://10.0.0.1/")


def test_a_malformed_allowed_origin_is_a_configuration_error():
    with pytest.raises(ValueError):
        UrlGuard(allowed_insecure=["127.0.0.1:5101"])


# --- at connect time ----------------------------------------------------------------------------------------


@pytest.fixture
def loopback_server(httpserver):
    httpserver.expect_request("/health").respond_with_json({"status": "UP"})
    return httpserver


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_connection_to_a_forbidden_peer_is_closed_before_sending(loopback_server, host):
    """Whatever a name resolves to at call time (DNS rebinding), the connected peer address is checked."""
    session = build_session(UrlGuard(resolver=no_dns))
    try:
        with pytest.raises(UnsafeUrl) as caught:
            session.get(f"http://{host}:{loopback_server.port}/health", timeout=2)
    finally:
        session.close()
    assert caught.value.reason == "loopback_address"
    assert loopback_server.log == []  # nothing reached the server


def test_a_connection_to_an_allowed_origin_goes_through(loopback_server):
    origin = f"http://127.0.0.1:{loopback_server.port}"
    session = build_session(UrlGuard(allowed_insecure=[origin], resolver=no_dns))
    try:
        response = session.get(f"{origin}/health", timeout=2)
    finally:
        session.close()
    assert response.json() == {"status": "UP"}


def test_guarded_sessions_ignore_environment_proxies(loopback_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    origin = f"http://127.0.0.1:{loopback_server.port}"
    session = build_session(UrlGuard(allowed_insecure=[origin], resolver=no_dns))
    try:
        assert session.get(f"{origin}/health", timeout=2).status_code == 200
        with pytest.raises(UnsafeUrl, match="proxy_not_allowed"):
            session.get(f"{origin}/health", timeout=2, proxies={"http": "http://10.0.0.1:3128"})
    finally:
        session.close()


def test_requests_session_is_what_build_session_returns():
    session = build_session(UrlGuard(resolver=no_dns))
    try:
        assert isinstance(session, requests.Session)
        assert session.trust_env is False
    finally:
        session.close()
