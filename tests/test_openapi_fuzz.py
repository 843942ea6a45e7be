"""Every operation of the OpenAPI document, fuzzed by schemathesis: no 5xx, every response as documented.

Each operation is called with a token of a role it declares (`x-roles`), so the fuzzing reaches past the
authentication check; the anonymous and wrong-role paths are covered by the endpoint tests.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

STAFF_ROLES = {"admin": "admin", "auditor": "auditor", "reviewer": "reviewer-gjj", "bureau": "bureau-ga",
               "agent": "agent"}

schema = schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.fixture
def fuzz_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.fixture
def tokens(client, login_citizen):
    """An access token per role, made once per operation under test."""

    def staff(username):
        response = client.post("/api/v1/auth/staff/login", json={"username": username, "password": "sandbox-pass"})
        assert response.status_code == 200, response.json
        return response.json["access_token"]

    made = {role: staff(username) for role, username in STAFF_ROLES.items()}
    made["citizen"] = login_citizen("fuzz-citizen")["access_token"]
    made["any"] = made["citizen"]
    return made


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_operation_conforms(case, app, tokens):
    roles = case.operation.definition.raw.get("x-roles") or []
    headers = {"Authorization": f"Bearer {tokens[roles[0]]}"} if roles else {}
    case.call_and_validate(headers=headers, checks=CHECKS)
