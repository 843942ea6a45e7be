"""Every operation of the OpenAPI document, fuzzed by schemathesis with every check it has (`--checks all`).

Each operation is called with a token of a role it declares (`x-roles`), so the fuzzing reaches past the
authentication check, and then (for its first few cases), with the same case, anonymously and with a token of
every role it is not for (anonymous, citizen at `face`, agent, reviewer, bureau, auditor, admin): those must be
refused as documented.

The checks include `positive_data_acceptance`: a request the document calls valid must not be refused as
invalid. The document states every rule on a request's shape; the few rules JSON Schema cannot state (they
relate fields to each other, to the caller's role, or to data only the server holds) are named in
`UNSTATABLE` with their reason, and a refusal is excused only when every field it names is one of them.
"""

from __future__ import annotations

import os
from collections import Counter
from fnmatch import fnmatchcase

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import load_all_checks, positive_data_acceptance
from schemathesis.core.failures import Failure
from schemathesis.core.parameters import ParameterLocation

from app import create_app

STAFF_ROLES = {"admin": "admin", "auditor": "auditor", "reviewer": "reviewer-gjj", "bureau": "bureau-ga",
               "agent": "agent"}

_STATS_RANGE = "from before to, at most 366 days apart (a relation between two parameters)"
_TREE = "sizes and seqs within the log as it is now, seq ≤ size and from ≤ to (data only the server has)"
_CURSOR = "a cursor is opaque: only one the server issued continues a query"
_MATTER = {
    "json.department": "an implementing department the catalogue holds (data only the server has)",
    "json.fees.items": "a matter that charges (free: false) lists its fee items, a free one none",
    "json.promised_time_limit_days": "the promised time limit is within the legal one",
    "json.materials": "material codes are unique within the matter (a property of the items)",
    "json.materials.*.evidence.*.critical": "only a shared_data option can be critical",
    "json.materials.*.evidence.*.elements": "a shared_data option lists elements, an in_person option none",
    "json.materials.*.evidence.*.licence_type": "an e_licence option, and only it, names its licence type",
    "json.conditions.*": "a rule names dictionary elements with operators and literals that fit their types (the "
                         "rule's parts in relation to data the server holds)",
    "json.proactive": "a proactive matter has a condition with a rule (a relation between two fields)",
}
_CONSENT = "exactly the elements and purpose this draft asks consent for (its consent_required)"
_HOST = "a base URL's host resolves, and only to public addresses (the SSRF guard asks DNS)"
_ELEMENTS = "elements, when given with a mapping, are the mapping's keys"
_PURPOSE = "a real_name verification names no matter or application; the others name one (by purpose)"
# Operation → error field (location.field…, `*` for an index) → why the document cannot state the rule.
UNSTATABLE: dict[str, dict[str, str]] = {
    "POST /api/v1/me/real-name": {
        "json.id_number": "GB 11643: the check character, a real birth date and a county code in use"},
    "POST /api/v1/matters": _MATTER,
    "PUT /api/v1/matters/{code}": _MATTER,
    "POST /api/v1/connectors": {"json.elements": _ELEMENTS, "json.base_url": _HOST},
    "PATCH /api/v1/connectors/{connector_id}": {"json.elements": _ELEMENTS, "json.base_url": _HOST},
    "POST /api/v1/face/sessions": {
        "json.matter_code": _PURPOSE, "json.application_id": _PURPOSE},
    "POST /api/v1/applications/{application_id}/consent": {
        "json.elements": _CONSENT, "json.purpose": _CONSENT},
    "POST /api/v1/applications/{application_id}/submit": {
        "materials.*": "every required material provided first (the application's state, not the request's)",
        "conditions": "the matter's conditions met by the prefilled data (the application's state)"},
    "POST /api/v1/me/proactive/opt-ins": {
        "json.matter_codes": "matters the catalogue marks proactive (data only the server has)",
        "json.elements": "exactly the chosen matters' elements (GET /me/proactive/offer)",
        "json.purpose": "exactly the offer's purpose (data only the server has)"},
    "POST /api/v1/applications": {"json.on_behalf_of": "only an agent applies on someone's behalf (the role)"},
    "GET /api/v1/review/applications": {
        "query.submitted_to": "submitted_from on or before submitted_to (a relation between two parameters)"},
    "GET /api/v1/audit/data-access": {"query.cursor": _CURSOR},
    "GET /api/v1/audit/face-verifications": {"query.cursor": _CURSOR},
    "GET /api/v1/audit/auditor-access": {"query.cursor": _CURSOR},
    "POST /api/v1/audit/data-access/search": {"json.cursor": _CURSOR},
    "POST /api/v1/audit/face-verifications/search": {"json.cursor": _CURSOR},
    "GET /api/v1/audit/face-verifications/stats": {"query.from": _STATS_RANGE},
    "GET /api/v1/stats/face": {"query.from": _STATS_RANGE},
    "GET /api/v1/stats/applications": {"query.from": _STATS_RANGE},
    "GET /api/v1/stats/evaluations": {"query.from": _STATS_RANGE},
    "GET /api/v1/audit/{log}/export": {
        "query.consistency_from": "a bundle only, and at most the log's size (a relation, and data only the "
                                  "server has)"},
    "GET /api/v1/audit/{log}/proof/inclusion": {
        "query.seq": _TREE, "query.size": _TREE},
    "GET /api/v1/audit/{log}/proof/consistency": {
        "query.from": _TREE, "query.to": _TREE},
}

