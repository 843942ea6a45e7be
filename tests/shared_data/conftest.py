"""Fixtures for the shared-data library: the sandbox bureaus as real HTTP servers on 127.0.0.1, and clients.

The library itself never imports the app; its tests use the app's sandbox bureaus as realistic counterparts.
No real DNS or outside network: URL guards get injected resolvers, servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.sandbox.bureaus import KINDS, create_bureau_app, sandbox_specs
from app.sandbox.server import serve
from shared_data.client import CallContext, ConnectorClients
from shared_data.connectors import ConnectorSpec
from shared_data.urls import UrlGuard

SECRET = "sandbox-test-secret-0123456789"  # the test files repeat it: conftest modules are not importable


@pytest.fixture(scope="session")
def bureau_servers():
    """All six sandbox bureaus, started once for the session."""
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # no access log line for every call
    servers = {kind: serve(create_bureau_app(kind, secret=SECRET)) for kind in KINDS}
    yield servers
    werkzeug_log.setLevel(level)
    for server in servers.values():
        _control(server.url, "reset")  # releases any request still held in hang mode
    # Each stop waits out the server loop's 0.5 s poll: stop them side by side.
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.stop(), servers.values()))


def _control(url: str, action: str, body: dict | None = None) -> requests.Response:
    response = requests.post(f"{url}/_sandbox/{action}", json=body, timeout=5)
    assert response.status_code in (200, 204), response.text
    return response


class Bureaus:
    """Test-side handle on the running sandbox bureaus."""

    def __init__(self, servers):
        self.servers = servers

    def url(self, kind: str) -> str:
        return self.servers[kind].url

    def set_mode(self, kind: str, mode: str, **options) -> None:
        _control(self.url(kind), "mode", {"mode": mode, **options})

    def state(self, kind: str) -> dict:
        return requests.get(f"{self.url(kind)}/_sandbox/state", timeout=5).json()

    def reset(self) -> None:
        for server in self.servers.values():
            _control(server.url, "reset")


@pytest.fixture
def bureaus(bureau_servers):
    """The running bureaus, reset to normal mode with an empty journal before and after each test."""
    handle = Bureaus(bureau_servers)
    handle.reset()
    yield handle
    handle.reset()


@pytest.fixture
def guard(bureau_servers) -> UrlGuard:
    """A guard allowing exactly the sandbox bureaus' plain-http loopback origins."""
    return UrlGuard(allowed_insecure=[server.url for server in bureau_servers.values()])


@pytest.fixture
def specs(bureau_servers) -> dict[str, ConnectorSpec]:
    """The sandbox connector specs by kind, with a 1 s time cap."""
    urls = {kind: server.url for kind, server in bureau_servers.items()}
    made = sandbox_specs(urls, dict.fromkeys(KINDS, SECRET), timeout_seconds=1.0)
    return {kind: spec for kind, spec in zip(KINDS, made, strict=True)}


@pytest.fixture
def clients(guard):
    """A client factory (sessions and breakers per connector), closed after the test."""
    factory = ConnectorClients(url_guard=guard, pool_maxsize=8)
    yield factory
    factory.close()


@pytest.fixture
def context() -> CallContext:
    return CallContext(
        purpose="住房公积金提取:核验申请人身份与缴存信息",
        application_id="app-7f3a",
        acting_user="citizen:42",
        request_id="req-0001",
    )
