"""The reviewers' console with Flask's test client: the inbox and its filters, an application's detail, every
review action (landing on the timeline exactly as through the API), errors next to their fields, 409s, roles
and departments, uploads, rectifications."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from application_flow import (
    PDF,
    UPLOAD_MATTER,
    consent_and_prefill,
    create,
    review_url,
    submit,
    submitted_application,
    url,
    verify_face,
)

from app.accounts.models import StaffUser
from app.applications.models import Application, ApplicationEvent
from app.console import forms
from app.extensions import db
from app.notifications.models import Notification

# 公积金提取(购房): the bank card can be a written promise (告知承诺); the retirement withdrawal has the same,
# but its pre-check refuses 张伟, who is not retired.
PROMISE_MATTER = "GJJ-GG-004"
MAIL = {"recipient.name": "张伟", "recipient.phone": "13800000000", "recipient.address": "郑州市金水区某路 1 号",
        "tracking_number": "EMS1234567890"}
MAIL_JSON = {"method": "mail", "tracking_number": "EMS1234567890",
             "recipient": {"name": "张伟", "phone": "13800000000", "address": "郑州市金水区某路 1 号"}}


def page(path: str) -> str:
    return f"/console/review/{path}"


def detail(application_id: str, action: str = "") -> str:
    return page(f"applications/{application_id}" + (f"/{action}" if action else ""))


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def desk(logged_in):
    """The console logged in as the housing-fund centre's reviewer (department `gjj`)."""
    return logged_in("reviewer-gjj")


@pytest.fixture
def bdc_reviewer(app):
    """A reviewer of another department (不动产登记中心), created for the test."""
    with app.app_context():
        from app.accounts.services.staff import create_staff

        create_staff("reviewer-bdc", "another-long-password", roles=["reviewer"], department_code="bdc")
    return "reviewer-bdc", "another-long-password"


def review_events(app, application_id: str) -> list[tuple[str, str, dict]]:
    """The timeline after submission as stored: (kind, actor reference, detail)."""
    with app.app_context():
        rows = db.session.scalars(sa.select(ApplicationEvent).where(ApplicationEvent.application_id == application_id)
                                  .order_by(ApplicationEvent.at, ApplicationEvent.id)).all()
        kinds = [row.kind for row in rows]
        start = kinds.index("submitted") + 1
        return [(row.kind, row.actor, row.detail) for row in rows[start:]]


def notifications(app, application_id: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Notification.id))
                                 .where(Notification.application_id == application_id))


def reviewer_ref(app, username: str = "reviewer-gjj") -> str:
    with app.app_context():
        return "reviewer:" + db.session.scalar(sa.select(StaffUser.id).where(StaffUser.username == username))


def posted(console, path: str, data: dict | None = None):
    """A form post that succeeded: redirected (303) to the application's page with the action's notice."""
    response = console.post(path, data or {})
    assert response.status_code == 303, text(response)
    return response


# ------------------------------------------------------------------------------------------ the inbox


def test_the_inbox_lists_the_departments_applications_with_the_apis_filters(desk, client, app, zhang, reviewer):
    first = submitted_application(client, zhang)
    second = submitted_application(client, zhang)
    client.post(review_url(second, "accept"), headers=reviewer)
    with app.app_context():
        db.session.get(Application, first).promised_due_on = (datetime.now(UTC) - timedelta(days=10)).date()
        db.session.commit()

    everything = desk.get(page(""))
    assert everything.status_code == 200
    body = text(everything)
    assert "共 2 件" in body and detail(first) in body and detail(second) in body
    assert "4101**********0013" in body and "已超期" in body
    assert everything.headers["Cache-Control"] == "no-store"

    accepted = text(desk.get(page("?status=accepted")))
    assert detail(second) in accepted and detail(first) not in accepted
    overdue = text(desk.get(page("?overdue=true")))
    assert detail(first) in overdue and detail(second) not in overdue
    on_time = text(desk.get(page("?overdue=false")))
    assert detail(second) in on_time and detail(first) not in on_time
    other_matter = text(desk.get(page(f"?matter_code={PROMISE_MATTER}")))
    assert 'id="inbox-empty"' in other_matter and "没有符合筛选条件的办件" in other_matter
    # The matter filter offers the department's matters.
    assert f'<option value="{PROMISE_MATTER}"' in other_matter

    today = datetime.now(forms.BEIJING).date()
    submitted_today = text(desk.get(page(f"?submitted_from={today}&submitted_to={today}")))
    assert detail(first) in submitted_today and detail(second) in submitted_today
    assert 'type="date"' in submitted_today
    before = text(desk.get(page(f"?submitted_to={today - timedelta(days=1)}")))
    assert 'id="inbox-empty"' in before
    backwards = desk.get(page(f"?submitted_from={today}&submitted_to={today - timedelta(days=1)}"))
    assert backwards.status_code == 422 and "起始日期不能晚于截止日期" in text(backwards)

    paged = text(desk.get(page("?per_page=1")))
    assert "第 1 页" in paged and "下一页" in paged
    assert 'href="/console/review/?page=2&amp;per_page=1"' in paged
    second_page = text(desk.get(page("?per_page=1&page=2")))
    assert detail(second) in second_page and "上一页" in second_page


