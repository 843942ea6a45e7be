"""The data-access log: the citizen's own view, auditors' queries, exports and verification — all logged."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.connectors.models import AuditorAccessRecord, DataAccessRecord
from app.extensions import db
from app.pii import vault

ZHANG_WEI = ("张伟", "410105198503120013")
LI_NA = ("李娜", "410102199207040225")
ZHAO_LEI = ("赵磊", "410105199001010636")


@pytest.fixture
def auditor(staff_headers):
    return staff_headers("auditor")


def prefilled(client, headers, matter_code: str) -> str:
    created = client.post("/api/v1/applications", headers=headers, json={"matter_code": matter_code}).json
    assert client.post(f"/api/v1/applications/{created['id']}/consent", headers=headers,
                       json=created["consent_required"]).status_code == 201
    assert client.post(f"/api/v1/applications/{created['id']}/prefill", headers=headers).status_code == 200
    return created["id"]


@pytest.fixture
def history(client, citizen_as):
    """张伟 and 李娜 bound (one registry call each) and each with prefills; returns their ids and headers."""
    zhang, li = citizen_as(*ZHANG_WEI), citizen_as(*LI_NA)
    zhang_app = prefilled(client, zhang, "RSJ-GG-001")  # social insurance
    zhang_app2 = prefilled(client, zhang, "MZ-GG-001")  # marriage
    li_app = prefilled(client, li, "RSJ-GG-001")
    return {"zhang": zhang, "li": li, "zhang_app": zhang_app, "zhang_app2": zhang_app2, "li_app": li_app}


def auditor_records(app) -> list[AuditorAccessRecord]:
    with app.app_context():
        return db.session.scalars(sa.select(AuditorAccessRecord).order_by(AuditorAccessRecord.seq)).all()


# --------------------------------------------------------------------------------------------- citizen's view


def test_the_citizen_sees_who_fetched_what_about_them(client, history):
    body = client.get("/api/v1/me/data-access", headers=history["zhang"]).json

    assert body["total"] == 3  # the real-name check and two prefills
    newest, middle, oldest = body["items"]
    assert (oldest["connector"], oldest["purpose"], oldest["application_id"]) == ("ga-population", "实名认证", None)
    assert oldest["elements_requested"] == [{"name": "person.name", "label": "姓名"}]
    assert (newest["connector"], newest["bureau"], newest["bureau_name"]) == ("mz-marriage", "mz", "郑州市民政局")
    assert newest["application_id"] == history["zhang_app2"] and newest["matter_code"] == "MZ-GG-001"
    assert newest["matter_name"] == "婚姻登记档案查询" and "婚姻登记档案查询" in newest["purpose"]
    assert middle["outcome"] == "ok" and middle["acting_user"] == "citizen"
    assert middle["elements_returned"] == ["social_insurance.status", "social_insurance.months_paid",
                                           "social_insurance.employer"]
    only = client.get(f"/api/v1/me/data-access?application_id={history['zhang_app']}", headers=history["zhang"]).json
    assert [i["application_id"] for i in only["items"]] == [history["zhang_app"]]
    paged = client.get("/api/v1/me/data-access?per_page=2&page=2", headers=history["zhang"]).json
    assert [i["id"] for i in paged["items"]] == [oldest["id"]]


def test_the_citizen_sees_nothing_of_others_and_nothing_before_binding(client, history, citizen_headers,
                                                                      citizen_as):
    li = client.get("/api/v1/me/data-access", headers=history["li"]).json
    assert {i["application_id"] for i in li["items"]} == {None, history["li_app"]}
    unproven = client.get("/api/v1/me/data-access", headers=citizen_headers)  # logged in only
    assert unproven.status_code == 403 and unproven.json["error"] == "assurance_required"
    stranger = citizen_as("刘洋", "41012220010215047X")  # proven, and nobody fetched anything of theirs since
    before = client.get("/api/v1/me/data-access", headers=stranger).json["items"]
    assert {i["purpose"] for i in before} == {"实名认证"}  # their own claim, checked against the registry
    response = client.get(f"/api/v1/me/data-access?application_id={history['zhang_app']}", headers=history["li"])
    assert response.status_code == 404


def test_records_hold_a_keyed_pseudonym_never_the_identity(app, history):
    with app.app_context():
        records = db.session.scalars(sa.select(DataAccessRecord)).all()
        pseudonyms = {vault().pseudonym(ZHANG_WEI[1]), vault().pseudonym(LI_NA[1])}
    assert {r.citizen_pseudonym for r in records} == pseudonyms
    assert all(r.actor.startswith("citizen:") for r in records)


# ------------------------------------------------------------------------------------------------ auditors


def test_auditors_query_with_filters_and_every_query_is_logged(app, client, auditor, history):
    everything = client.get("/api/v1/audit/data-access", headers=auditor).json
    assert len(everything["items"]) == 5 and everything["next_cursor"] is None
    assert [r["seq"] for r in everything["items"]] == [1, 2, 3, 4, 5]
    first = everything["items"][0]
    assert len(first["record_hash"]) == 64 and first["prev_hash"] == "0" * 64

    by_person = client.post("/api/v1/audit/data-access/search", headers=auditor,
                            json={"id_number": ZHANG_WEI[1]}).json["items"]
    assert len(by_person) == 3 and {r["citizen_pseudonym"] for r in by_person} == {
        everything["items"][0]["citizen_pseudonym"]}
    lowercase_x = client.post("/api/v1/audit/data-access/search", headers=auditor,
                              json={"id_number": " 410105198503120013 "}).json["items"]
    assert lowercase_x == by_person
    by_connector = client.get("/api/v1/audit/data-access?connector=rsj-social-insurance", headers=auditor).json
    assert {r["application_id"] for r in by_connector["items"]} == {history["zhang_app"], history["li_app"]}
    by_application = client.get(f"/api/v1/audit/data-access?application_id={history['li_app']}",
                                headers=auditor).json
    assert [r["connector_id"] for r in by_application["items"]] == ["rsj-social-insurance"]
    nobody = client.post("/api/v1/audit/data-access/search", headers=auditor, json={"id_number": ZHAO_LEI[1]})
    assert nobody.json["items"] == []

    logged = auditor_records(app)
    assert [(r.action, r.log, r.result_count) for r in logged] == [
        ("query", "data-access", 5), ("query", "data-access", 3), ("query", "data-access", 3),
        ("query", "data-access", 2), ("query", "data-access", 1), ("query", "data-access", 0)]
    assert logged[1].filters == {"id_number_pseudonym": vault_pseudonym(app, ZHANG_WEI[1]), "limit": 50}
    assert ZHANG_WEI[1] not in json.dumps([r.filters for r in logged])
    assert logged[3].filters["connector"] == "rsj-social-insurance"
    assert all(r.actor.startswith("staff:") for r in logged)


def vault_pseudonym(app, id_number: str) -> str:
    with app.app_context():
        return vault().pseudonym(id_number)


def test_auditors_filter_by_who_the_data_was_fetched_for(client, auditor, history):
    everything = client.get("/api/v1/audit/data-access", headers=auditor).json["items"]
    actor = everything[0]["actor"]
    by_actor = client.get(f"/api/v1/audit/data-access?actor={actor}", headers=auditor).json["items"]
    assert by_actor and {r["actor"] for r in by_actor} == {actor}
    assert len(by_actor) == sum(r["actor"] == actor for r in everything) < len(everything)
    refused = client.get("/api/v1/audit/data-access?actor=somebody", headers=auditor)
    assert refused.status_code == 422 and "操作人格式无效" in str(refused.json["errors"])


def test_time_filters(client, auditor, history):
    now = datetime.now(UTC)
    later = (now + timedelta(minutes=5)).isoformat()
    earlier = (now - timedelta(minutes=5)).isoformat()
    assert len(client.get("/api/v1/audit/data-access", headers=auditor,
                          query_string={"from": earlier, "to": later}).json["items"]) == 5
    assert client.get("/api/v1/audit/data-access", headers=auditor,
                      query_string={"from": later}).json["items"] == []
    assert client.get("/api/v1/audit/data-access", headers=auditor,
                      query_string={"to": earlier}).json["items"] == []
    naive = (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat()  # taken as UTC
    assert len(client.get("/api/v1/audit/data-access", headers=auditor,
                          query_string={"to": naive}).json["items"]) == 5


def test_cursor_pagination_walks_the_log_once(client, auditor, history):
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/audit/data-access", headers=auditor, query_string=params).json
        seen.extend(r["seq"] for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"}, {"cursor": "eyJhZnRlciI6ICJ4In0"}, {"cursor": "W10"}, {"limit": 0},
    {"limit": 501}, {"from": "yesterday"}, {"from": "0001-01-01T00:00:00+08:00"}, {"connector": "a b"},
    {"colour": "red"}, {"id_number": ""},
])
def test_bad_query_parameters_are_422(client, auditor, params):
    response = client.get("/api/v1/audit/data-access", headers=auditor, query_string=params)
    assert response.status_code == 422, response.json


@pytest.mark.parametrize("who", ["admin", "bureau-ga", "reviewer-gjj", "agent", "citizen"])
def test_only_auditors(client, staff_headers, citizen_headers, who):
    headers = citizen_headers if who == "citizen" else staff_headers(who)
    assert client.get("/api/v1/audit/data-access", headers=headers).status_code == 403
    assert client.get("/api/v1/audit/data-access/export", headers=headers).status_code == 403
    assert client.post("/api/v1/audit/verify", headers=headers, json={"log": "all"}).status_code == 403


def test_anonymous_is_401(client):
    assert client.get("/api/v1/audit/data-access").status_code == 401
    assert client.post("/api/v1/audit/verify", json={"log": "all"}).status_code == 401


# -------------------------------------------------------------------------------------------------- exports


def test_csv_export_is_streamed_with_a_header_row(app, client, auditor, history):
    response = client.get("/api/v1/audit/data-access/export?format=csv", headers=auditor)

    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="data-access.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["connector_id"] == "ga-population" and rows[0]["application_id"] == ""
    assert rows[2]["elements_requested"] == "social_insurance.status;social_insurance.months_paid;" \
                                            "social_insurance.employer"
    assert rows[0]["recorded_at"].endswith("Z") and len(rows[0]["record_hash"]) == 64
    logged = auditor_records(app)[-1]
    assert (logged.action, logged.log, logged.filters, logged.result_count) == (
        "export", "data-access", {"format": "csv"}, None)


def test_jsonl_export_in_batches_with_a_time_range(app, make_app, auditor, history):
    small_batches = make_app(AUDIT_EXPORT_BATCH_SIZE=2)
    client = small_batches.test_client()
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = client.get("/api/v1/audit/data-access/export", headers=auditor,
                          query_string={"format": "jsonl", "from": since})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = response.get_data(as_text=True).splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[2]["elements_returned"] == ["social_insurance.status", "social_insurance.months_paid",
                                               "social_insurance.employer"]
    logged = auditor_records(app)[-1].filters
    assert logged["format"] == "jsonl" and logged["from"].endswith("Z")


def test_exports_of_unknown_logs_and_formats(client, auditor):
    assert client.get("/api/v1/audit/auditor-access/export", headers=auditor).status_code == 404
    assert client.get("/api/v1/audit/nope/export", headers=auditor).status_code == 404
    assert client.get("/api/v1/audit/data-access/export?format=xlsx", headers=auditor).status_code == 422


def test_csv_cells_cannot_become_spreadsheet_formulas():
    from app.audit.services import _csv_cell

    assert _csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert _csv_cell("+1") == "'+1" and _csv_cell("-1") == "'-1" and _csv_cell("@x") == "'@x"
    assert _csv_cell("实名认证") == "实名认证" and _csv_cell(None) == "" and _csv_cell(["a", "b"]) == "a;b"


# --------------------------------------------------------------------------------------------------- verify


def test_verify_reports_intact_chains_and_is_logged(app, client, auditor, history):
    response = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "data-access"})
    assert response.status_code == 200
    body = response.json
    assert (body["ok"], body["checked"], body["first_broken"]) == (True, 5, None)
    assert len(body["head_hash"]) == 64
    everything = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"}).json
    assert everything["ok"] is True
    assert set(everything["logs"]) == {"data-access", "face-verifications", "auditor-access"}
    assert everything["head_hash"] is None and everything["logs"]["data-access"]["head_hash"] == body["head_hash"]
    assert everything["logs"]["auditor-access"]["checked"] == 1  # the first verification's own record
    assert [(r.action, r.log) for r in auditor_records(app)] == [("verify", "data-access"), ("verify", "all")]


def test_verify_reports_the_first_broken_link(app, client, auditor, history):
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE data_access_records SET purpose = '随便看看' WHERE seq = 2"))
    body = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"}).json
    assert body["ok"] is False
    assert body["first_broken"]["log"] == "data-access" and body["first_broken"]["seq"] == 2
    assert body["logs"]["data-access"]["checked"] == 1


def test_tampering_with_the_auditors_own_log_is_detected(app, client, auditor, history):
    client.get("/api/v1/audit/data-access", headers=auditor)
    client.get("/api/v1/audit/data-access", headers=auditor)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM auditor_access_records WHERE seq = 1"))
    body = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "auditor-access"}).json
    assert body["ok"] is False and body["first_broken"]["seq"] == 2


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"log": "nope"}, 422, "validation_failed"),
    ({}, 422, "validation_failed"),
])
def test_verify_of_unknown_or_future_logs(client, auditor, body, status, error):
    response = client.post("/api/v1/audit/verify", headers=auditor, json=body)
    assert response.status_code == status and response.json["error"] == error


def test_the_cli_verifies_and_exits_non_zero_when_broken(app, history):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "data-access: ok, 5 records" in result.output
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM data_access_records WHERE seq = 5"))
    broken = runner.invoke(args=["audit", "verify", "--log", "data-access"])
    assert broken.exit_code == 1
    assert "data-access: BROKEN" in broken.output and "chain ends at seq 4" in broken.output
    face = runner.invoke(args=["audit", "verify", "--log", "face-verifications"])  # another chain: intact
    assert face.exit_code == 0 and "face-verifications: ok, 12 records" in face.output  # the two proofs