load_all_checks()
# The same cases on every run, so CI is repeatable; FUZZ_EXPLORE=1 draws new ones (to look for more).
DERANDOMIZE = os.environ.get("FUZZ_EXPLORE") != "1"

# The document is read from an app built at collection time (schemathesis parametrizes then); the calls go
# to the test session's app, on its database, through `app=` below. (schemathesis' lazy fixture loader does
# not work with pytest 9.)
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app({"APP_ENV": "testing",
                                                                      "DATABASE_URL": "sqlite://"}))
# NUL cannot be stored (the body policy answers 422 for it); the document says nothing of it, so leave it out.
schema.config.generation.update(allow_x00=False)


def error_fields(errors: dict, prefix: str = "") -> list[str]:
    """The dotted field names of an error shape's `errors` (location first): `json.fees.items`."""
    names = []
    for key, value in errors.items():
        name = f"{prefix}.{key}" if prefix else key
        names.extend(error_fields(value, name) if isinstance(value, dict) else [name])
    return names


def refused_only_for_unstatable(operation: str, response) -> bool:
    """Whether a 422 names only fields whose rules UNSTATABLE lists for `operation`."""
    excused = UNSTATABLE.get(operation, {})
    try:
        named = error_fields(response.json().get("errors") or {})
    except ValueError:
        return False
    return response.status_code == 422 and bool(named) and all(
        any(fnmatchcase(name, pattern) for pattern in excused) for name in named)


