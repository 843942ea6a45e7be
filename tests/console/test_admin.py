"""The admins' console pages over the Flask test client: the connector approval queue and its history, the
catalogue's edit form (the API's validation and versioning), the guide's preview, staff accounts, and the
statistics dashboard over a date range — each against the API's own answers."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from application_flow import ZERO_MATERIAL_FACE_MATTER, review_url, submitted_application

from app.accounts.models import StaffUser
from app.catalogue.models import Matter, MatterVersion
from app.connectors.models import Connector, ConnectorEvent
from app.console.forms import BEIJING
from app.extensions import db

ADMIN_PAGES = ("/console/admin/", "/console/admin/connectors/", "/console/admin/connectors/ga-population",
               "/console/admin/matters/", "/console/admin/matters/GJJ-GG-001", "/console/admin/matters/new",
               "/console/admin/matters/GJJ-GG-001/guide", "/console/admin/staff/", "/console/admin/staff/new",
               "/console/admin/stats")
MATTER = "GJJ-GG-001"


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="error-{re.escape(name)}">([^<]*)</span>', html)
    return found.group(1) if found else ""


class FormFields(HTMLParser):
    """What a browser would submit for the form `form_id` of a page, as (name, value) pairs."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, []
        self._select = self._textarea = None
        self._selected = self._first = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.fields.append((attrs["name"], attrs.get("value", "on")))
            else:
                self.fields.append((attrs["name"], attrs.get("value") or ""))
        elif tag == "select":
            self._select, self._selected, self._first = attrs.get("name"), None, None
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            self._first = value if self._first is None else self._first
            if "selected" in attrs:
                self._selected = value
        elif tag == "textarea":
            self._textarea, self._text = attrs.get("name"), []

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            self.fields.append((self._select, self._selected if self._selected is not None else self._first or ""))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)


def form_of(html: str, form_id: str) -> list[tuple[str, str]]:
    parser = FormFields(form_id)
    parser.feed(html)
    return [(name, value) for name, value in parser.fields if name != "csrf_token"]


def replaced(fields: list[tuple[str, str]], **changes) -> dict:
    """The form's fields (lists kept) with some replaced."""
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        data[name] = value if isinstance(value, list) else [value]
    return data


def admin_subject(app, username: str = "admin") -> str:
    with app.app_context():
        return "staff:" + db.session.scalars(sa.select(StaffUser.id).where(StaffUser.username == username)).one()


