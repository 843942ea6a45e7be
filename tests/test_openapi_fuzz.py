"""Every operation of the OpenAPI document, fuzzed by schemathesis: no 5xx, every response as documented.

Each operation is called with a token of a role it declares (`x-roles`), so the fuzzing reaches past the
authentication check, and then, with the same case, anonymously and with a token of every role it is not for
(anonymous, citizen at `face`, agent, reviewer, bureau, auditor, admin): those must be refused as documented.
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

from app import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

STAFF_ROLES = {"admin": "admin", "auditor": "auditor", "reviewer": "reviewer-gjj", "bureau": "bureau-ga",
               "agent": "agent"}

# The document is read from an app built at collection time (schemathesis parametrizes then); the calls go
# to the test session's app, on its database, through `app=` below. (schemathesis' lazy fixture loader does
# not work with pytest 9.)
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app({"APP_ENV": "testing",
                                                                      "DATABASE_URL": "sqlite://"}))


@pytest.fixture
def tokens(client, citizen_as):
    """An access token per role, made once per operation under test (the citizen's identity proven by face, so
    the fuzzing reaches past the assurance check too)."""

    def staff(username):
        response = client.post("/api/v1/auth/staff/login", json={"username": username, "password": "sandbox-pass"})
        assert response.status_code == 200, response.json
        return response.json["access_token"]

    made = {role: staff(username) for role, username in STAFF_ROLES.items()}
    made["citizen"] = citizen_as("张伟", "410105198503120013", openid="fuzz-citizen")["Authorization"].split()[1]
    made["any"] = made["citizen"]
    return made


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_operation_conforms(case, app, tokens):
    roles = case.operation.definition.raw.get("x-roles") or []
    headers = {"Authorization": f"Bearer {tokens[roles[0]]}"} if roles else {}
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)
    if not roles or "any" in roles:
        return  # open to every caller: the other roles are the same call
    # Every role the operation is not for, with the same case: refused as the document says, never a 5xx.
    for role in ("anonymous", *STAFF_ROLES, "citizen"):
        if role not in roles:
            other = {} if role == "anonymous" else {"Authorization": f"Bearer {tokens[role]}"}
            case.call_and_validate(app=app, headers=other, checks=CHECKS)
