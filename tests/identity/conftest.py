"""Fixtures for the face-verification library: test faces, the WeChat stand-in over real HTTP, adapters.

The library never imports the app; its tests use the app's WeChat stand-in (a real HTTP server on 127.0.0.1,
`wechat_server` of tests/conftest.py) as the provider. Face images come from tests/data/faces and are
derived in memory with Pillow; tests that need Pillow or dlib skip, with the pip command, when the `face`
extra is not installed.

No `__init__.py` here: with one, `tests/identity` would be a package named `identity` and could shadow the
library under pytest's default import mode. Helpers shared with test modules live in face_helpers.py.
"""

from __future__ import annotations

import logging

import pytest
from face_helpers import FACE_EXTRA_REASON, ZHANG_WEI, Phone, make_wechat_adapter

from app.sandbox.server import serve
from app.sandbox.wechat import create_wechat_app
from identity.interface import Identity
from tests.helpers import FACES


@pytest.fixture(scope="session")
def astronaut() -> bytes:
    return (FACES / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="session")
def grace_hopper() -> bytes:
    return (FACES / "grace_hopper.jpg").read_bytes()


# --- the WeChat stand-in -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def quiet_werkzeug():
    """No access-log line per stand-in call (they would also quote access tokens into captured logs)."""
    log = logging.getLogger("werkzeug")
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)


@pytest.fixture(scope="session")
def slow_wechat_server(quiet_werkzeug):
    """A stand-in whose `slow` magic sleeps 1.5 s, for timeouts against an adapter waiting 0.5 s."""
    server = serve(create_wechat_app(slow_seconds=1.5))
    yield server
    server.stop()


@pytest.fixture
def phone(wechat_server, quiet_werkzeug) -> Phone:
    return Phone(wechat_server.url)


@pytest.fixture
def wechat_adapter(wechat_server, quiet_werkzeug):
    adapter = make_wechat_adapter(wechat_server.url)
    yield adapter
    adapter.close()


@pytest.fixture
def wechat_identity() -> Identity:
    return Identity(*ZHANG_WEI, openid="zhangwei_openid")


# --- the local adapter ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def local_adapter():
    """The local adapter with default settings, or a skip naming the missing extra."""
    pytest.importorskip("dlib", reason=FACE_EXTRA_REASON)
    from identity.local import LocalFaceAdapter

    return LocalFaceAdapter()


@pytest.fixture
def zhang_wei(astronaut) -> Identity:
    """张伟 with his registry photo (the astronaut portrait)."""
    return Identity(*ZHANG_WEI, reference_photo=astronaut)
