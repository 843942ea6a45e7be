"""Login, tokens, refresh, logout and role checks, through the HTTP API (WeChat over real HTTP)."""

import time
from datetime import timedelta

import jwt as pyjwt
import pytest
from argon2 import PasswordHasher
from flask_jwt_extended import create_access_token
from sqlalchemy import select

from app.accounts.models import Citizen, StaffUser
from app.extensions import db
from app.pii import vault
from tests.helpers import assert_error, bearer

SANDBOX_PASSWORD = "sandbox-pass"




def staff_login(client, username, password=SANDBOX_PASSWORD, **kwargs):
    body = {"username": username, "password": password}
    return client.post("/api/v1/auth/staff/login", json=body, **kwargs)




# --- citizens ----------------------------------------------------------------------------------------

def test_citizen_login_issues_tokens(app, client, row_counts):
    before = row_counts()
    response = client.post("/api/v1/auth/wechat/login", json={"code": "dev-alice"})
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == int(app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    assert body["access_token"] and body["refresh_token"]
    assert body["citizen"] == {"id": body["citizen"]["id"], "assurance": "none", "real_name_verified": False}
    assert row_counts()["citizens"] == before["citizens"] + 1
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json["id"] == body["citizen"]["id"]


def test_citizen_login_upserts_by_openid(login_citizen, row_counts):
    first = login_citizen("alice")["citizen"]["id"]
    count = row_counts()["citizens"]
    assert login_citizen("alice")["citizen"]["id"] == first
    assert row_counts()["citizens"] == count
    assert login_citizen("bob")["citizen"]["id"] != first


def test_session_key_stays_on_the_server(app, client, caplog):
    response = client.post("/api/v1/auth/wechat/login", json={"code": "dev-alice"})
    headers = bearer(response.json["access_token"])
    me = client.get("/api/v1/me", headers=headers)
    with app.app_context():
        stored = db.session.scalar(select(Citizen.session_key_encrypted).where(Citizen.openid == "alice"))
        session_key = vault().decrypt(stored)
    assert stored != session_key
    for text in (response.get_data(as_text=True), me.get_data(as_text=True), caplog.text,
                 str(decode_token_unverified(response.json["access_token"])),
                 str(decode_token_unverified(response.json["refresh_token"]))):
        assert session_key not in text


def decode_token_unverified(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


# --- staff ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("username", "roles", "bureau", "department"), [
    ("admin", ["admin"], None, None),
    ("auditor", ["auditor"], None, None),
    ("reviewer-gjj", ["reviewer"], None, "gjj"),
    ("bureau-ga", ["bureau"], "ga", None),
    ("agent", ["agent"], None, None),
])
def test_sandbox_staff_log_in_with_their_roles(client, username, roles, bureau, department):
    response = staff_login(client, username)
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    assert {k: body["staff"][k] for k in ("username", "roles", "bureau", "department")} == {
        "username": username, "roles": roles, "bureau": bureau, "department": department}
    claims = decode_token_unverified(body["access_token"])
    assert claims["roles"] == roles and claims["sub"] == f"staff:{body['staff']['id']}"
    assert "password" not in response.get_data(as_text=True)


def test_username_is_case_insensitive(client):
    assert staff_login(client, "Admin").status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(client):
    wrong = assert_error(staff_login(client, "admin", "not-the-password"), 401, "invalid_credentials")
    unknown = assert_error(staff_login(client, "nobody-here", "not-the-password"), 401, "invalid_credentials")
    assert wrong == unknown


def test_unknown_users_cost_a_hash_verification_too(client):
    def timed(username):
        started = time.perf_counter()
        staff_login(client, username, "wrong-password")
        return time.perf_counter() - started

    known, unknown = min(timed("admin") for _ in range(2)), min(timed("ghost") for _ in range(2))
    # Both verify an argon2 hash (about 0.1 s); without the dummy verification the unknown user would be
    # answered in about a millisecond.
    assert unknown > known / 3


