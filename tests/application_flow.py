"""Helpers shared by the application-lifecycle tests (conftest modules are not importable by test modules)."""

from __future__ import annotations

ZERO_MATERIAL_FACE_MATTER = "GJJ-GG-002"  # 住房公积金个人缴存证明出具: identity by face, the rest shared data
UPLOAD_MATTER = "BDC-QR-001"  # 不动产转移登记: a sale contract only an upload provides
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ff"
                    "ff3f0005fe02fea7d6a4f40000000049454e44ae426082")


def url(application_id: str, action: str = "") -> str:
    return f"/api/v1/applications/{application_id}" + (f"/{action}" if action else "")


def review_url(application_id: str, action: str = "") -> str:
    return f"/api/v1/review/applications/{application_id}" + (f"/{action}" if action else "")


def create(client, headers, matter_code: str, **body) -> dict:
    response = client.post("/api/v1/applications", headers=headers, json={"matter_code": matter_code, **body})
    assert response.status_code == 201, response.json
    return response.json


def consent_and_prefill(client, headers, created: dict) -> dict:
    required = created["consent_required"]
    consented = client.post(url(created["id"], "consent"), headers=headers,
                            json={"elements": required["elements"], "purpose": required["purpose"]})
    assert consented.status_code == 201, consented.json
    prefilled = client.post(url(created["id"], "prefill"), headers=headers)
    assert prefilled.status_code == 200, prefilled.json
    return prefilled.json


def verify_face(client, headers, matter_code: str | None = None) -> None:
    started = client.post("/api/v1/face/sessions", headers=headers,
                          json={"purpose": "identity_check", "biometric_consent": True,
                                **({"matter_code": matter_code} if matter_code else {})})
    assert started.status_code == 201, started.json
    done = client.post(f"/api/v1/face/sessions/{started.json['session_id']}/complete", headers=headers,
                       json={"evidence": {"sandbox": "pass"}})
    assert done.status_code == 200 and done.json["decision"] == "pass", done.json


def submit(client, headers, application_id: str, key: str | None = None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(url(application_id, "submit"), headers={**headers, **extra})


def submitted_application(client, headers, matter_code: str = ZERO_MATERIAL_FACE_MATTER) -> str:
    """A zero-material face matter, consented, prefilled, face-verified and submitted: its id."""
    created = create(client, headers, matter_code)
    consent_and_prefill(client, headers, created)
    verify_face(client, headers, matter_code)
    response = submit(client, headers, created["id"])
    assert response.status_code == 200, response.json
    return created["id"]
