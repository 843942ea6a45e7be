"""智能预审: a matter's conditions checked from the prefilled data, over the API against the sandbox bureaus —
told at prefill, enforced at submission (from what the prefill stored), frozen with the submission, decided by
a reviewer where the data cannot, and validated when an admin writes them."""

from __future__ import annotations

import copy
import io
import json

import sqlalchemy as sa
from application_flow import PDF, consent_and_prefill, create, review_url, submit, url, verify_face
from face_flow import CHEN_JING

from app.applications.models import Application, ApplicationEvent
from app.catalogue.seed import load_seed_file
from app.connectors.models import DataAccessRecord
from app.extensions import db

RETIREMENT = "GJJ-GG-001"  # 住房公积金提取(离休、退休)
DEPOSIT_CERTIFICATE = "GJJ-GG-002"  # 住房公积金个人缴存证明出具
PENSION = "RSJ-JF-002"  # 城乡居民基本养老保险待遇申领: 年满 60 周岁 (from the ID number), 缴费满 15 年


def by_index(eligibility: dict) -> dict[int, dict]:
    return {condition["index"]: condition for condition in eligibility["conditions"]}


def events(app, application_id: str, kind: str) -> list[ApplicationEvent]:
    with app.app_context():
        return db.session.scalars(sa.select(ApplicationEvent).where(
            ApplicationEvent.application_id == application_id, ApplicationEvent.kind == kind)).all()


def test_the_retirement_conditions_are_fetched_under_the_consent(client, zhang):
    created = create(client, zhang, RETIREMENT)
    assert "social_insurance.status" in created["consent_required"]["elements"]
    assert "受理条件" in created["consent_required"]["purpose"]
    # The name and ID number come from the identity proven by face, never from a bureau.
    assert "person.id_number" not in create(client, zhang, PENSION)["consent_required"]["elements"]


def test_zhang_wei_is_told_he_is_not_retired_before_he_can_submit(app, client, zhang):
    created = create(client, zhang, RETIREMENT)
    answer = consent_and_prefill(client, zhang, created)

    eligibility = answer["eligibility"]
    assert eligibility["result"] == "not_eligible"
    retired, account, bank_card = (by_index(eligibility)[i] for i in (0, 1, 2))
    assert retired["result"] == "not_met" and retired["text"] == "职工已办理离休、退休手续"
    assert "参保缴费" in retired["reason"] and "退休" in retired["reason"]
    fact = retired["facts"][0]
    assert (fact["element"], fact["value"], fact["status"]) == ("social_insurance.status", "参保缴费", "ok")
    assert fact["source"]["connector"] == "rsj-social-insurance" and fact["source"]["fetched_at"]
    assert account["result"] == "met" and {f["element"] for f in account["facts"]} == {
        "housing_fund.account_status", "housing_fund.balance"}
    assert (bank_card["checked"], bank_card["result"]) == (False, "not_checked")
    # Everything else still prefilled as before: the pre-check is told, it does not hide anything.
    assert answer["fields"]["social_insurance.retirement_date"]["status"] == "not_found"

    verify_face(client, zhang)
    refused = submit(client, zhang, created["id"])
    assert refused.status_code == 422, refused.json
    assert refused.json["error"] == "conditions_not_met"
    assert "职工已办理离休、退休手续" in refused.json["message"]
    assert [c["index"] for c in refused.json["errors"]["conditions"]] == [0]
    detail = client.get(url(created["id"]), headers=zhang).json
    assert detail["status"] == "draft" and detail["prefill"]["eligibility"]["result"] == "not_eligible"
    assert detail["timeline"][-1]["kind"] == "conditions_refused"
    assert detail["timeline"][-1]["detail"] == {"error": "conditions_not_met", "conditions": [0]}


