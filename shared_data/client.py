"""The hardened client of the connector wire protocol (`shared_data.connectors`), one per connector.

`ConnectorClient.fetch` never raises for a bureau's fault: every outcome — found, not found, failed, timed
out — is a `FetchResult`, because each is expected, is logged, and degrades only this connector's fields.
What the client guarantees on every call:

- the URL passes `UrlGuard.check_syntax`, and the peer address is checked again at connect time
  (`urls.GuardedAdapter`); redirects are never followed (a 3xx is `redirect_refused`);
- a time cap of `spec.timeout_seconds`: the connect timeout is at most 3 s, connecting plus waiting for the
  headers share the cap (urllib3's `Timeout(total=...)`), and the body is streamed with the socket timeout
  set to what remains before each read, so a bureau dribbling its body cannot hold the call past the cap.
  Limit: a server that dribbles its status line or headers is bounded per read, not in total (the prefill
  engine's deadline returns on time regardless);
- no retry of the query (a POST is not idempotent); the GET health check retries with backoff;
- a per-connector circuit breaker (`CircuitBreaker`, state in process memory: each process learns on its
  own that a bureau is down, which is what we want from a breaker and needs nothing shared);
- a response size cap (`spec.max_response_bytes`: a declared length above it is refused unread, and the
  stream is cut as soon as it passes the cap), `application/json` only, no content encoding;
- per-field type checks: a field whose value does not fit its element's type fails alone.

Nothing personal is logged: log lines carry the connector id, status, error word and latency only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, urlsplit

import requests
from urllib3 import Timeout
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from httpkit.session import create_session, retry_policy
from shared_data import signing
from shared_data.connectors import (
    ACTING_USER_HEADER,
    APPLICATION_HEADER,
    PURPOSE_HEADER,
    REQUEST_ID_HEADER,
    ConnectorSpec,
    coerce,
    extract,
    parse_source_time,
)
from shared_data.elements import ELEMENTS, UnknownElement
from shared_data.errors import (
    InvalidCallContext,
    PathNotFound,
    UnsafeUrl,
    ValueTypeError,
)
from shared_data.urls import GuardedAdapter, UrlGuard

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.05  # slightly above a multiple of 3 s, the TCP retransmission window
READ_CHUNK_BYTES = 64 * 1024
NOT_FOUND_BODY_BYTES = 64 * 1024  # a 404's body is read (to keep the connection) only up to this
HEALTH_BODY_BYTES = 64 * 1024
MAX_PURPOSE_LENGTH = 500
CONTEXT_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces: safe as a header value

FetchStatus = Literal["ok", "not_found", "failed", "timeout"]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CallContext:
    """Why and for whom a call is made; sent as headers with every query (and logged by the app)."""

    purpose: str  # the purpose text the citizen consented to
    application_id: str
    acting_user: str  # a pseudonymous id such as "citizen:42" or "staff:7", never a name
    request_id: str

    def __post_init__(self):
        if (
            not isinstance(self.purpose, str)
            or not self.purpose.strip()
            or len(self.purpose) > MAX_PURPOSE_LENGTH
        ):
            raise InvalidCallContext(f"purpose must be 1-{MAX_PURPOSE_LENGTH} characters")
        for name in ("application_id", "acting_user", "request_id"):
            if not isinstance(getattr(self, name), str) or not CONTEXT_ID.fullmatch(getattr(self, name)):
                raise InvalidCallContext(f"{name} must be 1-128 printable ASCII characters without spaces")

    def headers(self) -> dict[str, str]:
        """The wire protocol's context headers (the purpose percent-encoded as UTF-8)."""
        return {
            PURPOSE_HEADER: quote(self.purpose, safe=""),
            APPLICATION_HEADER: self.application_id,
            ACTING_USER_HEADER: self.acting_user,
            REQUEST_ID_HEADER: self.request_id,
        }


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one query: a record rather than an exception, since every status is an expected result.

    `values` holds the requested elements that came back and fit their type; `field_errors` the ones that
    came back malformed (element → reason); `missing` the ones the bureau's record does not have.
    """

    status: FetchStatus
    values: Mapping[str, Any] = field(default_factory=dict)
    field_errors: Mapping[str, str] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()
    source_updated_at: datetime | None = None
    latency_ms: int = 0
    http_status: int | None = None
    error: str | None = None


class HealthResult(NamedTuple):
    """A health check's outcome: the API answers it as {ok, latency_ms, error}."""

    ok: bool
    latency_ms: int
    error: str | None


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures → half-open after `reset_seconds`.

    Half-open lets exactly one trial call through: its success closes the breaker, its failure opens it for
    another cool-down. State lives in this process's memory; thread-safe.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_seconds > 0")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """closed, open, or half_open (cool-down over, or the trial call in flight)."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial_in_flight or self._clock() - self._opened_at >= self.reset_seconds:
                return "half_open"
            return "open"

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state True once, for the trial call."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_in_flight or self._clock() - self._opened_at < self.reset_seconds:
                return False
            self._trial_in_flight = True
            return True

    def record(self, *, success: bool) -> None:
        """Count the outcome of an allowed call."""
        with self._lock:
            if success:
                self._failures = 0
                self._opened_at = None
                self._trial_in_flight = False
                return
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
                self._trial_in_flight = False


