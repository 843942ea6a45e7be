"""The WeChat server API client: mini-program login (`jscode2session`) and subscription messages (`subscribe/send`).

WeChat answers errors with HTTP 200 and `{"errcode", "errmsg"}`; a table per endpoint turns each code into
one of our typed errors, and anything that is not a well-formed answer (timeout, connection failure, 5xx, a
body that is not JSON or lacks what the endpoint returns) becomes `WeChatUnavailable` (503
`upstream_unavailable`), whose `detail` says in a few words what went wrong.

Subscription messages need the mini-program's access token (`GET /cgi-bin/token`), cached by
`identity.wechat.AccessTokenCache` (the face adapter's cache class; each holds its own token). A send answered
40001/40014/42001 (invalid or expired token) refreshes the token once and is retried once. `subscribe/send`
errcodes (`SUBSCRIBE_ERROR_CODE_MAP`): 43101 → `SubscribeMessageRefused` (the citizen has not subscribed, or
cancelled), 40003/40037/47003/41030 and any code not in the table → `SubscribeMessageRejected` (the message
itself is wrong; sending it again cannot help); busy, quota and configuration codes → `WeChatUnavailable`.

Secrets: WeChat takes the app secret, the login code and the access token in the query string, so neither the
URL nor a requests exception's text (which quotes the URL) may be logged; we log exception class names and
errcodes only. The session_key never leaves the server and is never logged (`WeChatSession` hides it from
repr); openids are not logged either.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

import requests
from flask import Flask, current_app

from app.errors import Forbidden, Unauthorized, UpstreamUnavailable
from httpkit.session import create_session
from identity.wechat import AccessTokenCache

log = logging.getLogger(__name__)

# openid and unionid are short URL-safe strings; anything else is a malformed answer (and must not reach a
# 64-character database column or a log line).
WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

TOKEN_PATH = "/cgi-bin/token"
SUBSCRIBE_SEND_PATH = "/cgi-bin/message/subscribe/send"
# Refresh the access token this long before WeChat says it expires (it lives 7200 s).
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
# A send answered with one of these gets one token refresh and one retry.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
MINIPROGRAM_STATES = ("developer", "trial", "formal")
# WeChat appends ` rid: <request id>` to errmsg; the outbox keeps the message without it.
RID_SUFFIX = re.compile(r"[,\s]*rid:.*$", re.DOTALL)


class WeChatCodeInvalid(Unauthorized):
    error, message = "wechat_code_invalid", "微信登录凭证无效或已过期,请重新登录"


class WeChatUserBlocked(Forbidden):
    error, message = "wechat_user_blocked", "微信判定该账号存在安全风险,暂时无法登录"


class WeChatUnavailable(UpstreamUnavailable):
    message = "微信服务暂时不可用,请稍后再试"

    def __init__(self, message: str | None = None, *, detail: str = "", **kwargs):
        super().__init__(message, **kwargs)
        # What went wrong in a few words (an errcode, an HTTP status, a transport fault's class), for logs and
        # the notification outbox: never a secret, a token or an openid.
        self.detail = detail or "unavailable"


class WeChatMisconfigured(WeChatUnavailable):
    """WeChat refused this server's configuration (appid, secret, IP allow-list, API permission): an operator
    must act (WECHAT_APPID / WECHAT_SECRET, or the mini-program's settings)."""


class SubscribeMessageError(Exception):
    """WeChat will not deliver this subscription message; `errcode` and `errmsg` (without its rid) say why."""

    def __init__(self, errcode: int, errmsg: str = ""):
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}")


class SubscribeMessageRefused(SubscribeMessageError):
    """43101: the citizen has not subscribed to this template, has used up their subscription, or cancelled."""


class SubscribeMessageRejected(SubscribeMessageError):
    """The message itself is wrong (openid, template id, data or page): sending it again cannot help."""


# Login: errcode → the error we raise. Unlisted codes are logged and become WeChatUnavailable.
ERROR_CODE_MAP: dict[int, type[Exception]] = {
    -1: WeChatUnavailable,  # system busy
    45011: WeChatUnavailable,  # our app's minute quota is used up
    40029: WeChatCodeInvalid,  # invalid or expired code (a code lives 5 minutes)
    40163: WeChatCodeInvalid,  # code already used (a code works once)
    40226: WeChatUserBlocked,  # WeChat's risk control blocks this user
    40013: WeChatMisconfigured,  # invalid appid
    40125: WeChatMisconfigured,  # invalid app secret
}

# The access token endpoint. Unlisted codes are logged and become WeChatUnavailable.
TOKEN_ERROR_CODE_MAP: dict[int, type[Exception]] = {
    -1: WeChatUnavailable,  # system busy
    45009: WeChatUnavailable,  # daily quota used up
    45011: WeChatUnavailable,  # minute quota used up
    40001: WeChatMisconfigured,  # at this endpoint: the app secret is wrong
    40002: WeChatMisconfigured,  # invalid grant_type
    40013: WeChatMisconfigured,  # invalid appid
    40125: WeChatMisconfigured,  # invalid app secret
    40164: WeChatMisconfigured,  # this server's IP is not on the mini-program's allow-list
    41002: WeChatMisconfigured,  # appid missing
    41004: WeChatMisconfigured,  # app secret missing
}