def test_his_deposit_certificate_pre_checks_eligible_and_the_snapshot_keeps_it(app, client, zhang, reviewer):
    created = create(client, zhang, DEPOSIT_CERTIFICATE)
    answer = consent_and_prefill(client, zhang, created)
    assert answer["eligibility"]["result"] == "eligible"
    assert by_index(answer["eligibility"])[0]["facts"][0]["source"]["connector"] == "gjj-housing-fund"
    verify_face(client, zhang, DEPOSIT_CERTIFICATE)
    assert submit(client, zhang, created["id"]).status_code == 200

    with app.app_context():
        row = db.session.get(Application, created["id"])
        assert row.eligibility_result == "eligible"
        stored = row.submission["eligibility"]
    # In clear only what decides, never a value (the values are encrypted with the others).
    assert stored["result"] == "eligible"
    assert all("value" not in fact for c in stored["conditions"] for fact in c["facts"])
    assert "正常" not in json.dumps(stored, ensure_ascii=False)

    seen = client.get(review_url(created["id"]), headers=reviewer).json
    submitted = seen["submission"]["eligibility"]
    assert submitted["result"] == "eligible" and seen["submission"]["conditions_to_decide"] == []
    assert by_index(submitted)[0]["facts"][0]["value"] == "正常"
    assert by_index(submitted)[0]["facts"][0]["source"]["bureau"] == "郑州住房公积金管理中心"


def test_a_registry_change_after_the_prefill_does_not_alter_the_check_at_submit(app, client, zhang, bureaus):
    created = create(client, zhang, DEPOSIT_CERTIFICATE)
    consent_and_prefill(client, zhang, created)
    calls = len([r for r in _records(app) if r.application_id == created["id"]])
    bureaus.set_mode("housing_fund", "error500")  # whatever the registry says now is not asked
    verify_face(client, zhang, DEPOSIT_CERTIFICATE)
    submitted = submit(client, zhang, created["id"])
    assert submitted.status_code == 200, submitted.json
    assert len([r for r in _records(app) if r.application_id == created["id"]]) == calls
    assert client.get(url(created["id"]), headers=zhang).json["submission"]["eligibility"]["result"] == "eligible"


def _records(app) -> list[DataAccessRecord]:
    with app.app_context():
        return db.session.scalars(sa.select(DataAccessRecord)).all()


def test_chen_jing_is_retired_though_she_has_no_housing_fund_account(client, citizen_as):
    chen = citizen_as(*CHEN_JING)
    created = create(client, chen, RETIREMENT)
    required = created["consent_required"]
    client.post(url(created["id"], "consent"), headers=chen, json=required)
    blocked = client.post(url(created["id"], "prefill"), headers=chen)
    # Her housing fund account is critical and not found: the prefill is blocked, and says all it knows.
    assert blocked.status_code == 422 and blocked.json["error"] == "prefill_blocked"
    eligibility = blocked.json["errors"]["eligibility"]
    assert by_index(eligibility)[0]["result"] == "met"
    assert by_index(eligibility)[1]["result"] == "not_met"
    assert eligibility["result"] == "not_eligible"


def test_an_age_from_the_id_number_is_shown_as_an_age_never_as_the_number(client, citizen_as):
    chen = citizen_as(*CHEN_JING)
    created = create(client, chen, PENSION)
    answer = consent_and_prefill(client, chen, created)
    age = by_index(answer["eligibility"])[0]
    assert age["result"] == "met"
    assert age["facts"][0]["element"] == "person.id_number" and age["facts"][0]["derive"] == "age"
    assert isinstance(age["facts"][0]["value"], int) and age["facts"][0]["value"] >= 61
    assert age["facts"][0]["source"]["bureau"] == "实名认证(刷脸核验)"
    assert answer["eligibility"]["result"] == "eligible"
    assert CHEN_JING[1] not in json.dumps(answer, ensure_ascii=False)
    zhang_like = client.get(url(created["id"]), headers=chen).json
    assert CHEN_JING[1] not in json.dumps(zhang_like, ensure_ascii=False)


