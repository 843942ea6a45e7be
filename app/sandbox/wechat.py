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

Face verification (人脸核身 2.0, as `identity/wechat.py` calls it)
----------------------------------------------------------------

`GET /cgi-bin/token?grant_type=client_credential&appid&secret` checks grant_type (40002), appid (40013) and
secret (40125) and issues a new random access token, valid for `token_ttl_seconds` (default 7200), each call;
earlier tokens stay valid until their own expiry.

`POST /cityservice/face/identify/getverifyid?access_token=…` `{out_seq_no, cert_info: {cert_type:
"IDENTITY_CARD", cert_name, cert_no}, openid}` → `{errcode: 0, errmsg: "ok", verify_id, expires_in}` (the
verify_id lives `verify_id_ttl_seconds`, default 3600). The stand-in keeps only the cert_hash of cert_info,
the openid and out_seq_no of each verify_id, never the name or ID number.

`POST /cityservice/face/identify/queryverifyinfo?access_token=…` `{verify_id, out_seq_no, cert_hash, openid}`
→ `{errcode: 0, errmsg: "ok", verify_ret}` once "the phone" has produced a result (below). It checks, in
this order: the access token (41001 missing, 40001 unknown, 42001 expired), the body (47001 not a JSON
object, 40097 a field missing or malformed), the verify_id (unknown: `ERR_VERIFY_ID_UNKNOWN`, past its
expiry or marked `expired`: `ERR_VERIFY_ID_EXPIRED`), then faults set for that verify_id, then the binding:
out_seq_no (`ERR_OUT_SEQ_NO_MISMATCH`), openid (`ERR_OPENID_MISMATCH`) and the cert_hash against the
cert_info given to getverifyid (`ERR_CERT_HASH_MISMATCH`), computed here independently of the adapter;
with no result yet it answers `ERR_NOT_VERIFIED`. The `ERR_*` numbers are the provisional ones of
`identity.wechat` (its docstring says why).

What the phone did — stand-in only: `POST /_sandbox/face/<verify_id>` `{"result": <word>}` (204; unknown
verify_id 404, unknown word 400):

| word           | queryverifyinfo answers                                   |
|----------------|-----------------------------------------------------------|
| `pass`         | verify_ret 10000 (识别成功)                                |
| `no_match`     | verify_ret 10004 (比对人脸信息不匹配)                      |
| `id_mismatch`  | verify_ret 10003 (身份证号不匹配)                          |
| `not_live`     | verify_ret 90011 (人脸数据采集无效)                        |
| `poor_quality` | verify_ret 10002 (人脸特征检测失败)                        |
| `cancelled`    | verify_ret 90004 (用户在识别过程中取消)                    |
| `timeout`      | verify_ret 90017 (识别过程超时)                            |
| `unknown_ret`  | verify_ret 99999 (a value no table knows)                 |
| `expired`      | `ERR_VERIFY_ID_EXPIRED`, as if its time had run out        |
| `busy`         | errcode -1 (system busy)                                  |
| `http500`      | HTTP 500 with an HTML body                                |
| `garbage`      | HTTP 200 with a body that is not JSON                     |
| `noret`        | `{errcode: 0, errmsg: "ok"}` without verify_ret            |
| `slow`         | sleeps `slow_seconds`, then answers as for `pass`          |

`POST /_sandbox/tokens/expire` (204): every access token issued so far answers 42001 from now on (to
exercise the adapter's refresh-and-retry). `GET /_sandbox/face/<verify_id>` → `{queries, result}` (how
often queryverifyinfo was asked about it, and the word set).

Magic openids at getverifyid: `face-busy` → errcode -1, `face-unauthorized` → 48001 (API not authorised),
`face-http500` → HTTP 500, `face-garbage` → a body that is not JSON, `face-noverifyid` → `{errcode: 0}`
without a verify_id, `face-slow` → sleeps `slow_seconds` before a normal answer.

Subscription messages (subscribeMessage.send)
---------------------------------------------

