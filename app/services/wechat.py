"""The WeChat server API client: mini-program login (`jscode2session`).

WeChat answers errors with HTTP 200 and `{"errcode", "errmsg"}`; `ERROR_CODE_MAP` turns each code into one
of our typed errors, and anything that is not a well-formed answer (timeout, connection failure, 5xx, a body
that is not JSON or lacks the openid) becomes `WeChatUnavailable` (503 `upstream_unavailable`).

Secrets: WeChat takes the app secret and the login code in the query string, so neither the URL nor a
requests exception's text (which quotes the URL) may be logged; we log exception class names and errcodes
only. The session_key never leaves the server and is never logged (`WeChatSession` hides it from repr).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import requests
from flask import Flask, current_app

from app.errors import Forbidden, Unauthorized, UpstreamUnavailable
from shared_data.http import create_session

log = logging.getLogger(__name__)

# openid and unionid are short URL-safe strings; anything else is a malformed answer (and must not reach a
# 64-character database column or a log line).
WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class WeChatCodeInvalid(Unauthorized):
    error, message = "wechat_code_invalid", "微信登录凭证无效或已过期,请重新登录"


class WeChatUserBlocked(Forbidden):
    error, message = "wechat_user_blocked", "微信判定该账号存在安全风险,暂时无法登录"


class WeChatUnavailable(UpstreamUnavailable):
    message = "微信服务暂时不可用,请稍后再试"


class WeChatMisconfigured(WeChatUnavailable):
    """WeChat refused our appid or secret: the operator must fix WECHAT_APPID / WECHAT_SECRET."""


# errcode → the error we raise. Unlisted codes are logged and become WeChatUnavailable.
ERROR_CODE_MAP: dict[int, type[Exception]] = {
    -1: WeChatUnavailable,  # system busy
    45011: WeChatUnavailable,  # our app's minute quota is used up
    40029: WeChatCodeInvalid,  # invalid or expired code (a code lives 5 minutes)
    40163: WeChatCodeInvalid,  # code already used (a code works once)
    40226: WeChatUserBlocked,  # WeChat's risk control blocks this user
    40013: WeChatMisconfigured,  # invalid appid
    40125: WeChatMisconfigured,  # invalid app secret
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
            # mini-program gets a fresh code and tries again.
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
            raise WeChatUnavailable()
        if not (isinstance(unionid, str) and WECHAT_ID.fullmatch(unionid)):
            unionid = None
        return WeChatSession(openid=openid, session_key=session_key, unionid=unionid)

    def _get_json(self, path: str, params: dict) -> dict:
        """GET `path` and return its JSON object, raising the mapped error for a WeChat errcode."""
        try:
            response = self._session.get(self.base_url + path, params=params, timeout=self.timeout)
        except requests.Timeout:
            log.warning("WeChat %s timed out after %ss", path, self.timeout)
            raise WeChatUnavailable("微信服务响应超时,请稍后再试") from None
        except requests.RequestException as exc:
            # The exception text quotes the URL, secret included: log its class only.
            log.warning("WeChat %s failed: %s", path, type(exc).__name__)
            raise WeChatUnavailable() from None
        if response.status_code != 200:
            log.warning("WeChat %s answered HTTP %s", path, response.status_code)
            raise WeChatUnavailable()
        try:
            # WeChat labels its JSON text/plain, so the content type is not checked.
            body = response.json()
        except ValueError:
            log.warning("WeChat %s answered a body that is not JSON", path)
            raise WeChatUnavailable() from None
        if not isinstance(body, dict):
            log.warning("WeChat %s answered JSON that is not an object", path)
            raise WeChatUnavailable()
        errcode = body.get("errcode") or 0
        if errcode:
            raise self._error_for(path, errcode, body.get("errmsg"))
        return body

    def _error_for(self, path: str, errcode, errmsg) -> Exception:
        error = ERROR_CODE_MAP.get(errcode) if isinstance(errcode, int) else None
        errmsg = str(errmsg or "")[:200]
        if error is WeChatMisconfigured:
            # Every login fails until an operator fixes the configuration: say so loudly.
            log.error(
                "WeChat rejected this server's credentials (errcode %s: %s): check WECHAT_APPID (%s) and "
                "WECHAT_SECRET",
                errcode, errmsg, self.appid,
            )
        elif error is None:
            log.warning("WeChat %s answered unexpected errcode %r: %s", path, errcode, errmsg)
            error = WeChatUnavailable
        elif error is WeChatUnavailable:
            log.warning("WeChat %s is busy or rate-limits us (errcode %s)", path, errcode)
        return error()


def init_app(app: Flask) -> None:
    """Put the configured client in `app.extensions["wechat"]`."""
    app.extensions["wechat"] = WeChatClient.from_config(app.config)


def client() -> WeChatClient:
    """The WeChat client of the current app."""
    return current_app.extensions["wechat"]
