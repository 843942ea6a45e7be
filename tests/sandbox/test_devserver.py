"""`make run` (flask dev) on a machine where a port is already taken: it says which setting moves it."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_busy_api_port_names_PORT(make_app, busy_port):
    result = make_app().test_cli_runner().invoke(args=["dev", "--port", str(busy_port)])
    assert result.exit_code == 1 and f"port {busy_port}" in result.output and "PORT (make run PORT=" in result.output


def test_a_busy_sandbox_port_names_its_setting_and_starts_nothing(make_app, busy_port):
    # The busy port is the bureaus' first, so it is the first one found taken (the rest of the range may
    # belong to anyone on this machine).
    app = make_app(SANDBOX_WECHAT_PORT=free_port(), SANDBOX_BUREAU_BASE_PORT=busy_port)
    result = app.test_cli_runner().invoke(args=["dev", "--port", str(free_port())])
    assert result.exit_code == 1, result.output
    assert f"port {busy_port}" in result.output and "SANDBOX_BUREAU_BASE_PORT" in result.output