# subscribe/send (WeChat's errcode table of the endpoint, plus the codes every endpoint may answer).
# Unlisted codes are logged and become SubscribeMessageRejected: an unknown answer is not retried blindly.
SUBSCRIBE_ERROR_CODE_MAP: dict[int, type[Exception]] = {
    43101: SubscribeMessageRefused,  # user refuses to accept the msg (not subscribed, or cancelled)
    40003: SubscribeMessageRejected,  # touser: openid empty or invalid
    40037: SubscribeMessageRejected,  # template_id empty or invalid
    47003: SubscribeMessageRejected,  # template data invalid (errmsg names the field)
    41030: SubscribeMessageRejected,  # page does not exist in the released mini-program
    -1: WeChatUnavailable,  # system busy
    45009: WeChatUnavailable,  # daily quota used up
    45011: WeChatUnavailable,  # minute quota used up
    40164: WeChatMisconfigured,  # this server's IP is not on the mini-program's allow-list
    48001: WeChatMisconfigured,  # API not authorised for this mini-program
}


@dataclass(frozen=True)
class WeChatSession:
    """What jscode2session returns for a good code."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


class WeChatClient:
    """Calls WeChat's server API for one mini-program (appid + secret)."""

    def __init__(self, *, base_url: str, appid: str, secret: str, timeout: float, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        self.timeout = timeout
        self._session = session
        # The face adapter's thread-safe cache (one fetch at a time): request threads and the notification
        # worker share this client.
        self._tokens = AccessTokenCache(fetch=self._fetch_token, margin_seconds=TOKEN_REFRESH_MARGIN_SECONDS)

    @classmethod
    def from_config(cls, config) -> WeChatClient:
        """A client for the WECHAT_* settings of `config`."""
        timeout = float(config["WECHAT_TIMEOUT_SECONDS"])
        return cls(
            base_url=config["WECHAT_API_BASE"],
            appid=config["WECHAT_APPID"],
            secret=config["WECHAT_SECRET"],
            timeout=timeout,
            # No retries: a login code works once, and a retried GET may have used it already. The
            # mini-program gets a fresh code and tries again; the notification outbox retries sends itself.
            session=create_session(timeout=timeout, retries=0),
        )

    def __repr__(self) -> str:
        return f"<WeChatClient {self.base_url} appid={self.appid}>"

    def code2session(self, code: str) -> WeChatSession:
        """Exchange a mini-program login code for the user's openid, session_key and unionid."""
        params = {"appid": self.appid, "secret": self._secret, "js_code": code}
        body = self._get_json("/sns/jscode2session", {**params, "grant_type": "authorization_code"})
        openid, session_key, unionid = body.get("openid"), body.get("session_key"), body.get("unionid")
        if not (isinstance(openid, str) and WECHAT_ID.fullmatch(openid)) or not (
            isinstance(session_key, str) and session_key
        ):
            log.warning("WeChat jscode2session answered without a usable openid/session_key")
            raise WeChatUnavailable(detail="malformed answer")
        if not (isinstance(unionid, str) and WECHAT_ID.fullmatch(unionid)):
            unionid = None
        return WeChatSession(openid=openid, session_key=session_key, unionid=unionid)

    def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: dict,
        page: str | None = None,
        *,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> str | None:
        """Send a subscription message to `openid`; returns WeChat's msgid (None if it gave none).

        Raises SubscribeMessageRefused (43101), SubscribeMessageRejected (the message is wrong) or
        WeChatUnavailable (try again later).
        """
        if miniprogram_state not in MINIPROGRAM_STATES:
            raise ValueError(f"miniprogram_state must be one of {MINIPROGRAM_STATES}")
        body = {"touser": openid, "template_id": template_id, "data": data,
                "miniprogram_state": miniprogram_state, "lang": lang}
        if page:
            body["page"] = page
        # ensure_ascii=False: WeChat's documented examples send Chinese text as UTF-8, not \u escapes.
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        token = self._tokens.get()
        answer = self._post_with_token(SUBSCRIBE_SEND_PATH, token, payload)
        if answer.get("errcode") in TOKEN_ERRCODES:
            log.info("WeChat subscribe/send refused the access token (errcode %s): refreshing it once",
                     answer["errcode"])
            token = self._tokens.refresh(stale=token)
            answer = self._post_with_token(SUBSCRIBE_SEND_PATH, token, payload)
            if answer.get("errcode") in TOKEN_ERRCODES:
                log.error("WeChat subscribe/send refused a freshly fetched access token (errcode %s)",
                          answer["errcode"])
                raise WeChatUnavailable(detail=f"errcode {answer['errcode']} after a token refresh")
        errcode = answer.get("errcode") or 0
        if errcode:
            raise self._subscribe_error(errcode, answer.get("errmsg"))
        msgid = answer.get("msgid")
        return str(msgid)[:32] if isinstance(msgid, int | str) and not isinstance(msgid, bool) else None

    def _post_with_token(self, path: str, token: str, payload: bytes) -> dict:
        return self._request_json(
            "POST", path, params={"access_token": token}, data=payload,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )

    def _fetch_token(self) -> tuple[str, float]:
        """GET /cgi-bin/token → (access_token, expires_in seconds)."""
        answer = self._request_json(
            "GET", TOKEN_PATH,
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self._secret},
        )
        errcode = answer.get("errcode") or 0
        if errcode:
            raise self._error_for(TOKEN_PATH, errcode, answer.get("errmsg"), TOKEN_ERROR_CODE_MAP)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not (isinstance(token, str) and token) or isinstance(expires_in, bool) \
                or not isinstance(expires_in, int | float) or expires_in <= 0:
            log.warning("WeChat %s answered without a usable access_token/expires_in", TOKEN_PATH)
            raise WeChatUnavailable(detail="no access token in the answer")
        return token, float(expires_in)

    def _get_json(self, path: str, params: dict) -> dict:
        """GET `path` and return its JSON object, raising the mapped login error for a WeChat errcode."""
        body = self._request_json("GET", path, params=params)
        errcode = body.get("errcode") or 0
        if errcode:
            raise self._error_for(path, errcode, body.get("errmsg"), ERROR_CODE_MAP)
        return body

    def _request_json(self, method: str, path: str, **kwargs) -> dict:
        """One call; any transport fault, non-200 status or non-JSON-object body is WeChatUnavailable."""
        try:
            response = self._session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            log.warning("WeChat %s timed out after %ss", path, self.timeout)
            raise WeChatUnavailable("微信服务响应超时,请稍后再试", detail="timeout") from None
        except requests.RequestException as exc:
            # The exception text quotes the URL, secret or token included: log its class only.
            log.warning("WeChat %s failed: %s", path, type(exc).__name__)
            raise WeChatUnavailable(detail=type(exc).__name__) from None
        if response.status_code != 200:
            log.warning("WeChat %s answered HTTP %s", path, response.status_code)
            raise WeChatUnavailable(detail=f"HTTP {response.status_code}")
        try:
            # WeChat labels its JSON text/plain, so the content type is not checked.
            body = response.json()
        except ValueError:
            log.warning("WeChat %s answered a body that is not JSON", path)
            raise WeChatUnavailable(detail="answer not JSON") from None
        if not isinstance(body, dict):
            log.warning("WeChat %s answered JSON that is not an object", path)
            raise WeChatUnavailable(detail="answer not a JSON object")
        errcode = body.get("errcode")
        if errcode is not None and (isinstance(errcode, bool) or not isinstance(errcode, int)):
            # From here on errcode is an int (or absent): a table lookup cannot trip over a list.
            log.warning("WeChat %s answered an errcode that is not an integer", path)
            raise WeChatUnavailable(detail="malformed errcode")
        return body

    def _error_for(self, path: str, errcode: int, errmsg, table: dict[int, type[Exception]]) -> Exception:
        error = table.get(errcode)
        errmsg = _short(errmsg)
        if error is WeChatMisconfigured:
            # Every call fails until an operator fixes the configuration: say so loudly.
            log.error(
                "WeChat %s rejected this server's configuration (errcode %s: %s): check WECHAT_APPID (%s), "
                "WECHAT_SECRET, the IP allow-list and the mini-program's API permissions",
                path, errcode, errmsg, self.appid,
            )
        elif error is None:
            log.warning("WeChat %s answered unexpected errcode %r: %s", path, errcode, errmsg)
            error = WeChatUnavailable
        elif error is WeChatUnavailable:
            log.warning("WeChat %s is busy or rate-limits us (errcode %s)", path, errcode)
        if issubclass(error, WeChatUnavailable):
            return error(detail=f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}")
        return error()

    def _subscribe_error(self, errcode: int, errmsg) -> Exception:
        error = SUBSCRIBE_ERROR_CODE_MAP.get(errcode)
        if error is None:
            log.warning("WeChat subscribe/send answered unexpected errcode %r: %s", errcode, _short(errmsg))
            return SubscribeMessageRejected(errcode, _short(errmsg))
        if issubclass(error, SubscribeMessageError):
            log.info("WeChat subscribe/send answered errcode %s", errcode)
            return error(errcode, _short(errmsg))
        return self._error_for(SUBSCRIBE_SEND_PATH, errcode, errmsg, SUBSCRIBE_ERROR_CODE_MAP)


def _short(errmsg) -> str:
    """WeChat's errmsg without its request id, cut to a length fit for a log line or the outbox."""
    return RID_SUFFIX.sub("", str(errmsg or "")).strip()[:80]


def init_app(app: Flask) -> None:
    """Put the configured client in `app.extensions["wechat"]`."""
    app.extensions["wechat"] = WeChatClient.from_config(app.config)


def client() -> WeChatClient:
    """The WeChat client of the current app."""
    return current_app.extensions["wechat"]
