"""The WeChat client and its stand-in, over real HTTP on 127.0.0.1, and the login endpoint's errors."""

import base64
import logging
import os
import subprocess
import sys
import time

import pytest
import requests

from app.integrations.wechat import (
    WeChatClient,
    WeChatCodeInvalid,
    WeChatMisconfigured,
    WeChatSession,
    WeChatUnavailable,
    WeChatUserBlocked,
)
from app.sandbox.server import serve
from app.sandbox.wechat import create_wechat_app
from httpkit.session import create_session
from tests.helpers import PRODUCTION_SETTINGS
from wechatkit import WeChatPlatform

APPID, SECRET = "wx-sandbox-appid", "sandbox-wechat-secret"


def make_client(base_url: str, *, appid=APPID, secret=SECRET, timeout=2.0) -> WeChatClient:
    return WeChatClient(WeChatPlatform(base_url=base_url, appid=appid, secret=secret, timeout=timeout,
                                       session=create_session(timeout=timeout)))


def our_log(caplog) -> str:
    """What our code logged (the stand-in's own access log quotes the URL WeChat receives)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))


# --- the client against the stand-in ---------------------------------------------------------------

def test_code2session_returns_openid_session_key_and_unionid(wechat_server):
    session = make_client(wechat_server.url).code2session("dev-alice_01")
    assert isinstance(session, WeChatSession)
    assert (session.openid, session.unionid) == ("alice_01", "dev-union-alice_01")
    assert len(base64.b64decode(session.session_key)) == 16
    assert session.session_key not in repr(session)


def test_each_call_gets_a_new_session_key(wechat_server):
    client = make_client(wechat_server.url)
    assert client.code2session("dev-bob").session_key != client.code2session("dev-bob").session_key


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("dev-invalid", WeChatCodeInvalid),
        ("dev-used", WeChatCodeInvalid),
        ("not-a-sandbox-code", WeChatCodeInvalid),
        ("dev-risky", WeChatUserBlocked),
        ("dev-busy", WeChatUnavailable),
        ("dev-ratelimited", WeChatUnavailable),
        ("dev-garbage", WeChatUnavailable),
        ("dev-http500", WeChatUnavailable),
        ("dev-noopenid", WeChatUnavailable),
    ],
)
def test_error_codes_map_to_typed_errors(wechat_server, code, error):
    with pytest.raises(error) as raised:
        make_client(wechat_server.url).code2session(code)
    assert type(raised.value) is error


def test_error_statuses_and_codes():
    assert (WeChatCodeInvalid.status_code, WeChatCodeInvalid.error) == (401, "wechat_code_invalid")
    assert (WeChatUserBlocked.status_code, WeChatUserBlocked.error) == (403, "wechat_user_blocked")
    assert (WeChatUnavailable.status_code, WeChatUnavailable.error) == (503, "upstream_unavailable")
    assert (WeChatMisconfigured.status_code, WeChatMisconfigured.error) == (503, "upstream_unavailable")


def test_slow_wechat_times_out_within_the_client_timeout(wechat_server, caplog):
    started = time.monotonic()
    with pytest.raises(WeChatUnavailable):
        make_client(wechat_server.url, timeout=0.3).code2session("dev-slow")
    assert time.monotonic() - started < 1.5
    assert "timed out" in our_log(caplog)


@pytest.mark.parametrize(("appid", "secret", "errcode"), [
    ("wx-wrong-appid", SECRET, "40013"),
    (APPID, "wrong-secret-do-not-log", "40125"),
])
def test_wrong_credentials_are_503_with_a_loud_log_line(wechat_server, caplog, appid, secret, errcode):
    with pytest.raises(WeChatMisconfigured):
        make_client(wechat_server.url, appid=appid, secret=secret).code2session("dev-alice")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "WECHAT_SECRET" in errors[0].getMessage() and errcode in errors[0].getMessage()
    assert secret not in our_log(caplog)


def test_unreachable_wechat_is_503_and_the_log_holds_no_secret(caplog):
    server = serve(create_wechat_app())
    url = server.url
    server.stop()  # nothing listens there now
    with pytest.raises(WeChatUnavailable):
        make_client(url, secret="secret-in-the-url").code2session("dev-alice")
    assert "ConnectionError" in our_log(caplog)
    assert "secret-in-the-url" not in our_log(caplog)


def test_client_repr_hides_the_secret(wechat_server):
    assert SECRET not in repr(make_client(wechat_server.url))


def test_stand_in_answers_like_wechat(wechat_server):
    def get(**params):
        params = {"appid": APPID, "secret": SECRET, "grant_type": "authorization_code", **params}
        return requests.get(f"{wechat_server.url}/sns/jscode2session", params=params, timeout=5)

    assert get(js_code="dev-invalid").json()["errcode"] == 40029
    assert get(js_code="dev-a").json()["openid"] == "a"
    assert get(js_code="dev-" + "x" * 65).json()["errcode"] == 40029  # not an openid WeChat would issue
    assert get().json()["errcode"] == 41008
    assert get(js_code="dev-a", grant_type="password").json()["errcode"] == 40002
    assert get(js_code="dev-a", secret="nope").json()["errcode"] == 40125
    assert get(js_code="dev-a", appid="nope").json()["errcode"] == 40013


def test_sandbox_is_not_imported_in_production_mode():
    env = {"PATH": os.environ.get("PATH", ""),
           **{name: str(value) for name, value in PRODUCTION_SETTINGS.items() if name != "SANDBOX_ENABLED"},
           # Nothing answers there: the import check must not need a database or Redis.
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "REDIS_URL": "redis://127.0.0.1:1/0"}
    code = (
        "import sys; from app import create_app; app = create_app(); "
        "assert app.config['SANDBOX_ENABLED'] is False; "
        "loaded = [m for m in sys.modules if m.startswith('app.sandbox')]; "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- the login endpoint's answers to each WeChat error ---------------------------------------------

@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("dev-invalid", 401, "wechat_code_invalid"),
        ("dev-used", 401, "wechat_code_invalid"),
        ("dev-risky", 403, "wechat_user_blocked"),
        ("dev-busy", 503, "upstream_unavailable"),
        ("dev-ratelimited", 503, "upstream_unavailable"),
        ("dev-garbage", 503, "upstream_unavailable"),
        ("dev-http500", 503, "upstream_unavailable"),
        ("dev-noopenid", 503, "upstream_unavailable"),
    ],
)
def test_login_maps_wechat_errors(client, row_counts, code, status, error):
    before = row_counts()
    response = client.post("/api/v1/auth/wechat/login", json={"code": code})
    assert response.status_code == status
    assert response.json["error"] == error
    assert response.json["code"] == status and response.json["message"]
    assert row_counts() == before


def test_login_with_slow_wechat_is_503_within_the_timeout(app, client):
    timeout = app.config["WECHAT_TIMEOUT_SECONDS"]
    started = time.monotonic()
    response = client.post("/api/v1/auth/wechat/login", json={"code": "dev-slow"})
    assert response.status_code == 503
    assert response.json["error"] == "upstream_unavailable"
    assert time.monotonic() - started < timeout + 1


def test_login_with_misconfigured_wechat_is_503(app, client, wechat_server, monkeypatch, caplog):
    monkeypatch.setitem(app.extensions, "wechat", make_client(wechat_server.url, secret="rotated-away"))
    response = client.post("/api/v1/auth/wechat/login", json={"code": "dev-alice"})
    assert response.status_code == 503
    assert response.json["error"] == "upstream_unavailable"
    assert "rotated-away" not in response.get_data(as_text=True) + our_log(caplog)


def test_login_with_unreachable_wechat_is_503(app, client, monkeypatch):
    server = serve(create_wechat_app())
    url = server.url
    server.stop()
    monkeypatch.setitem(app.extensions, "wechat", make_client(url))
    response = client.post("/api/v1/auth/wechat/login", json={"code": "dev-alice"})
    assert (response.status_code, response.json["error"]) == (503, "upstream_unavailable")


@pytest.mark.parametrize("body", [{"code": ""}, {"code": "has space"}, {"code": "x" * 129}, {"code": None}])
def test_login_rejects_malformed_codes_without_calling_wechat(client, body):
    response = client.post("/api/v1/auth/wechat/login", json=body)
    assert response.status_code == 422
    assert "code" in response.json["errors"]["json"]


def test_login_messages_and_the_face_adapter_share_one_access_token(httpserver):
    """WeChat invalidates a mini-program's older tokens when it issues a new one: the app's client and the face
    adapter built from one configuration use one platform client, so one token between them."""
    from identity.interface import Identity
    from identity.wechat import GETVERIFYID_PATH, WeChatFaceAdapter

    httpserver.expect_request("/cgi-bin/token").respond_with_json({"access_token": "tok-1", "expires_in": 7200})
    httpserver.expect_request("/cgi-bin/message/subscribe/send").respond_with_json({"errcode": 0, "msgid": 7})
    httpserver.expect_request(GETVERIFYID_PATH).respond_with_json(
        {"errcode": 0, "verify_id": "v-1", "expires_in": 3600})
    config = {"WECHAT_API_BASE": httpserver.url_for(""), "WECHAT_APPID": "wx-shared-token-test",
              "WECHAT_SECRET": SECRET, "WECHAT_TIMEOUT_SECONDS": 2.0}
    client, adapter = WeChatClient.from_config(config), WeChatFaceAdapter.from_config(config)

    assert client.send_subscribe_message("openid-1", "template-1", {"thing1": {"value": "x"}}) == "7"
    adapter.start(verification_id="ver_shared_1", identity=Identity("张伟", "410105198503120013", openid="openid-1"),
                  purpose="核验")
    paths = [request.path for request, _ in httpserver.log]
    assert paths.count("/cgi-bin/token") == 1 and len(paths) == 3
    assert {request.args["access_token"] for request, _ in httpserver.log if request.path != "/cgi-bin/token"} \
        == {"tok-1"}
