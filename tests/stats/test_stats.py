"""The operators' statistics, checked against a small scenario built through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from application_flow import ZERO_MATERIAL_FACE_MATTER, create, review_url, submitted_application, url

from app.applications.models import Application, Rectification
from app.extensions import db

STATS = "/api/v1/stats"
# Monday 3 March 2025 to Monday 10 March 2025, 10:00 Beijing time: five working days (no holiday between).
MONDAY = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
NEXT_MONDAY = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
def admin(staff_headers):
    return staff_headers("admin")


@pytest.fixture
def scenario(client, app, zhang, reviewer):
    """Three applications of one matter: delivered (rated 1), rejected (rated 5), and one still submitted;
    plus a draft. The delivered one took five working days; the rejected one was decided after its promised
    date; the submitted one is past its promised date."""
    delivered = submitted_application(client, zhang)
    client.post(review_url(delivered, "accept"), headers=reviewer)
    client.post(review_url(delivered, "approve"), headers=reviewer, json={})
    client.post(review_url(delivered, "deliver"), headers=reviewer, json={"method": "e_certificate"})
    rejected = submitted_application(client, zhang)
    client.post(review_url(rejected, "reject"), headers=reviewer, json={"reason": "不符合条件"})
    waiting = submitted_application(client, zhang)
    draft = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)["id"]
    with app.app_context():
        row = db.session.get(Application, delivered)
        row.submitted_at, row.decided_at, row.promised_due_on = MONDAY, NEXT_MONDAY, NEXT_MONDAY.date()
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
        db.session.get(Application, rejected).promised_due_on = yesterday - timedelta(days=1)
        db.session.get(Application, waiting).promised_due_on = yesterday - timedelta(days=1)
        db.session.commit()
    assert client.post(url(delivered, "evaluation"), headers=zhang, json={"grade": 1}).status_code == 201
    assert client.post(url(rejected, "evaluation"), headers=zhang, json={"grade": 5}).status_code == 201
    return {"delivered": delivered, "rejected": rejected, "waiting": waiting, "draft": draft}


def test_application_stats_per_matter_and_status(client, admin, scenario):
    answer = client.get(f"{STATS}/applications", headers=admin)
    assert answer.status_code == 200, answer.json
    assert answer.json["from"] is None and answer.json["to"] is None
    [matter] = answer.json["items"]
    assert matter["matter_code"] == ZERO_MATERIAL_FACE_MATTER
    assert matter["matter_name"] == "住房公积金个人缴存证明出具"
    assert matter["department_code"] == "gjj"
    assert isinstance(matter["promised_time_limit_days"], int)
    assert matter["total"] == 4
    counts = {status: n for status, n in matter["by_status"].items() if n}
    assert counts == {"delivered": 1, "rejected": 1, "submitted": 1, "draft": 1}
    assert matter["submitted"] == 3
    assert matter["zero_material"] == 3 and matter["zero_material_share"] == 1.0
    assert matter["decided"] == 2
    # Five working days for the delivered one, none for the one rejected on the day it was submitted.
    assert matter["average_processing_working_days"] == 2.5
    assert matter["decided_late"] == 1
    assert matter["overdue_undecided"] == 1
    totals = answer.json["totals"]
    assert {key: totals[key] for key in ("total", "submitted", "decided", "decided_late", "overdue_undecided")} == {
        "total": 4, "submitted": 3, "decided": 2, "decided_late": 1, "overdue_undecided": 1}
    assert totals["average_processing_working_days"] == 2.5


def test_a_period_selects_applications_by_when_they_were_created(client, admin, scenario):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    empty = client.get(f"{STATS}/applications", headers=admin, query_string={"from": later}).json
    assert empty["items"] == [] and empty["totals"]["total"] == 0
    assert empty["totals"]["zero_material_share"] is None
    assert empty["totals"]["average_processing_working_days"] is None
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    now = client.get(f"{STATS}/applications", headers=admin, query_string={"from": earlier, "to": later}).json
    assert now["totals"]["total"] == 4
    backwards = client.get(f"{STATS}/applications", headers=admin, query_string={"from": later, "to": earlier})
    assert backwards.status_code == 422 and backwards.json["error"] == "validation_failed"


def test_evaluation_stats_per_department(client, admin, reviewer, scenario):
    answer = client.get(f"{STATS}/evaluations", headers=admin)
    assert answer.status_code == 200, answer.json
    [department] = answer.json["items"]
    assert department["department_code"] == "gjj"
    assert department["department_name"] == "郑州住房公积金管理中心"
    assert department["evaluations"] == 2
    assert department["average_grade"] == 3.0
    assert department["grades"] == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 1}
    assert department["poor"] == 1 and department["poor_share"] == 0.5
    assert department["rectifications"] == {"open": 1, "resolved": 0, "unfixable": 0, "overdue": 0}

    rect_id = client.get("/api/v1/review/rectifications", headers=reviewer).json["items"][0]["id"]
    client.post(f"/api/v1/review/rectifications/{rect_id}/resolve", headers=reviewer, json={"resolution": "已整改"})
    totals = client.get(f"{STATS}/evaluations", headers=admin).json["totals"]
    assert totals["rectifications"] == {"open": 0, "resolved": 1, "unfixable": 0, "overdue": 0}
    assert totals["evaluations"] == 2


def test_overdue_rectifications_are_counted(client, app, admin, scenario):
    with app.app_context():
        rect = db.session.query(Rectification).one()
        rect.due_on = (datetime.now(UTC) - timedelta(days=3)).date()
        db.session.commit()
    totals = client.get(f"{STATS}/evaluations", headers=admin).json["totals"]
    assert totals["rectifications"] == {"open": 1, "resolved": 0, "unfixable": 0, "overdue": 1}


def test_face_pass_rate(client, admin, zhang, scenario):
    # The scenario proved 张伟's identity once and verified three times (one per submitted application); one
    # more attempt fails.
    started = client.post("/api/v1/face/sessions", headers=zhang,
                          json={"purpose": "identity_check", "biometric_consent": True})
    failed = client.post(f"/api/v1/face/sessions/{started.json['session_id']}/complete", headers=zhang,
                         json={"evidence": {"sandbox": "no_match"}})
    assert failed.json["decision"] == "fail"
    answer = client.get(f"{STATS}/face", headers=admin)
    assert answer.status_code == 200, answer.json
    assert (answer.json["decisions"], answer.json["passed"], answer.json["failed"]) == (5, 4, 1)
    assert answer.json["pass_rate"] == 0.8
    assert answer.json["failure_reasons"] == {failed.json["reason"]: 1}
    [provider] = answer.json["providers"]
    assert provider["decisions"] == 5 and provider["pass_rate"] == 0.8
    assert sum(item["decisions"] for item in answer.json["items"]) == 5
    # The auditors' period rules: `to` defaults to now, so a period in the future must say where it ends.
    future = datetime.now(UTC) + timedelta(hours=1)
    assert client.get(f"{STATS}/face", headers=admin, query_string={"from": future.isoformat()}).status_code == 422
    empty = client.get(f"{STATS}/face", headers=admin, query_string={
        "from": future.isoformat(), "to": (future + timedelta(hours=1)).isoformat()}).json
    assert empty["decisions"] == 0 and empty["pass_rate"] is None and empty["providers"] == []


def test_only_operators_see_statistics(client, staff_headers, zhang):
    for path in ("applications", "face", "evaluations"):
        assert client.get(f"{STATS}/{path}").status_code == 401
        for headers in (zhang, staff_headers("auditor"), staff_headers("reviewer-gjj")):
            assert client.get(f"{STATS}/{path}", headers=headers).status_code == 403
    # The public catalogue figures are still there for anyone.
    assert client.get(f"{STATS}/catalog").status_code == 200


def test_the_answers_match_the_openapi_document(client, app, admin, reviewer, zhang, scenario):
    """With real data behind them (the fuzzing mostly meets empty tables), every answer is as documented."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def check(path: str, method: str, response, status: int) -> dict:
        assert response.status_code == status, response.json
        schema[path][method].validate_response(response)
        return response.json

    for name in ("applications", "face", "evaluations"):
        check(f"{STATS}/{name}", "GET", client.get(f"{STATS}/{name}", headers=admin), 200)
    evaluation = "/api/v1/applications/{application_id}/evaluation"
    check(evaluation, "GET", client.get(url(scenario["delivered"], "evaluation"), headers=zhang), 200)
    check(evaluation, "GET", client.get(url(scenario["waiting"], "evaluation"), headers=zhang), 404)
    check(evaluation, "POST", client.post(url(scenario["waiting"], "evaluation"), headers=zhang,
                                          json={"grade": 2}), 409)
    client.post(review_url(scenario["waiting"], "reject"), headers=reviewer, json={"reason": "材料不实"})
    check(evaluation, "POST", client.post(url(scenario["waiting"], "evaluation"), headers=zhang,
                                          json={"grade": 2, "comment": "不满意"}), 201)
    listed = check("/api/v1/review/rectifications", "GET",
                   client.get("/api/v1/review/rectifications", headers=reviewer), 200)
    first, second = (item["id"] for item in listed["items"])
    one = "/api/v1/review/rectifications/{rectification_id}"
    check(f"{one}/resolve", "POST", client.post(f"/api/v1/review/rectifications/{first}/resolve",
                                                headers=reviewer, json={"resolution": "已整改"}), 200)
    check(f"{one}/unfixable", "POST", client.post(f"/api/v1/review/rectifications/{second}/unfixable",
                                                  headers=reviewer, json={"reason": "超出职权范围"}), 200)
    check(f"{one}/resolve", "POST", client.post(f"/api/v1/review/rectifications/{first}/resolve",
                                                headers=reviewer, json={"resolution": "again"}), 409)
    check("/api/v1/review/rectifications", "GET", client.get("/api/v1/review/rectifications", headers=reviewer), 200)
    check(f"{STATS}/evaluations", "GET", client.get(f"{STATS}/evaluations", headers=admin), 200)


