"""Hostile input never reaches a 500: a corpus of bodies, queries and headers against every operation.

The corpus is what broke the service before the body policy (app/bodies.py): numbers past `int()`'s 4,300
digits, NaN / Infinity / 1e400, nesting a thousand deep, NUL and lone surrogates in strings and keys. Every
operation of the OpenAPI document that takes a JSON body gets each one, with a token of a role it declares,
and must answer 4xx in the one error shape with the database unchanged.
"""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa
from application_flow import consent_and_prefill, create, url

from app.applications.models import Application
from app.extensions import db

STAFF = {"admin": "admin", "auditor": "auditor", "reviewer": "reviewer-gjj", "bureau": "bureau-ga", "agent": "agent"}
# Raw bodies, as an attacker would send them (not all are JSON the stdlib would write).
CORPUS = {
    "huge-integer": '{"grade": 1' + "0" * 5000 + "}",
    "huge-integer-nested": '{"fields": {"x": ' + "9" * 4400 + "}}",
    "nan": '{"grade": NaN, "fields": {"x": NaN}}',
    "infinity": '{"grade": Infinity}',
    "minus-infinity": '{"grade": -Infinity}',
    "overflowing-float": '{"grade": 1e400}',
    "float-beyond-bound": '{"grade": 1e19, "fields": {"x": -2.5e18}}',
    "deep-arrays": "[" * 1000 + "]" * 1000,
    "deep-objects": '{"a":' * 600 + "1" + "}" * 600,
    "nul-in-string": '{"name": "张\\u0000伟", "reason": "x\\u0000y", "agent": "a\\u0000"}',
    "lone-surrogate": '{"name": "\\ud800", "reason": "\\udfff", "agent": "\\ud83d"}',
    "surrogate-key": '{"\\ud800": "x"}',
    "nul-key": '{"\\u0000": "x"}',
    "not-utf8": b'{"name": "\xff\xfe"}',
    "truncated": '{"name": ',
}
PLACEHOLDER_ID = "0" * 32


def operations(app) -> list[tuple[str, str, list[str]]]:
    """(method, path template, roles) of every operation that takes a JSON body."""
    spec = app.test_client().get("/openapi.json").json
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), path, operation.get("x-roles") or []))
    return found


@pytest.fixture
def tokens(client, staff_headers, citizen_as):
    made = {role: staff_headers(username) for role, username in STAFF.items()}
    made["citizen"] = citizen_as("张伟", "410105198503120013")
    return made


def fill(path: str, application_id: str) -> str:
    """The path with its parameters filled: the citizen's own application where one is asked for."""
    filled = path.replace("{application_id}", application_id)
    for name in ("code", "connector_id", "session_id", "bundle_application_id", "authorisation_id",
                 "rectification_id", "receipt_id", "material_code", "log"):
        filled = filled.replace("{" + name + "}", {"code": "GJJ-GG-002", "material_code": "IDENTITY",
                                                   "log": "face-verifications"}.get(name, PLACEHOLDER_ID))
    return filled


def test_every_body_taking_operation_refuses_the_corpus(app, client, tokens, row_counts, caplog):
    draft = create(client, tokens["citizen"], "GJJ-GG-002")
    consent_and_prefill(client, tokens["citizen"], draft)
    found = operations(app)
    assert len(found) >= 25  # the document lists them all
    before = row_counts()
    caplog.set_level(logging.WARNING)
    for method, path, roles in found:
        headers = tokens.get(roles[0], {}) if roles and roles[0] != "any" else tokens["citizen"]
        target = fill(path, draft["id"])
        for name, body in CORPUS.items():
            answer = client.open(target, method=method, data=body, headers=headers,
                                 content_type="application/json")
            where = f"{method} {path} with {name}"
            assert 400 <= answer.status_code < 500, (where, answer.status_code, answer.get_data(as_text=True)[:300])
            assert set(answer.json) >= {"code", "status", "error", "message"}, where
    assert row_counts() == before
    assert "Traceback" not in caplog.text and "unhandled exception" not in caplog.text


@pytest.mark.parametrize(("name", "status"), [("huge-integer", 400), ("nan", 400), ("overflowing-float", 400),
                                              ("deep-arrays", 400), ("lone-surrogate", 422), ("nul-in-string", 422)])