def test_a_wrong_filter_is_shown_next_to_it_with_the_apis_message(desk, client, zhang):
    submitted_application(client, zhang)
    response = desk.get(page("?status=draft&per_page=500"))
    assert response.status_code == 422
    body = text(response)
    assert re.search(r'id="inbox-status-error">须为以下之一', body)
    assert 'id="inbox-per_page-error"' in body
    assert 'aria-invalid="true"' in body
    assert "共 1 件" in body  # the list, without the refused filters


def test_an_empty_inbox_says_so(desk):
    body = text(desk.get(page("")))
    assert 'id="inbox-empty"' in body and "本部门暂无已提交的办件" in body


# ------------------------------------------------------------------------------------------ the detail


def test_the_detail_shows_provenance_trust_material_statuses_deadlines_and_timeline(desk, client, zhang):
    application_id = submitted_application(client, zhang)
    response = desk.get(detail(application_id))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = text(response)
    fields = body[body.index('id="fields"'):body.index("</table>", body.index('id="fields"'))]
    assert "housing_fund.monthly_deposit" in fields and "2160" in fields
    assert "郑州住房公积金管理中心" in fields and "gjj-housing-fund" in fields
    assert "A 级 · 权威来源" in fields and "已锁定" in fields and "已获取" in fields
    materials = body[body.index('id="materials"'):]
    assert "申请人居民身份证" in materials and "已满足" in materials and "刷脸核验" in materials
    assert "共享数据" in materials
    assert "个工作日" in body[body.index('id="deadlines"'):]
    timeline = body[body.index('id="timeline"'):]
    assert "创建申请" in timeline and "已提交" in timeline and "申请人" in timeline
    # Only what the status allows is offered: a submitted application is accepted or refused.
    assert 'id="accept-form"' in body and 'id="reject-form"' in body
    assert 'id="approve-form"' not in body and 'id="deliver-mail-form"' not in body


# ------------------------------------------------------------------------------------------ the actions


def test_accept_approve_deliver_land_on_the_timeline_exactly_as_through_the_api(desk, client, app, zhang, reviewer):
    by_console = submitted_application(client, zhang)
    by_api = submitted_application(client, zhang)

    response = posted(desk, detail(by_console, "accept"))
    assert response.headers["Location"].endswith(detail(by_console) + "?done=accept")
    assert "已受理" in text(desk.get(response.headers["Location"]))
    posted(desk, detail(by_console, "approve"), {"result.name": "缴存证明", "result.number": "GJJ-N-1"})
    posted(desk, detail(by_console, "deliver"), {"method": "mail", **MAIL})

    client.post(review_url(by_api, "accept"), headers=reviewer)
    client.post(review_url(by_api, "approve"), headers=reviewer, json={"result": {"name": "缴存证明",
                                                                                  "number": "GJJ-N-2"}})
    client.post(review_url(by_api, "deliver"), headers=reviewer, json=MAIL_JSON)

    ref = reviewer_ref(app)
    assert review_events(app, by_console) == review_events(app, by_api) == [
        ("accepted", ref, {}),
        ("approved", ref, {"result": "缴存证明"}),
        ("delivered", ref, {"method": "mail", "fee": 0, "carrier": "EMS", "tracking_number": "EMS1234567890"}),
    ]
    assert notifications(app, by_console) == notifications(app, by_api)
    seen = client.get(url(by_console), headers=zhang).json
    assert seen["status"] == "delivered" and seen["result"]["number"] == "GJJ-N-1"
    assert seen["delivery"]["recipient"]["address"] == "郑州市金水区某路 1 号"

    body = text(desk.get(detail(by_console)))
    assert "GJJ-N-1" in body and "EMS1234567890" in body and "免费邮寄" in body
    assert 'id="no-actions"' in body