`POST /cgi-bin/message/subscribe/send?access_token=…` `{touser, template_id, data, page?, miniprogram_state?,
lang?}` → `{errcode: 0, errmsg: "ok", msgid}`. It checks, in this order: the access token (as the face routes
do: 41001, 40001, 42001), the body (47001 not a JSON object), `touser` (40003 missing or not an openid),
`template_id` (40037 missing or not one of the stand-in's templates), `page` (41030 not a string of at most
1024 characters), `miniprogram_state` / `lang` (47003 not one of WeChat's values), then `data` against the
template (47003 with the field named in errmsg, as WeChat does: a key missing or unknown, a value that is
not a string or breaks the rules of its type: thing ≤ 20 characters, phrase ≤ 5 Chinese characters,
character_string ≤ 32 ASCII letters, digits or symbols, time a 24-hour time with an optional date, number
≤ 32 digits). Then the magic openids below; anything else is accepted and recorded.

The stand-in's templates (`SANDBOX_TEMPLATES`, as the mini-program's console would list them):
`sandbox-status-template` (办理进度通知): thing1 事项名称, phrase2 办理状态, time3 更新时间,
character_string4 申请编号, thing5 备注; `sandbox-account-template` (账号安全提醒): thing1 变更事项,
time2 变更时间, thing3 温馨提示.

Magic openids (by prefix), to exercise the notification worker's outcomes:

| touser        | subscribe/send answers                                                    |
|---------------|---------------------------------------------------------------------------|
| `refuse-…`    | errcode 43101 (user refuse to accept the msg: not subscribed or cancelled) |
| `flaky-…`     | errcode -1 (system busy) for the first send to that openid, then accepts   |
| `busy-…`      | errcode -1 every time                                                      |
| `http500-…`   | HTTP 500 with an HTML body every time                                      |
| `unknown-…`   | errcode 40003 (an openid that is not a user of this mini-program)          |

Stand-in only: `GET /_sandbox/messages[?touser=…]` → `{messages: [{msgid, touser, template_id, page, data,
miniprogram_state, lang}, …], attempts}` (accepted messages, oldest first; `attempts` counts every send to
that touser, refused and failed ones included, or all sends without `touser`); `DELETE /_sandbox/messages`
(204) forgets them, and the attempts that `flaky-…` counts.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from identity.wechat import (
    ERR_CERT_HASH_MISMATCH,
    ERR_NOT_VERIFIED,
    ERR_OPENID_MISMATCH,
    ERR_OUT_SEQ_NO_MISMATCH,
    ERR_VERIFY_ID_EXPIRED,
    ERR_VERIFY_ID_UNKNOWN,
)

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
    token_ttl_seconds: float = 7200.0
    verify_id_ttl_seconds: float = 3600.0


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


# --- face verification (人脸核身 2.0) --------------------------------------------------------------------

FACE_OPENID_FAULTS = {"face-busy", "face-unauthorized", "face-http500", "face-garbage", "face-noverifyid", "face-slow"}
# What the phone did → the verify_ret queryverifyinfo answers.
PHONE_RESULTS: dict[str, int] = {
    "pass": 10000,
    "no_match": 10004,
    "id_mismatch": 10003,
    "not_live": 90011,
    "poor_quality": 10002,
    "cancelled": 90004,
    "timeout": 90017,
    "unknown_ret": 99999,
    "slow": 10000,
}
# Words that make queryverifyinfo misbehave instead of answering a verify_ret.
FACE_FAULTS = {"expired", "busy", "http500", "garbage", "noret"}


@dataclass
class FaceSession:
    """What the stand-in remembers of one verify_id (no name, no ID number)."""

    cert_hash: str
    openid: str
    out_seq_no: str
    expires_at: float
    result: str | None = None
    queries: int = 0


@dataclass
class FaceState:
    """The stand-in's tokens and verify_ids, shared by its request threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, float] = field(default_factory=dict)  # access token → monotonic expiry
    sessions: dict[str, FaceSession] = field(default_factory=dict)


def face_state() -> FaceState:
    """The face-verification state of the stand-in serving this request."""
    return current_app.extensions["wechat_sandbox_face"]


def sandbox_cert_hash(cert_type: str, cert_name: str, cert_no: str) -> str:
    """WeChat's cert_hash, computed here independently of identity.wechat so each checks the other."""
    encoded = [base64.b64encode(value.encode("utf-8")).decode("ascii") for value in (cert_type, cert_name, cert_no)]
    text = "cert_type={}&cert_name={}&cert_no={}".format(*encoded)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _json_text(**body) -> Response:
    # WeChat answers JSON with a text/plain content type; clients must not rely on the header.
    return Response(jsonify(**body).get_data(), mimetype="text/plain")


cgi = Blueprint("cgi", __name__, url_prefix="/cgi-bin")


