"""The WeChat server API client: mini-program login (`jscode2session`) and subscription messages (`subscribe/send`).

WeChat answers errors with HTTP 200 and `{"errcode", "errmsg"}`; a table per endpoint turns each code into
one of our typed errors, and anything that is not a well-formed answer (timeout, connection failure, 5xx, a
body that is not JSON or lacks what the endpoint returns) becomes `WeChatUnavailable` (503
`upstream_unavailable`), whose `detail` says in a few words what went wrong.

The calls go through the process's one WeChat platform client (wechatkit), which the WeChat face adapter
shares: one access token, refreshed once when WeChat refuses it, and one table of the errcodes every endpoint
may answer. Here are the endpoints' own: login (`LOGIN_ERRCODES`) and `subscribe/send`
(`SUBSCRIBE_ERRCODES`): 43101 → `SubscribeMessageRefused` (the citizen has not subscribed, or
cancelled), 40003/40037/47003/41030 and any code not in the table → `SubscribeMessageRejected` (the message
itself is wrong; sending it again cannot help); busy, quota and configuration codes → `WeChatUnavailable`.

Secrets: WeChat takes the app secret, the login code and the access token in the query string, so neither the
URL nor a requests exception's text (which quotes the URL) may be logged; we log exception class names and
errcodes only. The session_key never leaves the server and is never logged (`WeChatSession` hides it from
repr); openids are not logged either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, current_app

import wechatkit as kit
from app.errors import Forbidden, Unauthorized, UpstreamUnavailable
from wechatkit import WeChatPlatform, platform_for

log = logging.getLogger(__name__)

# openid and unionid are short URL-safe strings; anything else is a malformed answer (and must not reach a
# 64-character database column or a log line).
WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

SUBSCRIBE_SEND_PATH = "/cgi-bin/message/subscribe/send"
MINIPROGRAM_STATES = ("developer", "trial", "formal")


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


# Login (jscode2session): the errcodes particular to it (the common ones are the platform client's). Any other
# is logged and becomes WeChatUnavailable.
LOGIN_ERRCODES: dict[int, type[Exception]] = {
    40029: WeChatCodeInvalid,  # invalid or expired code (a code lives 5 minutes)
    40163: WeChatCodeInvalid,  # code already used (a code works once)
    40226: WeChatUserBlocked,  # WeChat's risk control blocks this user
}

# subscribe/send: its own errcodes. Any other is logged and becomes SubscribeMessageRejected: an unknown answer
# is not retried blindly.
SUBSCRIBE_ERRCODES: dict[int, type[SubscribeMessageError]] = {
    43101: SubscribeMessageRefused,  # user refuses to accept the msg (not subscribed, or cancelled)
    40003: SubscribeMessageRejected,  # touser: openid empty or invalid
    40037: SubscribeMessageRejected,  # template_id empty or invalid
    47003: SubscribeMessageRejected,  # template data invalid (errmsg names the field)
    41030: SubscribeMessageRejected,  # page does not exist in the released mini-program
}


@dataclass(frozen=True)
class WeChatSession:
    """What jscode2session returns for a good code."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


class WeChatClient:
    """Login and subscription messages for the app, over the process's WeChat platform client (wechatkit)."""

    def __init__(self, platform: WeChatPlatform):
        self.platform = platform

    @classmethod
    def from_config(cls, config) -> WeChatClient:
        """The client for the WECHAT_* settings of `config`, sharing the process's platform client (and so its
        access token) with the WeChat face adapter."""
        return cls(platform_for(base_url=config["WECHAT_API_BASE"], appid=config["WECHAT_APPID"],
                                secret=config["WECHAT_SECRET"], timeout=float(config["WECHAT_TIMEOUT_SECONDS"])))

    def __repr__(self) -> str:
        return f"<WeChatClient {self.platform.base_url} appid={self.platform.appid}>"

    def code2session(self, code: str) -> WeChatSession:
        """Exchange a mini-program login code for the user's openid, session_key and unionid."""
        path = "/sns/jscode2session"
        with _as_app_errors():
            try:
                body = self.platform.get(path, {"js_code": code, "grant_type": "authorization_code"},
                                         with_secret=True)
            except kit.WeChatRefused as exc:
                error = LOGIN_ERRCODES.get(exc.errcode)
                if error is None:
                    log.warning("WeChat %s answered unexpected errcode %r: %s", path, exc.errcode, exc.errmsg)
                    raise WeChatUnavailable(detail=str(exc)) from None
                raise error() from None
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
        with _as_app_errors():
            try:
                answer = self.platform.post(SUBSCRIBE_SEND_PATH, body)
            except kit.WeChatRefused as exc:
                error = SUBSCRIBE_ERRCODES.get(exc.errcode)
                if error is None:
                    log.warning("WeChat subscribe/send answered unexpected errcode %r: %s", exc.errcode, exc.errmsg)
                    error = SubscribeMessageRejected
                else:
                    log.info("WeChat subscribe/send answered errcode %s", exc.errcode)
                raise error(exc.errcode, exc.errmsg) from None
        msgid = answer.get("msgid")
        return str(msgid)[:32] if isinstance(msgid, int | str) and not isinstance(msgid, bool) else None


@contextmanager
def _as_app_errors() -> Iterator[None]:
    """The platform client's unavailability as the API's 503 (the misconfigured kind kept apart)."""
    try:
        yield
    except kit.WeChatMisconfigured as exc:
        raise WeChatMisconfigured(detail=exc.detail) from None
    except kit.WeChatUnavailable as exc:
        message = "微信服务响应超时,请稍后再试" if exc.timed_out else None
        raise WeChatUnavailable(message, detail=exc.detail) from None


def init_app(app: Flask) -> None:
    """Put the configured client in `app.extensions["wechat"]`."""
    app.extensions["wechat"] = WeChatClient.from_config(app.config)


def client() -> WeChatClient:
    """The WeChat client of the current app."""
    return current_app.extensions["wechat"]
