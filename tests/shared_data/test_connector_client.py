"""The hardened connector client against real HTTP servers: every fault maps to a status, never raises."""

from __future__ import annotations

import dataclasses
import gzip
import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from werkzeug import Response

from shared_data.client import (
    CallContext,
    CircuitBreaker,
    ConnectorClient,
    build_session,
)
from shared_data.connectors import ConnectorSpec
from shared_data.errors import InvalidCallContext, UnknownElement
from shared_data.urls import UrlGuard

ZHANG_WEI = "410105198503120013"
WANG_QIANG = "410103197811300350"  # no photo on record
ZHAO_LEI = "410105199001010636"  # in no registry
PERSON = ["person.name", "person.birth_date", "person.photo", "person.household_address"]


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def population(specs, clients, bureaus) -> ConnectorClient:
    return clients(specs["population"])


# --- answers ------------------------------------------------------------------------------------------------


def test_a_found_record_maps_to_typed_values_with_its_update_time(population, context):
    result = population.fetch(ZHANG_WEI, PERSON, context)
    assert result.status == "ok" and result.http_status == 200 and result.error is None
    assert result.values["person.name"] == "张伟"
    assert result.values["person.birth_date"] == "1985-03-12"  # native 19850312
    assert result.values["person.household_address"].startswith("河南省郑州市金水区")
    assert result.values["person.photo"].startswith("/9j/")  # base64 JPEG
    assert not result.field_errors and not result.missing
    assert result.source_updated_at.isoformat() == "2024-03-18T02:12:45+00:00"  # 10:12:45 Beijing
    assert 0 <= result.latency_ms < 1000


def test_only_the_requested_elements_are_asked_for_and_kept(population, context, bureaus):
    result = population.fetch(ZHANG_WEI, ["person.name"], context)
    assert dict(result.values) == {"person.name": "张伟"}
    assert bureaus.state("population")["journal"][-1]["elements"] == ["person.name"]


def test_the_purpose_and_context_travel_with_every_call(population, context, bureaus):
    population.fetch(ZHANG_WEI, ["person.name"], context)
    entry = bureaus.state("population")["journal"][-1]
    assert entry["purpose"] == context.purpose  # percent-encoded UTF-8 on the wire, decoded by the bureau
    assert (entry["application_id"], entry["acting_user"], entry["request_id"]) == (
        "app-7f3a",
        "citizen:42",
        "req-0001",
    )


def test_a_person_the_bureau_does_not_hold_is_not_found(population, context):
    result = population.fetch(ZHAO_LEI, PERSON, context)
    assert (result.status, result.http_status, result.values) == ("not_found", 404, {})


def test_a_field_the_record_lacks_is_missing_not_failed(population, context):
    result = population.fetch(WANG_QIANG, ["person.name", "person.photo"], context)
    assert result.status == "ok"
    assert dict(result.values) == {"person.name": "王强"}
    assert result.missing == {"person.photo"}


def test_asking_for_an_element_the_connector_does_not_provide_is_a_programming_error(population, context):
    with pytest.raises(UnknownElement):
        population.fetch(ZHANG_WEI, ["housing_fund.balance"], context)


def test_call_contexts_must_be_sendable_as_headers():
    with pytest.raises(InvalidCallContext):
        CallContext(purpose="", application_id="a", acting_user="citizen:1", request_id="r")
    with pytest.raises(InvalidCallContext):
        CallContext(purpose="核验", application_id="申请 1", acting_user="citizen:1", request_id="r")
    with pytest.raises(InvalidCallContext):
        CallContext(purpose="核验", application_id="a", acting_user="citizen:1\r\nX-Evil: 1", request_id="r")


# --- fault modes --------------------------------------------------------------------------------------------


def with_timeout(specs, clients, kind: str, seconds: float) -> ConnectorClient:
    return clients(dataclasses.replace(specs[kind], timeout_seconds=seconds))


def test_slow_beyond_the_timeout_is_a_timeout(specs, clients, bureaus, context):
    bureaus.set_mode("population", "slow", delay_ms=2000)
    started = time.monotonic()
    result = with_timeout(specs, clients, "population", 0.5).fetch(ZHANG_WEI, PERSON, context)
    elapsed = time.monotonic() - started
    assert (result.status, result.error) == ("timeout", "read_timeout")
    assert 0.45 < elapsed < 0.8