class _TooLarge(Exception):
    pass


class _DeadlinePassed(Exception):
    pass


class ConnectorClient:
    """Calls one connector under the guarantees of the module docstring."""

    def __init__(
        self,
        spec: ConnectorSpec,
        session: requests.Session,
        *,
        url_guard: UrlGuard,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        health_retries: int = 2,
        health_backoff_seconds: float = 0.1,
    ):
        self.spec = spec
        self.session = session
        self.url_guard = url_guard
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.clock = clock
        self.wall_clock = wall_clock  # Unix time for signatures
        self.health_retries = health_retries
        self.health_backoff_seconds = health_backoff_seconds

    # --- the query ---------------------------------------------------------------------------------------

    def fetch(self, id_number: str, elements: Iterable[str], context: CallContext) -> FetchResult:
        """Query the bureau for `elements` of the person `id_number`; never raises for the bureau's faults."""
        requested = list(dict.fromkeys(elements))
        for element in requested:
            if element not in self.spec.mapping:
                raise UnknownElement(f"{self.spec.id} does not provide {element}")
        if not requested:
            raise ValueError("fetch needs at least one element")
        started = self.clock()
        try:
            self.url_guard.check_syntax(self.spec.query_url)
        except UnsafeUrl as exc:
            return self._finish(FetchResult("failed", error="unsafe_url"), started, detail=exc.reason)
        if not self.breaker.allow():
            return self._finish(FetchResult("failed", error="circuit_open"), started)
        result = FetchResult("failed", error="internal_error")
        try:
            result = self._query(id_number, requested, context, started)
        finally:
            # A found or missing record means the bureau works; anything else counts against it.
            self.breaker.record(success=result.status in ("ok", "not_found"))
        return self._finish(result, started)

    def _query(
        self, id_number: str, requested: list[str], context: CallContext, started: float
    ) -> FetchResult:
        spec = self.spec
        deadline = started + spec.timeout_seconds
        body = json.dumps(
            {"id_number": id_number, "elements": requested}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            **context.headers(),
            **self._auth_headers("POST", spec.query_url, body),
        }
        try:
            response = self.session.post(
                spec.query_url,
                data=body,
                headers=headers,
                timeout=self._timeout(),
                allow_redirects=False,
                stream=True,
            )
        except UnsafeUrl:
            return FetchResult("failed", error="unsafe_url")
        except requests.ConnectTimeout:
            return FetchResult("timeout", error="connect_timeout")
        except requests.Timeout:
            return FetchResult("timeout", error="read_timeout")
        except requests.RequestException:
            return FetchResult("failed", error="connection_error")
        try:
            return self._answer(response, requested, deadline)
        finally:
            response.close()

    def _answer(self, response: requests.Response, requested: list[str], deadline: float) -> FetchResult:
        status = response.status_code
        if 300 <= status < 400:
            return FetchResult("failed", http_status=status, error="redirect_refused")
        if status == 404:
            self._discard_body(response, NOT_FOUND_BODY_BYTES, deadline)
            return FetchResult("not_found", http_status=status)
        if status != 200:
            return FetchResult("failed", http_status=status, error=_status_error(status))
        problem = _header_problem(response, self.spec.max_response_bytes)
        if problem:
            return FetchResult("failed", http_status=status, error=problem)
        try:
            raw = self._read_body(response, self.spec.max_response_bytes, deadline)
        except _TooLarge:
            return FetchResult("failed", http_status=status, error="response_too_large")
        except (_DeadlinePassed, ReadTimeoutError):
            return FetchResult("timeout", http_status=status, error="deadline_exceeded")
        except (Urllib3Error, requests.RequestException, OSError):
            return FetchResult("failed", http_status=status, error="connection_error")
        try:
            document = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return FetchResult("failed", http_status=status, error="malformed_response")
        if not isinstance(document, dict):
            return FetchResult("failed", http_status=status, error="malformed_response")
        return self._map(document, requested, status)

    def _map(self, document: dict, requested: list[str], status: int) -> FetchResult:
        values: dict[str, Any] = {}
        field_errors: dict[str, str] = {}
        missing: set[str] = set()
        for element in requested:
            try:
                value = extract(document, self.spec.mapping[element])
            except PathNotFound:
                missing.add(element)
                continue
            if value is None:
                missing.add(element)
                continue
            try:
                values[element] = coerce(value, ELEMENTS[element].type)
            except ValueTypeError as exc:
                field_errors[element] = f"type_error: {exc}"
        return FetchResult(
            "ok",
            values=values,
            field_errors=field_errors,
            missing=frozenset(missing),
            source_updated_at=self._source_updated_at(document),
            http_status=status,
        )

    def _source_updated_at(self, document: dict) -> datetime | None:
        path = self.spec.source_updated_path
        if not path:
            return None
        try:
            return parse_source_time(extract(document, path))
        except (PathNotFound, ValueTypeError):
            return None  # provenance without a time is still provenance

    # --- the health check --------------------------------------------------------------------------------

    def health_check(self) -> HealthResult:
        """GET the health path, retrying connection failures, timeouts and 502-504 with backoff."""
        started = self.clock()
        try:
            self.url_guard.check_syntax(self.spec.health_url)
        except UnsafeUrl:
            return HealthResult(False, 0, "unsafe_url")
        error: str | None = None
        for attempt in range(1 + self.health_retries):
            if attempt:
                time.sleep(self.health_backoff_seconds * 2 ** (attempt - 1))
            error, retryable = self._probe()
            if error is None or not retryable:
                break
        return HealthResult(error is None, _ms(self.clock() - started), error)

    def _probe(self) -> tuple[str | None, bool]:
        """One health request: (error or None, whether another attempt may help)."""
        url = self.spec.health_url
        deadline = self.clock() + self.spec.timeout_seconds
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            **self._auth_headers("GET", url, b""),
        }
        try:
            response = self.session.get(
                url, headers=headers, timeout=self._timeout(), allow_redirects=False, stream=True
            )
        except UnsafeUrl:
            return "unsafe_url", False
        except requests.ConnectTimeout:
            return "connect_timeout", True
        except requests.Timeout:
            return "read_timeout", True
        except requests.RequestException:
            return "connection_error", True
        try:
            status = response.status_code
            if 300 <= status < 400:
                return "redirect_refused", False
            if status != 200:
                return _status_error(status), status in (502, 503, 504)
            self._discard_body(response, HEALTH_BODY_BYTES, deadline)
            return None, False
        finally:
            response.close()

    # --- plumbing ----------------------------------------------------------------------------------------

    def _timeout(self) -> Timeout:
        cap = self.spec.timeout_seconds
        return Timeout(connect=min(CONNECT_TIMEOUT_SECONDS, cap), read=cap, total=cap)

    def _auth_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        if self.spec.auth_type == "api_key":
            return {signing.API_KEY_HEADER: self.spec.secret}
        path = urlsplit(url).path
        return signing.signature_headers(
            self.spec.secret, method, path, body, timestamp=int(self.wall_clock())
        )

    def _read_body(self, response: requests.Response, limit: int, deadline: float) -> bytes:
        """The whole body, one socket read at a time; raises _TooLarge or _DeadlinePassed."""
        raw = response.raw
        connection = getattr(raw, "connection", None)
        sock = getattr(connection, "sock", None)
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise _DeadlinePassed
            if sock is not None:
                sock.settimeout(remaining)  # urllib3 sets its own timeout again before the next request
            chunk = raw.read1(READ_CHUNK_BYTES, decode_content=False)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        raw.release_conn()  # complete: the connection may serve the next call
        return b"".join(chunks)

    def _discard_body(self, response: requests.Response, limit: int, deadline: float) -> None:
        """Read and drop a small body so the connection can be reused; give up (and close) past limits."""
        try:
            self._read_body(response, limit, deadline)
        except (_TooLarge, _DeadlinePassed, Urllib3Error, requests.RequestException, OSError):
            pass  # response.close() in the caller drops the connection

    def _finish(self, result: FetchResult, started: float, detail: str | None = None) -> FetchResult:
        latency = _ms(self.clock() - started)
        if result.status in ("failed", "timeout"):
            log.warning(
                "connector %s: %s %s%s (%d ms)",
                self.spec.id,
                result.status,
                result.error,
                f" ({detail})" if detail else "",
                latency,
            )
        return dataclasses.replace(result, latency_ms=latency)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _status_error(status: int) -> str:
    return "auth_rejected" if status in (401, 403) else f"http_{status}"