@cgi.get("/token")
def token():
    """The mini-program's access token (client_credential grant)."""
    args = request.args
    if args.get("grant_type") != "client_credential":
        return wechat_error(40002, "invalid grant_type")
    if args.get("appid") != config().appid:
        return wechat_error(40013, "invalid appid")
    if args.get("secret") != config().secret:
        return wechat_error(40125, "invalid appsecret")
    access_token = secrets.token_urlsafe(32)
    state = face_state()
    with state.lock:
        state.tokens[access_token] = time.monotonic() + config().token_ttl_seconds
    return _json_text(access_token=access_token, expires_in=int(config().token_ttl_seconds))


def _token_error() -> Response | None:
    """The WeChat error for this request's access_token, if it is missing, unknown or expired."""
    access_token = request.args.get("access_token", "")
    if not access_token:
        return wechat_error(41001, "access_token missing")
    state = face_state()
    with state.lock:
        expires_at = state.tokens.get(access_token)
    if expires_at is None:
        return wechat_error(40001, "invalid credential, access_token is invalid or not latest")
    if time.monotonic() >= expires_at:
        return wechat_error(42001, "access_token expired")
    return None


def _json_body() -> dict | None:
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def _text(value, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


face = Blueprint("face", __name__, url_prefix="/cityservice/face/identify")


@face.post("/getverifyid")
def getverifyid():
    """Open a face verification for a name + ID number and an openid."""
    if (error := _token_error()) is not None:
        return error
    body = _json_body()
    if body is None:
        return wechat_error(47001, "data format error")
    cert_info = body.get("cert_info")
    cert_info = cert_info if isinstance(cert_info, dict) else {}
    out_seq_no, openid = _text(body.get("out_seq_no"), 64), _text(body.get("openid"), 64)
    cert_name, cert_no = _text(cert_info.get("cert_name"), 64), _text(cert_info.get("cert_no"), 32)
    if cert_info.get("cert_type") != "IDENTITY_CARD" or not all((out_seq_no, openid, cert_name, cert_no)) \
            or not OPENID.fullmatch(openid):
        return wechat_error(40097, "invalid args")
    if openid in FACE_OPENID_FAULTS:
        fault = openid.removeprefix("face-")
        if fault == "busy":
            return wechat_error(-1, "system error")
        if fault == "unauthorized":
            return wechat_error(48001, "api unauthorized")
        if fault == "http500":
            return Response("<html><body>500 Internal Server Error</body></html>", 500, mimetype="text/html")
        if fault == "garbage":
            return Response("<html>upstream proxy error</html>", status=200, mimetype="text/plain")
        if fault == "noverifyid":
            return _json_text(errcode=0, errmsg="ok")
        time.sleep(config().slow_seconds)  # face-slow
    verify_id = f"sbxv-{secrets.token_urlsafe(24)}"
    ttl = config().verify_id_ttl_seconds
    state = face_state()
    with state.lock:
        state.sessions[verify_id] = FaceSession(
            cert_hash=sandbox_cert_hash("IDENTITY_CARD", cert_name, cert_no),
            openid=openid,
            out_seq_no=out_seq_no,
            expires_at=time.monotonic() + ttl,
        )
    return _json_text(errcode=0, errmsg="ok", verify_id=verify_id, expires_in=max(1, round(ttl)))


@face.post("/queryverifyinfo")
def queryverifyinfo():
    """The result of a face verification, for the caller that opened it."""
    if (error := _token_error()) is not None:
        return error
    body = _json_body()
    if body is None:
        return wechat_error(47001, "data format error")
    verify_id, out_seq_no = _text(body.get("verify_id"), 256), _text(body.get("out_seq_no"), 64)
    cert_hash, openid = _text(body.get("cert_hash"), 64), _text(body.get("openid"), 64)
    if not all((verify_id, out_seq_no, cert_hash, openid)):
        return wechat_error(40097, "invalid args")
    state = face_state()
    with state.lock:
        session = state.sessions.get(verify_id)
        if session is not None:
            session.queries += 1
    if session is None:
        return wechat_error(ERR_VERIFY_ID_UNKNOWN, "verify_id not exist")
    if session.result == "expired" or time.monotonic() >= session.expires_at:
        return wechat_error(ERR_VERIFY_ID_EXPIRED, "verify_id expired")
    if session.result == "busy":
        return wechat_error(-1, "system error")
    if session.result == "http500":
        return Response("<html><body>500 Internal Server Error</body></html>", 500, mimetype="text/html")
    if session.result == "garbage":
        return Response("<html>upstream proxy error</html>", status=200, mimetype="text/plain")
    if session.result == "slow":
        time.sleep(config().slow_seconds)
    if out_seq_no != session.out_seq_no:
        return wechat_error(ERR_OUT_SEQ_NO_MISMATCH, "out_seq_no not match")
    if openid != session.openid:
        return wechat_error(ERR_OPENID_MISMATCH, "openid not match")
    if not secrets.compare_digest(cert_hash, session.cert_hash):
        return wechat_error(ERR_CERT_HASH_MISMATCH, "cert_hash not match")
    if session.result is None:
        return wechat_error(ERR_NOT_VERIFIED, "user has not finished face verification")
    if session.result == "noret":
        return _json_text(errcode=0, errmsg="ok")
    return _json_text(errcode=0, errmsg="ok", verify_ret=PHONE_RESULTS[session.result])


control = Blueprint("wechat_sandbox_control", __name__, url_prefix="/_sandbox")


@control.post("/face/<verify_id>")
def set_face_result(verify_id: str):
    """Stand-in only: what the citizen's phone did for this verify_id (see the module docstring)."""
    body = request.get_json(force=True, silent=True)
    word = body.get("result") if isinstance(body, dict) else None
    if word not in PHONE_RESULTS and word not in FACE_FAULTS:
        return jsonify(error="unknown result", results=sorted({*PHONE_RESULTS, *FACE_FAULTS})), 400
    state = face_state()
    with state.lock:
        session = state.sessions.get(verify_id)
        if session is None:
            return jsonify(error="unknown verify_id"), 404
        session.result = word
    return Response(status=204)


@control.get("/face/<verify_id>")
def get_face_session(verify_id: str):
    """Stand-in only: how often queryverifyinfo was asked about this verify_id, and its result word."""
    state = face_state()
    with state.lock:
        session = state.sessions.get(verify_id)
        if session is None:
            return jsonify(error="unknown verify_id"), 404
        return jsonify(queries=session.queries, result=session.result)


@control.post("/tokens/expire")
def expire_tokens():
    """Stand-in only: every access token issued so far is expired from now on."""
    state = face_state()
    with state.lock:
        now = time.monotonic()
        for issued in state.tokens:
            state.tokens[issued] = min(state.tokens[issued], now)
    return Response(status=204)


# --- subscription messages (subscribeMessage.send) ----------------------------------------------------

# template id → {data key: value type}, as the mini-program's console lists its subscription templates.
SANDBOX_TEMPLATES: dict[str, dict[str, str]] = {
    "sandbox-status-template": {
        "thing1": "thing",  # 事项名称
        "phrase2": "phrase",  # 办理状态
        "time3": "time",  # 更新时间
        "character_string4": "character_string",  # 申请编号
        "thing5": "thing",  # 备注
    },
    "sandbox-account-template": {
        "thing1": "thing",  # 变更事项
        "time2": "time",  # 变更时间
        "thing3": "thing",  # 温馨提示
    },
}
# WeChat's rules for template values, by type (its "订阅消息参数值内容限制" table).
_TIME = r"(?:\d{4}年\d{1,2}月\d{1,2}日 ?|\d{4}-\d{1,2}-\d{1,2} ?)?(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_DATE = r"\d{4}年\d{1,2}月\d{1,2}日(?: ?(?:[01]?\d|2[0-3]):[0-5]\d)?"
VALUE_RULES: dict[str, re.Pattern] = {
    "thing": re.compile(r"[^\n\r]{1,20}"),
    "phrase": re.compile(r"[\u4e00-\u9fff]{1,5}"),
    "character_string": re.compile(r"[\x21-\x7e]{1,32}"),
    "number": re.compile(r"\d{1,32}(?:\.\d+)?"),
    "time": re.compile(f"{_TIME}(?:~{_TIME})?"),
    "date": re.compile(f"{_DATE}(?:~{_DATE})?"),
}
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


@dataclass
class MessageState:
    """The subscription messages the stand-in accepted, and how often each touser was sent to."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[dict] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    next_msgid: int = 3_000_000_000_000_000_000


def message_state() -> MessageState:
    """The subscription-message state of the stand-in serving this request."""
    return current_app.extensions["wechat_sandbox_messages"]


subscribe = Blueprint("subscribe", __name__, url_prefix="/cgi-bin/message/subscribe")


@subscribe.post("/send")
def send_subscribe_message():
    """Send a subscription message to a mini-program user (see the module docstring for the checks)."""
    if (error := _token_error()) is not None:
        return error
    body = _json_body()
    if body is None:
        return wechat_error(47001, "data format error")
    touser, template_id = body.get("touser"), body.get("template_id")
    if not isinstance(touser, str) or not OPENID.fullmatch(touser):
        return wechat_error(40003, "invalid openid")
    template = SANDBOX_TEMPLATES.get(template_id) if isinstance(template_id, str) else None
    if template is None:
        return wechat_error(40037, "invalid template_id")
    page = body.get("page")
    if page is not None and not (isinstance(page, str) and len(page) <= 1024):
        return wechat_error(41030, "invalid page")
    state_value, lang = body.get("miniprogram_state", "formal"), body.get("lang", "zh_CN")
    if state_value not in ("developer", "trial", "formal"):
        return wechat_error(47003, "argument invalid! miniprogram_state")
    if lang not in LANGS:
        return wechat_error(47003, "argument invalid! lang")
    if (problem := _data_problem(body.get("data"), template)) is not None:
        return wechat_error(47003, f"argument invalid! {problem}")
    state = message_state()
    with state.lock:
        attempts = state.attempts[touser] = state.attempts.get(touser, 0) + 1
    if touser.startswith("refuse-"):
        return wechat_error(43101, "user refuse to accept the msg")
    if touser.startswith("busy-") or (touser.startswith("flaky-") and attempts == 1):
        return wechat_error(-1, "system error")
    if touser.startswith("http500-"):
        return Response("<html><body>500 Internal Server Error</body></html>", 500, mimetype="text/html")
    if touser.startswith("unknown-"):
        return wechat_error(40003, "invalid openid")
    with state.lock:
        msgid = state.next_msgid
        state.next_msgid += 1
        state.messages.append({
            "msgid": msgid, "touser": touser, "template_id": template_id, "page": page,
            "data": body["data"], "miniprogram_state": state_value, "lang": lang,
        })
    return _json_text(errcode=0, errmsg="ok", msgid=msgid)


def _data_problem(data, template: dict[str, str]) -> str | None:
    """What is wrong with `data` for `template`, worded like WeChat's 47003 errmsg; None when it is valid."""
    if not isinstance(data, dict):
        return "data"
    for key in data:
        if key not in template:
            return f"data.{key} not in template"
    for key, kind in template.items():
        entry = data.get(key)
        value = entry.get("value") if isinstance(entry, dict) else None
        if value is None or value == "":
            return f"data.{key}.value is empty"
        if not isinstance(value, str) or not VALUE_RULES[kind].fullmatch(value):
            return f"data.{key}.value invalid for {kind}"
    return None


@control.get("/messages")
def list_messages():
    """Stand-in only: the accepted subscription messages (to one touser with `?touser=`) and the attempts."""
    touser = request.args.get("touser")
    state = message_state()
    with state.lock:
        messages = [m for m in state.messages if touser is None or m["touser"] == touser]
        attempts = state.attempts.get(touser, 0) if touser is not None else sum(state.attempts.values())
    return jsonify(messages=messages, attempts=attempts)


@control.delete("/messages")
def clear_messages():
    """Stand-in only: forget every accepted message and every attempt count."""
    state = message_state()
    with state.lock:
        state.messages.clear()
        state.attempts.clear()
    return Response(status=204)


def create_wechat_app(
    *,
    appid: str = DEFAULT_APPID,
    secret: str = DEFAULT_SECRET,
    slow_seconds: float = 10.0,
    token_ttl_seconds: float = 7200.0,
    verify_id_ttl_seconds: float = 3600.0,
) -> Flask:
    """The stand-in as a WSGI app, accepting calls made with `appid` and `secret`."""
    app = Flask(__name__)
    app.extensions["wechat_sandbox"] = SandboxConfig(
        appid=appid,
        secret=secret,
        slow_seconds=slow_seconds,
        token_ttl_seconds=token_ttl_seconds,
        verify_id_ttl_seconds=verify_id_ttl_seconds,
    )
    app.extensions["wechat_sandbox_face"] = FaceState()
    app.extensions["wechat_sandbox_messages"] = MessageState()
    app.register_blueprint(sns)
    app.register_blueprint(cgi)
    app.register_blueprint(face)
    app.register_blueprint(subscribe)
    app.register_blueprint(control)
    return app