def test_a_timeout_is_a_visible_unknown_a_reviewer_may_decide(app, client, zhang, bureaus, reviewer):
    created = create(client, zhang, RETIREMENT)
    required = created["consent_required"]
    assert client.post(url(created["id"], "consent"), headers=zhang, json=required).status_code == 201
    bureaus.set_mode("social_insurance", "hang")
    answer = client.post(url(created["id"], "prefill"), headers=zhang).json
    bureaus.set_mode("social_insurance", "normal")
    retired = by_index(answer["eligibility"])[0]
    assert retired["result"] == "unknown" and retired["reviewer_may_decide"] is True
    assert retired["facts"][0]["status"] == "timeout" and "超时" in retired["reason"]
    assert answer["eligibility"]["result"] == "unknown"

    # The retirement proof is uploaded and the bank card promised; the condition goes to the reviewer.
    uploaded = client.post(url(created["id"], "materials/RETIREMENT"), headers=zhang,
                           data={"file": (io.BytesIO(PDF), "retirement.pdf")}, content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.json
    text = client.get(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang).json["text"]
    assert client.post(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang,
                       json={"text": text}).status_code == 201
    verify_face(client, zhang)
    submitted = submit(client, zhang, created["id"])
    assert submitted.status_code == 200, submitted.json
    with app.app_context():
        assert db.session.get(Application, created["id"]).eligibility_result == "unknown"

    seen = client.get(review_url(created["id"]), headers=reviewer).json
    assert seen["submission"]["conditions_to_decide"] == [0]
    assert client.post(review_url(created["id"], "accept"), headers=reviewer).status_code == 200
    early = client.post(review_url(created["id"], "approve"), headers=reviewer, json={})
    assert early.status_code == 409 and early.json["error"] == "conditions_undecided"

    assert client.post(review_url(created["id"], "conditions/1/decide"), headers=reviewer,
                       json={"met": True}).json["error"] == "condition_not_decidable"  # the data decided it
    assert client.post(review_url(created["id"], "conditions/7/decide"), headers=reviewer,
                       json={"met": True}).status_code == 404
    decided = client.post(review_url(created["id"], "conditions/0/decide"), headers=reviewer,
                          json={"met": True, "note": "已核验退休证原件"})
    assert decided.status_code == 200, decided.json
    condition = by_index(decided.json["submission"]["eligibility"])[0]
    assert condition["decision"]["met"] is True and condition["decision"]["note"] == "已核验退休证原件"
    assert decided.json["submission"]["conditions_to_decide"] == []
    assert decided.json["timeline"][-1]["kind"] == "condition_decided"
    assert decided.json["timeline"][-1]["detail"] == {"index": 0, "met": True, "note": True}
    again = client.post(review_url(created["id"], "conditions/0/decide"), headers=reviewer, json={"met": False})
    assert again.status_code == 409
    assert client.post(review_url(created["id"], "approve"), headers=reviewer, json={}).status_code == 200
    with app.app_context():
        assert "已核验退休证原件" not in str(db.session.get(Application, created["id"]).condition_notes_encrypted)


def test_an_unknown_no_reviewer_may_decide_blocks_the_submission(client, zhang, bureaus):
    created = create(client, zhang, DEPOSIT_CERTIFICATE)
    client.post(url(created["id"], "consent"), headers=zhang, json=created["consent_required"])
    bureaus.set_mode("housing_fund", "error500")
    answer = client.post(url(created["id"], "prefill"), headers=zhang).json
    bureaus.set_mode("housing_fund", "normal")
    assert answer["eligibility"]["result"] == "unknown"
    verify_face(client, zhang, DEPOSIT_CERTIFICATE)
    refused = submit(client, zhang, created["id"])
    assert refused.status_code == 422 and refused.json["error"] == "conditions_unverified"
    assert refused.json["errors"]["conditions"][0]["result"] == "unknown"


def test_a_condition_decided_not_met_cannot_be_approved(client, zhang, bureaus, reviewer):
    created = create(client, zhang, RETIREMENT)
    client.post(url(created["id"], "consent"), headers=zhang, json=created["consent_required"])
    bureaus.set_mode("social_insurance", "error500")
    client.post(url(created["id"], "prefill"), headers=zhang)
    bureaus.set_mode("social_insurance", "normal")
    client.post(url(created["id"], "materials/RETIREMENT"), headers=zhang,
                data={"file": (io.BytesIO(PDF), "r.pdf")}, content_type="multipart/form-data")
    text = client.get(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang).json["text"]
    client.post(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang, json={"text": text})
    verify_face(client, zhang)
    assert submit(client, zhang, created["id"]).status_code == 200
    no = client.post(review_url(created["id"], "conditions/0/decide"), headers=reviewer, json={"met": False})
    assert no.status_code == 200
    refused = client.post(review_url(created["id"], "approve"), headers=reviewer, json={})
    assert refused.status_code == 409 and refused.json["error"] == "conditions_not_met"
    assert client.post(review_url(created["id"], "reject"), headers=reviewer,
                       json={"reason": "未办理退休手续"}).status_code == 200


# --------------------------------------------------------------------------------------------- admin writes


def seed_body(code: str) -> dict:
    body = copy.deepcopy(next(m for m in load_seed_file()["matters"] if m["code"] == code))
    return body


def test_rules_with_unknown_elements_or_wrong_types_are_422_naming_each(client, staff_headers):
    admin = staff_headers("admin")
    body = seed_body(RETIREMENT)
    body["conditions"] = [
        "纯文字条件",
        {"text": "未知元素", "rule": {"element": "person.shoe_size", "op": ">", "value": 40}},
        {"text": "类型不符", "rule": {"all": [
            {"element": "social_insurance.months_paid", "op": ">=", "value": "十五年"},
            {"element": "social_insurance.status", "op": "<", "value": "退休"}]}},
        {"text": "结构有误", "rule": {"all": [], "any": []}},
    ]
    response = client.put(f"/api/v1/matters/{RETIREMENT}", headers=admin, json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_failed"
    problems = response.json["errors"]["json"]["conditions"]
    assert set(problems) == {"1", "2", "3"}
    assert any("未知的数据元素" in m for m in problems["1"])
    assert any(m.startswith("rule.all.0.value") and "整数" in m for m in problems["2"])
    assert any(m.startswith("rule.all.1.op") and "不适用" in m for m in problems["2"])
    # Nothing changed; the matter keeps its rules.
    assert client.get(f"/api/v1/matters/{RETIREMENT}").json["version"] == 1


def test_rules_are_versioned_with_the_matter(client, staff_headers):
    admin = staff_headers("admin")
    body = seed_body(DEPOSIT_CERTIFICATE)
    body["conditions"] = [{"text": "缴存满 12 个月", "rule": {
        "element": "housing_fund.deposit_months", "op": ">=", "value": 12}, "reviewer_may_decide": True}]
    response = client.put(f"/api/v1/matters/{DEPOSIT_CERTIFICATE}", headers=admin, json=body)
    assert response.status_code == 200, response.json
    guide = client.get(f"/api/v1/matters/{DEPOSIT_CERTIFICATE}").json
    assert guide["version"] == 2 and guide["conditions"] == ["缴存满 12 个月"]
    assert guide["condition_checks"] == [{"index": 0, "text": "缴存满 12 个月", "reviewer_may_decide": True,
                                          "elements": ["housing_fund.deposit_months"],
                                          "rule": body["conditions"][0]["rule"]}]
    # A proactive matter needs something to check.
    body["conditions"], body["proactive"] = ["只有文字"], True
    refused = client.put(f"/api/v1/matters/{DEPOSIT_CERTIFICATE}", headers=admin, json=body)
    assert refused.status_code == 422 and "proactive" in refused.json["errors"]["json"]
