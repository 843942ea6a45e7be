"""The bureaus' console pages over the Flask test client: their own connectors only, the secret shown once,
edits through the registry's rules, rotation, health checks against the sandbox bureaus, usage per day."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.accounts.models import StaffUser
from app.accounts.services.staff import create_staff
from app.connectors.models import Connector, ConnectorEvent
from app.connectors.services.registry import subject
from app.console import connector_forms
from app.extensions import db
from app.pii import vault

SECRET = re.compile(r'id="connector-secret"[^>]*>([^<]+)<')
POPULATION = "/console/connectors/ga-population"


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="error-{name}">([^<]*)</span>', html)
    return found.group(1) if found else ""


def secret_of(response) -> str:
    found = SECRET.search(response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)
    return found.group(1)


def connector(app, connector_id: str) -> Connector:
    with app.app_context():
        row = db.session.get(Connector, connector_id)
        db.session.expunge(row)
        return row


def stored_secret(app, connector_id: str) -> str:
    with app.app_context():
        return vault().decrypt(db.session.get(Connector, connector_id).secret_encrypted)


def events(app, connector_id: str) -> list[ConnectorEvent]:
    with app.app_context():
        return db.session.scalars(sa.select(ConnectorEvent).where(ConnectorEvent.connector_id == connector_id)
                                  .order_by(ConnectorEvent.at)).all()


def actor_of(app, username: str) -> str:
    with app.app_context():
        return subject(db.session.scalars(sa.select(StaffUser).where(StaffUser.username == username)).one())


def connector_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Connector))


@pytest.fixture
def bureau(logged_in):
    """The console logged in as the public security bureau's sandbox account."""
    return logged_in("bureau-ga")


@pytest.fixture
def gjj_account(app):
    """A second bureau's account (the sandbox seeds only 公安局's): the housing fund centre, owner of
    gjj-housing-fund."""
    with app.app_context():
        create_staff("bureau-gjj", "sandbox-pass", ["bureau"], bureau_code="gjj")
    return "bureau-gjj"


def registration(bureaus, **changes) -> dict:
    return {"name": "户籍信息查询(控制台)", "base_url": bureaus.url("population"),
            "elements": ["person.name", "person.household_address"], **changes}


# ------------------------------------------------------------------------------------------ register


def test_register_shows_the_secret_once_and_never_again(bureau, bureaus, app):
    assert bureau.get("/console/connectors/new").status_code == 200
    response = bureau.htmx("/console/connectors/new", registration(bureaus))

    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    secret = secret_of(response)
    assert 'data-copy="#connector-secret"' in html and "只显示这一次" in html
    [row] = [row for row in _own_rows(app, "ga") if row.name == "户籍信息查询(控制台)"]
    # htmx puts the connector's page in the address bar: a reload shows it, without the secret.
    assert response.headers["HX-Push-Url"] == f"/console/connectors/{row.id}"
    assert row.status == "pending" and row.bureau_code == "ga" and stored_secret(app, row.id) == secret
    assert row.mapping == {"person.name": "person.name", "person.household_address": "person.household_address"}
    assert [(e.action, e.actor) for e in events(app, row.id)] == [("registered", actor_of(app, "bureau-ga"))]

    base = f"/console/connectors/{row.id}"
    for path in ("/console/connectors/", base, f"{base}/edit", f"{base}/rotate-secret", f"{base}/usage"):
        again = bureau.get(path)
        assert again.status_code == 200, path
        assert secret not in again.get_data(as_text=True), path
    assert "待审核" in bureau.get(base).get_data(as_text=True)


def _own_rows(app, bureau_code: str) -> list[Connector]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Connector).where(Connector.bureau_code == bureau_code)).all()
        with db.session.no_autoflush:
            for row in rows:
                db.session.expunge(row)
        return rows


def test_register_without_htmx_answers_the_same_page(bureau, bureaus):
    response = bureau.post("/console/connectors/new", registration(bureaus, query_path="/v1/query",
                                                                   timeout_seconds="2.5", max_response_bytes="4096"))
    assert response.status_code == 201 and "HX-Push-Url" not in response.headers
    assert len(secret_of(response)) >= 32


