"""Fail closed, but answer: a chain that cannot be appended to stops what it would log, never with a 500.

A hostile operator (or an accident) deleting a chain's head row, or rolling it back behind its records, must
not make the service start a new chain over the old records, nor crash: auditor reads answer 503
`audit_log_unavailable` (nothing is served unlogged), and `POST /api/v1/audit/verify` still runs and reports
the break.
"""

from __future__ import annotations

import sqlalchemy as sa
from application_flow import create, url

from app.extensions import db

LOG = "/api/v1/audit/face-verifications"


def break_head(app, chain: str, *, delete: bool = True) -> None:
    with app.app_context(), db.engine.begin() as connection:
        if delete:
            connection.execute(sa.text("DELETE FROM audit_chain_heads WHERE chain = :c"), {"c": chain})
        else:  # rolled back behind its records
            connection.execute(sa.text("UPDATE audit_chain_heads SET seq = 0 WHERE chain = :c"), {"c": chain})


def test_auditor_reads_are_503_when_their_own_log_has_lost_its_head(app, client, staff_headers):
    auditor = staff_headers("auditor")
    assert client.get(LOG, headers=auditor).status_code == 200  # the auditor-access chain has a record now
    break_head(app, "auditor-access")
    for answer in (client.get(LOG, headers=auditor),
                   client.get("/api/v1/audit/data-access", headers=auditor),
                   client.get(f"{LOG}/stats", headers=auditor),
                   client.get(f"{LOG}/export", headers=auditor, query_string={"format": "csv"})):
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.json["error"] == "audit_log_unavailable" and "items" not in answer.json

    report = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"})
    assert report.status_code == 200
    assert report.json["ok"] is False and report.json["access_logged"] is False
    assert report.json["first_broken"]["log"] == "auditor-access"
    assert "head row is missing" in report.json["first_broken"]["reason"]


def test_a_head_rolled_back_behind_its_records_is_503_too(app, client, staff_headers):
    auditor = staff_headers("auditor")
    client.get(LOG, headers=auditor)
    client.get(LOG, headers=auditor)
    break_head(app, "auditor-access", delete=False)
    answer = client.get(LOG, headers=auditor)
    assert answer.status_code == 503 and answer.json["error"] == "audit_log_unavailable"
    report = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "auditor-access"}).json
    assert (report["ok"], report["access_logged"]) == (False, False)


def test_a_prefill_whose_access_log_is_broken_serves_nothing(app, client, citizen_as, bureaus):
    zhang = citizen_as("张伟", "410105198503120013")  # the real-name check wrote data-access records
    draft = create(client, zhang, "GJJ-GG-002")
    client.post(url(draft["id"], "consent"), headers=zhang, json=draft["consent_required"])
    break_head(app, "data-access")
    answer = client.post(url(draft["id"], "prefill"), headers=zhang)
    assert answer.status_code == 503 and answer.json["error"] == "audit_log_unavailable"
    assert "fields" not in answer.json