def versions(app, code: str) -> list[MatterVersion]:
    with app.app_context():
        rows = db.session.scalars(sa.select(MatterVersion).where(MatterVersion.matter_code == code)
                                  .order_by(MatterVersion.version)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


@pytest.fixture
def admin(logged_in):
    return logged_in("admin")


@pytest.fixture
def registered(client, staff_headers, bureaus) -> str:
    """A connector the public security bureau registered through the API (pending)."""
    response = client.post("/api/v1/connectors", headers=staff_headers("bureau-ga"), json={
        "name": "户籍信息查询(待审核)", "base_url": bureaus.url("population"),
        "elements": ["person.name", "person.household_address"]})
    assert response.status_code == 201 and response.json["status"] == "pending", response.json
    return response.json["id"]


# ------------------------------------------------------------------------------------------ who may


@pytest.mark.parametrize("username", ["auditor", "bureau-ga", "reviewer-gjj", "agent"])
def test_other_roles_get_403_on_every_admin_page(logged_in, username):
    console = logged_in(username)
    for path in ADMIN_PAGES:
        response = console.get(path)
        assert response.status_code == 403 and "无权访问" in response.get_data(as_text=True), path
    assert console.post("/console/admin/connectors/ga-population/disable").status_code == 403


def test_every_admin_page_answers_with_the_consoles_headers(admin):
    for path in ADMIN_PAGES:
        response = admin.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert "<style" not in html and " style=" not in html and "<script>" not in html, path


def test_a_post_without_the_csrf_token_is_refused(app, admin, registered):
    refused = admin.post(f"/console/admin/connectors/{registered}/approve", csrf=False)
    assert refused.status_code == 400
    header_only = admin.client.post(f"/console/admin/connectors/{registered}/approve", headers={"HX-Request": "true"})
    assert header_only.status_code == 400
    with app.app_context():
        assert db.session.get(Connector, registered).status == "pending"
    assert admin.post("/console/admin/matters/GJJ-GG-001", {"name": "x"}, csrf=False).status_code == 400
    assert admin.post("/console/admin/staff/new", {"username": "x"}, csrf=False).status_code == 400


# ------------------------------------------------------------------------------------------ connectors


def test_the_queue_shows_pending_connectors_and_the_admin_approves_then_disables_with_history(app, admin,
                                                                                              registered):
    queue = admin.get("/console/admin/connectors/").get_data(as_text=True)
    assert "户籍信息查询(待审核)" in queue and f'id="connector-{registered}"' in queue
    assert "ga-population" not in queue  # the queue is the pending ones; the active seeded one is not in it
    assert "1 个接口待审核" in admin.get("/console/admin/").get_data(as_text=True)

    approved = admin.post(f"/console/admin/connectors/{registered}/approve")
    assert approved.status_code == 303 and approved.headers["Location"].endswith(f"/{registered}?done=approve")
    page = admin.get(approved.headers["Location"]).get_data(as_text=True)
    assert "已审核通过" in page and "status-active" in page
    with app.app_context():
        row = db.session.get(Connector, registered)
        assert row.status == "active" and row.approved_by == admin_subject(app)
    assert "没有待审核的接口" in admin.get("/console/admin/connectors/").get_data(as_text=True)

    # htmx: the connector's page in place, its URL for the address bar.
    disabled = admin.htmx(f"/console/admin/connectors/{registered}/disable")
    assert disabled.status_code == 200 and disabled.headers["HX-Push-Url"] == f"/console/admin/connectors/{registered}"
    html = disabled.get_data(as_text=True)
    assert "已停用" in html and 'data-confirm="停用' not in html  # a disabled one offers approval only
    assert 'data-confirm="审核通过' in html
    with app.app_context():
        events = db.session.scalars(sa.select(ConnectorEvent).where(ConnectorEvent.connector_id == registered)
                                    .order_by(ConnectorEvent.at)).all()
        assert [(event.action, event.actor) for event in events][1:] == [
            ("approved", admin_subject(app)), ("disabled", admin_subject(app))]
    history = re.search(r'<table id="connector-events">.*?</table>', html, re.S).group(0)
    assert history.count("<tr>") == 4  # the header, registered, approved, disabled
    assert "待审核 → 已启用" in history and "已启用 → 已停用" in history
    assert admin_subject(app) in history

    api = admin.client.get(f"/api/v1/connectors/{registered}")  # no token: the console's session is not one
    assert api.status_code == 401


def test_approve_and_disable_ask_first(admin, registered):
    html = admin.get("/console/admin/connectors/").get_data(as_text=True)
    assert 'data-confirm="审核通过“户籍信息查询(待审核)”?' in html
    assert 'data-confirm="停用“户籍信息查询(待审核)”?' in html


def test_the_admin_runs_a_health_check_before_approving(admin, registered):
    result = admin.htmx(f"/console/admin/connectors/{registered}/health-check")
    assert result.status_code == 200 and "ms" in result.get_data(as_text=True)
    assert admin.get("/console/admin/connectors/nope").status_code == 404


# ------------------------------------------------------------------------------------------ catalogue


def test_the_matter_list_searches_through_the_apis_query(admin):
    html = admin.get("/console/admin/matters/?q=公积金").get_data(as_text=True)
    assert "GJJ-GG-001" in html and "BDC-QR-001" not in html
    assert "没有符合条件的事项" in admin.get("/console/admin/matters/?q=不存在的事项xyz").get_data(as_text=True)
    bad = admin.get("/console/admin/matters/?category=nope")
    assert bad.status_code == 422 and field_error(bad.get_data(as_text=True), "category")


def test_saving_every_matter_unchanged_keeps_its_content_and_adds_a_version(app, admin):
    with app.app_context():
        codes = db.session.scalars(sa.select(Matter.code).order_by(Matter.code)).all()
    for code in codes:
        before = versions(app, code)[-1]
        fields = form_of(admin.get(f"/console/admin/matters/{code}").get_data(as_text=True), "matter-form")
        saved = admin.post(f"/console/admin/matters/{code}", replaced(fields))
        assert saved.status_code == 303, (code, saved.get_data(as_text=True)[:4000])
        after = versions(app, code)[-1]
        assert after.version == before.version + 1
        assert after.snapshot == before.snapshot, code


RETIRED = {"text": "职工已办理离休、退休手续",
           "rule": {"element": "social_insurance.status", "op": "==", "value": "退休"}}


def test_a_wrong_rule_is_refused_next_to_its_line(app, admin):
    fields = form_of(admin.get(f"/console/admin/matters/{MATTER}").get_data(as_text=True), "matter-form")
    wrong = {"text": "年满 60 周岁", "rule": {"element": "social_insurance.status", "op": ">=", "value": 60}}
    refused = admin.post(f"/console/admin/matters/{MATTER}", replaced(
        fields, conditions=f"第一条\n{json.dumps(wrong, ensure_ascii=False)}"))
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "第 2 行" in page and "不适用" in page


def test_an_edit_creates_a_version_as_through_the_api(app, admin, client):
    page = admin.get(f"/console/admin/matters/{MATTER}").get_data(as_text=True)
    before = versions(app, MATTER)
    fields = form_of(page, "matter-form")
    saved = admin.post(f"/console/admin/matters/{MATTER}", replaced(
        fields, name="住房公积金提取(离休、退休)·新", promised_time_limit_days="1",
        conditions=f"{json.dumps(RETIRED, ensure_ascii=False)}\n提取资金转入本人借记卡"))
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"?saved={before[-1].version + 1}")
    after = versions(app, MATTER)
    assert len(after) == len(before) + 1
    latest = after[-1]
    assert latest.changed_by == admin_subject(app)
    assert latest.snapshot["name"] == "住房公积金提取(离休、退休)·新"
    assert latest.snapshot["promised_time_limit_days"] == 1
    # A line holding a JSON object is a checked condition (智能预审), the others text only.
    assert latest.snapshot["conditions"] == [{**RETIRED, "reviewer_may_decide": False}, "提取资金转入本人借记卡"]
    guide = client.get(f"/api/v1/matters/{MATTER}").json  # the citizen's API sees it at once
    assert guide["name"].endswith("·新") and guide["version"] == latest.version
    shown = admin.get(saved.headers["Location"]).get_data(as_text=True)
    assert f"已保存为第 {latest.version} 版" in shown
    history = re.search(r'<table id="matter-history">.*?</table>', shown, re.S).group(0)
    assert admin_subject(app) in history and history.count("<tr>") == len(after) + 1

    # htmx gets the form back in place, saved, with the matter's URL for the address bar.
    again = admin.htmx(f"/console/admin/matters/{MATTER}", replaced(form_of(shown, "matter-form"), hours="9:00-17:00"))
    assert again.status_code == 200 and again.headers["HX-Push-Url"] == f"/console/admin/matters/{MATTER}"
    assert versions(app, MATTER)[-1].snapshot["hours"] == "9:00-17:00"


