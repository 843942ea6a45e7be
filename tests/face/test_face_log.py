"""The face-verification log for auditors: query, export, pass-rate statistics, chain verification, tampering.

Records are produced by real sandbox verifications through the API. Tampering is done as an attacker with
database access would (plain SQL on the table); the verifier must report the first broken link, on whichever
backend this run uses (the suite runs on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import schemathesis
import sqlalchemy as sa
from face_flow import FACE_MATTER, LI_NA, ZHANG_WEI, bind_person, complete, face_records, start, verify_with_sandbox

from app.connectors.models import AuditorAccessRecord
from app.extensions import db
from app.face.models import FaceVerificationRecord
from app.ledger.verify import verify_chain

LOG = "/api/v1/audit/face-verifications"
STATS = "/api/v1/audit/face-verifications/stats"


@pytest.fixture
def check(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def validate(path: str, method: str, response, status: int):
        assert response.status_code == status, response.get_data(as_text=True)
        schema[path][method].validate_response(response)
        return response.json if response.mimetype == "application/json" else None

    return validate


@pytest.fixture
def auditor(staff_headers):
    return staff_headers("auditor")


@pytest.fixture
def history(client):
    """张伟: a pass for a matter, a no_match; 李娜: a not_live, then a replay of her consumed session."""
    zhang, li = bind_person(client, ZHANG_WEI), bind_person(client, LI_NA)
    passed = verify_with_sandbox(client, zhang, "pass", purpose="apply", matter_code=FACE_MATTER)
    assert passed.json["decision"] == "pass"
    assert verify_with_sandbox(client, zhang, "no_match").json["decision"] == "fail"
    session_id = start(client, li).json["session_id"]
    assert complete(client, li, session_id, {"sandbox": "not_live"}).json["decision"] == "fail"
    assert complete(client, li, session_id, {"sandbox": "pass"}).status_code == 409
    return {"zhang": zhang, "li": li}


def auditor_records(app) -> list[AuditorAccessRecord]:
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditorAccessRecord).order_by(AuditorAccessRecord.seq)).all()
        db.session.expunge_all()
        return rows


# ------------------------------------------------------------------------------------------------ query


def test_query_by_id_number_matches_through_the_pseudonym_and_is_logged(app, client, auditor, history, check):
    page = check(f"{LOG}/search", "POST",
                 client.post(f"{LOG}/search", headers=auditor, json={"id_number": ZHANG_WEI[1]}), 200)
    records = page["items"]
    proof = ["claim_recorded", "consent_granted", "session_started", "result", "decision", "identity_bound"]
    assert [r["event"] for r in records] == proof + ["session_started", "result", "decision",
                                                     "session_started", "result", "decision"]
    assert len({r["citizen_pseudonym"] for r in records}) == 1
    assert ZHANG_WEI[1] not in json.dumps(page, ensure_ascii=False)
    logged = auditor_records(app)[-1]
    assert (logged.action, logged.log, logged.result_count) == ("query", "face-verifications", 12)
    assert "id_number" not in logged.filters and len(logged.filters["id_number_pseudonym"]) == 64
    lower_x = client.post(f"{LOG}/search", headers=auditor, json={"id_number": LI_NA[1]}).json["items"]
    assert {r["event"] for r in lower_x} >= {"replay_rejected"}


def test_filters_decision_provider_matter_event_and_time(client, auditor, history):
    def items(**query):
        answer = client.get(LOG, headers=auditor, query_string=query)
        assert answer.status_code == 200, answer.json
        return answer.json["items"]

    assert [(r["decision"], r["reason"]) for r in items(decision="fail")] == [("fail", "no_match"),
                                                                            ("fail", "not_live")]
    passed = [r for r in items(decision="pass") if r["purpose"] != "real_name"]  # not the two proofs
    assert len(passed) == 1 and passed[0]["threshold"] == 0.8 and passed[0]["verified_until"]
    assert [r["purpose"] for r in items(event="identity_bound")] == ["real_name", "real_name"]
    assert {r["matter_code"] for r in items(matter_code=FACE_MATTER)} == {FACE_MATTER}
    assert items(provider="wechat") == []
    assert len(items(provider="sandbox")) + len(items(provider="real_name_claim")) == len(items())
    assert [r["event"] for r in items(event="replay_rejected")] == ["replay_rejected"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert items(**{"from": future}) == [] and len(items(to=future)) == len(items())


def test_cursor_pagination_walks_every_record_once(client, auditor, history):
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(LOG, headers=auditor, query_string=query).json
        seen += [r["seq"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, len(seen) + 1)) and len(seen) == len(client.get(LOG, headers=auditor).json["items"])
    bad = client.get(LOG, headers=auditor, query_string={"cursor": "not-ours!"})
    assert bad.status_code == 422


def test_records_hold_no_identity_or_biometrics(app, history):
    columns = set(FaceVerificationRecord.__table__.columns.keys())
    assert not columns & {"name", "id_number", "cert_hash", "image", "encoding", "token", "openid", "raw"}
    for record in face_records(app):
        text = json.dumps({c: str(getattr(record, c)) for c in columns}, ensure_ascii=False)
        for name, number in (ZHANG_WEI, LI_NA):
            assert name not in text and number not in text


def test_non_auditors_are_refused(client, staff_headers, history):
    for username in ("admin", "reviewer-gjj", "bureau-ga", "agent"):
        headers = staff_headers(username)
        assert client.get(LOG, headers=headers).status_code == 403
        assert client.get(STATS, headers=headers).status_code == 403
        assert client.get(f"{LOG}/export", headers=headers).status_code == 403
    assert client.get(LOG, headers=history["zhang"]).status_code == 403
    assert client.get(LOG).status_code == 401


# ------------------------------------------------------------------------------------------------ export


def test_export_csv_and_jsonl_is_streamed_and_logged(app, client, auditor, history):
    csv_answer = client.get(f"{LOG}/export", headers=auditor, query_string={"format": "csv"})
    assert csv_answer.status_code == 200 and csv_answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(csv_answer.get_data(as_text=True))))
    assert [r["seq"] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
    assert {"event", "decision", "threshold", "failure_limit", "record_hash"} <= set(rows[0])
    jsonl = client.get(f"{LOG}/export", headers=auditor, query_string={"format": "jsonl"})
    records = [json.loads(line) for line in jsonl.get_data(as_text=True).splitlines()]
    assert len(records) == len(rows) and records[-1]["event"] == "replay_rejected"
    assert [(r.action, r.log) for r in auditor_records(app)] == [("export", "face-verifications")] * 2


# ------------------------------------------------------------------------------------------------ stats


def test_pass_rate_statistics_per_provider_and_day(app, client, auditor, history, check):
    stats = check(STATS, "GET", client.get(STATS, headers=auditor), 200)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    # The two real-name proofs are passes too.
    assert stats["items"] == [{"day": today, "provider": "sandbox", "decisions": 5, "passed": 3, "failed": 2,
                               "pass_rate": 0.6, "failure_reasons": {"no_match": 1, "not_live": 1}}]
    assert auditor_records(app)[-1].action == "stats"
    empty = client.get(STATS, headers=auditor, query_string={"provider": "wechat"}).json
    assert empty["items"] == []
    backwards = client.get(STATS, headers=auditor, query_string={"from": "2025-02-01", "to": "2025-01-01"})
    assert backwards.status_code == 422
    too_long = client.get(STATS, headers=auditor, query_string={"from": "2020-01-01", "to": "2025-01-01"})
    assert too_long.status_code == 422


def test_days_are_china_calendar_days(app, client, auditor, history):
    """A decision at 17:30 UTC belongs to the next day in China."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.update(FaceVerificationRecord.__table__)
                           .values(recorded_at=datetime(2025, 3, 1, 17, 30, tzinfo=UTC)))
    stats = client.get(STATS, headers=auditor, query_string={"from": "2025-02-20", "to": "2025-03-05"}).json
    assert [item["day"] for item in stats["items"]] == ["2025-03-02"]


