"""The WeChat API stand-in of the development sandbox (never imported in production mode).

A small Flask app that answers like `api.weixin.qq.com`: errors are HTTP 200 with `{"errcode", "errmsg"}`,
success has no `errcode`. `flask dev` and the tests run it as a real HTTP server on 127.0.0.1.

`GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code` checks the appid (40013) and
secret (40125) it was created with, then answers by the login code:

| js_code             | answer                                                                    |
|---------------------|---------------------------------------------------------------------------|
| `dev-<openid>`      | `{openid, session_key, unionid: "dev-union-<openid>"}`; the session_key is |
|                     | random base64 each time. `<openid>` is 1-64 of `A-Z a-z 0-9 _ -`.          |
|                     | Unlike WeChat's, these codes can be used again and never expire.         |
| `dev-invalid`       | errcode 40029 (invalid code)                                              |
| `dev-used`          | errcode 40163 (code been used)                                            |
| `dev-busy`          | errcode -1 (system busy)                                                  |
| `dev-ratelimited`   | errcode 45011 (API minute-quota reached)                                  |
| `dev-risky`         | errcode 40226 (high-risk user, login blocked)                             |
| `dev-garbage`       | HTTP 200 with a body that is not JSON                                     |
| `dev-http500`       | HTTP 500 with an HTML body                                                |
| `dev-noopenid`      | `{session_key}` only: a malformed success                                 |
| `dev-slow`          | sleeps `slow_seconds` (default 10) before a normal answer for `slow`      |
| anything else       | errcode 40029                                                             |

A missing js_code answers 41008, a grant_type other than `authorization_code` 40002.

Later issues add face verification (`/cityservice/face/identify/...`) and subscription messages
(`/cgi-bin/message/subscribe/send`) as further blueprints registered in `create_wechat_app`; they share the
configuration in `app.extensions["wechat_sandbox"]` and the `wechat_error` helper.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, jsonify, request

DEFAULT_APPID = "wx-sandbox-appid"
DEFAULT_SECRET = "sandbox-wechat-secret"
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Magic codes that answer a WeChat error: js_code → (errcode, errmsg), as WeChat words them.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "dev-invalid": (40029, "invalid code"),
    "dev-used": (40163, "code been used"),
    "dev-busy": (-1, "system error"),
    "dev-ratelimited": (45011, "api minute-quota reach limit  mustslower  retry next minute"),
    "dev-risky": (40226, "invalid login, high risk user"),
}


@dataclass(frozen=True)
class SandboxConfig:
    """What the stand-in checks callers against, and how long `dev-slow` sleeps."""

    appid: str
    secret: str
    slow_seconds: float


def config() -> SandboxConfig:
    """The configuration of the stand-in serving this request."""
    return current_app.extensions["wechat_sandbox"]


def wechat_error(errcode: int, errmsg: str) -> Response:
    """An error as WeChat sends it: HTTP 200, errcode and errmsg with a request id."""
    return jsonify(errcode=errcode, errmsg=f"{errmsg}, rid: {secrets.token_hex(6)}")


sns = Blueprint("sns", __name__, url_prefix="/sns")


@sns.get("/jscode2session")
def jscode2session():
    """Exchange a mini-program login code for the user's openid and session_key."""
    args = request.args
    if args.get("appid") != config().appid:
        return wechat_error(40013, "invalid appid")
    if args.get("secret") != config().secret:
        return wechat_error(40125, "invalid appsecret")
    if args.get("grant_type") != "authorization_code":
        return wechat_error(40002, "invalid grant_type")
    code = args.get("js_code", "")
    if not code:
        return wechat_error(41008, "missing code")
    if code in ERROR_CODES:
        return wechat_error(*ERROR_CODES[code])
    if code == "dev-garbage":
        return Response("<html>upstream proxy error</html>", status=200, mimetype="text/plain")
    if code == "dev-http500":
        return Response("<html><body>500 Internal Server Error</body></html>", 500, mimetype="text/html")
    if code == "dev-noopenid":
        return jsonify(session_key=_session_key())
    if code == "dev-slow":
        time.sleep(config().slow_seconds)
    openid = code.removeprefix("dev-")
    if not code.startswith("dev-") or not OPENID.fullmatch(openid):
        return wechat_error(40029, "invalid code")
    # WeChat answers JSON with a text/plain content type; clients must not rely on the header.
    return Response(
        jsonify(openid=openid, session_key=_session_key(), unionid=f"dev-union-{openid}").get_data(),
        mimetype="text/plain",
    )


def _session_key() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


def create_wechat_app(
    *, appid: str = DEFAULT_APPID, secret: str = DEFAULT_SECRET, slow_seconds: float = 10.0
) -> Flask:
    """The stand-in as a WSGI app, accepting calls made with `appid` and `secret`."""
    app = Flask(__name__)
    app.extensions["wechat_sandbox"] = SandboxConfig(appid=appid, secret=secret, slow_seconds=slow_seconds)
    app.register_blueprint(sns)
    return app