def test_repeated_failures_lock_the_username_for_that_address(app, client):
    limit = app.config["STAFF_LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert_error(staff_login(client, "admin", "wrong-password"), 401, "invalid_credentials")
    locked = staff_login(client, "admin")  # the right password, while locked
    assert_error(locked, 429, "rate_limited")
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= app.config["STAFF_LOGIN_WINDOW_SECONDS"]
    assert staff_login(client, "auditor").status_code == 200  # other accounts are unaffected


def test_unknown_usernames_lock_the_same_way(app, client):
    for _ in range(app.config["STAFF_LOGIN_MAX_FAILURES"]):
        assert_error(staff_login(client, "ghost", "wrong-password"), 401, "invalid_credentials")
    assert_error(staff_login(client, "ghost", "wrong-password"), 429, "rate_limited")


def login_from(url: str, source: str, username: str, password: str = "sandbox-pass") -> tuple[int, dict]:
    """A staff login over real HTTP from the loopback address `source` (the server sees it as the client)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("POST", "/api/v1/auth/staff/login", headers={"Content-Type": "application/json"},
                           body=json.dumps({"username": username, "password": password}))
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_failures_from_one_address_never_lock_the_account_for_another(app):
    """The fuzzer (or an attacker) locked `admin` for everyone with five wrong passwords; now only for itself."""
    from app.sandbox.server import serve

    server = serve(app)
    try:
        for _ in range(app.config["STAFF_LOGIN_MAX_FAILURES"]):
            assert login_from(server.url, "127.0.0.2", "admin", "wrong-password")[0] == 401
        status, body = login_from(server.url, "127.0.0.2", "admin")  # the right password, from the attacker
        assert (status, body["error"]) == (429, "rate_limited") and "锁定" in body["message"]
        status, body = login_from(server.url, "127.0.0.1", "admin")  # the admin at their own desk
        assert status == 200 and body["staff"]["username"] == "admin"
    finally:
        server.stop()


def test_the_lock_expires_after_the_window(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "STAFF_LOGIN_MAX_FAILURES", 2)
    monkeypatch.setitem(app.config, "STAFF_LOGIN_WINDOW_SECONDS", 2)
    for _ in range(2):
        staff_login(client, "admin", "wrong-password")
    locked = staff_login(client, "admin")
    assert locked.status_code == 429 and "锁定" in locked.json["message"]  # the lockout, not the address limit
    time.sleep(2.2)
    assert staff_login(client, "admin").status_code == 200


def test_a_successful_login_resets_the_failure_count(app, client):
    limit = app.config["STAFF_LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        staff_login(client, "admin", "wrong-password")
    assert staff_login(client, "admin").status_code == 200
    for _ in range(limit - 1):
        staff_login(client, "admin", "wrong-password")
    assert staff_login(client, "admin").status_code == 200


def test_one_address_cannot_spray_many_usernames(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "STAFF_LOGIN_RATE_LIMIT", "3 per minute")
    for name in ("u1", "u2", "u3"):
        assert staff_login(client, name, "guess-password").status_code == 401
    limited = assert_error(staff_login(client, "admin"), 429, "rate_limited")
    assert limited
    assert int(client.post("/api/v1/auth/staff/login",
                           json={"username": "u4", "password": "x"}).headers["Retry-After"]) > 0
    other = staff_login(client, "admin", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200


def test_deactivated_accounts_cannot_log_in_and_their_tokens_stop_working(app, client, staff_headers):
    headers = staff_headers("agent")
    with app.app_context():
        db.session.scalar(select(StaffUser).where(StaffUser.username == "agent")).active = False
        db.session.commit()
    assert_error(staff_login(client, "agent"), 403, "account_disabled")
    assert_error(staff_login(client, "agent", "wrong-password"), 401, "invalid_credentials")
    assert_error(client.get("/api/v1/staff/me", headers=headers), 401, "unauthorized")


def test_login_upgrades_an_outdated_hash(app, make_app):
    # The production profile (the test mode's default is argon2's cheapest, for speed).
    client = make_app(PASSWORD_HASH_PROFILE="RFC_9106_LOW_MEMORY").test_client()
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    with app.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == "auditor"))
        user.password_hash = weak.hash(SANDBOX_PASSWORD)
        db.session.commit()
    assert staff_login(client, "auditor").status_code == 200
    with app.app_context():
        upgraded = db.session.scalar(select(StaffUser.password_hash).where(StaffUser.username == "auditor"))
    assert upgraded.startswith("$argon2id$") and "m=65536" in upgraded
    assert staff_login(client, "auditor").status_code == 200


@pytest.mark.parametrize("body", [
    {"username": "admin"},
    {"password": "x"},
    {"username": "admin", "password": "x", "extra": 1},
    {"username": "ad min", "password": "x"},
    {"username": "admin\u0000", "password": "x"},
    {"username": "admin", "password": ""},
    {"username": 5, "password": "x"},
])
def test_malformed_staff_logins_are_422(client, body):
    assert_error(client.post("/api/v1/auth/staff/login", json=body), 422, "validation_failed")


# --- refresh and logout ----------------------------------------------------------------------------------

def test_refresh_issues_a_new_access_token(client, login_citizen):
    tokens = login_citizen()
    response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "token_type", "expires_in"}
    assert response.json["access_token"] != tokens["access_token"]
    assert client.get("/api/v1/me", headers=bearer(response.json["access_token"])).status_code == 200


def test_refresh_picks_up_changed_roles(app, client):
    tokens = staff_login(client, "agent").json
    with app.app_context():
        db.session.scalar(select(StaffUser).where(StaffUser.username == "agent")).roles = ["agent", "auditor"]
        db.session.commit()
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).json
    assert decode_token_unverified(refreshed["access_token"])["roles"] == ["agent", "auditor"]


def test_access_token_is_not_a_refresh_token_and_the_reverse(client, login_citizen):
    tokens = login_citizen()
    response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["access_token"]))
    assert_error(response, 401, "unauthorized")
    assert_error(client.get("/api/v1/me", headers=bearer(tokens["refresh_token"])), 401, "unauthorized")


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_logout_revokes_the_whole_login(client, login_citizen, kind):
    tokens = login_citizen()
    other_login = login_citizen()  # the same citizen on another device
    response = client.post("/api/v1/auth/logout", headers=bearer(tokens[kind]))
    assert response.status_code == 204
    assert_error(client.get("/api/v1/me", headers=bearer(tokens["access_token"])), 401, "unauthorized")
    response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert_error(response, 401, "unauthorized")
    assert_error(client.post("/api/v1/auth/logout", headers=bearer(tokens[kind])), 401, "unauthorized")
    assert client.get("/api/v1/me", headers=bearer(other_login["access_token"])).status_code == 200


def test_access_tokens_refreshed_from_a_logged_out_login_are_revoked_too(client, login_citizen):
    tokens = login_citizen()
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).json
    client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert_error(client.get("/api/v1/me", headers=bearer(refreshed["access_token"])), 401, "unauthorized")


def test_logout_needs_a_token(client):
    assert_error(client.post("/api/v1/auth/logout"), 401, "unauthorized")


# --- bad tokens ------------------------------------------------------------------------------------------

def test_forged_token_is_401(client, login_citizen):
    claims = decode_token_unverified(login_citizen()["access_token"])
    forged = pyjwt.encode(claims, "not-our-secret-key-but-long-enough-0123456789", algorithm="HS256")
    assert_error(client.get("/api/v1/me", headers=bearer(forged)), 401, "unauthorized")


def test_unsigned_token_is_401(client, login_citizen):
    claims = decode_token_unverified(login_citizen()["access_token"])
    unsigned = pyjwt.encode(claims, key=None, algorithm="none")
    assert_error(client.get("/api/v1/me", headers=bearer(unsigned)), 401, "unauthorized")


def test_garbage_token_is_401(client):
    assert_error(client.get("/api/v1/me", headers=bearer("not.a.jwt")), 401, "unauthorized")
    assert_error(client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")


def test_expired_token_is_401(app, client, login_citizen):
    citizen_id = login_citizen()["citizen"]["id"]
    with app.app_context():
        expired = create_access_token(f"citizen:{citizen_id}", expires_delta=timedelta(seconds=-5),
                                      additional_claims={"roles": ["citizen"]})
    body = assert_error(client.get("/api/v1/me", headers=bearer(expired)), 401, "unauthorized")
    assert "过期" in body["message"]


def test_token_for_an_unknown_subject_is_401(app, client):
    with app.app_context():
        token = create_access_token("citizen:does-not-exist", additional_claims={"roles": ["citizen"]})
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "unauthorized")


# --- roles ---------------------------------------------------------------------------------------------

def test_citizen_token_on_a_staff_endpoint_is_403(client, citizen_headers):
    assert_error(client.get("/api/v1/staff/me", headers=citizen_headers), 403, "forbidden")


def test_staff_token_on_citizen_endpoints_is_403(client, staff_headers, row_counts):
    headers = staff_headers("admin")
    assert_error(client.get("/api/v1/me", headers=headers), 403, "forbidden")
    before = row_counts()
    response = client.post("/api/v1/me/real-name", headers=headers,
                           json={"name": "张伟", "id_number": "410105198503120013"})
    assert_error(response, 403, "forbidden")
    assert row_counts() == before


def test_staff_me_shows_the_account(client, staff_headers):
    response = client.get("/api/v1/staff/me", headers=staff_headers("bureau-ga"))
    assert response.status_code == 200
    assert response.json["roles"] == ["bureau"] and response.json["bureau"] == "ga"