def test_a_supplement_lists_every_item_at_once_as_through_the_api(desk, client, app, zhang, reviewer):
    by_console, by_api = submitted_application(client, zhang), submitted_application(client, zhang)
    for application_id in (by_console, by_api):
        client.post(review_url(application_id, "accept"), headers=reviewer)
    posted(desk, detail(by_console, "request-supplement"), {"items": "请核对单位名称\n\n  请补充联系电话  \n"})
    client.post(review_url(by_api, "request-supplement"), headers=reviewer,
                json={"items": ["请核对单位名称", "请补充联系电话"]})
    assert review_events(app, by_console)[-1] == review_events(app, by_api)[-1] == (
        "supplement_requested", reviewer_ref(app), {"items": ["请核对单位名称", "请补充联系电话"]})
    body = text(desk.get(detail(by_console)))
    assert "请核对单位名称" in body and "请补充联系电话" in body and "待补正" in body


def test_a_rejection_asks_first_and_lands_as_through_the_api(desk, client, app, zhang, reviewer):
    by_console, by_api = submitted_application(client, zhang), submitted_application(client, zhang)
    body = text(desk.get(detail(by_console)))
    assert re.search(r'id="reject-form"[^>]*data-confirm="确认作出不予受理或不予许可决定', body)
    posted(desk, detail(by_console, "reject"), {"reason": "不符合提取条件"})
    client.post(review_url(by_api, "reject"), headers=reviewer, json={"reason": "不符合提取条件"})
    assert review_events(app, by_console) == review_events(app, by_api) == [("rejected", reviewer_ref(app), {})]
    assert client.get(url(by_console), headers=zhang).json["rejection_reason"] == "不符合提取条件"


