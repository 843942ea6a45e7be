"""The WeChat face adapter over real HTTP: the stand-in for WeChat's behaviour, pytest-httpserver for faults
the stand-in has no magic for. No patched functions: every call crosses a socket on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time

import pytest
from face_helpers import LI_NA, ZHANG_WEI, make_wechat_adapter
from werkzeug import Response

from identity.errors import (
    ConfigurationError,
    IdentityDataMissing,
    IdentityMismatch,
    InvalidEvidence,
    ProviderUnavailable,
    ResultPending,
    SessionExpired,
)
from identity.interface import Identity, Outcome
from identity.wechat import ERRCODE_MAP, QUERYVERIFYINFO_PATH, VERIFY_RET_MAP, cert_hash
from wechatkit import COMMON_ERRCODES, AccessTokenCache, WeChatUnavailable
from wechatkit.platform import TOKEN_PATH

PURPOSE = "住房公积金提取:核验申请人身份"


def start(adapter, identity, verification_id="ver_0001"):
    return adapter.start(verification_id=verification_id, identity=identity, purpose=PURPOSE)


# --- cert_hash ------------------------------------------------------------------------------------------

def test_cert_hash_matches_wechats_worked_example():
    # WeChat's queryVerifyInfo notes: IDENTITY_CARD / 张三 / 310101199801011234.
    assert cert_hash("张三", "310101199801011234") == (
        "3c241f7ff324977aeb91f173bb2a7b06569e6fd784d5573db34a636d8671108b"
    )


def test_the_stand_in_computes_the_same_cert_hash_independently():
    from app.sandbox.wechat import sandbox_cert_hash

    assert sandbox_cert_hash("IDENTITY_CARD", *ZHANG_WEI) == cert_hash(*ZHANG_WEI)
    assert cert_hash(*ZHANG_WEI) != cert_hash(*LI_NA)


# --- the flow -------------------------------------------------------------------------------------------

def test_start_gives_the_mini_program_its_verify_id(wechat_adapter, wechat_identity):
    session = start(wechat_adapter, wechat_identity)
    assert session.client_payload == {"verifyId": session.provider_session_id}
    assert session.provider_session_id.startswith("sbxv-")


@pytest.mark.parametrize(
    ("phone_did", "outcome", "liveness", "code"),
    [
        ("pass", Outcome.PASS, True, "10000"),
        ("no_match", Outcome.NO_MATCH, None, "10004"),
        ("id_mismatch", Outcome.NO_MATCH, None, "10003"),
        ("not_live", Outcome.NOT_LIVE, False, "90011"),
        ("poor_quality", Outcome.POOR_QUALITY, None, "10002"),
        ("cancelled", Outcome.USER_CANCELLED, None, "90004"),
        ("timeout", Outcome.TIMEOUT, None, "90017"),
        ("unknown_ret", Outcome.PROVIDER_ERROR, None, "99999"),
    ],
)
def test_verify_ret_values_map_to_outcomes(wechat_adapter, wechat_identity, phone, phone_did, outcome, liveness,
                                           code):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, phone_did)
    result = wechat_adapter.result(session=session, identity=wechat_identity, evidence={})
    assert (result.outcome, result.liveness, result.provider_code) == (outcome, liveness, code)
    assert (result.similarity, result.threshold) == (None, None)


def test_only_verify_ret_10000_passes():
    assert 10000 not in VERIFY_RET_MAP
    assert Outcome.PASS not in VERIFY_RET_MAP.values()


def test_the_clients_claim_is_ignored(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, "no_match")
    evidence = {"verifyResult": "10000", "errCode": 0, "outcome": "pass"}
    assert wechat_adapter.result(session=session, identity=wechat_identity, evidence=evidence).outcome \
        is Outcome.NO_MATCH


def test_completing_before_the_phone_finished_is_pending(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    with pytest.raises(ResultPending):
        wechat_adapter.result(session=session, identity=wechat_identity, evidence={})
    phone.did(session.provider_session_id, "pass")  # the session stayed usable
    assert wechat_adapter.result(session=session, identity=wechat_identity, evidence={}).passed


def test_evidence_must_be_an_object(wechat_adapter, wechat_identity):
    session = start(wechat_adapter, wechat_identity)
    with pytest.raises(InvalidEvidence):
        wechat_adapter.result(session=session, identity=wechat_identity, evidence=["10000"])


# --- identity binding -----------------------------------------------------------------------------------

def test_another_name_or_number_at_completion_never_passes(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, "pass")
    for other in (Identity(LI_NA[0], ZHANG_WEI[1], openid=wechat_identity.openid),
                  Identity(ZHANG_WEI[0], LI_NA[1], openid=wechat_identity.openid)):
        with pytest.raises(IdentityMismatch) as raised:
            wechat_adapter.result(session=session, identity=other, evidence={})
        assert ZHANG_WEI[1] not in str(raised.value) and cert_hash(*ZHANG_WEI) not in str(raised.value)


def test_another_wechat_user_at_completion_never_passes(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, "pass")
    with pytest.raises(IdentityMismatch):
        wechat_adapter.result(session=session, identity=dataclasses.replace(wechat_identity, openid="mallory"),
                              evidence={})


def test_another_verifications_serial_number_never_passes(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, "pass")
    with pytest.raises(IdentityMismatch):
        wechat_adapter.result(session=dataclasses.replace(session, verification_id="ver_9999"),
                              identity=wechat_identity, evidence={})


def test_the_id_number_is_normalised_the_same_way_at_both_ends(wechat_adapter, phone):
    # A lower-case check character given at start and upper case at completion is the same certificate.
    session = start(wechat_adapter, Identity("刘洋", "41012220010215047x", openid="liuyang"))
    phone.did(session.provider_session_id, "pass")
    assert wechat_adapter.result(session=session, identity=Identity("刘洋", " 41012220010215047X", openid="liuyang"),
                                 evidence={}).passed


def test_an_identity_without_openid_cannot_use_wechat(wechat_adapter):
    with pytest.raises(IdentityDataMissing) as raised:
        start(wechat_adapter, Identity(*ZHANG_WEI))
    assert raised.value.field == "openid"


# --- expiry ---------------------------------------------------------------------------------------------

def test_an_expired_verify_id_raises_session_expired(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, "expired")
    with pytest.raises(SessionExpired):
        wechat_adapter.result(session=session, identity=wechat_identity, evidence={})


def test_an_unknown_verify_id_raises_session_expired(wechat_adapter, wechat_identity):
    session = dataclasses.replace(start(wechat_adapter, wechat_identity), provider_session_id="sbxv-forgotten")
    with pytest.raises(SessionExpired):
        wechat_adapter.result(session=session, identity=wechat_identity, evidence={})


def test_the_session_expiry_follows_wechats_expires_in(quiet_werkzeug, wechat_identity):
    from app.sandbox.server import serve
    from app.sandbox.wechat import create_wechat_app

    server = serve(create_wechat_app(verify_id_ttl_seconds=1))
    adapter = make_wechat_adapter(server.url)
    try:
        session = start(adapter, wechat_identity)
        assert (session.expires_at - dataclasses.replace(session).expires_at).total_seconds() == 0
        time.sleep(1.1)
        with pytest.raises(SessionExpired):  # refused locally, before any call
            adapter.result(session=session, identity=wechat_identity, evidence={})
    finally:
        adapter.close()
        server.stop()


# --- the access token -----------------------------------------------------------------------------------

def test_an_expired_token_is_refreshed_once_and_the_call_retried(wechat_adapter, wechat_identity, phone):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, "pass")
    phone.expire_tokens()  # the cached token now answers 42001
    assert wechat_adapter.result(session=session, identity=wechat_identity, evidence={}).passed
    assert phone.queries(session.provider_session_id) == 1  # the refused call never reached the check


def test_the_token_is_cached_between_calls(httpserver, wechat_identity):
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"access_token": "tok-1", "expires_in": 7200})
    httpserver.expect_request("/cityservice/face/identify/getverifyid").respond_with_json(
        {"errcode": 0, "errmsg": "ok", "verify_id": "vid-1", "expires_in": 3600})
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        for n in range(3):
            start(adapter, wechat_identity, f"ver_{n}")
    finally:
        adapter.close()
    paths = [request.path for request, _ in httpserver.log]
    assert paths.count(TOKEN_PATH) == 1 and len(paths) == 4
    face_calls = [request for request, _ in httpserver.log if request.path != TOKEN_PATH]
    assert {request.args["access_token"] for request in face_calls} == {"tok-1"}


def test_the_request_body_is_what_wechat_documents(httpserver, wechat_identity):
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"access_token": "tok-1", "expires_in": 7200})
    httpserver.expect_request("/cityservice/face/identify/getverifyid", method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok", "verify_id": "vid-1", "expires_in": 3600})
    httpserver.expect_request(QUERYVERIFYINFO_PATH, method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok, rid: 6612ab-33cd", "verify_ret": 10000})
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        session = start(adapter, wechat_identity)
        result = adapter.result(session=session, identity=wechat_identity, evidence={})
    finally:
        adapter.close()
    (token_call, _), (get_call, _), (query_call, _) = httpserver.log
    assert dict(token_call.args) == {"grant_type": "client_credential", "appid": "wx-sandbox-appid",
                               "secret": "sandbox-wechat-secret"}
    assert json.loads(get_call.get_data()) == {
        "out_seq_no": "ver_0001", "openid": "zhangwei_openid",
        "cert_info": {"cert_type": "IDENTITY_CARD", "cert_name": "张伟", "cert_no": "410105198503120013"},
    }
    assert "张伟".encode() in get_call.get_data()  # UTF-8 text, not \\u escapes
    assert json.loads(query_call.get_data()) == {
        "verify_id": "vid-1", "out_seq_no": "ver_0001", "openid": "zhangwei_openid",
        "cert_hash": cert_hash(*ZHANG_WEI),
    }
    assert result.passed and result.provider_request_id == "6612ab-33cd"


def test_a_token_refused_twice_is_provider_unavailable(httpserver, wechat_identity):
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"access_token": "tok", "expires_in": 7200})
    httpserver.expect_request("/cityservice/face/identify/getverifyid").respond_with_json(
        {"errcode": 40001, "errmsg": "invalid credential"})
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        with pytest.raises(ProviderUnavailable):
            start(adapter, wechat_identity)
    finally:
        adapter.close()
    assert [request.path for request, _ in httpserver.log].count(TOKEN_PATH) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"errcode": 40125, "errmsg": "invalid appsecret"}, ConfigurationError),
        ({"errcode": 40001, "errmsg": "invalid credential"}, ConfigurationError),
        ({"errcode": 40164, "errmsg": "invalid ip, not in whitelist"}, ConfigurationError),
        ({"errcode": -1, "errmsg": "system error"}, ProviderUnavailable),
        ({"errcode": 45009, "errmsg": "reach max api daily quota limit"}, ProviderUnavailable),
        ({"access_token": "", "expires_in": 7200}, ProviderUnavailable),
        ({"access_token": "tok", "expires_in": "soon"}, ProviderUnavailable),
        ({"access_token": "tok"}, ProviderUnavailable),
    ],
)
def test_token_endpoint_errors(httpserver, wechat_identity, answer, error):
    httpserver.expect_request(TOKEN_PATH).respond_with_json(answer)
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        with pytest.raises(error) as raised:
            start(adapter, wechat_identity)
    finally:
        adapter.close()
    assert type(raised.value) is error


def test_wrong_credentials_at_the_stand_in_are_a_configuration_error(wechat_server, quiet_werkzeug,
                                                                     wechat_identity):
    adapter = make_wechat_adapter(wechat_server.url, secret="not-the-secret")
    try:
        with pytest.raises(ConfigurationError):
            start(adapter, wechat_identity)
    finally:
        adapter.close()


def test_the_token_cache_refreshes_before_expiry_and_once_per_refusal():
    now = [0.0]
    issued = []

    def fetch():
        issued.append(f"tok-{len(issued)}")
        return issued[-1], 7200.0

    cache = AccessTokenCache(fetch=fetch, margin_seconds=300, clock=lambda: now[0])
    assert cache.get() == "tok-0" and cache.get() == "tok-0"
    now[0] = 6899.0
    assert cache.get() == "tok-0"
    now[0] = 6900.0  # 300 s before expiry
    assert cache.get() == "tok-1"
    assert cache.refresh(stale="tok-1") == "tok-2"
    assert cache.refresh(stale="tok-1") == "tok-2"  # another thread already replaced the stale token
    assert len(issued) == 3


def test_short_lived_tokens_are_refreshed_half_way():
    now = [0.0]
    cache = AccessTokenCache(fetch=lambda: (f"t{now[0]}", 60.0), margin_seconds=300, clock=lambda: now[0])
    assert cache.get() == "t0.0"
    now[0] = 29.0
    assert cache.get() == "t0.0"
    now[0] = 30.0
    assert cache.get() == "t30.0"


def test_concurrent_callers_fetch_the_token_once():
    calls = []

    def fetch():
        calls.append(1)
        time.sleep(0.05)
        return "tok", 7200.0

    cache = AccessTokenCache(fetch=fetch, margin_seconds=300)
    threads = [threading.Thread(target=cache.get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


# --- provider faults ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["busy", "http500", "garbage", "noret"])
def test_query_faults_are_provider_unavailable(wechat_adapter, wechat_identity, phone, fault):
    session = start(wechat_adapter, wechat_identity)
    phone.did(session.provider_session_id, fault)
    with pytest.raises(ProviderUnavailable):
        wechat_adapter.result(session=session, identity=wechat_identity, evidence={})


@pytest.mark.parametrize(
    ("openid", "error"),
    [
        ("face-busy", ProviderUnavailable),
        ("face-http500", ProviderUnavailable),
        ("face-garbage", ProviderUnavailable),
        ("face-noverifyid", ProviderUnavailable),
        ("face-unauthorized", ConfigurationError),
    ],
)
def test_start_faults(wechat_adapter, openid, error):
    with pytest.raises(error) as raised:
        start(wechat_adapter, Identity(*ZHANG_WEI, openid=openid))
    assert type(raised.value) is error


def test_a_slow_query_times_out_within_the_adapters_timeout(slow_wechat_server, wechat_identity):
    adapter = make_wechat_adapter(slow_wechat_server.url, timeout=0.5)
    try:
        session = start(adapter, wechat_identity)
        from face_helpers import Phone

        Phone(slow_wechat_server.url).did(session.provider_session_id, "slow")
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as raised:
            adapter.result(session=session, identity=wechat_identity, evidence={})
        assert time.monotonic() - began < 1.4
        assert raised.value.reason == "provider_timeout"
    finally:
        adapter.close()


def test_a_slow_start_times_out(slow_wechat_server, wechat_identity):
    adapter = make_wechat_adapter(slow_wechat_server.url, timeout=0.5)
    try:
        with pytest.raises(ProviderUnavailable):
            start(adapter, Identity(*ZHANG_WEI, openid="face-slow"))
    finally:
        adapter.close()


def test_an_oversized_answer_is_refused(httpserver, wechat_identity):
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"access_token": "tok", "expires_in": 7200})
    httpserver.expect_request("/cityservice/face/identify/getverifyid").respond_with_data(
        json.dumps({"errcode": 0, "verify_id": "v", "padding": "x" * 100_000}), content_type="text/plain")
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        with pytest.raises(ProviderUnavailable, match="oversized"):
            start(adapter, wechat_identity)
    finally:
        adapter.close()


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b"null", b"\xff\xfe not utf-8", b'{"errcode": 0, "verify_id": "has space"}',
     b'{"errcode": "0", "verify_id": 17}', b'{"errcode": [40001]}', b'{"errcode": true, "verify_id": "v"}',
     b'{"errcode": 1.5, "verify_id": "v"}'],
)
def test_malformed_answers_are_provider_unavailable(httpserver, wechat_identity, body):
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"access_token": "tok", "expires_in": 7200})
    httpserver.expect_request("/cityservice/face/identify/getverifyid").respond_with_response(
        Response(body, content_type="text/plain"))
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        with pytest.raises(ProviderUnavailable):
            start(adapter, wechat_identity)
    finally:
        adapter.close()


def test_an_unreachable_wechat_is_provider_unavailable(wechat_identity):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    adapter = make_wechat_adapter(f"http://127.0.0.1:{port}", timeout=0.5)
    try:
        with pytest.raises(ProviderUnavailable):
            start(adapter, wechat_identity)
    finally:
        adapter.close()


def test_every_mapped_errcode_is_a_typed_error():
    assert all(isinstance(code, int) and code != 0 for code in ERRCODE_MAP)
    assert COMMON_ERRCODES[-1] is WeChatUnavailable  # the adapter's ProviderUnavailable


# --- nothing personal or secret in our logs -------------------------------------------------------------

def test_logs_hold_no_name_id_number_cert_hash_openid_or_token(wechat_server, quiet_werkzeug, phone, caplog,
                                                               wechat_identity):
    caplog.set_level(logging.DEBUG)
    adapter = make_wechat_adapter(wechat_server.url)
    tokens = []
    original = adapter.platform.fetch_token

    def remember():
        token = original()
        tokens.append(token[0])
        return token

    adapter.platform._tokens._fetch = remember  # only to learn the token values; every call still goes over HTTP
    try:
        session = start(adapter, wechat_identity)
        for word in ("busy", "garbage", "http500", "pass"):
            phone.did(session.provider_session_id, word)
            phone.expire_tokens()
            try:
                adapter.result(session=session, identity=wechat_identity, evidence={})
            except ProviderUnavailable:
                pass
        with pytest.raises(IdentityMismatch):
            adapter.result(session=session, identity=Identity(*LI_NA, openid=wechat_identity.openid), evidence={})
    finally:
        adapter.close()
    # Our loggers only: urllib3's DEBUG lines quote request URLs, and WeChat puts the token in the URL.
    ours = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("identity"))
    assert "WeChat" in ours and len(tokens) >= 2
    for needle in (*ZHANG_WEI, *LI_NA, cert_hash(*ZHANG_WEI), cert_hash(*LI_NA), wechat_identity.openid,
                   "sandbox-wechat-secret", *tokens):
        assert needle not in ours


@pytest.mark.parametrize(
    "answer",
    [{"verify_ret": 10000}, {"errcode": 0, "verify_ret": "10000"}, {"errcode": 0, "verify_ret": True},
     {"errcode": 0, "verify_ret": 10000.0}],
)
def test_a_pass_needs_errcode_0_and_integer_verify_ret_10000(httpserver, wechat_identity, answer):
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"access_token": "tok", "expires_in": 7200})
    httpserver.expect_request("/cityservice/face/identify/getverifyid").respond_with_json(
        {"errcode": 0, "errmsg": "ok", "verify_id": "vid-1", "expires_in": 3600})
    httpserver.expect_request(QUERYVERIFYINFO_PATH).respond_with_json(answer)
    adapter = make_wechat_adapter(httpserver.url_for("/").rstrip("/"))
    try:
        session = start(adapter, wechat_identity)
        with pytest.raises(ProviderUnavailable):
            adapter.result(session=session, identity=wechat_identity, evidence={})
    finally:
        adapter.close()
