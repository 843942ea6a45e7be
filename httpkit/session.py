"""The one place that builds outbound HTTP sessions (warehouse `http.py`), for every package of the project.

Every session made here
- gives each request a timeout unless the caller passes one (requests itself waits forever);
- mounts an `HTTPAdapter` with a bounded connection pool per host;
- retries, when asked to, with exponential backoff: connection failures for any method (the request never
  left), read failures and 502/503/504 answers only for idempotent methods (a POST may have been applied);
- announces itself with a User-Agent;
- keeps no cookies: API calls made for different users must not share state through a cookie jar, and a
  session with no mutable per-call state can be shared by the threads of one process.

Callers that need more (circuit breakers, response size caps, content-type checks) build on `create_session`.
"""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

# (connect, read) seconds. Connect slightly above a multiple of 3 s, the TCP retransmission window.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
USER_AGENT = "zhangshangban/0.1 (+government services backend)"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({502, 503, 504})

Timeout = float | tuple[float, float]


class HttpSession(requests.Session):
    """A `requests.Session` whose calls without an explicit timeout get `default_timeout`."""

    def __init__(self, *, default_timeout: Timeout = DEFAULT_TIMEOUT):
        super().__init__()
        self.default_timeout = default_timeout
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # accept no cookie from anyone

    def request(self, method, url, *args, **kwargs):
        # `timeout` is the 7th parameter after `url`; a caller passing it positionally keeps theirs.
        if len(args) < 7 and kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


class RetryingAdapter(HTTPAdapter):
    """An HTTPAdapter whose read timeouts stay `requests.ReadTimeout` when a retry policy is mounted.

    With a `Retry` object urllib3 wraps the last read timeout in MaxRetryError, which requests reports as
    a plain ConnectionError; callers (and circuit breakers) need to tell a slow upstream from a dead one.
    """

    def send(self, request, **kwargs):
        try:
            return super().send(request, **kwargs)
        except requests.ConnectionError as exc:
            cause = exc.args[0] if exc.args else None
            if isinstance(cause, MaxRetryError) and isinstance(cause.reason, ReadTimeoutError):
                raise requests.ReadTimeout(cause.reason, request=request) from exc
            raise


def retry_policy(retries: int, *, backoff_factor: float = 0.2, backoff_max: float = 2.0,
                 retry_reads: bool = True) -> Retry:
    """Up to `retries` retries: any method on connection errors, idempotent ones on read errors and 5xx
    (unless `retry_reads` is False: for calls that must never reach the upstream twice, GETs included)."""
    return Retry(
        total=retries,
        connect=retries,
        read=retries if retry_reads else 0,
        status=retries if retry_reads else 0,
        other=0,
        allowed_methods=IDEMPOTENT_METHODS,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        # After the last retry the caller gets the upstream's answer, not a urllib3 exception.
        raise_on_status=False,
        # A Retry-After of minutes would hold a request thread that long: our own backoff bounds the wait.
        respect_retry_after_header=False,
    )


def create_session(
    *,
    timeout: Timeout = DEFAULT_TIMEOUT,
    retries: int = 0,
    retry_reads: bool = True,
    backoff_factor: float = 0.2,
    pool_connections: int = 10,
    pool_maxsize: int = 10,
    user_agent: str = USER_AGENT,
) -> HttpSession:
    """A session for calling one kind of upstream; see the module docstring for what it guarantees.

    `timeout` is the default per call (seconds, or a (connect, read) pair); `retries` = 0 disables retries,
    `retry_reads=False` keeps only the retries of connections that failed (the request never left);
    `pool_connections` is how many hosts keep a pool, `pool_maxsize` how many connections each pool keeps
    (size it to the number of threads that call the upstream at once).
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    session = HttpSession(default_timeout=timeout)
    adapter = RetryingAdapter(
        pool_connections=pool_connections,
        pool_maxsize=pool_maxsize,
        max_retries=retry_policy(retries, backoff_factor=backoff_factor, retry_reads=retry_reads),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session