def test_approve_asks_first(desk, client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    body = text(desk.get(detail(application_id)))
    assert re.search(r'id="approve-form"[^>]*data-confirm="确认办结', body)


def test_an_e_certificate_delivery_defaults_to_the_results_number(desk, client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    number = client.post(review_url(application_id, "approve"), headers=reviewer, json={}).json["result"]["number"]
    posted(desk, detail(application_id, "deliver"), {"method": "e_certificate", **MAIL})  # mail inputs ignored
    delivery = client.get(url(application_id), headers=zhang).json["delivery"]
    assert delivery == {"method": "e_certificate", "fee": 0, "certificate_number": number}


def test_after_an_htmx_action_the_page_is_loaded_afresh(desk, client, zhang):
    application_id = submitted_application(client, zhang)
    response = desk.htmx(detail(application_id, "accept"))
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == detail(application_id) + "?done=accept"
    assert client.get(url(application_id), headers=zhang).json["status"] == "accepted"
    failed = desk.htmx(detail(application_id, "reject"), {"reason": ""})
    assert failed.status_code == 422 and 'id="reject-reason-error"' in text(failed)


def test_a_false_promise_is_recorded_with_a_confirmation_as_through_the_api(desk, client, app, zhang, reviewer):
    created = create(client, zhang, PROMISE_MATTER)
    consent_and_prefill(client, zhang, created)
    promise = client.get(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang).json["text"]
    assert client.post(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang,
                       json={"text": promise}).status_code == 201
    assert client.post(url(created["id"], "materials/PURCHASE_INVOICE"), headers=zhang,
                       data={"file": (io.BytesIO(PDF), "invoice.pdf")},
                       content_type="multipart/form-data").status_code == 201
    verify_face(client, zhang)
    assert submit(client, zhang, created["id"]).status_code == 200

    body = text(desk.get(detail(created["id"])))
    assert "告知承诺" in body[body.index('id="materials"'):]
    assert re.search(r'id="breach-form"[^>]*data-confirm="确认记录该告知承诺不实', body)
    missing = desk.post(detail(created["id"], "promise-breach"), {"material_code": "BANK_CARD"})
    assert missing.status_code == 422 and 'id="breach-reason-error">必填' in text(missing)
    not_promised = desk.post(detail(created["id"], "promise-breach"), {"material_code": "IDENTITY", "reason": "x"})
    assert not_promised.status_code == 422
    assert 'id="breach-material_code-error">该申请的这项材料不是以告知承诺方式提交的' in text(not_promised)

    response = posted(desk, detail(created["id"], "promise-breach"),
                      {"material_code": "BANK_CARD", "reason": "银行卡不属于申请人本人"})
    assert "已记录告知承诺不实" in text(desk.get(response.headers["Location"]))
    assert review_events(app, created["id"])[-1] == ("promise_breach_recorded", reviewer_ref(app),
                                                     {"material": "BANK_CARD"})
    again = create(client, zhang, PROMISE_MATTER)
    text_again = client.get(url(again["id"], "materials/BANK_CARD/promise"), headers=zhang).json["text"]
    refused = client.post(url(again["id"], "materials/BANK_CARD/promise"), headers=zhang, json={"text": text_again})
    assert refused.status_code == 403 and refused.json["error"] == "promise_not_allowed"


# ------------------------------------------------------------------------------------------ errors


def test_a_wrong_state_shows_the_apis_409_message_and_changes_nothing(desk, client, app, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    api = client.post(review_url(application_id, "approve"), headers=reviewer, json={})
    assert api.status_code == 409
    response = desk.post(detail(application_id, "approve"), {})
    assert response.status_code == 409
    body = text(response)
    assert 'id="conflict"' in body and api.json["message"] in body  # 申请当前为“已提交”状态,不能办结
    assert review_events(app, application_id) == []
    # A page left open: accepted meanwhile through the API, accepted again from the console.
    client.post(review_url(application_id, "accept"), headers=reviewer)
    again = desk.post(detail(application_id, "accept"))
    assert again.status_code == 409 and "申请当前为“已受理”状态,不能受理" in text(again)
    assert 'id="approve-form"' in text(again)  # the page as it is now


def test_validation_errors_are_shown_next_to_their_fields(desk, client, app, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    empty = desk.post(detail(application_id, "reject"), {"reason": "   "})
    assert empty.status_code == 422
    assert 'id="reject-reason-error">必填' in text(empty)
    assert 'aria-describedby="reject-reason-error" aria-invalid="true"' in text(empty)

    client.post(review_url(application_id, "accept"), headers=reviewer)
    nothing = desk.post(detail(application_id, "request-supplement"), {"items": "\n \n"})
    assert nothing.status_code == 422 and 'id="supplement-items-error">长度须在 1 到 50 之间' in text(nothing)
    too_long = desk.post(detail(application_id, "approve"), {"result.name": "证" * 201, "result.note": "保留"})
    assert too_long.status_code == 422
    body = text(too_long)
    assert 'id="approve-result-name-error">长度须在 1 到 200 之间' in body
    assert ">保留</textarea>" in body  # what was typed is shown again
    assert review_events(app, application_id) == [("accepted", reviewer_ref(app), {})]

    client.post(review_url(application_id, "approve"), headers=reviewer, json={})
    no_recipient = desk.post(detail(application_id, "deliver"), {"method": "mail"})
    assert no_recipient.status_code == 422
    body = text(no_recipient)
    assert 'id="deliver-mail-recipient-error">邮寄送达时必填' in body
    assert 'id="deliver-mail-tracking_number-error">邮寄送达时必填' in body
    short = desk.post(detail(application_id, "deliver"), {"method": "mail", **MAIL, "recipient.phone": "1"})
    assert short.status_code == 422 and 'id="deliver-mail-recipient-phone-error">长度须在 5 到 20 之间' in text(short)
    assert [kind for kind, _, _ in review_events(app, application_id)] == ["accepted", "approved"]


def test_a_post_without_csrf_token_is_refused(desk, client, app, zhang):
    application_id = submitted_application(client, zhang)
    assert desk.post(detail(application_id, "accept"), csrf=False).status_code == 400
    assert review_events(app, application_id) == []


# ------------------------------------------------------------------------------------------ who may see what


@pytest.mark.parametrize("username", ["auditor", "bureau-ga", "agent", "admin"])
def test_other_roles_get_403(logged_in, client, zhang, username):
    application_id = submitted_application(client, zhang)
    console = logged_in(username)
    for path in (page(""), detail(application_id), page("rectifications")):
        assert console.get(path).status_code == 403, path
    response = console.post(detail(application_id, "accept"))
    assert response.status_code == 403 and "无权访问此页面" in text(response)


def test_a_reviewer_of_another_department_cannot_see_the_application(console, client, app, zhang, bdc_reviewer):
    application_id = submitted_application(client, zhang)
    response = console.login(*bdc_reviewer)
    assert response.status_code == 302
    console.get("/console/")
    inbox = text(console.get(page("")))
    assert application_id not in inbox and 'id="inbox-empty"' in inbox
    assert console.get(detail(application_id)).status_code == 404
    assert console.post(detail(application_id, "accept")).status_code == 404
    assert console.get(detail(application_id, "materials/IDENTITY")).status_code == 404
    assert console.get(detail("0" * 32)).status_code == 404
    assert review_events(app, application_id) == []


def test_an_upload_is_served_to_the_department_as_by_the_api(console, client, zhang, bdc_reviewer, staff_headers):
    created = create(client, zhang, UPLOAD_MATTER)
    for material in ("SALE_CONTRACT", "TAX_PAID"):
        uploaded = client.post(url(created["id"], f"materials/{material}"), headers=zhang,
                               data={"file": (io.BytesIO(PDF), f"{material}.pdf")}, content_type="multipart/form-data")
        assert uploaded.status_code == 201, uploaded.json
    consent_and_prefill(client, zhang, created)
    verify_face(client, zhang)
    submitted = submit(client, zhang, created["id"])
    assert submitted.status_code == 200, submitted.json
    console.login(*bdc_reviewer)
    console.get("/console/")
    body = text(console.get(detail(created["id"])))
    link = detail(created["id"], "materials/SALE_CONTRACT")
    assert f'href="{link}"' in body and "申请人上传" in body and "application/pdf" in body
    response = console.get(link)
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == "attachment"
    api = client.get(review_url(created["id"], "materials/SALE_CONTRACT"),
                     headers=staff_headers(*bdc_reviewer))
    assert api.data == response.data
    assert console.get(detail(created["id"], "materials/IDENTITY")).status_code == 404  # nothing uploaded


# ------------------------------------------------------------------------------------------ rectifications


def evaluated(client, zhang, reviewer, grade: int = 1) -> tuple[str, str]:
    """A delivered application the citizen graded `grade` through the API: (application id, rectification id)."""
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    client.post(review_url(application_id, "approve"), headers=reviewer, json={})
    client.post(review_url(application_id, "deliver"), headers=reviewer, json={"method": "e_certificate"})
    answer = client.post(url(application_id, "evaluation"), headers=zhang, json={"grade": grade, "comment": "等太久"})
    assert answer.status_code == 201, answer.json
    return application_id, answer.json["rectification"]["id"]


def test_rectifications_are_listed_and_resolved_as_through_the_api(desk, client, app, zhang, reviewer):
    application_id, rect_id = evaluated(client, zhang, reviewer)
    listing = text(desk.get(page("rectifications")))
    assert f'id="rect-{rect_id}"' in listing and "非常不满意" in listing and "等太久" in listing
    assert "整改中" in listing
    assert 'id="rectifications-empty"' in text(desk.get(page("rectifications?status=resolved")))

    empty = desk.post(page(f"rectifications/{rect_id}/resolve?status=open"), {"resolution": " "})
    assert empty.status_code == 422
    assert f'id="rect-{rect_id}-resolve-resolution-error">必填' in text(empty)

    done = posted(desk, page(f"rectifications/{rect_id}/resolve?status=open"), {"resolution": "增加了窗口"})
    assert done.headers["Location"].endswith("/console/review/rectifications?status=open&done=resolved")
    assert "整改已完成" in text(desk.get(done.headers["Location"]))
    assert review_events(app, application_id)[-1] == ("rectification_resolved", reviewer_ref(app),
                                                      {"rectification": rect_id})
    api = client.get("/api/v1/review/rectifications", headers=reviewer).json["items"][0]
    assert api["status"] == "resolved" and api["resolution"] == "增加了窗口"

    again = desk.post(page(f"rectifications/{rect_id}/unfixable"), {"reason": "无"})
    assert again.status_code == 409 and "该整改已是“已整改”状态,不能再处理" in text(again)


def test_a_rectification_is_closed_as_unfixable_after_a_confirmation(desk, client, app, zhang, reviewer):
    application_id, rect_id = evaluated(client, zhang, reviewer, grade=2)
    listing = text(desk.get(page("rectifications")))
    assert re.search(rf'id="rect-{rect_id}-unfixable-form"[^>]*data-confirm="确认标记为无法整改', listing)
    posted(desk, page(f"rectifications/{rect_id}/unfixable"), {"reason": "系政策规定,无法调整"})
    assert review_events(app, application_id)[-1][0] == "rectification_unfixable"
    assert "系政策规定,无法调整" in text(desk.get(page("rectifications")))


def test_another_departments_rectification_is_404(console, client, zhang, reviewer, bdc_reviewer):
    _, rect_id = evaluated(client, zhang, reviewer)
    console.login(*bdc_reviewer)
    console.get("/console/")
    assert f"rect-{rect_id}" not in text(console.get(page("rectifications")))
    assert console.post(page(f"rectifications/{rect_id}/resolve"), {"resolution": "x"}).status_code == 404


# ------------------------------------------------------------------------------------------ 智能预审


def test_the_pre_check_is_shown_with_provenance_and_an_unknown_condition_is_decided_here(
        desk, client, app, zhang, bureaus):
    created = create(client, zhang, "GJJ-GG-001")
    client.post(url(created["id"], "consent"), headers=zhang, json=created["consent_required"])
    bureaus.set_mode("social_insurance", "hang")  # the retirement cannot be checked: a reviewer decides
    client.post(url(created["id"], "prefill"), headers=zhang)
    bureaus.set_mode("social_insurance", "normal")
    assert client.post(url(created["id"], "materials/RETIREMENT"), headers=zhang,
                       data={"file": (io.BytesIO(PDF), "r.pdf")}, content_type="multipart/form-data").status_code == 201
    promise = client.get(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang).json["text"]
    client.post(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang, json={"text": promise})
    verify_face(client, zhang)
    assert submit(client, zhang, created["id"]).status_code == 200

    body = text(desk.get(detail(created["id"])))
    section = body[body.index('id="precheck-title"'):body.index('id="materials-title"')]
    assert "部分条件待人工判定" in section and "职工已办理离休、退休手续" in section
    assert "无法核验" in section and "超时" in section
    assert "郑州住房公积金管理中心" in section and "gjj-housing-fund" in section  # the met condition's source
    assert 'id="decide-0-form"' in section and 'id="decide-1-form"' not in section

    unanswered = desk.post(detail(created["id"], "conditions/0/decide"), {"index": "0"})
    assert unanswered.status_code == 422 and "请选择是否符合该受理条件" in text(unanswered)
    approve_first = desk.post(detail(created["id"], "approve"), {})
    assert approve_first.status_code == 409 and "待人工判定" in text(approve_first)
    response = posted(desk, detail(created["id"], "conditions/0/decide"),
                      {"index": "0", "met": "yes", "note": "已核验退休证原件"})
    shown = text(desk.get(response.headers["Location"]))
    assert "已记录对该受理条件的人工判定" in shown and "人工判定:符合(已核验退休证原件)" in shown
    assert review_events(app, created["id"])[-1] == ("condition_decided", reviewer_ref(app),
                                                     {"index": 0, "met": True, "note": True})
    assert 'id="decide-0-form"' not in shown
