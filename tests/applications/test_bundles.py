"""一件事 bundles: one consent, one prefill, one form, fanned out to a child per matter, decided in parallel."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from application_flow import PDF, review_url, url, verify_face
from face_flow import LI_NA, ZHANG_WEI

RESTAURANT = "kaiban-canyin"  # 开办餐饮店: five matters across four departments
UPLOADS = {"SCJG-XK-001": "ARTICLES", "SCJG-XK-002": "LAYOUT", "GJJ-GG-005": "AUTHORISATION",
           "SW-QT-001": "TAX_STATUS"}


@pytest.fixture
def li(citizen_as):
    return citizen_as(*LI_NA)


def bundle_url(bundle_id: str, action: str = "") -> str:
    return f"/api/v1/bundle-applications/{bundle_id}" + (f"/{action}" if action else "")


def start(client, headers) -> dict:
    response = client.post(f"/api/v1/bundles/{RESTAURANT}/applications", headers=headers, json={})
    assert response.status_code == 201, response.json
    return response.json


def consent(client, headers, bundle: dict):
    return client.post(bundle_url(bundle["id"], "consent"), headers=headers, json=bundle["consent_required"])


def reviewers(app, staff_headers, departments) -> dict[str, dict]:
    """A reviewer account per department (the sandbox has only the housing-fund one)."""
    with app.app_context():
        from app.accounts.services.staff import create_staff

        for code in departments:
            if code != "gjj":
                create_staff(f"reviewer-{code}", "a-long-enough-password", roles=["reviewer"], department_code=code)
    return {code: staff_headers(f"reviewer-{code}", "sandbox-pass" if code == "gjj" else "a-long-enough-password")
            for code in departments}


def test_a_bundle_fans_out_to_one_draft_per_matter_routed_to_each_department(client, li):
    bundle = start(client, li)
    assert bundle["status"] == "draft"
    assert [child["matter_code"] for child in bundle["children"]] == [
        "SCJG-XK-001", "SCJG-XK-002", "SW-QT-001", "RSJ-QR-001", "GJJ-GG-005"]
    assert {child["department_code"] for child in bundle["children"]} == {"scjg", "sw", "rsj", "gjj"}
    listed = client.get("/api/v1/bundle-applications", headers=li).json
    assert listed["total"] == 1 and listed["items"][0]["id"] == bundle["id"]
    for child in bundle["children"]:
        detail = client.get(url(child["id"]), headers=li).json
        assert detail["bundle_application_id"] == bundle["id"]


def test_one_consent_and_one_prefill_call_each_connector_once(client, li, bureaus):
    bundle = start(client, li)
    consented = consent(client, li, bundle)
    assert consented.status_code == 201, consented.json
    receipts = consented.json["receipts"]
    assert len(receipts) == len({r["application_id"] for r in receipts}) >= 2
    union = set(bundle["consent_required"]["elements"])
    assert set().union(*(r["elements"] for r in receipts)) == union

    prefilled = client.post(bundle_url(bundle["id"], "prefill"), headers=li)
    assert prefilled.status_code == 200, prefilled.json
    assert set(prefilled.json["fields"]) == union
    assert prefilled.json["fields"]["business.uscc"]["value"] == "91410100MA44XK3P76"
    # One call per bureau for the whole bundle, however many children need its data.
    business_calls = bureaus.journal("business")
    assert len(business_calls) == 1
    for child in prefilled.json["children"]:
        detail = client.get(url(child["id"]), headers=li).json
        assert detail["prefill"] is not None
    # 智能预审 per child: 李娜 is the legal representative of her registered, existing company.
    tax = next(c for c in prefilled.json["children"] if c["matter_code"] == "SW-QT-001")
    assert [c["result"] for c in tax["eligibility"]["conditions"]] == ["met", "met"]
    assert prefilled.json["eligibility_result"] in ("eligible", "unknown")


def test_the_shared_form_reaches_every_child(client, li):
    bundle = start(client, li)
    response = client.put(bundle_url(bundle["id"], "form"), headers=li,
                          json={"fields": {"shop.name": "李娜小馆", "contact.phone": "13800000000"}})
    assert response.status_code == 200, response.json
    for child in bundle["children"]:
        assert client.get(url(child["id"]), headers=li).json["form"]["shop.name"] == "李娜小馆"


def accept_tax_status_upload(app) -> None:
    """The sandbox has no tax bureau: let the tax matter take an uploaded tax-status proof instead."""
    with app.app_context():
        from app.catalogue.models import Material, Matter
        from app.extensions import db

        material = db.session.scalar(sa.select(Material).join(Matter).where(
            Matter.code == "SW-QT-001", Material.code == "TAX_STATUS"))
        material.evidence = [*material.evidence, {"type": "upload", "trust_level": "C"}]
        db.session.commit()


def test_a_bundle_submits_all_or_nothing_and_completes_when_every_child_is_approved(
        client, app, li, staff_headers):
    accept_tax_status_upload(app)
    bundle = start(client, li)
    consent(client, li, bundle)
    client.post(bundle_url(bundle["id"], "prefill"), headers=li)
    verify_face(client, li)
    missing = client.post(bundle_url(bundle["id"], "submit"), headers=li)
    assert missing.status_code == 422 and missing.json["error"] == "materials_missing"
    assert "有限责任公司设立登记" in missing.json["message"]
    assert client.get(bundle_url(bundle["id"]), headers=li).json["status"] == "draft"

    children = {child["matter_code"]: child["id"] for child in bundle["children"]}
    for matter_code, material in UPLOADS.items():
        uploaded = client.post(url(children[matter_code], f"materials/{material}"), headers=li,
                               data={"file": (io.BytesIO(PDF), "f.pdf")}, content_type="multipart/form-data")
        assert uploaded.status_code == 201, uploaded.json
    # The food licence's safety system, and the company address (no property record), are written promises.
    for matter_code, material in (("SCJG-XK-002", "SAFETY_SYSTEM"), ("SCJG-XK-001", "ADDRESS")):
        promise = client.get(url(children[matter_code], f"materials/{material}/promise"), headers=li).json
        signed = client.post(url(children[matter_code], f"materials/{material}/promise"), headers=li,
                             json={"text": promise["text"]})
        assert signed.status_code == 201, signed.json
    submitted = client.post(bundle_url(bundle["id"], "submit"), headers={**li, "Idempotency-Key": "b-1"})
    assert submitted.status_code == 200, submitted.json
    assert {child["status"] for child in submitted.json["children"]} == {"submitted"}
    again = client.post(bundle_url(bundle["id"], "submit"), headers={**li, "Idempotency-Key": "b-1"})
    assert again.json == submitted.json

    staff = reviewers(app, staff_headers, {"scjg", "sw", "rsj", "gjj"})
    detail = client.get(bundle_url(bundle["id"]), headers=li).json
    for child in detail["children"]:
        headers = staff[child["department_code"]]
        assert client.post(review_url(child["id"], "accept"), headers=headers).status_code == 200
        # Another department's reviewer cannot touch this child.
        other = next(code for code in staff if code != child["department_code"])
        assert client.post(review_url(child["id"], "approve"), headers=staff[other], json={}).status_code == 404
    first = detail["children"][0]
    client.post(review_url(first["id"], "approve"), headers=staff[first["department_code"]], json={})
    assert client.get(bundle_url(bundle["id"]), headers=li).json["status"] == "in_progress"
    for child in detail["children"][1:]:
        client.post(review_url(child["id"], "approve"), headers=staff[child["department_code"]], json={})
    assert client.get(bundle_url(bundle["id"]), headers=li).json["status"] == "completed"


def test_another_citizens_bundle_and_unknown_bundles_are_404(client, li, citizen_as):
    bundle = start(client, li)
    zhang = citizen_as(*ZHANG_WEI)
    assert client.get(bundle_url(bundle["id"]), headers=zhang).status_code == 404
    assert consent(client, zhang, bundle).status_code == 404
    assert client.post("/api/v1/bundles/no-such-bundle/applications", headers=li, json={}).status_code == 404


def test_a_consent_that_is_not_exactly_the_union_is_refused(client, li):
    bundle = start(client, li)
    wrong = client.post(bundle_url(bundle["id"], "consent"), headers=li,
                        json={"elements": bundle["consent_required"]["elements"][1:],
                              "purpose": bundle["consent_required"]["purpose"]})
    assert wrong.status_code == 422 and wrong.json["error"] == "consent_mismatch"
