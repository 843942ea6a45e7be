"""The WeChat stand-in's face-verification routes, spoken to directly over HTTP as WeChat's API is."""

from __future__ import annotations

import json
import time

import pytest
import requests

from app.sandbox.server import serve
from app.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET, create_wechat_app, sandbox_cert_hash
from identity.wechat import (
    ERR_CERT_HASH_MISMATCH,
    ERR_NOT_VERIFIED,
    ERR_OPENID_MISMATCH,
    ERR_OUT_SEQ_NO_MISMATCH,
    ERR_VERIFY_ID_EXPIRED,
    ERR_VERIFY_ID_UNKNOWN,
)

NAME, ID_NUMBER = "张伟", "410105198503120013"
CERT_INFO = {"cert_type": "IDENTITY_CARD", "cert_name": NAME, "cert_no": ID_NUMBER}


class StandIn:
    """A client speaking WeChat's protocol to the stand-in."""

    def __init__(self, url: str):
        self.url = url

    def token(self, **params) -> dict:
        query = {"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET, **params}
        return requests.get(f"{self.url}/cgi-bin/token", params=query, timeout=5).json()

    def post(self, path: str, body, token: str | None) -> requests.Response:
        params = {"access_token": token} if token is not None else {}
        kwargs = {"json": body} if not isinstance(body, bytes) else {"data": body}
        return requests.post(f"{self.url}/cityservice/face/identify/{path}", params=params, timeout=5, **kwargs)

    def getverifyid(self, token: str, **overrides) -> dict:
        body = {"out_seq_no": "seq-1", "cert_info": CERT_INFO, "openid": "alice", **overrides}
        return self.post("getverifyid", body, token).json()

    def query(self, token: str, vid: str, **overrides) -> dict:
        body = {"verify_id": vid, "out_seq_no": "seq-1", "openid": "alice",
                "cert_hash": sandbox_cert_hash("IDENTITY_CARD", NAME, ID_NUMBER), **overrides}
        return self.post("queryverifyinfo", body, token).json()

    def phone(self, verify_id: str, result) -> requests.Response:
        return requests.post(f"{self.url}/_sandbox/face/{verify_id}", json={"result": result}, timeout=5)


@pytest.fixture(scope="module")
def stand_in():
    server = serve(create_wechat_app(token_ttl_seconds=600))
    yield StandIn(server.url)
    server.stop()


@pytest.fixture
def token(stand_in) -> str:
    return stand_in.token()["access_token"]


def test_cert_hash_is_wechats():
    assert sandbox_cert_hash("IDENTITY_CARD", "张三", "310101199801011234") == (
        "3c241f7ff324977aeb91f173bb2a7b06569e6fd784d5573db34a636d8671108b"
    )


def test_token_issues_a_fresh_token_with_its_lifetime(stand_in):
    first, second = stand_in.token(), stand_in.token()
    assert first["expires_in"] == 600 and first["access_token"] != second["access_token"]


@pytest.mark.parametrize(
    ("params", "errcode"),
    [({"grant_type": "password"}, 40002), ({"appid": "wx-other"}, 40013), ({"secret": "wrong"}, 40125)],
)
def test_token_checks_its_parameters(stand_in, params, errcode):
    answer = stand_in.token(**params)
    assert answer["errcode"] == errcode and "rid:" in answer["errmsg"]


@pytest.mark.parametrize(("access_token", "errcode"), [(None, 41001), ("", 41001), ("forged", 40001)])
def test_face_routes_check_the_access_token(stand_in, access_token, errcode):
    for path in ("getverifyid", "queryverifyinfo"):
        assert stand_in.post(path, {}, access_token).json()["errcode"] == errcode


def test_expired_tokens_answer_42001(stand_in):
    token = stand_in.token()["access_token"]
    assert requests.post(f"{stand_in.url}/_sandbox/tokens/expire", timeout=5).status_code == 204
    assert stand_in.getverifyid(token)["errcode"] == 42001
    assert "errcode" not in stand_in.token()  # new tokens work again
    assert stand_in.getverifyid(stand_in.token()["access_token"])["errcode"] == 0


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (b"not json", 47001),
        ([1, 2], 47001),
        ({"out_seq_no": "seq-1", "openid": "alice"}, 40097),
        ({"out_seq_no": "seq-1", "openid": "alice", "cert_info": {**CERT_INFO, "cert_type": "PASSPORT"}}, 40097),
        ({"out_seq_no": "", "openid": "alice", "cert_info": CERT_INFO}, 40097),
        ({"out_seq_no": "seq-1", "openid": "al ice", "cert_info": CERT_INFO}, 40097),
    ],
)
def test_getverifyid_checks_its_body(stand_in, token, body, errcode):
    assert stand_in.post("getverifyid", body, token).json()["errcode"] == errcode


def test_getverifyid_answers_a_verify_id_and_its_lifetime(stand_in, token):
    answer = stand_in.getverifyid(token)
    assert answer["errcode"] == 0 and answer["expires_in"] == 3600
    assert answer["verify_id"].startswith("sbxv-") and len(answer["verify_id"]) <= 256