def test_slow_within_the_timeout_is_ok(specs, clients, bureaus, context):
    bureaus.set_mode("population", "slow", delay_ms=150)
    result = with_timeout(specs, clients, "population", 1.0).fetch(ZHANG_WEI, PERSON, context)
    assert result.status == "ok" and result.latency_ms >= 150


def test_a_hanging_bureau_times_out_within_the_cap(specs, clients, bureaus, context):
    bureaus.set_mode("population", "hang")
    started = time.monotonic()
    result = with_timeout(specs, clients, "population", 0.4).fetch(ZHANG_WEI, PERSON, context)
    assert result.status == "timeout"
    assert time.monotonic() - started < 0.7


def test_a_bureau_dribbling_its_body_is_cut_off_at_the_cap(specs, clients, bureaus, context):
    # The answer arrives 8 bytes every 100 ms: every single read is quick, only the total is too long.
    bureaus.set_mode("population", "dribble", delay_ms=100)
    started = time.monotonic()
    result = with_timeout(specs, clients, "population", 0.6).fetch(ZHANG_WEI, PERSON, context)
    elapsed = time.monotonic() - started
    assert (result.status, result.error, result.http_status) == ("timeout", "deadline_exceeded", 200)
    assert 0.55 < elapsed < 0.8


def test_a_500_is_failed(population, bureaus, context):
    bureaus.set_mode("population", "error500")
    result = population.fetch(ZHANG_WEI, PERSON, context)
    assert (result.status, result.error, result.http_status) == ("failed", "http_500", 500)


def test_a_malformed_body_is_failed(population, bureaus, context):
    bureaus.set_mode("population", "malformed")
    result = population.fetch(ZHANG_WEI, PERSON, context)
    assert (result.status, result.error) == ("failed", "malformed_response")


def test_wrong_types_fail_only_those_fields(population, bureaus, context):
    bureaus.set_mode("population", "wrong_types")
    result = population.fetch(ZHANG_WEI, PERSON, context)
    assert result.status == "ok"
    assert set(result.values) == {"person.name", "person.household_address"}
    assert set(result.field_errors) == {"person.birth_date", "person.photo"}
    assert result.field_errors["person.birth_date"].startswith("type_error: expected date")
    assert "八五年" not in result.field_errors["person.birth_date"]  # reasons never quote the value


def test_an_oversized_body_is_refused_without_reading_it_all(specs, clients, bureaus, context):
    size = 64 * 1024 * 1024
    bureaus.set_mode("population", "oversized", size_bytes=size)
    client = clients(dataclasses.replace(specs["population"], max_response_bytes=256 * 1024))
    started = time.monotonic()
    result = client.fetch(ZHANG_WEI, PERSON, context)
    assert (result.status, result.error) == ("failed", "response_too_large")
    assert time.monotonic() - started < 0.5
    time.sleep(0.3)  # let the server notice the closed connection
    state = bureaus.state("population")
    assert not state["stream_completed"]
    assert state["streamed_bytes"] < size / 2  # what the kernel buffers could take, far from all of it


def test_a_declared_length_above_the_cap_is_refused_unread(httpserver, guard_for, context):
    httpserver.expect_request("/query").respond_with_data(
        b"{" + b" " * 4000 + b"}", content_type="application/json"
    )
    result = guard_for(httpserver, max_response_bytes=1024).fetch(ZHANG_WEI, ["person.name"], context)
    assert (result.status, result.error) == ("failed", "response_too_large")


def test_a_wrong_content_type_is_failed(population, bureaus, context):
    bureaus.set_mode("population", "wrong_content_type")
    result = population.fetch(ZHANG_WEI, PERSON, context)
    assert (result.status, result.error) == ("failed", "unexpected_content_type")


def test_a_redirect_is_not_followed(population, bureaus, context):
    bureaus.set_mode("population", "redirect")
    result = population.fetch(ZHANG_WEI, PERSON, context)
    assert (result.status, result.error, result.http_status) == ("failed", "redirect_refused", 302)
    assert result.latency_ms < 500  # no attempt on 169.254.169.254


