"""httpkit/session.py: the one session factory, exercised against real HTTP servers on 127.0.0.1."""

import time

import pytest
import requests
from werkzeug.wrappers import Request, Response

from app.sandbox.server import serve
from httpkit.session import USER_AGENT, create_session


@pytest.fixture
def slow_server():
    """Answers `/sleep/<seconds>` after sleeping that long (threaded, so a stuck request blocks nothing)."""

    @Request.application
    def app(request):
        time.sleep(float(request.path.rsplit("/", 1)[-1]))
        return Response("done")

    server = serve(app)
    yield server
    server.stop()


def test_calls_without_a_timeout_get_the_default(slow_server):
    session = create_session(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        session.get(f"{slow_server.url}/sleep/3")
    assert time.monotonic() - started < 1.5


def test_a_retried_read_timeout_is_still_a_timeout(slow_server):
    session = create_session(timeout=0.2, retries=1, backoff_factor=0.01)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.get(f"{slow_server.url}/sleep/3")
    assert time.monotonic() - started < 1.5


def test_an_explicit_timeout_wins_over_the_default(slow_server):
    session = create_session(timeout=0.1)
    assert session.get(f"{slow_server.url}/sleep/0.4", timeout=3).text == "done"


def test_sends_the_user_agent(httpserver):
    httpserver.expect_request("/ua", headers={"User-Agent": USER_AGENT}).respond_with_data("ok")
    assert create_session().get(httpserver.url_for("/ua")).text == "ok"


def _flaky(httpserver, failures: int):
    """`/flaky` answers 503 `failures` times, then 200; returns the list of methods it saw."""
    seen = []

    def handler(request):
        seen.append(request.method)
        return Response("busy", status=503) if len(seen) <= failures else Response("ok")

    httpserver.expect_request("/flaky").respond_with_handler(handler)
    return seen


def test_no_retries_unless_asked(httpserver):
    seen = _flaky(httpserver, failures=1)
    assert create_session().get(httpserver.url_for("/flaky")).status_code == 503
    assert seen == ["GET"]


def test_retries_idempotent_methods_with_backoff(httpserver):
    seen = _flaky(httpserver, failures=2)
    response = create_session(retries=2, backoff_factor=0.01).get(httpserver.url_for("/flaky"))
    assert response.status_code == 200
    assert seen == ["GET", "GET", "GET"]


def test_retries_are_bounded_and_return_the_last_answer(httpserver):
    seen = _flaky(httpserver, failures=10)
    response = create_session(retries=2, backoff_factor=0.01).get(httpserver.url_for("/flaky"))
    assert response.status_code == 503
    assert len(seen) == 3


def test_never_retries_a_post_that_reached_the_server(httpserver):
    seen = _flaky(httpserver, failures=1)
    response = create_session(retries=3, backoff_factor=0.01).post(httpserver.url_for("/flaky"), json={})
    assert response.status_code == 503
    assert seen == ["POST"]


def test_keeps_no_cookies(httpserver):
    httpserver.expect_request("/set").respond_with_response(
        Response("set", headers={"Set-Cookie": "session=secret; Path=/"})
    )
    httpserver.expect_request("/echo").respond_with_handler(
        lambda request: Response(request.headers.get("Cookie", "none"))
    )
    session = create_session()
    session.get(httpserver.url_for("/set"))
    assert session.get(httpserver.url_for("/echo")).text == "none"
    assert len(session.cookies) == 0


def test_pool_sizes_are_configurable():
    session = create_session(pool_connections=3, pool_maxsize=7)
    adapter = session.get_adapter("https://bureau.example")
    assert (adapter._pool_connections, adapter._pool_maxsize) == (3, 7)
    assert session.get_adapter("http://bureau.example") is adapter


def test_connection_refused_fails_fast():
    server = serve(Response("unused"))
    url = server.url
    server.stop()  # nothing listens on the port any more
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        create_session(retries=1, backoff_factor=0.01).get(url)
    assert time.monotonic() - started < 2
