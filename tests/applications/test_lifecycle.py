"""The application lifecycle over the API: submit, review, deliver; every wrong move is refused unchanged."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from application_flow import (
    PDF,
    PNG,
    UPLOAD_MATTER,
    ZERO_MATERIAL_FACE_MATTER,
    consent_and_prefill,
    create,
    review_url,
    submit,
    submitted_application,
    url,
    verify_face,
)
from face_flow import LI_NA, bind_person

from app.accounts.models import Citizen
from app.applications.models import Application, ApplicationEvent
from app.extensions import db
from app.notifications.models import Notification
from tests.helpers import assert_error


def events(client, headers, application_id: str) -> list[str]:
    return [event["kind"] for event in client.get(url(application_id), headers=headers).json["timeline"]]


# ---------------------------------------------------------------------------------------------- the journey


def test_zero_material_face_application_goes_from_draft_to_delivered(client, app, zhang, reviewer):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    assert created["status"] == "draft"
    prefilled = consent_and_prefill(client, zhang, created)
    assert prefilled["zero_material"] is True
    deposit = prefilled["fields"]["housing_fund.monthly_deposit"]
    assert deposit["status"] == "ok" and deposit["locked"] is True
    assert deposit["source"]["bureau"]

    verify_face(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    submitted = submit(client, zhang, created["id"], key="phone-retry-1")
    assert submitted.status_code == 200, submitted.json
    assert submitted.json["status"] == "submitted"
    assert submitted.json["zero_material"] is True
    assert submitted.json["promised_due_on"]

    inbox = client.get("/api/v1/review/applications?status=submitted", headers=reviewer)
    assert [item["id"] for item in inbox.json["items"]] == [created["id"]]
    assert inbox.json["items"][0]["applicant_id_number_masked"] == "4101**********0013"

    assert client.post(review_url(created["id"], "accept"), headers=reviewer).json["status"] == "accepted"
    approved = client.post(review_url(created["id"], "approve"), headers=reviewer, json={})
    assert approved.status_code == 200
    assert approved.json["result"]["name"] == "住房公积金个人缴存证明"
    delivered = client.post(review_url(created["id"], "deliver"), headers=reviewer,
                            json={"method": "e_certificate"})
    assert delivered.status_code == 200, delivered.json
    assert delivered.json["delivery"] == {"method": "e_certificate", "fee": 0,
                                          "certificate_number": approved.json["result"]["number"]}

    detail = client.get(url(created["id"]), headers=zhang).json
    assert detail["status"] == "delivered"
    kinds = [event["kind"] for event in detail["timeline"]]
    assert kinds[-4:] == ["submitted", "accepted", "approved", "delivered"]
    actors = {event["kind"]: event["actor"] for event in detail["timeline"]}
    assert actors["submitted"] == "citizen" and actors["approved"] == "reviewer"
    # The citizen was told at every status change (the outbox holds one message per change).
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Notification.id))
                                 .where(Notification.application_id == created["id"])) == 4


def test_the_submission_keeps_the_values_it_was_submitted_with(client, zhang, bureaus):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    consent_and_prefill(client, zhang, created)
    verify_face(client, zhang)
    assert submit(client, zhang, created["id"]).status_code == 200
    frozen = client.get(url(created["id"]), headers=zhang).json["submission"]
    assert frozen["fields"]["housing_fund.account_status"]["value"]
    assert frozen["fields"]["housing_fund.account_status"]["source"]["trust_level"] == "A"
    # The bureau goes down afterwards: nothing submitted changes.
    bureaus.set_mode("housing_fund", "error500")
    assert client.get(url(created["id"]), headers=zhang).json["submission"] == frozen


# ------------------------------------------------------------------------------------------------ submit


def test_a_repeated_submit_with_the_same_key_returns_the_same_answer_and_creates_nothing(
        client, zhang, row_counts):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    consent_and_prefill(client, zhang, created)
    verify_face(client, zhang)
    first = submit(client, zhang, created["id"], key="k-1")
    before = row_counts()
    again = submit(client, zhang, created["id"], key="k-1")
    assert again.status_code == 200
    assert again.json == first.json
    assert row_counts() == before
    # Without the key, a second submit is a conflict: it is no longer a draft.
    assert submit(client, zhang, created["id"]).json["error"] == "invalid_transition"


def test_an_idempotency_key_used_for_another_application_is_refused(client, zhang):
    first = submitted_application(client, zhang)
    other = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    consent_and_prefill(client, zhang, other)
    assert submit(client, zhang, first, key="same").status_code == 409  # no key was stored for `first`
    assert submit(client, zhang, other["id"], key="same").status_code == 200
    reused = client.post(url(first, "submit"), headers={**zhang, "Idempotency-Key": "same"})
    assert reused.status_code == 422 and reused.json["error"] == "idempotency_key_reused"


def test_a_malformed_idempotency_key_is_a_validation_error(client, zhang):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    response = submit(client, zhang, created["id"], key="x" * 129)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["errors"]["headers"]


def test_a_face_matter_without_a_fresh_face_verification_cannot_be_submitted(app, client, zhang, row_counts):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    consent_and_prefill(client, zhang, created)
    with app.app_context():  # the window the real-name proof opened has closed
        db.session.execute(sa.update(Citizen).values(face_verified_until=None))
        db.session.commit()
    before = row_counts()
    response = submit(client, zhang, created["id"])
    assert response.status_code == 403
    assert response.json["error"] == "face_verification_required"
    assert row_counts() == before
    assert client.get(url(created["id"]), headers=zhang).json["status"] == "draft"


def test_a_stale_face_window_is_refused(client, app, zhang):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    consent_and_prefill(client, zhang, created)
    verify_face(client, zhang)
    with app.app_context():
        from app.accounts.models import Citizen

        citizen = db.session.scalar(sa.select(Citizen).where(Citizen.face_verified_until.is_not(None)))
        citizen.face_verified_until = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert submit(client, zhang, created["id"]).json["error"] == "face_verification_required"


def test_missing_materials_are_listed_and_nothing_changes(client, zhang, row_counts):
    created = create(client, zhang, UPLOAD_MATTER)
    consent_and_prefill(client, zhang, created)
    verify_face(client, zhang)
    before = row_counts()
    response = submit(client, zhang, created["id"])
    assert response.status_code == 422
    assert response.json["error"] == "materials_missing"
    assert "SALE_CONTRACT" in response.json["errors"]["materials"]
    assert row_counts() == before


def test_an_upload_satisfies_a_material_and_only_the_owner_and_the_department_can_read_it(
        client, zhang, citizen_as):
    created = create(client, zhang, UPLOAD_MATTER)
    uploaded = client.post(url(created["id"], "materials/SALE_CONTRACT"), headers=zhang,
                           data={"file": (__import__("io").BytesIO(PDF), "contract.pdf")},
                           content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.json
    assert uploaded.json["status"] == "satisfied" and uploaded.json["via"] == "upload"
    assert uploaded.json["upload"]["content_type"] == "application/pdf"
    assert uploaded.json["upload"]["size"] == len(PDF)
    own = client.get(url(created["id"], "materials/SALE_CONTRACT"), headers=zhang)
    assert own.status_code == 200 and own.data == PDF
    assert own.headers["Content-Type"] == "application/pdf"
    li = citizen_as(*LI_NA)
    assert client.get(url(created["id"], "materials/SALE_CONTRACT"), headers=li).status_code == 404


def test_an_upload_of_the_wrong_type_or_size_is_refused(client, make_app, zhang):
    import io

    created = create(client, zhang, UPLOAD_MATTER)
    html = client.post(url(created["id"], "materials/SALE_CONTRACT"), headers=zhang,
                       data={"file": (io.BytesIO(b"<html>not a pdf</html>"), "contract.pdf")},
                       content_type="multipart/form-data")
    assert html.status_code == 422
    assert html.json["error"] == "upload_type_not_allowed"
    empty = client.post(url(created["id"], "materials/SALE_CONTRACT"), headers=zhang,
                        data={"file": (io.BytesIO(b""), "contract.pdf")}, content_type="multipart/form-data")
    assert empty.status_code == 422
    # A material that shared data provides takes no upload.
    wrong = client.post(url(created["id"], "materials/MARRIAGE"), headers=zhang,
                        data={"file": (io.BytesIO(PNG), "m.png")}, content_type="multipart/form-data")
    assert wrong.status_code == 422 and wrong.json["error"] == "evidence_not_offered"
    assert client.get(url(created["id"]), headers=zhang).json["timeline"][-1]["kind"] == "created"


def test_an_upload_over_the_size_limit_is_413_and_changes_nothing(make_app):
    import io

    small = make_app(UPLOAD_MAX_BYTES=1000)
    client = small.test_client()
    headers = bind_person(client, LI_NA, openid="size-test")
    created = create(client, headers, UPLOAD_MATTER)
    big = PDF + b"0" * 2000
    response = client.post(url(created["id"], "materials/SALE_CONTRACT"), headers=headers,
                           data={"file": (io.BytesIO(big), "contract.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"
    assert client.get(url(created["id"]), headers=headers).json["materials"][2]["status"] == "needs_upload"


# ---------------------------------------------------------------------------------------------- the form


def test_a_locked_prefilled_field_cannot_change_but_free_fields_can(client, zhang):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    prefilled = consent_and_prefill(client, zhang, created)
    employer = prefilled["fields"]["housing_fund.employer"]["value"]
    ok = client.put(url(created["id"], "form"), headers=zhang,
                    json={"fields": {"housing_fund.employer": employer, "contact.phone": "13800000000"}})
    assert ok.status_code == 200, ok.json
    changed = client.put(url(created["id"], "form"), headers=zhang,
                         json={"fields": {"housing_fund.employer": "别的公司"}})
    assert changed.status_code == 409
    assert changed.json["error"] == "prefill_locked"
    assert "housing_fund.employer" in changed.json["errors"]["json"]["fields"]
    assert client.get(url(created["id"]), headers=zhang).json["form"] == {
        "housing_fund.employer": employer, "contact.phone": "13800000000"}


def test_a_bad_form_field_is_a_validation_error(client, zhang):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    response = client.put(url(created["id"], "form"), headers=zhang, json={"fields": {"Bad Name": 1}})
    assert response.status_code == 422
    nested = client.put(url(created["id"], "form"), headers=zhang, json={"fields": {"a": {"b": 1}}})
    assert nested.status_code == 422


# ------------------------------------------------------------------------------------ wrong moves, wrong people


REVIEW_ACTIONS = {
    "accept": None,
    "request-supplement": {"items": ["请补充说明"]},
    "approve": {},
    "reject": {"reason": "不符合条件"},
    "deliver": {"method": "e_certificate"},
}
ALLOWED_FROM = {
    "accept": {"submitted"},
    "request-supplement": {"accepted", "resubmitted"},
    "approve": {"accepted", "resubmitted"},
    "reject": {"submitted", "accepted", "supplement_requested", "resubmitted"},
    "deliver": {"approved"},
}
PATHS = {
    "submitted": [],
    "accepted": ["accept"],
    "supplement_requested": ["accept", "request-supplement"],
    "approved": ["accept", "approve"],
    "rejected": ["reject"],
    "delivered": ["accept", "approve", "deliver"],
}


@pytest.mark.parametrize("state", sorted(PATHS))
def test_every_review_action_from_every_wrong_state_is_a_conflict_that_changes_nothing(
        client, zhang, reviewer, row_counts, state):
    application_id = submitted_application(client, zhang)
    for action in PATHS[state]:
        response = client.post(review_url(application_id, action), headers=reviewer, json=REVIEW_ACTIONS[action])
        assert response.status_code == 200, response.json
    assert client.get(url(application_id), headers=zhang).json["status"] == state
    before = row_counts()
    for action, body in REVIEW_ACTIONS.items():
        if state in ALLOWED_FROM[action]:
            continue
        response = client.post(review_url(application_id, action), headers=reviewer, json=body)
        assert response.status_code == 409, (state, action, response.json)
        assert response.json["error"] == "invalid_transition"
    for action in ("submit", "withdraw", "resubmit"):
        if (action, state) in {("withdraw", "submitted"), ("resubmit", "supplement_requested")}:
            continue
        response = client.post(url(application_id, action), headers=zhang, json={} if action == "withdraw" else None)
        assert response.status_code == 409, (state, action, response.json)
    assert row_counts() == before
    assert client.get(url(application_id), headers=zhang).json["status"] == state


def test_withdrawal_before_acceptance(client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    withdrawn = client.post(url(application_id, "withdraw"), headers=zhang, json={"reason": "不办了"})
    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn"
    assert client.post(review_url(application_id, "accept"), headers=reviewer).status_code == 409


def test_a_supplement_round_trip_lists_the_items_and_comes_back(client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    items = ["请核对单位名称", "请补充联系电话"]
    asked = client.post(review_url(application_id, "request-supplement"), headers=reviewer, json={"items": items})
    assert asked.json["supplement_items"] == items
    assert client.get(url(application_id), headers=zhang).json["supplement_items"] == items
    form = client.put(url(application_id, "form"), headers=zhang, json={"fields": {"contact.phone": "13800000000"}})
    assert form.status_code == 200
    verify_face(client, zhang)
    back = client.post(url(application_id, "resubmit"), headers=zhang)
    assert back.status_code == 200 and back.json["status"] == "resubmitted"
    approved = client.post(review_url(application_id, "approve"), headers=reviewer, json={"result": {"number": "N1"}})
    assert approved.json["result"]["number"] == "N1"


def test_mail_delivery_needs_a_recipient_and_a_tracking_number_and_is_free(client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    client.post(review_url(application_id, "approve"), headers=reviewer, json={})
    incomplete = client.post(review_url(application_id, "deliver"), headers=reviewer, json={"method": "mail"})
    assert incomplete.status_code == 422
    mailed = client.post(review_url(application_id, "deliver"), headers=reviewer, json={
        "method": "mail", "tracking_number": "EMS1234567890",
        "recipient": {"name": "张伟", "phone": "13800000000", "address": "郑州市金水区某路 1 号"}})
    assert mailed.status_code == 200
    assert mailed.json["delivery"]["fee"] == 0 and mailed.json["delivery"]["carrier"] == "EMS"
    assert client.get(url(application_id), headers=zhang).json["delivery"]["recipient"]["address"]


def test_another_citizen_or_a_forged_id_gets_404(client, zhang, citizen_as):
    application_id = submitted_application(client, zhang)
    li = citizen_as(*LI_NA)
    for path in ("", "form"):
        method = client.get if not path else client.put
        kwargs = {"json": {"fields": {}}} if path else {}
        assert method(url(application_id, path), headers=li, **kwargs).status_code == 404
    assert client.post(url(application_id, "withdraw"), headers=li, json={}).status_code == 404
    assert client.get(url("0" * 32), headers=zhang).status_code == 404
    assert client.get(url("not-an-id"), headers=zhang).status_code == 404


def test_a_reviewer_of_another_department_sees_nothing(client, app, zhang, staff_headers):
    application_id = submitted_application(client, zhang)
    with app.app_context():
        from app.accounts.services.staff import create_staff

        create_staff("reviewer-bdc", "another-long-password", roles=["reviewer"], department_code="bdc")
    other = staff_headers("reviewer-bdc", password="another-long-password")
    assert client.get("/api/v1/review/applications", headers=other).json["items"] == []
    assert client.get(review_url(application_id), headers=other).status_code == 404
    assert client.post(review_url(application_id, "accept"), headers=other).status_code == 404


def test_citizens_and_agents_cannot_use_the_review_endpoints(client, zhang, staff_headers):
    application_id = submitted_application(client, zhang)
    assert client.post(review_url(application_id, "accept"), headers=zhang).status_code == 403
    assert client.post(review_url(application_id, "accept"), headers=staff_headers("agent")).status_code == 403


def test_drafts_never_reach_the_reviewers(client, zhang, reviewer):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    assert client.get("/api/v1/review/applications", headers=reviewer).json["total"] == 0
    assert client.get(review_url(created["id"]), headers=reviewer).status_code == 404


def test_overdue_applications_show_in_the_inbox(client, app, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    with app.app_context():
        row = db.session.get(Application, application_id)
        row.promised_due_on = (datetime.now(UTC) - timedelta(days=3)).date()
        db.session.commit()
    overdue = client.get("/api/v1/review/applications?overdue=true", headers=reviewer).json
    assert [item["id"] for item in overdue["items"]] == [application_id]
    assert overdue["items"][0]["overdue"] is True
    assert client.get("/api/v1/review/applications?overdue=false", headers=reviewer).json["total"] == 0
    assert client.get(url(application_id), headers=zhang).json["overdue"] is True


def test_the_inbox_filters_by_the_day_of_submission_in_beijing(client, app, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    with app.app_context():
        row = db.session.get(Application, application_id)
        row.submitted_at = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 2026-12-01 01:30 in Beijing
        db.session.commit()

    def found(query: str) -> list[str]:
        answer = client.get(f"/api/v1/review/applications?{query}", headers=reviewer)
        assert answer.status_code == 200, answer.json
        return [item["id"] for item in answer.json["items"]]

    assert found("submitted_from=2026-12-01&submitted_to=2026-12-01") == [application_id]
    assert found("submitted_to=2026-11-30") == []
    assert found("submitted_from=2026-12-02") == []
    refused = client.get("/api/v1/review/applications?submitted_from=2026-12-02&submitted_to=2026-12-01",
                         headers=reviewer)
    assert_error(refused, 422, "validation_failed")
    assert "起始日期" in str(refused.json["errors"])


def test_concurrent_transitions_cannot_both_win(client, app, zhang, reviewer, is_postgres):
    """Two reviewers decide at once: exactly one decision lands (on PostgreSQL really in parallel)."""
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    barrier = threading.Barrier(2)
    answers = []

    def decide(action, body):
        own = app.test_client()
        barrier.wait()
        answers.append(own.post(review_url(application_id, action), headers=reviewer, json=body).status_code)

    threads = [threading.Thread(target=decide, args=("approve", {})),
               threading.Thread(target=decide, args=("reject", {"reason": "不符合条件"}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409]
    with app.app_context():
        decisions = db.session.scalars(sa.select(ApplicationEvent.kind).where(
            ApplicationEvent.application_id == application_id,
            ApplicationEvent.kind.in_(("approved", "rejected")))).all()
    assert len(decisions) == 1