def test_materials_and_evidence_options_are_added_and_removed(app, admin):
    fields = form_of(admin.get(f"/console/admin/matters/{MATTER}").get_data(as_text=True), "matter-form")
    count = len({name.split("-")[1] for name, _ in fields if name.startswith("materials-")})
    new = f"materials-{count - 1}-"  # the empty row at the end
    saved = admin.post(f"/console/admin/matters/{MATTER}", replaced(
        fields, **{"materials-0-remove": "1", f"{new}code": "PROMISE_X", f"{new}name": "个人承诺书",
                   f"{new}required": "1", f"{new}evidence-0-type": "promise", f"{new}evidence-0-note": "在线承诺"}))
    assert saved.status_code == 303, saved.get_data(as_text=True)[:3000]
    materials = versions(app, MATTER)[-1].snapshot["materials"]
    assert "IDENTITY" not in [m["code"] for m in materials] and materials[-1]["code"] == "PROMISE_X"
    assert materials[-1]["evidence"] == [{"type": "promise", "note": "在线承诺", "trust_level": "D"}]


def test_validation_errors_are_shown_next_to_their_fields_with_the_apis_messages(app, admin):
    fields = form_of(admin.get(f"/console/admin/matters/{MATTER}").get_data(as_text=True), "matter-form")
    before = versions(app, MATTER)
    refused = admin.post(f"/console/admin/matters/{MATTER}", replaced(
        fields, name="", consultation_phone="电话",
        fees_free=[], fee_items="工本费 | 十元", keywords="公积金 提取",
        **{"materials-0-evidence-1-licence_type": "", "materials-1-evidence-0-elements": "person.nope",
           "materials-2-original_count": "一"}))
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert field_error(html, "name") == "必填"
    assert field_error(html, "consultation_phone") == "电话号码格式有误"
    assert field_error(html, "fee_items") == "第 1 行 金额:应为数字"
    assert field_error(html, "materials-0-evidence-1-licence_type") == "电子证照方式必须注明证照类型"
    assert field_error(html, "materials-1-evidence-0-elements") == "未知的数据元素:person.nope"
    assert field_error(html, "materials-2-original_count") == "应为整数"
    assert 'aria-invalid="true"' in html and 'id="form-errors"' in html
    assert 'value="电话"' in html  # the form as typed
    # The whole-matter checks run once every field is right (marshmallow's order, the API's too).
    limits = admin.post(f"/console/admin/matters/{MATTER}", replaced(
        fields, legal_time_limit_days="3", promised_time_limit_days="5"))
    assert limits.status_code == 422
    assert field_error(limits.get_data(as_text=True), "promised_time_limit_days") == "承诺时限不能长于法定时限"
    assert len(versions(app, MATTER)) == len(before)