# ------------------------------------------------------------------------------------------------ verify


def test_verify_covers_the_face_chain_and_all(app, client, auditor, history, check):
    one = check("/api/v1/audit/verify", "POST",
                client.post("/api/v1/audit/verify", headers=auditor, json={"log": "face-verifications"}), 200)
    assert one["ok"] is True and one["checked"] == len(face_records(app)) and len(one["head_hash"]) == 64
    everything = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"}).json
    assert everything["ok"] is True
    assert set(everything["logs"]) == {"data-access", "face-verifications", "auditor-access"}
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify", "--log", "face-verifications"])
    assert result.exit_code == 0 and "face-verifications: ok" in result.output


def sql(app, statement: str) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text(statement))


def verify(app):
    with app.app_context():
        return verify_chain(FaceVerificationRecord)


@pytest.mark.parametrize(("statement", "broken_seq", "reason"), [
    pytest.param("UPDATE face_verification_records SET decision = 'pass' WHERE seq = 8", 8,
                 "record_hash does not match", id="changed-decision"),
    pytest.param("UPDATE face_verification_records SET threshold = 0.1 WHERE seq = 3", 3,
                 "record_hash does not match", id="changed-threshold"),
    pytest.param("UPDATE face_verification_records SET citizen_pseudonym = 'x' WHERE seq = 2", 2,
                 "record_hash does not match", id="changed-pseudonym"),
    pytest.param("DELETE FROM face_verification_records WHERE seq = 4", 5, "expected seq 4, found 5",
                 id="deleted-row"),
    pytest.param("DELETE FROM face_verification_records WHERE seq = (SELECT max(seq) FROM face_verification_records)",
                 None, "head says", id="deleted-last-row"),
])
def test_tampering_is_reported_at_the_first_broken_link(app, history, statement, broken_seq, reason):
    total = len(face_records(app))
    assert verify(app).ok
    sql(app, statement)
    result = verify(app)
    assert result.ok is False and reason in result.first_broken["reason"]
    assert result.first_broken["seq"] == (broken_seq or total)


def test_reordered_rows_are_reported(app, history):
    records = face_records(app)
    sql(app, "UPDATE face_verification_records SET seq = 100000 WHERE seq = 3")
    sql(app, "UPDATE face_verification_records SET seq = 3 WHERE seq = 4")
    sql(app, "UPDATE face_verification_records SET seq = 4 WHERE seq = 100000")
    result = verify(app)
    assert result.ok is False and result.first_broken["seq"] == 3
    assert result.first_broken["id"] == records[3].id


def test_tampering_shows_in_the_auditors_verify(app, client, auditor, history):
    sql(app, "UPDATE face_verification_records SET reason = 'pass' WHERE event = 'decision'")
    body = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"}).json
    assert body["ok"] is False and body["first_broken"]["log"] == "face-verifications"
    assert body["logs"]["data-access"]["ok"] is True