def test_first_time_pass_rate_and_pre_check_figures(client, admin, scenario, zhang, reviewer):
    # A fourth application is decided only after a supplement request (补正): not a first-time pass.
    corrected = submitted_application(client, zhang)
    client.post(review_url(corrected, "accept"), headers=reviewer)
    client.post(review_url(corrected, "request-supplement"), headers=reviewer, json={"items": ["请核对缴存单位"]})
    assert client.post(url(corrected, "resubmit"), headers=zhang).status_code == 200
    assert client.post(review_url(corrected, "approve"), headers=reviewer, json={}).status_code == 200
    # And one refused at submission: 张伟 is not retired.
    refused = create(client, zhang, "GJJ-GG-001")
    client.post(url(refused["id"], "consent"), headers=zhang, json=refused["consent_required"])
    client.post(url(refused["id"], "prefill"), headers=zhang)
    assert client.post(url(refused["id"], "submit"), headers=zhang).json["error"] == "conditions_not_met"

    answer = client.get(f"{STATS}/applications", headers=admin).json
    matters = {item["matter_code"]: item for item in answer["items"]}
    certificate = matters[ZERO_MATERIAL_FACE_MATTER]
    assert (certificate["decided"], certificate["decided_first_time"]) == (3, 2)
    assert certificate["first_time_pass_rate"] == round(2 / 3, 4)
    assert certificate["first_time_pass_target"] == 0.95 and certificate["meets_target"] is False
    assert certificate["prechecked_eligible"] == 4 and certificate["prechecked_eligible_share"] == 1.0
    assert matters["GJJ-GG-001"]["refused_for_conditions"] == 1
    assert matters["GJJ-GG-001"]["first_time_pass_rate"] is None and matters["GJJ-GG-001"]["meets_target"] is None
    [gjj] = [d for d in answer["departments"] if d["department_code"] == "gjj"]
    assert gjj["department_name"] == "郑州住房公积金管理中心"
    assert (gjj["decided"], gjj["decided_first_time"], gjj["refused_for_conditions"]) == (3, 2, 1)
    assert answer["totals"]["rejected_for_conditions"] == 0
