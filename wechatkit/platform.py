"""The WeChat mini-program server API: one client per mini-program (appid + secret) and process.

Answers. WeChat answers errors with HTTP 200 and `{"errcode", "errmsg"}`. Anything that is not a well-formed
answer — a timeout, a connection failure, a status other than 200, more than `MAX_ANSWER_BYTES`, a body that
is not a JSON object, an errcode that is not an integer — is `WeChatUnavailable`. Of the errcodes, those every
endpoint may answer are read here (`COMMON_ERRCODES`: busy and quotas → `WeChatUnavailable`; this server's
appid, secret, IP allow-list or API permission refused → `WeChatMisconfigured`, logged loudly); any other is
`WeChatRefused` for the caller's own table (an invalid login code, an unsubscribed user, a face verification
not done yet mean different things to different callers).

Access token (`GET /cgi-bin/token`): cached by `AccessTokenCache` until `token_refresh_margin_seconds` before
it expires, one fetch at a time. WeChat invalidates a mini-program's older tokens a few minutes after it
issues a new one, so two caches in one process would invalidate each other: `platform_for` gives every caller
in the process (login, subscription messages, the face adapter) the same client, hence one cache. A call
answered 40001/40014/42001 (invalid or expired token) refreshes the token once and is retried once. Across
processes each holds its own token and the one refresh-and-retry absorbs their invalidating each other; a
deployment with many processes can put a shared source in front (WeChat's `stable_token`) as `token_source`.

Retries: only connections that failed (the request never left) are retried, once: a login code works once,
and a face verification request must not be sent twice.

Secrets: WeChat takes the app secret, the login code and the access token in the query string, so neither a
URL nor a requests exception's text (which quotes the URL) is ever logged: endpoint paths, exception class
names and errcodes only. Bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from httpkit.session import create_session

log = logging.getLogger(__name__)

TOKEN_PATH = "/cgi-bin/token"
MAX_ANSWER_BYTES = 64 * 1024  # WeChat's answers are a few hundred bytes; more is not WeChat
# A call answered with one of these gets one token refresh and one retry.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
# WeChat appends ` rid: <request id>` to errmsg.
RID_SUFFIX = re.compile(r"[,\s]*rid:.*$", re.DOTALL)
REQUEST_ID = re.compile(r"rid:\s*([0-9A-Za-z-]{1,64})")


class WeChatError(Exception):
    """Base of what this client raises."""


class WeChatUnavailable(WeChatError):
    """WeChat did not answer usably (try again later); `detail` says what went wrong in a few words (an errcode,
    an HTTP status, a transport fault's class), never a secret, a token or an openid. `timed_out` when it was
    a timeout."""

    def __init__(self, detail: str, *, timed_out: bool = False):
        super().__init__(detail)
        self.detail = detail
        self.timed_out = timed_out


class WeChatMisconfigured(WeChatUnavailable):
    """WeChat refused this server's configuration (appid, secret, IP allow-list, API permission): an operator
    must act."""

    def __init__(self, detail: str, *, errcode: int):
        super().__init__(detail)
        self.errcode = errcode


class WeChatRefused(WeChatError):
    """An errcode particular to the endpoint, for the caller to read; `errmsg` without WeChat's request id."""

    def __init__(self, errcode: int, errmsg: str = "", *, request_id: str | None = None):
        self.errcode = errcode
        self.errmsg = errmsg
        self.request_id = request_id
        super().__init__(f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}")


# The errcodes any endpoint may answer. At the token endpoint 40001 and 40002 also mean a wrong secret or
# grant type (elsewhere 40001 is an expired token: TOKEN_ERRCODES).
COMMON_ERRCODES: dict[int, type[WeChatUnavailable]] = {
    -1: WeChatUnavailable,  # system busy
    45009: WeChatUnavailable,  # daily quota used up
    45011: WeChatUnavailable,  # minute quota used up
    40013: WeChatMisconfigured,  # invalid appid
    40125: WeChatMisconfigured,  # invalid app secret
    40164: WeChatMisconfigured,  # this server's IP is not on the mini-program's allow-list
    41002: WeChatMisconfigured,  # appid missing
    41004: WeChatMisconfigured,  # app secret missing
    48001: WeChatMisconfigured,  # API not authorised for this mini-program
}
TOKEN_ENDPOINT_ERRCODES = {**COMMON_ERRCODES, 40001: WeChatMisconfigured, 40002: WeChatMisconfigured}


def short_errmsg(errmsg: Any) -> str:
    """WeChat's errmsg without its request id, cut to a length fit for a log line or a stored error."""
    return RID_SUFFIX.sub("", str(errmsg or "")).strip()[:80]


def request_id_of(answer: Mapping) -> str | None:
    """WeChat's request id, which it appends to errmsg as `rid: …`."""
    match = REQUEST_ID.search(str(answer.get("errmsg") or ""))
    return match.group(1) if match else None


class AccessTokenCache:
    """The mini-program's access token, fetched by `fetch` and reused until shortly before it expires."""

    def __init__(self, *, fetch: Callable[[], tuple[str, float]], margin_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._margin = margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def get(self) -> str:
        """A token believed valid, fetching one if there is none or it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._renew()
            return self._token  # type: ignore[return-value]

    def refresh(self, stale: str) -> str:
        """A new token after WeChat refused `stale` (unless another thread has replaced it already)."""
        with self._lock:
            if self._token is None or self._token == stale:
                self._renew()
            return self._token  # type: ignore[return-value]

    def _renew(self) -> None:
        token, expires_in = self._fetch()
        self._token = token
        # Refresh `margin` before expiry, but not before half the lifetime of a short-lived token.
        self._refresh_at = self._clock() + max(expires_in - self._margin, expires_in / 2)

    def __repr__(self) -> str:
        return "<AccessTokenCache>"


class WeChatPlatform:
    """Calls WeChat's server API for one mini-program; thread-safe (request threads and workers share it)."""

    def __init__(self, *, base_url: str, appid: str, secret: str, timeout: float = 5.0,
                 session: requests.Session | None = None, token_refresh_margin_seconds: float = 300.0,
                 token_source: Callable[[], tuple[str, float]] | None = None):
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        self.timeout = float(timeout)
        self._session = session or create_session(timeout=self.timeout, retries=1, retry_reads=False)
        self._tokens = AccessTokenCache(fetch=token_source or self.fetch_token,
                                        margin_seconds=token_refresh_margin_seconds)

    def __repr__(self) -> str:
        return f"<WeChatPlatform {self.base_url} appid={self.appid}>"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._session.close()

    def get(self, path: str, params: Mapping[str, Any], *, with_secret: bool = False) -> dict:
        """GET `path` without an access token (`with_secret`: add appid and secret); the answer's JSON object."""
        if with_secret:
            params = {"appid": self.appid, "secret": self._secret, **params}
        return self._checked(path, self._request("GET", path, params=params), COMMON_ERRCODES)

    def post(self, path: str, body: Mapping[str, Any]) -> dict:
        """POST `body` as JSON with the access token, refreshing the token once if WeChat refuses it."""
        # ensure_ascii=False: WeChat's documented examples send Chinese text as UTF-8, not \u escapes.
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        token = self._tokens.get()
        answer = self._post_with_token(path, token, payload)
        if answer.get("errcode") in TOKEN_ERRCODES:
            log.info("WeChat %s refused the access token (errcode %s): refreshing it once", path, answer["errcode"])
            token = self._tokens.refresh(stale=token)
            answer = self._post_with_token(path, token, payload)
            if answer.get("errcode") in TOKEN_ERRCODES:
                log.error("WeChat %s refused a freshly fetched access token (errcode %s)", path, answer["errcode"])
                raise WeChatUnavailable(f"errcode {answer['errcode']} after a token refresh")
        return self._checked(path, answer, COMMON_ERRCODES)

    def fetch_token(self) -> tuple[str, float]:
        """GET /cgi-bin/token → (access_token, expires_in seconds)."""
        answer = self._request("GET", TOKEN_PATH, params={"grant_type": "client_credential", "appid": self.appid,
                                                          "secret": self._secret})
        try:
            self._checked(TOKEN_PATH, answer, TOKEN_ENDPOINT_ERRCODES)
        except WeChatRefused as exc:
            log.warning("WeChat %s answered unexpected errcode %s", TOKEN_PATH, exc.errcode)
            raise WeChatUnavailable(str(exc)) from None
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not (isinstance(token, str) and token) or isinstance(expires_in, bool) \
                or not isinstance(expires_in, int | float) or expires_in <= 0:
            log.warning("WeChat %s answered without a usable access_token/expires_in", TOKEN_PATH)
            raise WeChatUnavailable("no access token in the answer")
        return token, float(expires_in)

    def _post_with_token(self, path: str, token: str, payload: bytes) -> dict:
        return self._request("POST", path, params={"access_token": token}, data=payload,
                             headers={"Content-Type": "application/json; charset=utf-8"})

    def _checked(self, path: str, answer: dict, table: Mapping[int, type[WeChatUnavailable]]) -> dict:
        """`answer` if it carries no errcode; else the common error for it, or WeChatRefused."""
        errcode = answer.get("errcode") or 0
        if not errcode:
            return answer
        errmsg = short_errmsg(answer.get("errmsg"))
        error = table.get(errcode)
        detail = f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}"
        if error is WeChatMisconfigured:
            # Every call fails until an operator fixes the configuration: say so loudly.
            log.error("WeChat %s rejected this server's configuration (errcode %s: %s): check WECHAT_APPID (%s), "
                      "WECHAT_SECRET, the IP allow-list and the mini-program's API permissions",
                      path, errcode, errmsg, self.appid)
            raise WeChatMisconfigured(detail, errcode=errcode)
        if error is not None:
            log.warning("WeChat %s is busy or rate-limits us (errcode %s)", path, errcode)
            raise error(detail)
        raise WeChatRefused(errcode, errmsg, request_id=request_id_of(answer))

    def _request(self, method: str, path: str, **kwargs) -> dict:
        """One call; any transport fault, non-200 status or non-JSON-object body is WeChatUnavailable."""
        try:
            response = self._session.request(method, self.base_url + path, timeout=self.timeout, stream=True,
                                             **kwargs)
        except requests.Timeout:
            log.warning("WeChat %s timed out after %ss", path, self.timeout)
            raise WeChatUnavailable("timeout", timed_out=True) from None
        except requests.RequestException as exc:
            # The exception text quotes the URL, secret or token included: log its class only.
            log.warning("WeChat %s failed: %s", path, type(exc).__name__)
            raise WeChatUnavailable(type(exc).__name__) from None
        try:
            if response.status_code != 200:
                log.warning("WeChat %s answered HTTP %s", path, response.status_code)
                raise WeChatUnavailable(f"HTTP {response.status_code}")
            raw = self._read(path, response)
            try:
                # WeChat labels its JSON text/plain, so the content type is not checked.
                body = json.loads(raw)
            except ValueError:
                log.warning("WeChat %s answered a body that is not JSON", path)
                raise WeChatUnavailable("answer not JSON") from None
        finally:
            response.close()
        if not isinstance(body, dict):
            log.warning("WeChat %s answered JSON that is not an object", path)
            raise WeChatUnavailable("answer not a JSON object")
        errcode = body.get("errcode")
        if errcode is not None and (isinstance(errcode, bool) or not isinstance(errcode, int)):
            # From here on errcode is an int (or absent): a table lookup cannot trip over a list.
            log.warning("WeChat %s answered an errcode that is not an integer", path)
            raise WeChatUnavailable("malformed errcode")
        return body

    @staticmethod
    def _read(path: str, response: requests.Response) -> bytes:
        raw = b""
        try:
            for chunk in response.iter_content(8192):
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    log.warning("WeChat %s answered more than %s bytes", path, MAX_ANSWER_BYTES)
                    raise WeChatUnavailable("oversized answer")
        except requests.RequestException as exc:
            log.warning("WeChat %s broke off its answer: %s", path, type(exc).__name__)
            raise WeChatUnavailable(f"answer broken off ({type(exc).__name__})") from None
        return raw


_shared: dict[tuple, WeChatPlatform] = {}
_shared_lock = threading.Lock()


def platform_for(*, base_url: str, appid: str, secret: str, timeout: float = 5.0) -> WeChatPlatform:
    """This process's client of the mini-program (one per base URL, appid, secret and timeout): every caller
    shares its access token (module docstring)."""
    key = (base_url.rstrip("/"), appid, secret, float(timeout))
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = WeChatPlatform(base_url=base_url, appid=appid, secret=secret, timeout=timeout)
        return found