def test_validation_errors_are_shown_next_to_their_fields(bureau, bureaus, app):
    before = connector_count(app)
    missing = bureau.htmx("/console/connectors/new", {"timeout_seconds": "快", "max_response_bytes": "1.5",
                                                      "mapping": "person.name data.xm"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 422 and 'role="alert"' in html
    assert field_error(html, "name") == "必填" and field_error(html, "base_url") == "必填"
    assert field_error(html, "timeout_seconds") == "应为数字"  # the API schema's own messages
    assert field_error(html, "max_response_bytes") == "应为整数"
    assert "第 1 行" in field_error(html, "mapping")
    assert 'aria-invalid="true"' in html and 'aria-describedby="error-name"' in html
    assert 'value="快"' in html  # what was typed is kept

    unknown = bureau.htmx("/console/connectors/new", registration(bureaus, elements=["person.nickname"]))
    assert unknown.status_code == 422
    assert "未知的数据元素:person.nickname" in field_error(unknown.get_data(as_text=True), "elements")

    mismatch = bureau.htmx("/console/connectors/new",
                           registration(bureaus, elements=["person.name"], mapping="person.gender = data.xb"))
    assert "elements 须与 mapping 的数据元素一致" in field_error(mismatch.get_data(as_text=True), "elements")

    range_ = bureau.htmx("/console/connectors/new", registration(bureaus, timeout_seconds="99"))
    assert field_error(range_.get_data(as_text=True), "timeout_seconds") == "须在 0.1 到 30.0 之间"

    # The service's URL guard (after DNS): the API's unsafe_url, next to the address.
    unsafe = bureau.htmx("/console/connectors/new",
                         registration(bureaus, base_url="https://intranet.bureau.example.cn/rk"))
    assert unsafe.status_code == 422
    message = field_error(unsafe.get_data(as_text=True), "base_url")
    assert message.startswith("接口地址不安全或不被允许") and "private" in message
    assert connector_count(app) == before


# ------------------------------------------------------------------------------------------ whose connectors


def test_a_bureau_sees_only_its_own_connectors(bureau, gjj_account, console, app):
    listing = bureau.get("/console/connectors/").get_data(as_text=True)
    assert "/console/connectors/ga-population" in listing and "gjj-housing-fund" not in listing
    for path in ("/console/connectors/gjj-housing-fund", "/console/connectors/gjj-housing-fund/edit",
                 "/console/connectors/gjj-housing-fund/rotate-secret", "/console/connectors/gjj-housing-fund/usage",
                 "/console/connectors/no-such-connector"):
        response = bureau.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
        assert "接入服务不存在" in response.get_data(as_text=True)
    before = connector(app, "gjj-housing-fund")
    for path, data in (("/console/connectors/gjj-housing-fund/edit", {"name": "改名"}),
                       ("/console/connectors/gjj-housing-fund/rotate-secret", {}),
                       ("/console/connectors/gjj-housing-fund/health-check", {})):
        assert bureau.htmx(path, data).status_code == 404, path
    after = connector(app, "gjj-housing-fund")
    assert (after.version, after.name, after.secret_encrypted) == (before.version, before.name,
                                                                   before.secret_encrypted)

    bureau.post("/console/logout")
    other = console.login(gjj_account)
    assert other.status_code == 302
    theirs = console.get("/console/connectors/").get_data(as_text=True)
    assert "/console/connectors/gjj-housing-fund" in theirs and "ga-population" not in theirs
    assert console.get(POPULATION).status_code == 404


def test_an_empty_list_says_so(bureau, app):
    with app.app_context():
        create_staff("bureau-new", "sandbox-pass", ["bureau"], bureau_code="newbureau")
    bureau.post("/console/logout")
    bureau.login("bureau-new")
    html = bureau.get("/console/connectors/").get_data(as_text=True)
    assert 'id="no-connectors"' in html and "还没有登记数据接口" in html
    assert "/console/connectors/new" in html


def test_other_roles_get_403(console, logged_in):
    for username in ("auditor", "reviewer-gjj", "admin", "agent"):
        logged_in(username)
        for path in ("/console/connectors/", "/console/connectors/new", POPULATION, f"{POPULATION}/usage"):
            response = console.get(path)
            assert response.status_code == 403 and "无权访问" in response.get_data(as_text=True), (username, path)
        assert console.htmx(f"{POPULATION}/health-check").status_code == 403
        assert console.htmx(f"{POPULATION}/rotate-secret").status_code == 403
        console.post("/console/logout")


def test_a_post_without_the_csrf_token_is_refused(bureau, bureaus, app):
    before, row = connector_count(app), connector(app, "ga-population")
    for path, data in (("/console/connectors/new", registration(bureaus)),
                       (f"{POPULATION}/edit", {"name": "改名"}), (f"{POPULATION}/rotate-secret", {}),
                       (f"{POPULATION}/health-check", {})):
        assert bureau.post(path, data, csrf=False).status_code == 400, path
        assert bureau.post(path, {**data, "csrf_token": "forged"}).status_code == 400, path
        assert bureau.client.post(path, data=data, headers={"HX-Request": "true"}).status_code == 400, path
    after = connector(app, "ga-population")
    assert connector_count(app) == before
    assert (after.version, after.name, after.secret_encrypted) == (row.version, row.name, row.secret_encrypted)


# ------------------------------------------------------------------------------------------ edit, rotate


def test_the_prefilled_edit_form_changes_nothing_and_a_rename_keeps_it_active(bureau, app):
    row = connector(app, "ga-population")
    page = bureau.get(f"{POPULATION}/edit").get_data(as_text=True)
    assert f'value="{row.base_url}"' in page and 'value="person.name" checked' in page
    with app.app_context():
        unchanged = connector_forms.values_of_connector(db.session.get(Connector, "ga-population"))
    assert bureau.htmx(f"{POPULATION}/edit", unchanged).status_code == 200
    assert connector(app, "ga-population").version == row.version  # nothing changed: no new version

    renamed = bureau.htmx(f"{POPULATION}/edit", {**unchanged, "name": "人口基础信息查询(新)"})
    assert renamed.status_code == 200 and renamed.headers["HX-Push-Url"] == POPULATION
    assert "已保存" in renamed.get_data(as_text=True) and "退回待审核" not in renamed.get_data(as_text=True)
    assert connector(app, "ga-population").status == "active"


def test_an_edit_of_what_was_approved_returns_it_to_pending(bureau, app):
    assert connector(app, "ga-population").status == "active"
    response = bureau.htmx(f"{POPULATION}/edit", {"health_path": "/v2/health"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "退回待审核" in html and "待审核" in html
    row = connector(app, "ga-population")
    assert (row.status, row.health_path, row.approved_at) == ("pending", "/v2/health", None)
    last = events(app, "ga-population")[-1]
    assert last.action == "updated" and last.actor == actor_of(app, "bureau-ga")
    assert last.changes["status"] == {"from": "active", "to": "pending"}


def test_an_edit_with_errors_shows_them_and_changes_nothing(bureau, app):
    version = connector(app, "ga-population").version
    response = bureau.htmx(f"{POPULATION}/edit", {"query_path": "no-slash", "trust_level": "Z"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and field_error(html, "trust_level").startswith("须为以下之一")
    bad_path = bureau.htmx(f"{POPULATION}/edit", {"query_path": "no-slash"})
    assert bad_path.status_code == 422 and field_error(bad_path.get_data(as_text=True), "query_path")
    assert connector(app, "ga-population").version == version


def test_rotating_asks_first_and_shows_the_new_secret_once(bureau, app):
    old = stored_secret(app, "ga-population")
    confirm = bureau.get(f"{POPULATION}/rotate-secret")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "确认轮换" in html and "立即失效" in html
    assert stored_secret(app, "ga-population") == old  # asking changed nothing

    rotated = bureau.htmx(f"{POPULATION}/rotate-secret")
    secret = secret_of(rotated)
    assert rotated.status_code == 200 and rotated.headers["HX-Push-Url"] == POPULATION
    assert secret != old and stored_secret(app, "ga-population") == secret
    last = events(app, "ga-population")[-1]
    assert (last.action, last.actor, last.changes) == ("secret_rotated", actor_of(app, "bureau-ga"),
                                                       {"secret": "rotated"})
    assert secret not in bureau.get(POPULATION).get_data(as_text=True)


# ------------------------------------------------------------------------------------------ health, usage


def test_health_check_against_the_sandbox_bureau(bureau, bureaus):
    assert "尚未检查" in bureau.get("/console/connectors/").get_data(as_text=True)
    ok = bureau.htmx(f"{POPULATION}/health-check")
    html = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "health-ok" in html and "正常" in html and "<html" not in html

    bureaus.set_mode("population", "error500")
    failed = bureau.htmx(f"{POPULATION}/health-check").get_data(as_text=True)
    assert "health-bad" in failed and "HTTP 500" in failed
    # The last check is what the list and the detail page show.
    listing = bureau.get("/console/connectors/").get_data(as_text=True)
    assert "HTTP 500" in listing and "尚未检查" not in listing

    bureaus.set_mode("population", "normal")
    plain = bureau.post(f"{POPULATION}/health-check")
    assert plain.status_code == 303 and plain.headers["Location"].endswith(POPULATION)
    assert "health-ok" in bureau.get(POPULATION).get_data(as_text=True)


def test_the_apis_health_check_is_the_last_health_too(bureau, client, staff_headers):
    client.post("/api/v1/connectors/ga-population/health-check", headers=staff_headers("bureau-ga"))
    assert "health-ok" in bureau.get(POPULATION).get_data(as_text=True)


def test_usage_per_day_as_a_chart_and_a_table(bureau, zhang, bureaus, login_citizen, client):
    # 张伟's real-name check called the population registry; a second one fails there: an error.
    bureaus.set_mode("population", "error500")
    token = login_citizen("second")["access_token"]
    client.post("/api/v1/me/real-name", headers={"Authorization": f"Bearer {token}"},
                json={"name": "李娜", "id_number": "410102199207040225"})
    response = bureau.get(f"{POPULATION}/usage?days=7")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<svg id="usage-calls"' in html and '<svg id="usage-latency"' in html and 'role="img"' in html
    assert html.count('<th scope="row">') == 7  # one table row per day
    api = client.get("/api/v1/connectors/ga-population/usage?days=7",
                     headers={"Authorization": bureau_token(client)}).json
    today = api["days"][-1]
    assert today["calls"] >= 2 and today["errors"] >= 1
    row = re.search(rf'<th scope="row">{today["date"]}</th>((?:<td>[^<]*</td>\s*)+)', html).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[:5] == [str(today[k]) for k in ("calls", "ok", "not_found", "errors", "timeouts")]
    assert cells[5:] == [str(today["p50_ms"]), str(today["p95_ms"])]
    assert f'id="total-calls">{api["total"]["calls"]}<' in html
    assert "style=" not in html and "<script>" not in html


def bureau_token(client) -> str:
    login = client.post("/api/v1/auth/staff/login", json={"username": "bureau-ga", "password": "sandbox-pass"})
    return f"Bearer {login.json['access_token']}"


def test_usage_without_calls_and_with_a_bad_period(bureau):
    empty = bureau.get(f"{POPULATION}/usage").get_data(as_text=True)
    assert 'id="no-usage"' in empty and "<svg" not in empty
    bad = bureau.get(f"{POPULATION}/usage?days=91")
    assert bad.status_code == 422 and field_error(bad.get_data(as_text=True), "days").startswith("须在 1 到 90")


def test_the_bureaus_pages_carry_the_consoles_headers_and_nothing_inline(bureau):
    for path in ("/console/connectors/", "/console/connectors/new", POPULATION, f"{POPULATION}/edit",
                 f"{POPULATION}/rotate-secret", f"{POPULATION}/usage"):
        response = bureau.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", path
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert "<style" not in html and " style=" not in html and "<script>" not in html and " on" + "click" not in html
