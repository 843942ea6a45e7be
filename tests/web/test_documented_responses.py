"""The answers of this issue's happy and degraded paths conform to the OpenAPI document.

The schemathesis run (test_openapi_fuzz.py) rarely reaches them — a prefill needs a draft, a consent and a
bound identity first — so these flows are walked here and each answer is validated against the document.
"""

from __future__ import annotations

import pytest
import schemathesis


@pytest.fixture
def check(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def validate(path: str, method: str, response, status: int):
        assert response.status_code == status, response.get_data(as_text=True)
        schema[path][method].validate_response(response)
        return response.json if response.mimetype == "application/json" else None

    return validate


def test_application_flow_answers_as_documented(client, citizen_as, bureaus, check):
    zhang = citizen_as("张伟", "410105198503120013")
    created = check("/api/v1/applications", "POST",
                    client.post("/api/v1/applications", headers=zhang, json={"matter_code": "MZ-GG-001"}), 201)
    app_path = "/api/v1/applications/{application_id}"
    check(app_path, "GET", client.get(f"/api/v1/applications/{created['id']}", headers=zhang), 200)
    receipt = check(f"{app_path}/consent", "POST", client.post(
        f"/api/v1/applications/{created['id']}/consent", headers=zhang, json=created["consent_required"]), 201)
    bureaus.set_mode("marriage", "wrong_types")
    answer = check(f"{app_path}/prefill", "POST",
                   client.post(f"/api/v1/applications/{created['id']}/prefill", headers=zhang), 200)
    assert {f["status"] for f in answer["fields"].values()} == {"ok", "failed"}
    check(app_path, "GET", client.get(f"/api/v1/applications/{created['id']}", headers=zhang), 200)
    check("/api/v1/applications", "GET", client.get("/api/v1/applications", headers=zhang), 200)
    check("/api/v1/me/consents", "GET", client.get("/api/v1/me/consents", headers=zhang), 200)
    check("/api/v1/me/data-access", "GET", client.get("/api/v1/me/data-access", headers=zhang), 200)
    check("/api/v1/me/consents/{receipt_id}", "DELETE",
          client.delete(f"/api/v1/me/consents/{receipt['id']}", headers=zhang), 200)
    check(f"{app_path}/prefill", "POST",
          client.post(f"/api/v1/applications/{created['id']}/prefill", headers=zhang), 403)


def test_blocked_and_skipped_prefills_answer_as_documented(client, citizen_as, bureaus, check, staff_headers):
    zhang = citizen_as("张伟", "410105198503120013")
    blocked = client.post("/api/v1/applications", headers=zhang, json={"matter_code": "GJJ-GG-001"}).json
    client.post(f"/api/v1/applications/{blocked['id']}/consent", headers=zhang, json=blocked["consent_required"])
    bureaus.set_mode("housing_fund", "hang")
    check("/api/v1/applications/{application_id}/prefill", "POST",
          client.post(f"/api/v1/applications/{blocked['id']}/prefill", headers=zhang), 503)
    client.post("/api/v1/connectors/mz-marriage/disable", headers=staff_headers("admin"))
    skipped = client.post("/api/v1/applications", headers=zhang, json={"matter_code": "MZ-GG-001"}).json
    client.post(f"/api/v1/applications/{skipped['id']}/consent", headers=zhang, json=skipped["consent_required"])
    answer = check("/api/v1/applications/{application_id}/prefill", "POST",
                   client.post(f"/api/v1/applications/{skipped['id']}/prefill", headers=zhang), 200)
    assert {f["status"] for f in answer["fields"].values()} == {"skipped"}


def test_registry_answers_as_documented(client, staff_headers, bureaus, citizen_as, check):
    citizen_as("张伟", "410105198503120013")
    bureau, admin = staff_headers("bureau-ga"), staff_headers("admin")
    created = check("/api/v1/connectors", "POST", client.post("/api/v1/connectors", headers=bureau, json={
        "name": "人口信息(测试)", "base_url": bureaus.url("population"), "elements": ["person.name"]}), 201)
    one = "/api/v1/connectors/{connector_id}"
    path = f"/api/v1/connectors/{created['id']}"
    check("/api/v1/connectors", "GET", client.get("/api/v1/connectors", headers=admin), 200)
    check(one, "GET", client.get(path, headers=bureau), 200)
    check(one, "PATCH", client.patch(path, headers=bureau, json={"source_updated_path": None}), 200)
    check(f"{one}/rotate-secret", "POST", client.post(f"{path}/rotate-secret", headers=bureau), 200)
    check(f"{one}/approve", "POST", client.post(f"{path}/approve", headers=admin), 200)
    check(f"{one}/disable", "POST", client.post(f"{path}/disable", headers=admin), 200)
    check(f"{one}/health-check", "POST", client.post(f"{path}/health-check", headers=admin), 200)
    check(f"{one}/events", "GET", client.get(f"{path}/events", headers=admin), 200)
    check(f"{one}/usage", "GET", client.get("/api/v1/connectors/ga-population/usage", headers=admin), 200)
    check("/api/v1/connectors", "POST", client.post("/api/v1/connectors", headers=bureau, json={
        "name": "x", "base_url": "https://10.0.0.1", "elements": ["person.name"]}), 422)


def test_audit_answers_as_documented(client, staff_headers, citizen_as, check):
    citizen_as("张伟", "410105198503120013")
    auditor = staff_headers("auditor")
    check("/api/v1/audit/data-access", "GET", client.get("/api/v1/audit/data-access?limit=1", headers=auditor), 200)
    check("/api/v1/audit/verify", "POST", client.post("/api/v1/audit/verify", headers=auditor,
                                                      json={"log": "all"}), 200)
    check("/api/v1/audit/verify", "POST", client.post("/api/v1/audit/verify", headers=auditor,
                                                      json={"log": "nope"}), 422)
    for fmt in ("csv", "jsonl"):
        check("/api/v1/audit/{log}/export", "GET",
              client.get(f"/api/v1/audit/data-access/export?format={fmt}", headers=auditor), 200)