def accepted_unless_unstatable(ctx, response, case):
    """positive_data_acceptance, excusing a 422 for one of the rules UNSTATABLE names for the operation."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        if refused_only_for_unstatable(case.operation.label, response):
            return None
        raise


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


def auth_headers(case, token: str | None) -> dict:
    """`token` as a header, unless the case's headers are the invalid part (a missing or mangled
    Authorization header must reach the server as generated)."""
    invalid_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    return {"Authorization": f"Bearer {token}"} if token and not invalid_headers else {}


def call(case, app, token: str | None) -> None:
    headers = auth_headers(case, token)
    case.call_and_validate(app=app, headers=headers, excluded_checks=[positive_data_acceptance],
                           additional_checks=[accepted_unless_unstatable])


OTHER_ROLE_CASES: Counter[str] = Counter()
OTHER_ROLE_CASES_PER_OPERATION = 6


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck))
def test_operation_conforms(case, app, tokens):
    roles = case.operation.definition.raw.get("x-roles") or []
    call(case, app, tokens[roles[0]] if roles else None)
    if not roles or "any" in roles:
        return  # open to every caller: the other roles are the same call
    # Every role the operation is not for, with the same case: refused as the document says, never a 5xx.
    # The refusal comes before anything reads the case, so the first few cases of each operation say it all
    # (and keep CI's time down: seven more calls per case).
    OTHER_ROLE_CASES[case.operation.label] += 1
    if OTHER_ROLE_CASES[case.operation.label] > OTHER_ROLE_CASES_PER_OPERATION:
        return
    for role in ("anonymous", *STAFF_ROLES, "citizen"):
        if role not in roles:
            call(case, app, None if role == "anonymous" else tokens[role])


# The application journey: find a matter, apply, and follow the links of the answers (consent with the
# elements the draft asks for, prefill, the form, submit, read, withdraw), as a citizen.
JOURNEY = r"^/api/v1/(matters|applications(/\{application_id\}(/(consent|prefill|form|submit|withdraw))?)?)$"


@pytest.mark.slow
def test_application_journey_over_the_links(app, tokens):
    reached: set[tuple[str, int]] = set()
    journey = schema.include(path_regex=JOURNEY)
    # Only the document's own links: the journey is what they promise clients, not what schemathesis guesses.
    journey.config.phases.stateful.inference.algorithms = []

    class Journey(journey.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"app": app, "headers": auth_headers(case, tokens["citizen"])}

        def after_call(self, response, case):
            super().after_call(response, case)
            reached.add((f"{case.method} {case.operation.path}", response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, excluded_checks=[positive_data_acceptance],
                                   additional_checks=[accepted_unless_unstatable], headers=kwargs.get("headers"),
                                   transport_kwargs=kwargs, recorder=self.recorder)

    Journey.run(settings=settings(max_examples=100, stateful_step_count=10, deadline=None, derandomize=DERANDOMIZE,
                                  suppress_health_check=list(HealthCheck)))
    # The walk followed the document's links: drafts were made for the matters a listing answered.
    assert ("POST /api/v1/applications", 201) in reached, sorted(reached)


def follow(document: dict, answer, method: str, path: str, name: str) -> tuple[str, str, dict | None]:
    """The request the link `name` of `method path`'s answer describes: (method, URL, JSON body)."""
    link = document["paths"][path][method]["responses"][str(answer.status_code)]["links"][name]
    escaped = link["operationRef"].removeprefix("#/paths/")
    target, target_method = escaped.rsplit("/", 1)
    target = target.replace("%7B", "{").replace("%7D", "}").replace("~1", "/").replace("~0", "~")

    def value(expression):
        if isinstance(expression, dict):
            return {key: value(item) for key, item in expression.items()}
        found = answer.json
        for part in expression.removeprefix("$response.body#/").split("/"):
            found = found[int(part)] if isinstance(found, list) else found[part.replace("~1", "/").replace("~0", "~")]
        return found

    url = target
    for parameter, expression in link.get("parameters", {}).items():
        url = url.replace(f"{{{parameter}}}", value(expression))
    body = value(link["requestBody"]) if "requestBody" in link else None
    return target_method.upper(), url, body


def test_the_journeys_links_lead_a_citizen_through_an_application(client, citizen_as):
    """Each link, filled from a real answer, is the right next request: a listed matter's draft, consented to
    with exactly what it asks, prefilled, its form read back, then withdrawn."""
    document = client.get("/openapi.json").json
    headers = citizen_as("张伟", "410105198503120013")

    def step(answer, path, method, name, status, **overrides):
        method_, url, body = follow(document, answer, method, path, name)
        if overrides:
            body = {**(body or {}), **overrides}
        response = client.open(url, method=method_, headers=headers, json=body)
        assert response.status_code == status, (name, response.json)
        return response

    listing = client.get("/api/v1/matters", query_string={"q": "公积金"})
    assert listing.status_code == 200 and listing.json["items"]
    guide = step(listing, "/api/v1/matters", "get", "ReadGuide", 200)
    draft = step(listing, "/api/v1/matters", "get", "Apply", 201)
    assert draft.json["matter_code"] == guide.json["code"]
    applications = "/api/v1/applications"
    one = applications + "/{application_id}"
    receipt = step(draft, applications, "post", "GiveConsent", 201)
    assert sorted(receipt.json["elements"]) == sorted(draft.json["consent_required"]["elements"])
    prefilled = step(receipt, one + "/consent", "post", "Prefill", 200)
    step(prefilled, one + "/prefill", "post", "FillForm", 200, fields={"note": "邮寄到单位"})
    assert step(prefilled, one + "/prefill", "post", "ReadApplication", 200).json["form"]["note"] == "邮寄到单位"
    step(draft, applications, "post", "Withdraw", 200, reason="不需要了")