def test_a_save_over_a_newer_version_is_refused(app, admin):
    fields = form_of(admin.get(f"/console/admin/matters/{MATTER}").get_data(as_text=True), "matter-form")
    assert admin.post(f"/console/admin/matters/{MATTER}", replaced(fields, hours="A")).status_code == 303
    stale = admin.post(f"/console/admin/matters/{MATTER}", replaced(fields, hours="B"))
    assert stale.status_code == 412 and "事项已被修改,请刷新后重试" in stale.get_data(as_text=True)
    assert versions(app, MATTER)[-1].snapshot["hours"] == "A"


def test_a_new_matter_is_created_at_version_one(app, admin):
    page = admin.get("/console/admin/matters/new").get_data(as_text=True)
    fields = replaced(form_of(page, "matter-form"), code="TEST-NEW-001", name="测试事项",
                      matter_type="公共服务", category="housing_fund", department="gjj", legal_basis="《测试条例》",
                      promised_time_limit_days="0",
                      fees_free="1", result_name="测试结果", result_kind="record", delivery=["window"],
                      consultation_phone="0371-12329", non_face_path="到窗口办理",
                      **{"materials-0-code": "ID", "materials-0-name": "身份证", "materials-0-required": "1",
                         "materials-0-evidence-0-type": "in_person"})
    created = admin.post("/console/admin/matters/new", fields)
    assert created.status_code == 303 and created.headers["Location"].endswith("/TEST-NEW-001?saved=1")
    [version] = versions(app, "TEST-NEW-001")
    assert version.changed_by == admin_subject(app) and version.snapshot["materials"][0]["code"] == "ID"
    taken = admin.post("/console/admin/matters/new", fields)
    assert taken.status_code == 409 and field_error(taken.get_data(as_text=True), "code") == "事项编码已存在"
    unknown = admin.post("/console/admin/matters/new", {**fields, "code": "TEST-NEW-002", "department": "nope"})
    assert unknown.status_code == 422
    assert field_error(unknown.get_data(as_text=True), "department") == "未知的实施部门:nope"


def test_the_guide_preview_is_the_citizens_guide(admin, client):
    guide = client.get(f"/api/v1/matters/{MATTER}").json
    html = admin.get(f"/console/admin/matters/{MATTER}/guide").get_data(as_text=True)
    assert guide["name"] in html and guide["non_face_path"] in html and f"第 {guide['version']} 版" in html
    for condition in guide["conditions"]:
        assert condition in html
    for material in guide["materials"]:
        assert material["name"] in html
        for option in material["evidence"]:
            for element in option["elements"]:
                assert element["label"] in html
    for flag, label in (("online", "掌上办"), ("zero_material", "零材料"), ("face", "刷脸办")):
        assert (f'<span class="badge flag">{label}</span>' in html) == guide[flag]
    assert admin.get("/console/admin/matters/NOPE-1/guide").status_code == 404


# ------------------------------------------------------------------------------------------ staff accounts


def test_staff_accounts_are_listed_and_created_through_the_accounts_service(app, admin, console):
    listing = admin.get("/console/admin/staff/").get_data(as_text=True)
    for username in ("admin", "auditor", "reviewer-gjj", "bureau-ga", "agent"):
        assert f'id="staff-{username}"' in listing
    assert "已签发的令牌和会话立即失效" in listing
    created = admin.post("/console/admin/staff/new", {"username": "Reviewer-RSJ", "display_name": "人社审核",
                                                      "password": "a-long-password", "roles": ["reviewer"],
                                                      "department_code": "rsj"})
    assert created.status_code == 303 and created.headers["Location"].endswith("created=reviewer-rsj")
    shown = admin.get(created.headers["Location"]).get_data(as_text=True)
    assert "已新建账号" in shown and 'id="staff-reviewer-rsj"' in shown and "审核人员" in shown
    with app.app_context():
        user = db.session.scalars(sa.select(StaffUser).where(StaffUser.username == "reviewer-rsj")).one()
        assert user.roles == ["reviewer"] and user.department_code == "rsj"
        assert "a-long-password" not in user.password_hash


