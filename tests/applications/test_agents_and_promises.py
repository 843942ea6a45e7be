"""帮办代办 (agents acting under a citizen's authorisation), written promises (告知承诺) and deferrals (容缺)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from application_flow import (
    PDF,
    ZERO_MATERIAL_FACE_MATTER,
    consent_and_prefill,
    create,
    review_url,
    submit,
    url,
    verify_face,
)
from face_flow import LI_NA

# 公积金提取(购房): the bank card is a written promise. (The retirement withdrawal, GJJ-GG-001, has the same
# promise, but its pre-check now refuses 张伟, who is not retired.)
PROMISE_MATTER = "GJJ-GG-004"


@pytest.fixture
def agent(staff_headers):
    return staff_headers("agent")


def authorise(client, headers, matter_code: str = ZERO_MATERIAL_FACE_MATTER, *, hours: float = 24):
    until = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    return client.post("/api/v1/me/agent-authorisations", headers=headers,
                       json={"agent": "agent", "matter_code": matter_code, "valid_until": until})


def citizen_id(client, headers) -> str:
    return client.get("/api/v1/me", headers=headers).json["id"]


# ------------------------------------------------------------------------------------------------ agents


def test_an_authorised_agent_applies_and_submits_for_the_citizen(client, zhang, agent):
    granted = authorise(client, zhang)
    assert granted.status_code == 201, granted.json
    assert granted.json["status"] == "active" and granted.json["agent"]["username"] == "agent"
    mine = client.get("/api/v1/agent/authorisations", headers=agent).json["items"]
    assert mine[0]["citizen"] == {"id": citizen_id(client, zhang), "id_number_masked": "4101**********0013"}

    created = client.post("/api/v1/applications", headers=agent,
                          json={"matter_code": ZERO_MATERIAL_FACE_MATTER, "on_behalf_of": mine[0]["citizen"]["id"]})
    assert created.status_code == 201, created.json
    # The citizen consents on their own phone; the agent then prefills and submits without a face check
    # (the agent is the non-face way the rules require).
    required = created.json["consent_required"]
    assert client.post(url(created.json["id"], "consent"), headers=zhang, json=required).status_code == 201
    assert client.post(url(created.json["id"], "prefill"), headers=agent).status_code == 200
    submitted = submit(client, agent, created.json["id"])
    assert submitted.status_code == 200, submitted.json

    detail = client.get(url(created.json["id"]), headers=zhang).json
    assert detail["acting_user"] == "agent"
    actors = {event["kind"]: event["actor"] for event in detail["timeline"]}
    assert actors["created"] == "agent" and actors["submitted"] == "agent" and actors["consent_granted"] == "citizen"
    accesses = client.get(f"/api/v1/me/data-access?application_id={created.json['id']}", headers=zhang).json
    assert accesses["items"] and {item["acting_user"] for item in accesses["items"]} == {"agent"}


def test_an_agent_without_authorisation_is_refused(client, zhang, agent, row_counts):
    someone = citizen_id(client, zhang)
    before = row_counts()
    response = client.post("/api/v1/applications", headers=agent,
                           json={"matter_code": ZERO_MATERIAL_FACE_MATTER, "on_behalf_of": someone})
    assert response.status_code == 403
    assert response.json["error"] == "agent_not_authorised"
    assert row_counts() == before


def test_an_authorisation_for_another_matter_does_not_count(client, zhang, agent):
    authorise(client, zhang, PROMISE_MATTER)
    response = client.post("/api/v1/applications", headers=agent,
                           json={"matter_code": ZERO_MATERIAL_FACE_MATTER, "on_behalf_of": citizen_id(client, zhang)})
    assert response.status_code == 403


def test_a_revoked_or_expired_authorisation_stops_the_agent(client, app, zhang, agent):
    granted = authorise(client, zhang).json
    created = client.post("/api/v1/applications", headers=agent, json={
        "matter_code": ZERO_MATERIAL_FACE_MATTER, "on_behalf_of": citizen_id(client, zhang)}).json
    assert client.get(url(created["id"]), headers=agent).status_code == 200
    revoked = client.delete(f"/api/v1/me/agent-authorisations/{granted['id']}", headers=zhang)
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    assert client.get(url(created["id"]), headers=agent).status_code == 404
    assert submit(client, agent, created["id"]).status_code == 404
    # The citizen still has it.
    assert client.get(url(created["id"]), headers=zhang).status_code == 200

    authorise(client, zhang)
    with app.app_context():
        from app.applications.models import AgentAuthorisation
        from app.extensions import db

        for row in db.session.query(AgentAuthorisation).filter_by(revoked_at=None):
            row.valid_until = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert client.get(url(created["id"]), headers=agent).status_code == 404
    listed = client.get("/api/v1/me/agent-authorisations", headers=zhang).json["items"]
    assert {item["status"] for item in listed} == {"revoked", "expired"}


def test_authorisation_bodies_are_checked(client, zhang):
    assert authorise(client, zhang, hours=-1).status_code == 422
    assert authorise(client, zhang, hours=24 * 365).status_code == 422
    unknown = client.post("/api/v1/me/agent-authorisations", headers=zhang, json={
        "agent": "reviewer-gjj", "matter_code": ZERO_MATERIAL_FACE_MATTER,
        "valid_until": (datetime.now(UTC) + timedelta(days=1)).isoformat()})
    assert unknown.status_code == 422 and unknown.json["error"] == "unknown_agent"
    other = client.delete("/api/v1/me/agent-authorisations/" + "0" * 32, headers=zhang)
    assert other.status_code == 404


def test_on_behalf_of_is_for_agents_only(client, zhang, agent):
    mine = client.post("/api/v1/applications", headers=zhang,
                       json={"matter_code": ZERO_MATERIAL_FACE_MATTER, "on_behalf_of": "0" * 32})
    assert mine.status_code == 422
    theirs = client.post("/api/v1/applications", headers=agent, json={"matter_code": ZERO_MATERIAL_FACE_MATTER})
    assert theirs.status_code == 422


# ---------------------------------------------------------------------------------------------- promises


def promised_application(client, headers) -> str:
    created = create(client, headers, PROMISE_MATTER)
    consent_and_prefill(client, headers, created)
    text = client.get(url(created["id"], "materials/BANK_CARD/promise"), headers=headers)
    assert text.status_code == 200
    signed = client.post(url(created["id"], "materials/BANK_CARD/promise"), headers=headers,
                         json={"text": text.json["text"]})
    assert signed.status_code == 201, signed.json
    assert signed.json["status"] == "promised"
    # The purchase withdrawal also wants the invoice, which only an upload provides.
    uploaded = client.post(url(created["id"], "materials/PURCHASE_INVOICE"), headers=headers,
                           data={"file": (io.BytesIO(PDF), "invoice.pdf")}, content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.json
    return created["id"]


def test_a_signed_promise_meets_a_material_and_a_false_one_bars_further_promises(client, zhang, staff_headers):
    application_id = promised_application(client, zhang)
    verify_face(client, zhang)
    submitted = submit(client, zhang, application_id)
    assert submitted.status_code == 200, submitted.json
    materials = client.get(url(application_id), headers=zhang).json["submission"]["materials"]
    assert {m["code"]: m["status"] for m in materials}["BANK_CARD"] == "promised"
    reviewer = staff_headers("reviewer-gjj")
    client.post(review_url(application_id, "accept"), headers=reviewer)
    breach = client.post(review_url(application_id, "promise-breach"), headers=reviewer,
                         json={"material_code": "BANK_CARD", "reason": "银行卡不属于申请人本人"})
    assert breach.status_code == 201, breach.json
    again = create(client, zhang, PROMISE_MATTER)
    text = client.get(url(again["id"], "materials/BANK_CARD/promise"), headers=zhang).json["text"]
    refused = client.post(url(again["id"], "materials/BANK_CARD/promise"), headers=zhang, json={"text": text})
    assert refused.status_code == 403
    assert refused.json["error"] == "promise_not_allowed"


def test_a_promise_must_be_signed_as_shown_and_only_where_offered(client, zhang):
    created = create(client, zhang, PROMISE_MATTER)
    changed = client.post(url(created["id"], "materials/BANK_CARD/promise"), headers=zhang, json={"text": "改过的"})
    assert changed.status_code == 422
    assert client.get(url(created["id"], "materials/HF_ACCOUNT/promise"), headers=zhang).status_code == 404
    offered = client.post(url(created["id"], "materials/HF_ACCOUNT/promise"), headers=zhang, json={"text": "x"})
    assert offered.status_code == 422 and offered.json["error"] == "evidence_not_offered"


def test_a_promise_cannot_be_recorded_as_false_for_a_material_provided_otherwise(client, zhang, staff_headers):
    created = create(client, zhang, ZERO_MATERIAL_FACE_MATTER)
    consent_and_prefill(client, zhang, created)
    verify_face(client, zhang)
    submit(client, zhang, created["id"])
    response = client.post(review_url(created["id"], "promise-breach"), headers=staff_headers("reviewer-gjj"),
                           json={"material_code": "HF_DEPOSIT", "reason": "x"})
    assert response.status_code == 422


# ---------------------------------------------------------------------------------------------- deferrals


def deferrable_material(app) -> tuple[str, str]:
    with app.app_context():
        from app.catalogue.models import Material
        from app.extensions import db

        material = db.session.query(Material).filter_by(deferrable=True).first()
        return material.matter.code, material.code


def test_only_a_deferrable_material_can_be_deferred_and_it_gets_a_due_date(client, app, citizen_as):
    li = citizen_as(*LI_NA)
    matter_code, material_code = deferrable_material(app)
    created = create(client, li, matter_code)
    deferred = client.post(url(created["id"], f"materials/{material_code}/defer"), headers=li)
    assert deferred.status_code == 201, deferred.json
    assert deferred.json["status"] == "deferred"
    due = datetime.fromisoformat(deferred.json["due_on"]).date()
    assert due > datetime.now(UTC).date()
    other = next(m["code"] for m in created["materials"] if m["code"] != material_code)
    refused = client.post(url(created["id"], f"materials/{other}/defer"), headers=li)
    assert refused.status_code in (404, 422)
