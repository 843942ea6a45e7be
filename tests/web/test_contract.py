"""The OpenAPI document states the rules the server enforces, and the server enforces what it states.

Each case here was a disagreement the `--checks all` fuzzing found: the document allowed what the server
refused (a JSON 1.0 as a grade, a year before 1970, an unknown element as a mapping key, evidence of any
shape), or the server took what the document refused (a grade of 1.5 truncated to 1, `1` read as true, a form
field name ending in a newline).
"""

from __future__ import annotations

import pytest

from tests.applications.test_applications import ZHANG_WEI, consent, draft, matter_body

PLACEHOLDER = "0" * 32


@pytest.fixture
def document(client):
    return client.get("/openapi.json").json


def request_schemas(document):
    """Every schema a request body or parameter uses, nested ones included."""
    components = document["components"]["schemas"]
    seen, stack = [], []
    for path in document["paths"].values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            stack.extend(parameter["schema"] for parameter in operation.get("parameters", []))
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                stack.append(media["schema"])
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$ref" in node:
                node = components[node["$ref"].rsplit("/", 1)[1]]
            if any(node is other for other in seen):
                continue
            seen.append(node)
            stack.extend(value for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return seen


def test_every_number_a_request_takes_is_bounded_in_the_document(document):
    numbers = [node for node in request_schemas(document)
               if node.get("type") in ("integer", "number", ["integer", "null"], ["number", "null"])]
    assert numbers
    unbounded = [node for node in numbers if not ({"minimum", "exclusiveMinimum"} & set(node)
                                                  and {"maximum", "exclusiveMaximum"} & set(node))]
    assert unbounded == []


def test_the_document_states_the_deployments_consent_version_and_evidence(app, document):
    schemas = document["components"]["schemas"]
    assert document["openapi"].startswith("3.1")
    assert schemas["SessionCreate"]["properties"]["consent_version"]["enum"] == [app.config["FACE_CONSENT_VERSION"]]
    evidence = schemas["Complete"]["properties"]["evidence"]
    # The sandbox adapter of the test settings: exactly one magic word.
    assert evidence["required"] == ["sandbox"] and evidence["additionalProperties"] is False
    assert evidence["properties"]["sandbox"]["enum"] == ["no_match", "not_live", "pass", "timeout"]
    assert "x-face-evidence" not in str(document) and "x-enum-from-config" not in str(document)


def test_form_keys_and_connector_mappings_state_their_names(document):
    schemas = document["components"]["schemas"]
    form = schemas["FormBody"]["properties"]["fields"]
    assert form["propertyNames"]["pattern"].startswith("^[a-z]")
    mapping = schemas["ConnectorWrite"]["properties"]["mapping"]
    assert "person.name" in mapping["propertyNames"]["enum"]


def test_a_grade_is_a_json_integer(client, zhang):
    url = f"/api/v1/applications/{PLACEHOLDER}/evaluation"
    # 1.0 is the integer 1 in JSON: it passes validation and meets the missing application (404)...
    assert client.post(url, headers=zhang, json={"grade": 1.0}).status_code == 404
    # ...while 1.5, a boolean and text are no grade (elsewhere marshmallow truncated 1.5 and read "1" as 1).
    for grade in (1.5, True, "1"):
        answer = client.post(url, headers=zhang, json={"grade": grade})
        assert answer.status_code == 422, grade
        assert answer.json["errors"]["json"]["grade"] == ["应为整数"]


def test_a_flag_is_a_json_boolean(client, staff_headers):
    body = matter_body("TEST-FLAG", {"M_ID": ["person.name"]})
    body["materials"][0]["evidence"][0]["critical"] = 1
    answer = client.post("/api/v1/matters", json=body, headers=staff_headers("admin"))
    assert answer.status_code == 422
    assert "critical" in answer.json["errors"]["json"]["materials"]["0"]["evidence"]["0"]


def test_a_form_field_name_cannot_end_in_a_newline(client, zhang):
    created = draft(client, zhang, "GJJ-GG-002")
    assert consent(client, zhang, created).status_code == 201
    answer = client.put(f"/api/v1/applications/{created['id']}/form", headers=zhang,
                        json={"fields": {"note\n": "x"}})
    assert answer.status_code == 422
    assert client.get(f"/api/v1/applications/{created['id']}", headers=zhang).json["form"] == {}


@pytest.mark.parametrize("value", [1e19, -2.5e18, 10**18])
def test_numbers_beyond_the_bound_are_refused_whether_integer_or_not(client, zhang, value):
    created = draft(client, zhang, "GJJ-GG-002")
    answer = client.put(f"/api/v1/applications/{created['id']}/form", headers=zhang,
                        json={"fields": {"amount": value}})
    assert answer.status_code == 400 and answer.json["error"] == "bad_request"


def test_query_times_name_a_year_from_1970_to_9000_as_written(client, staff_headers):
    auditor = staff_headers("auditor")
    url = "/api/v1/audit/data-access"
    assert client.get(url, query_string={"from": "1969-12-31T23:00:00-02:00"}, headers=auditor).status_code == 422
    # As written: 1970 with an offset is still 1970, though it is 1969 in UTC.
    assert client.get(url, query_string={"from": "1970-01-01T00:30:00+01:00"}, headers=auditor).status_code == 200
    assert client.get(url, query_string={"to": "9000-12-31T23:59:59-14:00"}, headers=auditor).status_code == 200


def test_a_search_bodys_bad_cursor_is_named_in_the_body(client, staff_headers):
    answer = client.post("/api/v1/audit/data-access/search", json={"cursor": "bm90LWEtY3Vyc29y"},
                         headers=staff_headers("auditor"))
    assert answer.status_code == 422
    assert answer.json["errors"] == {"json": {"cursor": ["分页游标无效"]}}


@pytest.fixture
def zhang(citizen_as):
    return citizen_as(*ZHANG_WEI)


def test_each_app_serves_the_document_of_its_own_configuration(app, client, make_app):
    """`api` is one object per process; another app built later (a script, a test) must not change this
    app's document, nor inherit it."""
    other = make_app(FACE_CONSENT_VERSION="face-consent-other")
    path = ("components", "schemas", "SessionCreate", "properties", "consent_version", "enum")

    def consent_versions(document):
        for key in path:
            document = document[key]
        return document

    assert consent_versions(other.test_client().get("/openapi.json").json) == ["face-consent-other"]
    assert consent_versions(client.get("/openapi.json").json) == [app.config["FACE_CONSENT_VERSION"]]