def test_a_new_accounts_errors_are_the_services(admin):
    refused = admin.post("/console/admin/staff/new", {"username": "x", "password": "", "roles": ["reviewer"]})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert field_error(html, "username").startswith("用户名应为2至64位")
    assert field_error(html, "password").startswith("密码长度应为")
    assert field_error(html, "department_code") == "reviewer 账号必须指定所属部门代码"
    assert 'name="password" type="password"' in html and "a-long" not in html
    none = admin.post("/console/admin/staff/new", {"username": "someone", "password": "pw-pw-pw"})
    assert field_error(none.get_data(as_text=True), "roles") == "至少需要一个角色"
    taken = admin.post("/console/admin/staff/new",
                       {"username": "auditor", "password": "pw-pw-pw", "roles": ["auditor"]})
    assert taken.status_code == 409 and field_error(taken.get_data(as_text=True), "username") == "用户名已存在"


def staff_id(app, username: str) -> str:
    with app.app_context():
        return db.session.scalars(sa.select(StaffUser.id).where(StaffUser.username == username)).one()


def test_an_admin_changes_an_accounts_roles_and_the_tokens_it_held_stop_working(app, admin, client, staff_headers):
    old_token = staff_headers("reviewer-gjj")
    assert client.get("/api/v1/review/applications", headers=old_token).status_code == 200
    page = admin.get(f"/console/admin/staff/{staff_id(app, 'reviewer-gjj')}/edit").get_data(as_text=True)
    assert 'value="reviewer" checked' in page and 'name="active" value="1" checked' in page and "hx-confirm" in page

    added = admin.post(f"/console/admin/staff/{staff_id(app, 'reviewer-gjj')}/edit",
                       {"roles": ["reviewer", "auditor"], "department_code": "gjj", "active": "1"})
    assert added.status_code == 303  # a role added: the tokens held keep working, with the roles they carry
    assert client.get("/api/v1/review/applications", headers=old_token).status_code == 200
    changed = admin.post(f"/console/admin/staff/{staff_id(app, 'reviewer-gjj')}/edit",
                         {"roles": ["auditor"], "active": "1"})
    assert changed.status_code == 303 and changed.headers["Location"].endswith("changed=reviewer-gjj")
    assert "已保存对账号" in admin.get(changed.headers["Location"]).get_data(as_text=True)
    refused = client.get("/api/v1/review/applications", headers=old_token)
    assert refused.status_code == 401 and "权限已变更" in refused.json["message"]
    new_token = staff_headers("reviewer-gjj")  # a new login carries the roles the account has now
    assert client.get("/api/v1/review/applications", headers=new_token).status_code == 403
    assert client.get("/api/v1/audit/face-verifications?reason=x", headers=new_token).status_code not in (401, 403)


def test_a_deactivated_account_can_neither_use_its_tokens_nor_log_in(app, admin, client, staff_headers):
    token = staff_headers("auditor")
    answer = admin.post(f"/console/admin/staff/{staff_id(app, 'auditor')}/edit", {"roles": ["auditor"]})
    assert answer.status_code == 303
    assert client.get("/api/v1/audit/face-verifications?reason=x", headers=token).status_code == 401
    login = client.post("/api/v1/auth/staff/login", json={"username": "auditor", "password": "sandbox-pass"})
    assert login.status_code in (401, 403)
    assert "已停用" in admin.get("/console/admin/staff/").get_data(as_text=True)


def test_an_admin_cannot_lock_themselves_out_and_scope_rules_are_the_services(app, admin):
    own = f"/console/admin/staff/{staff_id(app, 'admin')}/edit"
    demoted = admin.post(own, {"roles": ["auditor"], "active": "1"})
    assert demoted.status_code == 422
    assert field_error(demoted.get_data(as_text=True), "roles") == "不能取消自己的管理员角色"
    stopped = admin.post(own, {"roles": ["admin"]})
    assert field_error(stopped.get_data(as_text=True), "active") == "不能停用自己的账号"
    other = admin.post(f"/console/admin/staff/{staff_id(app, 'bureau-ga')}/edit", {"roles": ["bureau"], "active": "1"})
    assert field_error(other.get_data(as_text=True), "bureau_code") == "bureau 账号必须指定所属委办局代码"
    with app.app_context():
        kept = db.session.scalars(sa.select(StaffUser).where(StaffUser.username == "admin")).one()
        assert kept.roles == ["admin"] and kept.active
    assert admin.get("/console/admin/staff/nobody/edit").status_code == 404


