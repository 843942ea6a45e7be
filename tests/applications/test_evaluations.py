"""好差评 over the API: one evaluation per completed application; poor grades open a rectification that the
department's reviewers resolve or mark unfixable; every wrong move is refused and changes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from application_flow import review_url, submitted_application, url
from cryptography.fernet import Fernet
from face_flow import LI_NA

from app.applications.models import Evaluation, Rectification
from app.applications.workdays import work_calendar
from app.extensions import db
from app.pii import PiiVault

RECTIFICATIONS = "/api/v1/review/rectifications"


@pytest.fixture
def other_reviewer(app, staff_headers):
    """A reviewer of another department (不动产登记中心)."""
    with app.app_context():
        from app.accounts.services.staff import create_staff

        create_staff("reviewer-bdc", "another-long-password", roles=["reviewer"], department_code="bdc")
    return staff_headers("reviewer-bdc", password="another-long-password")


def delivered_application(client, citizen, reviewer) -> str:
    application_id = submitted_application(client, citizen)
    assert client.post(review_url(application_id, "accept"), headers=reviewer).status_code == 200
    assert client.post(review_url(application_id, "approve"), headers=reviewer, json={}).status_code == 200
    delivered = client.post(review_url(application_id, "deliver"), headers=reviewer, json={"method": "e_certificate"})
    assert delivered.status_code == 200, delivered.json
    return application_id


def evaluate(client, headers, application_id: str, grade, comment: str | None = None):
    body = {"grade": grade} | ({"comment": comment} if comment is not None else {})
    return client.post(url(application_id, "evaluation"), headers=headers, json=body)


def rectification_of(client, reviewer, application_id: str) -> dict:
    items = client.get(RECTIFICATIONS, headers=reviewer).json["items"]
    return next(item for item in items if item["application_id"] == application_id)


# ---------------------------------------------------------------------------------------------- evaluate


def test_a_good_grade_is_recorded_once_without_a_rectification(client, zhang, reviewer, row_counts):
    application_id = delivered_application(client, zhang, reviewer)
    assert client.get(url(application_id, "evaluation"), headers=zhang).status_code == 404

    answer = evaluate(client, zhang, application_id, 5, "办得很快")
    assert answer.status_code == 201, answer.json
    assert answer.json["grade"] == 5 and answer.json["grade_label"] == "非常满意"
    assert answer.json["comment"] == "办得很快"
    assert answer.json["application_id"] == application_id
    assert answer.json["rectification"] is None
    assert client.get(url(application_id, "evaluation"), headers=zhang).json == answer.json

    before = row_counts()
    again = evaluate(client, zhang, application_id, 1)
    assert again.status_code == 409 and again.json["error"] == "already_evaluated"
    assert row_counts() == before
    assert client.get(url(application_id, "evaluation"), headers=zhang).json["grade"] == 5

    # The timeline says it was evaluated, with the grade but not the comment.
    timeline = client.get(url(application_id), headers=zhang).json["timeline"]
    assert timeline[-1]["kind"] == "evaluated" and timeline[-1]["detail"] == {"grade": 5}
    assert timeline[-1]["actor"] == "citizen"


def test_a_rejected_application_may_be_evaluated_too(client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "reject"), headers=reviewer, json={"reason": "不符合条件"})
    assert evaluate(client, zhang, application_id, 3).status_code == 201


def test_evaluating_before_completion_is_refused_and_changes_nothing(client, zhang, reviewer, row_counts):
    application_id = submitted_application(client, zhang)
    for step in (None, "accept"):
        if step:
            client.post(review_url(application_id, step), headers=reviewer)
        before = row_counts()
        refused = evaluate(client, zhang, application_id, 1, "太慢了")
        assert refused.status_code == 409
        assert refused.json["error"] == "evaluation_not_allowed"
        assert "办结后才能评价" in refused.json["message"]
        assert row_counts() == before
    assert client.get(url(application_id, "evaluation"), headers=zhang).status_code == 404


def test_a_withdrawn_application_cannot_be_evaluated(client, zhang):
    application_id = submitted_application(client, zhang)
    client.post(url(application_id, "withdraw"), headers=zhang, json={})
    assert evaluate(client, zhang, application_id, 2).json["error"] == "evaluation_not_allowed"


def test_another_citizen_or_a_forged_id_gets_404(client, zhang, reviewer, citizen_as, row_counts):
    application_id = delivered_application(client, zhang, reviewer)
    li = citizen_as(*LI_NA)
    before = row_counts()
    assert evaluate(client, li, application_id, 1).status_code == 404
    assert client.get(url(application_id, "evaluation"), headers=li).status_code == 404
    assert evaluate(client, zhang, "0" * 32, 5).status_code == 404
    assert evaluate(client, zhang, "not-an-id", 5).status_code == 404
    assert row_counts() == before


def test_an_agent_cannot_evaluate_even_when_authorised(client, zhang, reviewer, staff_headers, row_counts):
    """403: the grade is the citizen's own satisfaction; the agent's token is refused whatever it is for."""
    application_id = delivered_application(client, zhang, reviewer)
    until = (datetime.now(UTC) + timedelta(hours=24)).isoformat()
    granted = client.post("/api/v1/me/agent-authorisations", headers=zhang,
                          json={"agent": "agent", "matter_code": "GJJ-GG-002", "valid_until": until})
    assert granted.status_code == 201, granted.json
    agent = staff_headers("agent")
    # The agent can see the application (it acts for the citizen) but cannot rate it.
    assert client.get(url(application_id), headers=agent).status_code == 200
    before = row_counts()
    refused = evaluate(client, agent, application_id, 5)
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    assert client.get(url(application_id, "evaluation"), headers=agent).status_code == 403
    assert row_counts() == before


@pytest.mark.parametrize("body", [{"grade": 0}, {"grade": 6}, {"grade": -1}, {"grade": "3"}, {"grade": 2.5},
                                  {"grade": True}, {}, {"grade": 3, "comment": "长" * 501},
                                  {"grade": 3, "extra": 1}])
def test_bad_evaluations_get_422_and_change_nothing(client, zhang, reviewer, row_counts, body):
    application_id = delivered_application(client, zhang, reviewer)
    before = row_counts()
    refused = client.post(url(application_id, "evaluation"), headers=zhang, json=body)
    assert refused.status_code == 422, refused.json
    assert refused.json["error"] == "validation_failed"
    assert row_counts() == before


def test_the_comment_is_stored_encrypted(client, app, zhang, reviewer):
    application_id = delivered_application(client, zhang, reviewer)
    evaluate(client, zhang, application_id, 4, "窗口的王某某很热情")
    with app.app_context():
        stored = db.session.scalar(sa.select(Evaluation.comment_encrypted)
                                   .where(Evaluation.application_id == application_id))
    assert stored and "王某某" not in stored
    assert client.get(url(application_id, "evaluation"), headers=zhang).json["comment"] == "窗口的王某某很热情"


def test_the_comment_moves_to_a_new_key_on_rotation(client, app, make_app, zhang, reviewer):
    application_id = delivered_application(client, zhang, reviewer)
    evaluate(client, zhang, application_id, 2, "等了很久")
    old_key = app.config["DATA_ENCRYPTION_KEYS"].split(",")[0]
    new_key = Fernet.generate_key().decode()
    rotated = make_app(DATA_ENCRYPTION_KEYS=f"{new_key},{old_key}")
    assert rotated.test_cli_runner().invoke(args=["reencrypt"]).exit_code == 0
    with rotated.app_context():
        stored = db.session.scalar(sa.select(Evaluation.comment_encrypted)
                                   .where(Evaluation.application_id == application_id))
    assert PiiVault(encryption_keys=[new_key], pseudonym_key="x").decrypt(stored) == "等了很久"


def test_two_evaluations_at_once_record_one(client, app, zhang, reviewer):
    application_id = delivered_application(client, zhang, reviewer)
    barrier = threading.Barrier(2)
    answers = []

    def rate(grade):
        own = app.test_client()
        barrier.wait()
        answers.append(evaluate(own, zhang, application_id, grade).status_code)

    threads = [threading.Thread(target=rate, args=(grade,)) for grade in (1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 409]
    with app.app_context():
        grades = db.session.scalars(sa.select(Evaluation.grade)
                                    .where(Evaluation.application_id == application_id)).all()
        rectifications = db.session.scalar(sa.select(sa.func.count(Rectification.id))
                                           .where(Rectification.application_id == application_id))
    assert len(grades) == 1
    assert rectifications == (1 if grades[0] == 1 else 0)


# ------------------------------------------------------------------------------------------ rectification


def test_a_poor_grade_opens_a_rectification_due_in_15_working_days(client, app, zhang, reviewer):
    application_id = delivered_application(client, zhang, reviewer)
    answer = evaluate(client, zhang, application_id, 2, "等了很久")
    assert answer.status_code == 201, answer.json
    rectification = answer.json["rectification"]
    assert rectification["status"] == "open"
    due_on = datetime.fromisoformat(rectification["due_on"]).date()
    with app.app_context():
        calendar = work_calendar()
        evaluated_on = calendar.local_date(datetime.fromisoformat(answer.json["created_at"]))
        assert calendar.working_days_between(evaluated_on, due_on) == 15
        assert calendar.is_working_day(due_on)
    # Fifteen working days are three weeks at least, whatever the holidays.
    assert (due_on - evaluated_on).days >= 21

    listed = client.get(RECTIFICATIONS, headers=reviewer).json
    assert listed["total"] == 1
    item = listed["items"][0]
    assert item["id"] == rectification["id"] and item["application_id"] == application_id
    assert item["grade"] == 2 and item["grade_label"] == "不满意" and item["comment"] == "等了很久"
    assert item["status"] == "open" and item["overdue"] is False and item["resolution"] is None
    assert item["matter_code"] == "GJJ-GG-002"


def test_the_departments_reviewer_resolves_it(client, zhang, reviewer):
    application_id = delivered_application(client, zhang, reviewer)
    rect_id = evaluate(client, zhang, application_id, 1).json["rectification"]["id"]

    resolved = client.post(f"{RECTIFICATIONS}/{rect_id}/resolve", headers=reviewer,
                           json={"resolution": "已优化审核流程,缩短办理时间"})
    assert resolved.status_code == 200, resolved.json
    assert resolved.json["status"] == "resolved" and resolved.json["status_label"] == "已整改"
    assert resolved.json["resolution"] == "已优化审核流程,缩短办理时间"
    assert resolved.json["resolved_by"].startswith("reviewer:") and resolved.json["resolved_at"]

    assert client.get(url(application_id, "evaluation"), headers=zhang).json["rectification"]["status"] == "resolved"
    assert client.get(RECTIFICATIONS + "?status=open", headers=reviewer).json["total"] == 0
    assert client.get(RECTIFICATIONS + "?status=resolved", headers=reviewer).json["total"] == 1
    timeline = client.get(url(application_id), headers=zhang).json["timeline"]
    assert timeline[-1]["kind"] == "rectification_resolved" and timeline[-1]["actor"] == "reviewer"

    # Closed once: neither resolved again nor marked unfixable.
    for action, body in (("resolve", {"resolution": "再次整改"}), ("unfixable", {"reason": "无法整改"})):
        again = client.post(f"{RECTIFICATIONS}/{rect_id}/{action}", headers=reviewer, json=body)
        assert again.status_code == 409 and again.json["error"] == "invalid_transition"


def test_unfixable_needs_a_reason(client, zhang, reviewer, row_counts):
    application_id = delivered_application(client, zhang, reviewer)
    rect_id = evaluate(client, zhang, application_id, 2).json["rectification"]["id"]
    before = row_counts()
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = client.post(f"{RECTIFICATIONS}/{rect_id}/unfixable", headers=reviewer, json=body)
        assert refused.status_code == 422, (body, refused.json)
    assert row_counts() == before
    assert rectification_of(client, reviewer, application_id)["status"] == "open"

    closed = client.post(f"{RECTIFICATIONS}/{rect_id}/unfixable", headers=reviewer,
                         json={"reason": "申请人诉求超出法定办理范围"})
    assert closed.status_code == 200
    assert closed.json["status"] == "unfixable" and closed.json["resolution"] == "申请人诉求超出法定办理范围"
    kinds = [event["kind"] for event in client.get(url(application_id), headers=zhang).json["timeline"]]
    assert kinds[-1] == "rectification_unfixable"


def test_a_reviewer_of_another_department_gets_404(client, zhang, reviewer, other_reviewer, row_counts):
    application_id = delivered_application(client, zhang, reviewer)
    rect_id = evaluate(client, zhang, application_id, 1).json["rectification"]["id"]
    assert client.get(RECTIFICATIONS, headers=other_reviewer).json["total"] == 0
    before = row_counts()
    assert client.post(f"{RECTIFICATIONS}/{rect_id}/resolve", headers=other_reviewer,
                       json={"resolution": "x"}).status_code == 404
    assert client.post(f"{RECTIFICATIONS}/{rect_id}/unfixable", headers=other_reviewer,
                       json={"reason": "x"}).status_code == 404
    assert row_counts() == before
    assert client.post(f"{RECTIFICATIONS}/{'0' * 32}/resolve", headers=reviewer,
                       json={"resolution": "x"}).status_code == 404


def test_only_reviewers_work_rectifications(client, zhang, reviewer, staff_headers):
    application_id = delivered_application(client, zhang, reviewer)
    rect_id = evaluate(client, zhang, application_id, 1).json["rectification"]["id"]
    for headers in (zhang, staff_headers("agent"), staff_headers("admin")):
        assert client.get(RECTIFICATIONS, headers=headers).status_code == 403
        assert client.post(f"{RECTIFICATIONS}/{rect_id}/resolve", headers=headers,
                           json={"resolution": "x"}).status_code == 403
    assert client.get(RECTIFICATIONS).status_code == 401


def test_overdue_rectifications_are_flagged(client, app, zhang, reviewer):
    application_id = delivered_application(client, zhang, reviewer)
    rect_id = evaluate(client, zhang, application_id, 2).json["rectification"]["id"]
    assert client.get(RECTIFICATIONS + "?overdue=true", headers=reviewer).json["total"] == 0
    with app.app_context():
        row = db.session.get(Rectification, rect_id)
        row.due_on = (datetime.now(UTC) - timedelta(days=3)).date()
        db.session.commit()
    late = client.get(RECTIFICATIONS + "?overdue=true", headers=reviewer).json
    assert [item["id"] for item in late["items"]] == [rect_id] and late["items"][0]["overdue"] is True
    assert client.get(RECTIFICATIONS + "?overdue=false", headers=reviewer).json["total"] == 0
    # Once resolved it is no longer overdue, however late it was.
    client.post(f"{RECTIFICATIONS}/{rect_id}/resolve", headers=reviewer, json={"resolution": "已整改"})
    assert client.get(RECTIFICATIONS + "?overdue=true", headers=reviewer).json["total"] == 0
