"""One client of the WeChat mini-program server API, shared by everything that calls it (login, subscription
messages, 人脸核身): one access-token cache per mini-program and process, one table of the errcodes every
endpoint may answer, one way of reading WeChat's answers. Flask-free; it uses only httpkit.

    platform = WeChatPlatform(base_url=..., appid=..., secret=..., timeout=5.0)
    platform.get("/sns/jscode2session", {...})                 # no access token
    platform.post("/cgi-bin/message/subscribe/send", {...})    # with the access token, refreshed once if refused

Errors: `WeChatUnavailable` (transport, HTTP status, malformed answer, busy or quota codes; `detail` says
which in a few words, never a secret), `WeChatMisconfigured` (WeChat refused this server's appid, secret,
IP or permissions: an operator must act) and `WeChatRefused` (an errcode particular to the endpoint, for the
caller's own table to read).
"""

from wechatkit.platform import (
    COMMON_ERRCODES,
    TOKEN_ERRCODES,
    AccessTokenCache,
    WeChatError,
    WeChatMisconfigured,
    WeChatPlatform,
    WeChatRefused,
    WeChatUnavailable,
    platform_for,
    short_errmsg,
)

__all__ = [
    "COMMON_ERRCODES",
    "TOKEN_ERRCODES",
    "AccessTokenCache",
    "WeChatError",
    "WeChatMisconfigured",
    "WeChatPlatform",
    "WeChatRefused",
    "WeChatUnavailable",
    "platform_for",
    "short_errmsg",
]