def _header_problem(response: requests.Response, limit: int) -> str | None:
    """Why the headers of a 200 answer already disqualify it, if they do."""
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return "unexpected_content_type"
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return "unsupported_content_encoding"
    length = response.headers.get("Content-Length")
    if length is not None and (not length.strip().isdigit() or int(length) > limit):
        return "response_too_large" if length.strip().isdigit() else "malformed_response"
    return None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"JSON does not allow {name}")


def build_session(url_guard: UrlGuard, *, pool_maxsize: int = 10) -> requests.Session:
    """A session for one connector: `httpkit.session`'s defaults, no retries, no proxies, peers checked."""
    session = create_session(retries=0, pool_connections=2, pool_maxsize=pool_maxsize)
    # Environment proxies would make the proxy our peer and defeat the connect-time address check.
    session.trust_env = False
    adapter = GuardedAdapter(
        url_guard, pool_connections=2, pool_maxsize=pool_maxsize, max_retries=retry_policy(0)
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ConnectorClients:
    """The client factory: one session (connection pool) and one circuit breaker per connector, reused.

    Calling it with a spec returns that connector's client; a changed spec (a rotated secret, a new URL) gets
    a new client that keeps the connector's session and breaker. Thread-safe; state in process memory.
    `pool_maxsize` should cover the calls one connector may have in flight at once (the prefill engine's
    `max_workers` is a safe choice).
    """

    def __init__(
        self,
        *,
        url_guard: UrlGuard,
        pool_maxsize: int = 16,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url_guard = url_guard
        self.pool_maxsize = pool_maxsize
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, requests.Session] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._clients: dict[str, ConnectorClient] = {}

    def __call__(self, spec: ConnectorSpec) -> ConnectorClient:
        with self._lock:
            client = self._clients.get(spec.id)
            if client is not None and client.spec == spec:
                return client
            if spec.id not in self._sessions:
                self._sessions[spec.id] = build_session(self.url_guard, pool_maxsize=self.pool_maxsize)
                self._breakers[spec.id] = CircuitBreaker(
                    failure_threshold=self.failure_threshold,
                    reset_seconds=self.reset_seconds,
                    clock=self.clock,
                )
            client = ConnectorClient(
                spec,
                self._sessions[spec.id],
                url_guard=self.url_guard,
                breaker=self._breakers[spec.id],
                clock=self.clock,
            )
            self._clients[spec.id] = client
            return client

    def breaker(self, connector_id: str) -> CircuitBreaker | None:
        """The circuit breaker of a connector that has been called, if any."""
        with self._lock:
            return self._breakers.get(connector_id)

    def close(self) -> None:
        """Close every session (open connections are dropped)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._breakers.clear()
            self._clients.clear()
        for session in sessions:
            session.close()