def test_the_unauthenticated_login_refuses_the_corpus_quietly(client, caplog, name, status):
    answer = client.post("/api/v1/auth/wechat/login", data=CORPUS[name], content_type="application/json")
    assert answer.status_code == status and answer.json["code"] == status
    assert "Traceback" not in caplog.text


def test_non_finite_numbers_never_reach_storage_or_answers(app, client, citizen_as):
    zhang = citizen_as("张伟", "410105198503120013")
    draft = create(client, zhang, "BDC-QR-001")
    for raw in ('{"fields": {"price": NaN}}', '{"fields": {"price": Infinity}}', '{"fields": {"price": 1e400}}'):
        answer = client.put(url(draft["id"], "form"), data=raw, headers=zhang, content_type="application/json")
        assert answer.status_code == 400, answer.json
    detail = client.get(url(draft["id"]), headers=zhang)

    def refuse(constant):
        raise AssertionError(f"{constant} in an answer")

    json.loads(detail.get_data(as_text=True), parse_constant=refuse)  # what a phone's JSON.parse accepts
    with app.app_context():
        assert db.session.get(Application, draft["id"]).form_values_encrypted is None


def test_nul_and_surrogates_in_queries_and_headers_are_422(client, citizen_as, staff_headers):
    auditor = staff_headers("auditor")
    # (A lone surrogate cannot arrive in a URL: undecodable bytes become U+FFFD.)
    for query in ("provider=sand%00box", "matter_code=%00", "%00=1"):
        answer = client.get(f"/api/v1/audit/face-verifications?{query}", headers=auditor)
        assert answer.status_code == 422 and answer.json["error"] == "validation_failed"
    zhang = citizen_as("张伟", "410105198503120013")
    draft = create(client, zhang, "GJJ-GG-002")
    answer = client.post(url(draft["id"], "submit"), headers={**zhang, "Idempotency-Key": "key\x00"})
    assert answer.status_code == 422


def test_nul_in_a_reject_reason_is_refused_and_stores_nothing(app, client, citizen_as, staff_headers):
    from application_flow import review_url, submitted_application

    zhang = citizen_as("张伟", "410105198503120013")
    application_id = submitted_application(client, zhang)
    reviewer = staff_headers("reviewer-gjj")
    assert client.post(review_url(application_id, "accept"), headers=reviewer).status_code == 200
    answer = client.post(review_url(application_id, "reject"), headers=reviewer, json={"reason": "材料\x00不全"})
    assert answer.status_code == 422 and "reason" in answer.json["errors"]["json"]
    with app.app_context():
        status = db.session.scalar(sa.select(Application.status).where(Application.id == application_id))
    assert status == "accepted"


@pytest.mark.parametrize("query", ["id_number=410105198503120013", "name=张伟", "phone=13800000000",
                                   "q=410105198503120013", "connector=41010519850312001x"])
def test_a_personal_identifier_in_a_url_is_refused_and_not_echoed(client, staff_headers, caplog, query):
    auditor = staff_headers("auditor")
    for path in ("/api/v1/audit/face-verifications", "/api/v1/audit/data-access", "/api/v1/matters"):
        answer = client.get(f"{path}?{query}", headers=auditor)
        assert answer.status_code == 422 and answer.json["error"] == "identifier_in_url"
        value = query.split("=", 1)[1]
        assert value not in answer.get_data(as_text=True) and value not in caplog.text


def test_the_development_servers_access_log_drops_query_strings(capsys):
    import io

    from app.devserver import PathOnlyRequestHandler

    handler = PathOnlyRequestHandler.__new__(PathOnlyRequestHandler)
    handler.requestline = "GET /api/v1/audit/data-access?id_number=410105198503120013 HTTP/1.1"
    handler.client_address = ("127.0.0.1", 50000)
    handler.request_version = "HTTP/1.1"
    handler.command, handler.path = "GET", "/api/v1/audit/data-access?id_number=410105198503120013"
    logged = io.StringIO()
    handler.log = lambda _type, message, *args: logged.write(message % args)
    handler.log_request(200, 10)
    assert "/api/v1/audit/data-access" in logged.getvalue() and "410105198503120013" not in logged.getvalue()