@pytest.fixture
def guard_for():
    """A client for a pytest-httpserver fake bureau, its origin allowed."""
    made = []

    def make(server, *, client: dict | None = None, **changes) -> ConnectorClient:
        origin = f"http://127.0.0.1:{server.port}"
        guard = UrlGuard(allowed_insecure=[origin])
        fields = {
            "id": "fake-population",
            "name": "人口库(模拟)",
            "bureau": "郑州市公安局",
            "base_url": origin,
            "mapping": {"person.name": "data.xm", "social_insurance.months_paid": "data.months"},
            "secret": "fake-secret-0123456789",
            "auth_type": "api_key",
            "timeout_seconds": 1.0,
        }
        fields.update(changes)
        session = build_session(guard)
        made.append(session)
        return ConnectorClient(ConnectorSpec(**fields), session, url_guard=guard, **(client or {}))

    yield make
    for session in made:
        session.close()


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"[1, 2]", {"Content-Type": "application/json"}, "malformed_response"),
        (b'{"data": {"months": NaN}}', {"Content-Type": "application/json"}, "malformed_response"),
        (b"\xff\xfe\x00garbage", {"Content-Type": "application/json"}, "malformed_response"),
        (b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"}, "response_too_large"),
        (
            gzip.compress(b'{"data":{"xm":"x"}}', mtime=0),  # mtime 0: the same bytes (and test id) every run
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            "unsupported_content_encoding",
        ),
        (b'{"data":{}}', {"Content-Type": "application/jsonp"}, "unexpected_content_type"),
        (b'{"data":{}}', {}, "unexpected_content_type"),
    ],
)
def test_bodies_that_are_not_one_json_object_are_failed(httpserver, guard_for, context, body, headers, error):
    httpserver.expect_request("/query").respond_with_response(Response(body, 200, headers=headers))
    result = guard_for(httpserver, max_response_bytes=128 * 1024).fetch(ZHANG_WEI, ["person.name"], context)
    assert (result.status, result.error) == ("failed", error)


def test_deeply_nested_json_is_malformed_not_a_crash(httpserver, guard_for, context):
    body = b"[" * 50_000 + b"]" * 50_000
    httpserver.expect_request("/query").respond_with_data(body, content_type="application/json")
    result = guard_for(httpserver, max_response_bytes=128 * 1024).fetch(ZHANG_WEI, ["person.name"], context)
    assert (result.status, result.error) == ("failed", "malformed_response")


def test_a_rejected_key_is_failed_auth_rejected(httpserver, guard_for, context):
    httpserver.expect_request("/query").respond_with_json({"code": 401}, status=401)
    result = guard_for(httpserver).fetch(ZHANG_WEI, ["person.name"], context)
    assert (result.status, result.error, result.http_status) == ("failed", "auth_rejected", 401)
    assert httpserver.log[0][0].headers["X-Api-Key"] == "fake-secret-0123456789"


def test_the_query_is_never_retried(httpserver, guard_for, context):
    httpserver.expect_request("/query").respond_with_json({"msg": "busy"}, status=503)
    result = guard_for(httpserver).fetch(ZHANG_WEI, ["person.name"], context)
    assert (result.status, result.error) == ("failed", "http_503")
    assert len(httpserver.log) == 1


def test_a_refused_connection_is_failed(guard_for, context):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = SimpleNamespace(port=probe.getsockname()[1])
    result = guard_for(closed).fetch(ZHANG_WEI, ["person.name"], context)
    assert (result.status, result.error) == ("failed", "connection_error")


def test_an_unsafe_url_is_failed_without_a_call(specs, context, bureaus):
    session = build_session(UrlGuard())
    try:
        client = ConnectorClient(specs["population"], session, url_guard=UrlGuard())  # origin not allowed
        result = client.fetch(ZHANG_WEI, PERSON, context)
    finally:
        session.close()
    assert (result.status, result.error) == ("failed", "unsafe_url")
    assert bureaus.state("population")["queries"] == 0


def test_connections_are_reused_between_calls(population, context):
    for _ in range(5):
        assert population.fetch(ZHANG_WEI, ["person.name"], context).status == "ok"
    assert population.fetch(ZHAO_LEI, ["person.name"], context).status == "not_found"
    pools = population.session.get_adapter("http://").poolmanager.pools
    (pool,) = [pools[key] for key in pools.keys()]  # noqa: SIM118 - the container refuses iteration
    assert (pool.num_connections, pool.num_requests) == (1, 6)


# --- circuit breaker ----------------------------------------------------------------------------------------


