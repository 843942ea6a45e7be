"""Real-name binding checked against the population registry connector, and the no-identity-in-logs tripwire."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from app.applications.models import Application, ApplicationEvent, ConsentReceipt
from app.connectors.models import AuditorAccessRecord, ConnectorEvent, DataAccessRecord
from app.extensions import db
from app.pii import vault
from app.sandbox import people

ZHANG_WEI = {"name": "张伟", "id_number": "410105198503120013"}


def bind(client, headers, name, id_number):
    return client.post("/api/v1/me/real-name", headers=headers, json={"name": name, "id_number": id_number})


def access_records(app) -> list[DataAccessRecord]:
    with app.app_context():
        return db.session.scalars(sa.select(DataAccessRecord).order_by(DataAccessRecord.seq)).all()


def test_a_matching_name_binds_and_the_check_is_logged(app, client, citizen_headers, bureaus):
    response = bind(client, citizen_headers, **ZHANG_WEI)

    assert response.status_code == 200 and response.json["assurance"] == "claimed"
    [record] = access_records(app)
    assert (record.connector_id, record.bureau, record.purpose, record.application_id) == (
        "ga-population", "ga", "实名认证", None)
    assert (record.elements_requested, record.elements_returned, record.outcome) == (
        ["person.name"], ["person.name"], "ok")
    with app.app_context():
        assert record.citizen_pseudonym == vault().pseudonym(ZHANG_WEI["id_number"])
    [query] = bureaus.journal("population")
    assert (query["elements"], query["purpose"], query["known_person"]) == (["person.name"], "实名认证", True)
    assert query["acting_user"] == record.actor and record.actor.startswith("citizen:")


def test_a_different_name_is_a_mismatch_and_binds_nothing(app, client, citizen_headers, row_counts):
    before = client.get("/api/v1/me", headers=citizen_headers).json
    response = bind(client, citizen_headers, "张卫", ZHANG_WEI["id_number"])
    assert response.status_code == 422 and response.json["error"] == "identity_mismatch"
    assert client.get("/api/v1/me", headers=citizen_headers).json == before
    assert [r.outcome for r in access_records(app)] == ["ok"]  # the registry answered; we compared


def test_a_number_the_registry_does_not_hold_is_a_mismatch_too(app, client, citizen_headers):
    response = bind(client, citizen_headers, "赵磊", "410105199001010636")
    assert response.status_code == 422 and response.json["error"] == "identity_mismatch"
    assert response.json["message"] == "姓名与身份证号码不匹配"  # the same answer: no oracle for existing numbers
    assert [r.outcome for r in access_records(app)] == ["not_found"]
    assert client.get("/api/v1/me", headers=citizen_headers).json["real_name_verified"] is False


@pytest.mark.parametrize("mode", ["error500", "hang", "malformed"])
def test_the_registry_down_is_503_and_binds_nothing(app, client, citizen_headers, bureaus, mode):
    bureaus.set_mode("population", mode)
    response = bind(client, citizen_headers, **ZHANG_WEI)
    assert response.status_code == 503 and response.json["error"] == "upstream_unavailable"
    assert client.get("/api/v1/me", headers=citizen_headers).json["real_name_verified"] is False
    assert [r.outcome for r in access_records(app)] == ["timeout" if mode == "hang" else "failed"]
    bureaus.set_mode("population", "normal")
    assert bind(client, citizen_headers, **ZHANG_WEI).status_code == 200


def test_repeated_mismatches_are_rate_limited(app, client, citizen_headers, bureaus):
    for _ in range(app.config["REAL_NAME_MAX_MISMATCHES"]):
        assert bind(client, citizen_headers, "张卫", ZHANG_WEI["id_number"]).status_code == 422
    queries = bureaus.state("population")["queries"]
    response = bind(client, citizen_headers, **ZHANG_WEI)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert bureaus.state("population")["queries"] == queries  # not asked again


def test_with_the_population_connector_disabled_binding_rests_on_the_number(app, client, citizen_headers,
                                                                            staff_headers):
    client.post("/api/v1/connectors/ga-population/disable", headers=staff_headers("admin"))
    assert bind(client, citizen_headers, "赵磊", "410105199001010636").status_code == 200
    assert access_records(app) == []


# ------------------------------------------------------------------------------------------------ the tripwire


def test_no_sandbox_identity_in_any_log_record_or_log_line(app, client, login_citizen, citizen_as, bureaus,
                                                           staff_headers, caplog):
    """After every flow of this issue, no record of either log, no event, and no log line holds a name or an
    ID number of a sandbox person (BRIEF §4.8)."""
    caplog.set_level(logging.DEBUG)
    headers = {p.name: citizen_as(p.name, p.id_number) for p in people.PEOPLE[:5]}
    zhao = {"Authorization": f"Bearer {login_citizen('zhao')['access_token']}"}
    bind(client, zhao, "赵磊", "410105199001010636")
    bind(client, zhao, "李娜", "410105198503120013")
    for name, matter in [("张伟", "GJJ-GG-006"), ("李娜", "SCJG-XK-002"), ("王强", "MZ-JF-001"),
                         ("刘洋", "GJJ-GG-003"), ("陈静", "BDC-GG-002")]:
        created = client.post("/api/v1/applications", headers=headers[name], json={"matter_code": matter}).json
        client.post(f"/api/v1/applications/{created['id']}/consent", headers=headers[name],
                    json=created["consent_required"])
        client.post(f"/api/v1/applications/{created['id']}/prefill", headers=headers[name])
    bureaus.set_mode("marriage", "wrong_types")
    bureaus.set_mode("property", "malformed")
    created = client.post("/api/v1/applications", headers=headers["张伟"], json={"matter_code": "MZ-GG-001"}).json
    client.post(f"/api/v1/applications/{created['id']}/consent", headers=headers["张伟"],
                json=created["consent_required"])
    client.post(f"/api/v1/applications/{created['id']}/prefill", headers=headers["张伟"])
    auditor = staff_headers("auditor")
    for person in people.PEOPLE:
        client.post("/api/v1/audit/data-access/search", headers=auditor, json={"id_number": person.id_number})
    client.get("/api/v1/audit/data-access/export?format=jsonl", headers=auditor).get_data()
    client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"})

    secrets = set()
    for person in people.PEOPLE:
        secrets |= {person.name, person.id_number}
    secrets |= {record.spouse_name for record in people.MARRIAGE.values()}
    secrets |= {record.spouse_id_number for record in people.MARRIAGE.values()}
    with app.app_context():
        texts = []
        for model in (DataAccessRecord, AuditorAccessRecord, ApplicationEvent, ConnectorEvent):
            for row in db.session.scalars(sa.select(model)):
                texts.append(repr({c.key: getattr(row, c.key) for c in model.__table__.columns}))
        for model, columns in ((Application, ("prefill", "form")), (ConsentReceipt, ("elements", "purpose"))):
            for row in db.session.scalars(sa.select(model)):
                texts.append(repr([getattr(row, c) for c in columns]))
        assert db.session.scalar(sa.select(sa.func.count(DataAccessRecord.id))) >= 15
    log_text = caplog.text
    for secret in secrets:
        assert all(secret not in text for text in texts), secret
        assert secret not in log_text, secret