def test_a_verification_is_pending_until_the_phone_reports(stand_in, token):
    verify_id = stand_in.getverifyid(token)["verify_id"]
    assert stand_in.query(token, verify_id)["errcode"] == ERR_NOT_VERIFIED
    assert stand_in.phone(verify_id, "pass").status_code == 204
    assert stand_in.query(token, verify_id) == {"errcode": 0, "errmsg": "ok", "verify_ret": 10000}
    state = requests.get(f"{stand_in.url}/_sandbox/face/{verify_id}", timeout=5).json()
    assert state == {"queries": 2, "result": "pass"}


@pytest.mark.parametrize(
    ("override", "errcode"),
    [
        ({"out_seq_no": "seq-2"}, ERR_OUT_SEQ_NO_MISMATCH),
        ({"openid": "mallory"}, ERR_OPENID_MISMATCH),
        ({"cert_hash": sandbox_cert_hash("IDENTITY_CARD", "李娜", ID_NUMBER)}, ERR_CERT_HASH_MISMATCH),
        ({"cert_hash": sandbox_cert_hash("IDENTITY_CARD", NAME, "410102199207040225")}, ERR_CERT_HASH_MISMATCH),
        ({"verify_id": "sbxv-never-issued"}, ERR_VERIFY_ID_UNKNOWN),
    ],
)
def test_queryverifyinfo_checks_the_binding(stand_in, token, override, errcode):
    verify_id = stand_in.getverifyid(token)["verify_id"]
    stand_in.phone(verify_id, "pass")
    assert stand_in.query(token, verify_id, **override)["errcode"] == errcode


@pytest.mark.parametrize(
    ("word", "verify_ret"),
    [("no_match", 10004), ("id_mismatch", 10003), ("not_live", 90011), ("poor_quality", 10002),
     ("cancelled", 90004), ("timeout", 90017), ("unknown_ret", 99999)],
)
def test_phone_results_become_verify_ret_values(stand_in, token, word, verify_ret):
    verify_id = stand_in.getverifyid(token)["verify_id"]
    stand_in.phone(verify_id, word)
    assert stand_in.query(token, verify_id)["verify_ret"] == verify_ret


def test_faults_per_verify_id(stand_in, token):
    verify_id = stand_in.getverifyid(token)["verify_id"]
    stand_in.phone(verify_id, "busy")
    assert stand_in.query(token, verify_id)["errcode"] == -1
    stand_in.phone(verify_id, "http500")
    body = {"verify_id": verify_id, "out_seq_no": "seq-1", "openid": "alice", "cert_hash": "x"}
    assert stand_in.post("queryverifyinfo", body, token).status_code == 500
    stand_in.phone(verify_id, "noret")
    assert stand_in.query(token, verify_id) == {"errcode": 0, "errmsg": "ok"}
    stand_in.phone(verify_id, "expired")
    assert stand_in.query(token, verify_id)["errcode"] == ERR_VERIFY_ID_EXPIRED


def test_verify_ids_expire():
    server = serve(create_wechat_app(verify_id_ttl_seconds=0.2))
    try:
        client = StandIn(server.url)
        fresh = client.token()["access_token"]
        verify_id = client.getverifyid(fresh)["verify_id"]
        client.phone(verify_id, "pass")
        time.sleep(0.3)
        assert client.query(fresh, verify_id)["errcode"] == ERR_VERIFY_ID_EXPIRED
    finally:
        server.stop()


def test_the_phone_endpoint_refuses_unknown_ids_and_words(stand_in, token):
    assert stand_in.phone("sbxv-nope", "pass").status_code == 404
    verify_id = stand_in.getverifyid(token)["verify_id"]
    assert stand_in.phone(verify_id, "great").status_code == 400
    assert stand_in.phone(verify_id, None).status_code == 400


@pytest.mark.parametrize(
    ("openid", "errcode"), [("face-busy", -1), ("face-unauthorized", 48001)],
)
def test_magic_openids_at_getverifyid(stand_in, token, openid, errcode):
    assert stand_in.getverifyid(token, openid=openid)["errcode"] == errcode


def test_the_stand_in_keeps_no_name_or_id_number(stand_in, token):
    app = create_wechat_app()  # in-process, to read its state afterwards
    with app.test_client() as client:
        issued = json.loads(client.get("/cgi-bin/token", query_string={
            "grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET}).get_data())
        client.post("/cityservice/face/identify/getverifyid", query_string={"access_token": issued["access_token"]},
                    json={"out_seq_no": "s", "cert_info": CERT_INFO, "openid": "alice"})
    state = repr(app.extensions["wechat_sandbox_face"])
    assert NAME not in state and ID_NUMBER not in state
    assert sandbox_cert_hash("IDENTITY_CARD", NAME, ID_NUMBER) in state


def test_login_magic_codes_still_work(stand_in):
    answer = requests.get(f"{stand_in.url}/sns/jscode2session", params={
        "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET, "js_code": "dev-alice",
        "grant_type": "authorization_code"}, timeout=5).json()
    assert answer["openid"] == "alice"
    invalid = requests.get(f"{stand_in.url}/sns/jscode2session", params={
        "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET, "js_code": "dev-invalid",
        "grant_type": "authorization_code"}, timeout=5).json()
    assert invalid["errcode"] == 40029