# ------------------------------------------------------------------------------------------ statistics


def figures(html: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}">([^<]*)<', html).group(1)


@pytest.fixture
def decided(client, zhang, reviewer):
    """Two applications of one matter: one delivered, one still submitted; the delivered one rated 1."""
    delivered = submitted_application(client, zhang)
    for action, body in (("accept", None), ("approve", {}), ("deliver", {"method": "e_certificate"})):
        assert client.post(review_url(delivered, action), headers=reviewer, json=body).status_code == 200
    submitted_application(client, zhang)
    evaluation = client.post(f"/api/v1/applications/{delivered}/evaluation", headers=zhang, json={"grade": 1})
    assert evaluation.status_code == 201
    return delivered


def test_the_dashboard_shows_the_apis_figures_for_a_date_range(admin, client, staff_headers, decided):
    today = datetime.now(BEIJING).date()
    first, last = (today - timedelta(days=6)).isoformat(), (today + timedelta(days=1)).isoformat()
    page = admin.get(f"/console/admin/stats?from={first}&to={last}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    period = {"from": f"{first}T00:00:00+08:00",
              "to": f"{(today + timedelta(days=2)).isoformat()}T00:00:00+08:00"}
    headers = staff_headers("admin")
    applications = client.get("/api/v1/stats/applications", headers=headers, query_string=period).json
    face = client.get("/api/v1/stats/face", headers=headers, query_string=period).json
    evaluations = client.get("/api/v1/stats/evaluations", headers=headers, query_string=period).json
    assert figures(html, "total-applications") == str(applications["totals"]["total"]) == "2"
    assert figures(html, "zero-material-share") == f"{applications['totals']['zero_material_share'] * 100:.1f}%"
    assert figures(html, "overdue-undecided") == str(applications["totals"]["overdue_undecided"])
    assert figures(html, "face-pass-rate") == f"{face['pass_rate'] * 100:.1f}%"
    assert figures(html, "evaluation-count") == str(evaluations["totals"]["evaluations"]) == "1"
    for chart in ("chart-applications", "chart-statuses", "chart-zero-material", "chart-processing", "chart-overdue",
                  "chart-face", "chart-grades"):
        assert f'<svg id="{chart}"' in html, chart
    for table in ("applications-table", "timeliness-table", "face-table", "evaluations-table"):
        assert f'<table id="{table}">' in html, table
    assert "住房公积金个人缴存证明出具" in html and ZERO_MATERIAL_FACE_MATTER in html
    assert f'value="{first}"' in html and f'value="{last}"' in html


def test_a_range_without_data_and_bad_ranges(admin, decided):
    empty = admin.get("/console/admin/stats?from=2020-01-01&to=2020-01-31").get_data(as_text=True)
    assert "所选期间没有办件" in empty and "所选期间没有刷脸核验决定" in empty and "所选期间没有评价" in empty
    backwards = admin.get("/console/admin/stats?from=2025-03-10&to=2025-03-01")
    assert backwards.status_code == 422
    assert field_error(backwards.get_data(as_text=True), "from") == "起始时间晚于结束时间"
    too_long = admin.get("/console/admin/stats?from=2023-01-01&to=2025-01-01")
    assert too_long.status_code == 422
    assert field_error(too_long.get_data(as_text=True), "from") == "统计区间不能超过 366 天"
    garbled = admin.get("/console/admin/stats?from=2025-02-30&to=yesterday")
    html = garbled.get_data(as_text=True)
    assert garbled.status_code == 422
    assert field_error(html, "from") == field_error(html, "to") == "请填写有效的日期(年-月-日)"
    assert 'aria-invalid="true"' in html


def test_the_dashboard_defaults_to_the_last_30_days(admin, decided):
    html = admin.get("/console/admin/stats").get_data(as_text=True)
    today = datetime.now(BEIJING).date()
    assert f'value="{(today - timedelta(days=29)).isoformat()}"' in html and f'value="{today.isoformat()}"' in html
    assert figures(html, "total-applications") == "2"
