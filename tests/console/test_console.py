"""The staff console over the Flask test client: login and lockout, CSRF, sessions, headers, roles, auditors."""

from __future__ import annotations

import sqlalchemy as sa

from app.connectors.models import AuditorAccessRecord
from app.console import sessions
from app.extensions import db

ZHANG_ID = "410105198503120013"


def test_login_page_and_login_with_csrf(console):
    page = console.get("/console/login")
    assert page.status_code == 200 and "工作人员登录" in page.get_data(as_text=True)
    assert console.token
    done = console.post("/console/login", {"username": "auditor", "password": "sandbox-pass"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    home = console.get("/console/")
    assert home.status_code == 200 and "/console/audit/" in home.get_data(as_text=True)


def test_the_cookie_carries_only_an_opaque_id(console):
    console.login("auditor")
    with console.client.session_transaction() as flask_session:
        assert set(flask_session) <= {"sid", "csrf_token"}
        assert "auditor" not in str(dict(flask_session))


def test_not_logged_in_goes_to_the_login_page(console):
    for path in ("/console/", "/console/audit/", "/console/audit/face-verifications"):
        response = console.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/console/login")
    partial = console.client.post("/console/audit/verify", headers={"HX-Request": "true"})
    # No session and no token: the CSRF check answers first.
    assert partial.status_code == 400


def test_htmx_without_a_session_is_sent_to_login(console):
    console.get("/console/login")
    partial = console.htmx("/console/audit/verify", {"log": "all", "reason": "x"})
    assert partial.status_code == 401 and partial.headers["HX-Redirect"] == "/console/login"


def test_a_post_without_csrf_token_is_refused(console, logged_in):
    refused = console.post("/console/login", {"username": "auditor", "password": "sandbox-pass"}, csrf=False)
    assert refused.status_code == 400 and "请求无效" in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    logged_in("auditor")
    for path, data in (("/console/audit/verify", {"log": "all", "reason": "例行核查"}),
                       ("/console/audit/face-verifications/search", {"reason": "例行核查"}),
                       ("/console/logout", {})):
        assert console.post(path, data, csrf=False).status_code == 400
        assert console.post(path, {**data, "csrf_token": "forged"}).status_code == 400
    assert console.get("/console/").status_code == 200  # the logout without a token did nothing


def test_wrong_password_counts_toward_the_same_lockout_as_the_api(console, client):
    for _ in range(4):
        wrong = console.login("auditor", "wrong-password")
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.get_data(as_text=True)
    # The fifth failure through the API locks the username for this address, in the console too.
    assert client.post("/api/v1/auth/staff/login", json={"username": "auditor", "password": "nope"}).status_code == 401
    locked = console.login("auditor", "sandbox-pass")
    assert locked.status_code == 429 and "锁定" in locked.get_data(as_text=True)
    api = client.post("/api/v1/auth/staff/login", json={"username": "auditor", "password": "sandbox-pass"})
    assert api.status_code == 429


def test_empty_fields_are_shown_next_to_them(console):
    console.get("/console/login")
    response = console.post("/console/login", {"username": "", "password": ""})
    assert response.status_code == 422 and response.get_data(as_text=True).count("必填") == 2


def test_security_headers_on_every_console_response(console, logged_in):
    pages = [console.get("/console/login")]
    logged_in("auditor")
    pages += [console.get(path) for path in ("/console/", "/console/audit/", "/console/audit/face-verifications",
                                             "/console/admin/")]
    pages.append(console.htmx("/console/audit/verify", {"log": "all", "reason": "例行核查"}))
    for response in pages:
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                          "object-src 'none'", "base-uri 'none'", "form-action 'self'"):
            assert directive in csp
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    static = console.get("/console/static/vendor/htmx-2.0.11.min.js")
    assert static.status_code == 200 and "Content-Security-Policy" in static.headers
    static.close()


def test_pages_load_nothing_from_another_host_and_nothing_inline(console, logged_in):
    logged_in("auditor")
    for path in ("/console/", "/console/audit/face-verifications"):
        html = console.get(path).get_data(as_text=True)
        assert "http://" not in html and "https://" not in html and "//cdn" not in html
        assert "<style" not in html and " style=" not in html and " on" + "click" not in html
        assert '<script src="/console/static/' in html and "<script>" not in html
        assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html


def test_another_roles_page_is_403(console, logged_in):
    logged_in("auditor")
    for path in ("/console/admin/", "/console/connectors/", "/console/review/"):
        response = console.get(path)
        assert response.status_code == 403 and response.mimetype == "text/html"
        assert "无权访问" in response.get_data(as_text=True)
    assert console.get("/console/audit/").status_code == 200


def test_home_lists_the_callers_sections_only(console, logged_in):
    logged_in("bureau-ga")
    html = console.get("/console/").get_data(as_text=True)
    assert "/console/connectors/" in html and "/console/audit/" not in html
    assert console.get("/console/audit/face-verifications").status_code == 403


def test_logout_ends_the_session_server_side(console, logged_in):
    logged_in("auditor")
    with console.client.session_transaction() as flask_session:
        stolen = dict(flask_session)
    out = console.post("/console/logout")
    assert out.status_code == 302 and out.headers["Location"].endswith("/console/login")
    # The old cookie (as an attacker would have copied it) no longer works.
    with console.client.session_transaction() as flask_session:
        flask_session.update(stolen)
    assert console.get("/console/").status_code == 302


def test_idle_timeout(console, logged_in, app, monkeypatch):
    logged_in("auditor")
    start = sessions.now()
    monkeypatch.setattr(sessions, "now", lambda: start + app.config["CONSOLE_IDLE_SECONDS"] - 5)
    assert console.get("/console/").status_code == 200  # active: the idle clock starts again
    later = start + 2 * app.config["CONSOLE_IDLE_SECONDS"] - 10
    monkeypatch.setattr(sessions, "now", lambda: later)
    assert console.get("/console/").status_code == 200
    monkeypatch.setattr(sessions, "now", lambda: later + app.config["CONSOLE_IDLE_SECONDS"] + 1)
    assert console.get("/console/").status_code == 302


def test_absolute_timeout(console, logged_in, app, monkeypatch):
    logged_in("auditor")
    start, idle = sessions.now(), app.config["CONSOLE_IDLE_SECONDS"]
    moment = start
    while moment + idle - 1 < start + app.config["CONSOLE_ABSOLUTE_SECONDS"]:
        moment += idle - 1
        monkeypatch.setattr(sessions, "now", lambda moment=moment: moment)
        expected = 200 if moment < start + app.config["CONSOLE_ABSOLUTE_SECONDS"] else 302
        assert console.get("/console/").status_code == expected
    monkeypatch.setattr(sessions, "now", lambda: start + app.config["CONSOLE_ABSOLUTE_SECONDS"])
    assert console.get("/console/").status_code == 302


def test_a_deactivated_account_loses_its_session(console, logged_in, app):
    from app.accounts.models import StaffUser

    logged_in("auditor")
    with app.app_context():
        db.session.execute(sa.update(StaffUser).where(StaffUser.username == "auditor").values(active=False))
        db.session.commit()
    assert console.get("/console/").status_code == 302


def test_the_api_needs_no_csrf_token(client):
    response = client.post("/api/v1/auth/staff/login", json={"username": "auditor", "password": "sandbox-pass"})
    assert response.status_code == 200


def test_html_forms_stay_refused_by_the_api(client):
    response = client.post("/api/v1/auth/staff/login", data={"username": "auditor", "password": "sandbox-pass"})
    assert response.status_code == 415


def _access_records(app) -> list[AuditorAccessRecord]:
    with app.app_context():
        return db.session.scalars(sa.select(AuditorAccessRecord).order_by(AuditorAccessRecord.seq)).all()


def test_face_search_by_id_number_logs_the_reason_and_the_hash_only(console, logged_in, zhang, app):
    logged_in("auditor")
    page = console.get("/console/audit/face-verifications")
    assert page.status_code == 200 and "身份证号" in page.get_data(as_text=True)
    found = console.htmx("/console/audit/face-verifications/search",
                         {"id_number": ZHANG_ID, "reason": "信访件核查", "decision": "pass"})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and "<tbody>" in html and "通过" in html
    assert found.headers["Cache-Control"] == "no-store"
    [record] = [r for r in _access_records(app) if r.action == "query"]
    assert record.log == "face-verifications" and record.filters["reason"] == "信访件核查"
    assert "id_number" not in record.filters and record.filters["id_number_pseudonym"]
    assert record.actor.startswith("staff:") and ZHANG_ID not in str(record.filters)


def test_face_search_pages_with_a_cursor(console, logged_in, zhang, app):
    logged_in("auditor")
    first = console.htmx("/console/audit/face-verifications/search", {"reason": "抽查", "id_number": ZHANG_ID})
    assert first.status_code == 200
    with app.app_context():
        from app.audit.services import query

        everything = query("face-verifications", {"id_number": ZHANG_ID}, actor="test", request_id="t" * 8)
    assert len(everything.items) >= 2  # consent, session, decision…
    # A tiny page through the same service: the console passes the cursor it was given back.
    with app.app_context():
        page = query("face-verifications", {"id_number": ZHANG_ID, "limit": 1}, actor="test", request_id="t" * 8)
    second = console.htmx("/console/audit/face-verifications/search",
                          {"reason": "抽查", "id_number": ZHANG_ID, "cursor": page.next_cursor})
    assert second.status_code == 200
    assert second.get_data(as_text=True).count("<tr>") == len(everything.items)  # header row + the rest


def test_face_search_needs_a_reason_and_shows_the_apis_messages(console, logged_in, app):
    logged_in("auditor")
    missing = console.htmx("/console/audit/face-verifications/search", {"id_number": ZHANG_ID})
    assert missing.status_code == 422 and "请填写查阅事由" in missing.get_data(as_text=True)
    bad = console.htmx("/console/audit/face-verifications/search", {"reason": "核查", "matter_code": "坏 编码"})
    assert bad.status_code == 422 and "事项编码格式无效" in bad.get_data(as_text=True)
    assert not _access_records(app)  # nothing was queried


def test_the_id_number_never_goes_in_a_url(console, logged_in):
    logged_in("auditor")
    response = console.get(f"/console/audit/face-verifications?id_number={ZHANG_ID}")
    assert response.status_code == 422


def test_verify_chains_shows_ok_and_logs_the_reason(console, logged_in, zhang, app):
    logged_in("auditor")
    response = console.htmx("/console/audit/verify", {"log": "all", "reason": "季度例行核查"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "校验通过" in html
    [record] = [r for r in _access_records(app) if r.action == "verify"]
    assert record.filters == {"reason": "季度例行核查"} and record.log == "all"


def test_verify_shows_the_first_broken_link(console, logged_in, zhang, app):
    from app.face.models import FaceVerificationRecord

    with app.app_context():
        first = db.session.scalars(sa.select(FaceVerificationRecord).order_by(FaceVerificationRecord.seq)).first()
        db.session.execute(sa.update(FaceVerificationRecord).where(FaceVerificationRecord.id == first.id)
                           .values(provider="tampered"))
        db.session.commit()
        seq = first.seq
    logged_in("auditor")
    response = console.htmx("/console/audit/verify", {"log": "face-verifications", "reason": "核查"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "断链" in html and f"<dd>{seq}</dd>" in html


def test_the_api_verify_logs_no_reason(client, staff_headers, app):
    response = client.post("/api/v1/audit/verify", headers=staff_headers("auditor"), json={"log": "all"})
    assert response.status_code == 200
    [record] = [r for r in _access_records(app) if r.action == "verify"]
    assert record.filters == {}