def test_the_breaker_opens_after_consecutive_failures_and_half_opens_after_the_cool_down():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(success=False)
    breaker.record(success=True)  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.record(success=False)
    assert breaker.state == "open" and not breaker.allow()
    clock.advance(9.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # nobody else while it is out
    breaker.record(success=False)  # the trial failed: open for another cool-down
    assert breaker.state == "open" and not breaker.allow()
    clock.advance(10)
    assert breaker.allow()
    breaker.record(success=True)
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_half_open_lets_exactly_one_of_many_threads_through():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    breaker.allow()
    breaker.record(success=False)
    clock.advance(5)
    start = threading.Barrier(16)
    allowed = []

    def attempt():
        start.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1


def test_an_open_circuit_fails_fast_without_calling_the_bureau(specs, guard, bureaus, context):
    clock = FakeClock()
    session = build_session(guard)
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=30, clock=clock)
    client = ConnectorClient(specs["population"], session, url_guard=guard, breaker=breaker)
    try:
        bureaus.set_mode("population", "error500")
        assert [client.fetch(ZHANG_WEI, PERSON, context).error for _ in range(2)] == ["http_500", "http_500"]
        result = client.fetch(ZHANG_WEI, PERSON, context)
        assert (result.status, result.error) == ("failed", "circuit_open")
        assert bureaus.state("population")["queries"] == 2  # the third call never left
        bureaus.set_mode("population", "normal")
        clock.advance(30)
        assert client.fetch(ZHANG_WEI, PERSON, context).status == "ok"  # the half-open trial
        assert breaker.state == "closed"
    finally:
        session.close()


def test_not_found_does_not_count_against_the_bureau(specs, guard, bureaus, context):
    session = build_session(guard)
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=30)
    client = ConnectorClient(specs["population"], session, url_guard=guard, breaker=breaker)
    try:
        for _ in range(3):
            assert client.fetch(ZHAO_LEI, PERSON, context).status == "not_found"
        assert breaker.state == "closed"
    finally:
        session.close()


def test_clients_share_a_breaker_per_connector(specs, clients, bureaus, context):
    first = clients(specs["population"])
    rotated = clients(dataclasses.replace(specs["population"], timeout_seconds=0.9))
    assert first is not rotated and first.breaker is rotated.breaker and first.session is rotated.session
    assert clients(dataclasses.replace(specs["population"], timeout_seconds=0.9)) is rotated
    assert clients.breaker("population") is None and clients.breaker("ga-population") is first.breaker


# --- health check -------------------------------------------------------------------------------------------


def test_health_check_ok_and_failing(population, bureaus):
    ok, latency_ms, error = population.health_check()
    assert (ok, error) == (True, None) and latency_ms >= 0
    bureaus.set_mode("population", "error500")
    assert population.health_check()[::2] == (False, "http_500")


def test_health_check_of_a_hanging_bureau_is_a_read_timeout(specs, clients, bureaus):
    # The health GET is retried (its session mounts a retry policy): its read timeout must still be reported
    # as one, not as a connection error.
    bureaus.set_mode("population", "hang")
    client = clients(dataclasses.replace(specs["population"], timeout_seconds=0.3))
    client.health_retries = 0
    assert client.health_check()[::2] == (False, "read_timeout")


def test_health_check_retries_transient_failures_with_backoff(httpserver, guard_for):
    answers = iter([503, 502, 200])
    httpserver.expect_request("/health").respond_with_handler(
        lambda request: Response(json.dumps({"ok": True}), next(answers), content_type="application/json")
    )
    result = guard_for(httpserver, client={"health_backoff_seconds": 0.05}).health_check()
    assert result.ok and result.error is None
    assert len(httpserver.log) == 3
    assert result.latency_ms >= 150  # 50 ms + 100 ms of backoff


def test_health_check_gives_up_after_its_retries(httpserver, guard_for):
    httpserver.expect_request("/health").respond_with_data("down", status=503)
    result = guard_for(
        httpserver, client={"health_backoff_seconds": 0.01, "health_retries": 2}
    ).health_check()
    assert (result.ok, result.error) == (False, "http_503")
    assert len(httpserver.log) == 3


def test_health_check_does_not_retry_a_redirect(httpserver, guard_for):
    httpserver.expect_request("/health").respond_with_data(
        "", status=302, headers={"Location": "http://10.0.0.1/"}
    )
    result = guard_for(httpserver, client={"health_backoff_seconds": 0.01}).health_check()
    assert (result.ok, result.error) == (False, "redirect_refused")
    assert len(httpserver.log) == 1
