"""The face-verification flow through the API with the sandbox adapter: binding, consumption, limits, consent.

The sandbox adapter (identity/sandbox.py) answers the outcome named by the magic evidence, so these tests are
about what the app does around it: refusing without a real name or consent, binding the session to the
citizen, consuming it once (also under concurrency, on PostgreSQL), the verified window, the failure limit,
and a record in the verification log for every step and fault.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
import sqlalchemy as sa
from face_flow import (
    FACE_MATTER,
    LI_NA,
    NON_FACE_MATTER,
    ZHANG_WEI,
    bind_person,
    claim_person,
    complete,
    events,
    face_records,
    face_session,
    start,
    verify_with_sandbox,
)

from app.extensions import db
from app.face.models import BiometricConsent, FaceSession


@pytest.fixture
def check(app):
    """Validate an answer against the OpenAPI document (the fuzzing rarely reaches these states)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def validate(path: str, method: str, response, status: int):
        assert response.status_code == status, response.get_data(as_text=True)
        schema[path][method].validate_response(response)
        return response.json

    return validate


@pytest.fixture
def zhang(client):
    """张伟, proven by face (so the binding's own real-name pass is already in the log)."""
    return bind_person(client, ZHANG_WEI)


def window(client, headers) -> str | None:
    return client.get("/api/v1/me", headers=headers).json["face_verified_until"]


SESSIONS = "/api/v1/face/sessions"
COMPLETE = "/api/v1/face/sessions/{session_id}/complete"


# ------------------------------------------------------------------------------------------------ the flow


def test_a_pass_opens_the_verified_window_shown_by_me(app, client, zhang, check):
    before, logged = datetime.now(UTC), len(events(app))
    started = check(SESSIONS, "POST", start(client, zhang, purpose="apply", matter_code=FACE_MATTER), 201)
    assert started["provider"] == "sandbox" and started["matter_code"] == FACE_MATTER
    assert started["client_payload"] == {"evidence": {"sandbox": ["no_match", "not_live", "pass", "timeout"]}}
    expires_at = datetime.fromisoformat(started["expires_at"])
    assert before + timedelta(seconds=290) < expires_at <= datetime.now(UTC) + timedelta(seconds=300)

    done = check(COMPLETE, "POST", complete(client, zhang, started["session_id"], {"sandbox": "pass"}), 200)
    assert done["decision"] == "pass" and done["reason"] == "pass"
    until = datetime.fromisoformat(done["face_verified_until"])
    assert before + timedelta(seconds=595) < until <= datetime.now(UTC) + timedelta(seconds=600)
    me = client.get("/api/v1/me", headers=zhang).json
    assert datetime.fromisoformat(me["face_verified_until"]) == until

    session = face_session(app, started["session_id"])
    assert (session.status, session.decision, session.purpose) == ("consumed", "pass", "apply")
    assert events(app)[logged:] == ["session_started", "result", "decision"]  # consent: at the binding
    result, decision = face_records(app)[-2:]
    assert (result.outcome, result.liveness, result.similarity, result.threshold) == ("pass", True, 0.95, 0.8)
    assert (decision.decision, decision.threshold, decision.failure_limit) == ("pass", 0.8, 5)
    assert decision.verified_until == until and decision.matter_code == FACE_MATTER


@pytest.mark.parametrize(("word", "reason", "liveness"), [
    ("no_match", "no_match", True),
    ("not_live", "not_live", False),
    ("timeout", "timeout", None),
])
def test_failures_are_decisions_that_count_and_point_to_the_non_face_path(app, client, zhang, word, reason,
                                                                         liveness):
    opened = window(client, zhang)
    done = verify_with_sandbox(client, zhang, word, purpose="apply", matter_code=FACE_MATTER)
    assert done.status_code == 200
    assert (done.json["decision"], done.json["reason"], done.json["face_verified_until"]) == ("fail", reason, None)
    assert "窗口" in done.json["non_face_path"]
    assert window(client, zhang) == opened  # the binding's window, not extended
    result, decision = face_records(app)[-2:]
    assert (result.outcome, result.liveness, result.threshold) == (reason, liveness, 0.8)
    assert (decision.decision, decision.reason, decision.failures, decision.failure_limit) == ("fail", reason, 1, 5)


def test_the_server_never_takes_the_clients_word_for_the_result(client, zhang):
    """Evidence outside the provider's vocabulary is refused, not read as an outcome."""
    opened = window(client, zhang)
    session_id = start(client, zhang).json["session_id"]
    for evidence in ({"decision": "pass"}, {"sandbox": "pass", "decision": "pass"}, {"outcome": "pass"}):
        answer = complete(client, zhang, session_id, evidence)
        assert answer.status_code == 422 and answer.json["error"] == "validation_failed"
    assert window(client, zhang) == opened


# ------------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("purpose", ["real_name", "identity_check"])
def test_a_citizen_without_a_real_name_is_refused(client, citizen_headers, check, row_counts, purpose):
    before = row_counts()
    answer = check(SESSIONS, "POST", start(client, citizen_headers, purpose=purpose), 403)
    assert answer["error"] == "assurance_required"
    assert answer["errors"]["assurance"]["current"] == "none"
    assert row_counts() == before


@pytest.mark.parametrize("body", [
    {"purpose": "identity_check"},
    {"purpose": "apply", "matter_code": FACE_MATTER},
    {"purpose": "account_security"},
])
def test_a_claim_only_opens_the_real_name_verification(client, check, row_counts, body):
    li = claim_person(client, LI_NA)
    before = row_counts()
    answer = check(SESSIONS, "POST", start(client, li, **body), 403)
    assert (answer["error"], answer["errors"]["assurance"]) == (
        "assurance_required", {"current": "claimed", "required": "face"})
    assert row_counts() == before


@pytest.mark.parametrize("body", [{"matter_code": FACE_MATTER}, {"application_id": "0" * 32}])
def test_a_real_name_verification_binds_no_matter(client, body):
    li = claim_person(client, LI_NA)
    answer = start(client, li, purpose="real_name", **body)
    assert answer.status_code == 422 and set(answer.json["errors"]["json"]) == set(body)


@pytest.mark.parametrize("body", [
    {"biometric_consent": False},
    {"biometric_consent": None},
    {"consent_version": "2019-01"},
])
def test_no_consent_no_session(app, client, body, check):
    li = claim_person(client, LI_NA)
    answer = check(SESSIONS, "POST", start(client, li, purpose="real_name", **body), 422)
    assert answer["error"] in ("consent_required", "validation_failed")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(FaceSession.id))) == 0


def test_missing_consent_field_is_consent_required_or_validation(client, zhang):
    answer = client.post(SESSIONS, headers=zhang, json={"purpose": "identity_check"})
    assert answer.status_code == 422 and "biometric_consent" in answer.json["errors"]["json"]


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"purpose": "apply"}, 422, "validation_failed"),  # apply needs a matter
    ({"purpose": "apply", "matter_code": "NO-SUCH-1"}, 404, "not_found"),
    ({"purpose": "apply", "matter_code": NON_FACE_MATTER}, 422, "face_not_offered"),
    ({"purpose": "apply", "application_id": "0" * 32}, 404, "not_found"),
    ({"purpose": "whatever"}, 422, "validation_failed"),
    ({"purpose": "identity_check", "matter_code": "含空格 的"}, 422, "validation_failed"),
])
def test_bad_bindings_are_refused(client, zhang, body, status, error, check):
    answer = check(SESSIONS, "POST", start(client, zhang, **body), status)
    assert answer["error"] == error


def test_an_application_binds_its_matter(client, zhang):
    draft = client.post("/api/v1/applications", headers=zhang, json={"matter_code": FACE_MATTER}).json
    started = start(client, zhang, purpose="apply", application_id=draft["id"])
    assert started.status_code == 201
    assert (started.json["application_id"], started.json["matter_code"]) == (draft["id"], FACE_MATTER)
    mismatch = start(client, zhang, purpose="apply", application_id=draft["id"], matter_code="GJJ-GG-002")
    assert mismatch.status_code == 422
    li = bind_person(client, LI_NA)
    assert start(client, li, purpose="apply", application_id=draft["id"]).status_code == 404


def test_an_adapter_without_liveness_cannot_serve_a_matter(app, make_app):
    """A matter that takes face verification in place of ID documents needs liveness detection."""
    from identity.interface import Capabilities
    from identity.sandbox import SandboxFaceAdapter

    class NoLiveness(SandboxFaceAdapter):
        capabilities = Capabilities(authoritative_source=False, liveness=False, returns_score=True)

    zhang = bind_person(app.test_client(), ZHANG_WEI)  # proven with liveness, before
    other = make_app()
    other.extensions["face_verifier"] = NoLiveness()
    client = other.test_client()
    opened = window(client, zhang)
    refused = start(client, zhang, purpose="apply", matter_code=FACE_MATTER)
    assert refused.status_code == 422 and refused.json["error"] == "face_capability_missing"
    assert events(app)[-1] == "session_refused"
    # Without a matter it may verify, but its pass opens no window while FACE_REQUIRE_LIVENESS is on.
    done = verify_with_sandbox(client, zhang, "pass")
    assert (done.json["decision"], done.json["reason"], done.json["face_verified_until"]) == (
        "pass", "pass_without_liveness", None)
    assert window(client, zhang) == opened
    # Nor does it prove a claimed identity: a photo held up to the camera would bind it.
    li = claim_person(client, LI_NA)
    done = verify_with_sandbox(client, li, "pass", purpose="real_name")
    assert (done.json["reason"], done.json["assurance"], "tokens" in done.json) == (
        "pass_without_liveness", "claimed", False)


# ------------------------------------------------------------------------------------------------ consumption


def test_a_session_is_consumed_once(app, client, zhang, check):
    session_id = start(client, zhang).json["session_id"]
    assert complete(client, zhang, session_id, {"sandbox": "pass"}).status_code == 200
    again = check(COMPLETE, "POST", complete(client, zhang, session_id, {"sandbox": "pass"}), 409)
    assert again["error"] == "face_session_consumed"
    assert events(app)[-1] == "replay_rejected"


def test_another_citizens_session_is_not_found_and_logged(app, client, zhang, check):
    session_id = start(client, zhang).json["session_id"]
    li = bind_person(client, LI_NA)
    li_window = window(client, li)
    answer = check(COMPLETE, "POST", complete(client, li, session_id, {"sandbox": "pass"}), 404)
    assert answer["error"] == "not_found"
    record = face_records(app)[-1]
    assert record.event == "wrong_citizen" and record.session_id == session_id
    # The owner can still complete it; the stranger changed nothing.
    assert complete(client, zhang, session_id, {"sandbox": "pass"}).json["decision"] == "pass"
    assert window(client, li) == li_window


def test_unknown_sessions_are_not_found(client, zhang, check):
    for session_id in ("0" * 32, "nope", "x" * 64):
        answer = check(COMPLETE, "POST", complete(client, zhang, session_id, {"sandbox": "pass"}), 404)
        assert answer["error"] == "not_found"


def test_an_expired_session_is_gone(app, client, zhang, check):
    session_id = start(client, zhang).json["session_id"]
    with app.app_context():
        db.session.execute(sa.update(FaceSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()
    answer = check(COMPLETE, "POST", complete(client, zhang, session_id, {"sandbox": "pass"}), 410)
    assert answer["error"] == "face_session_expired"
    assert face_session(app, session_id).status == "expired"
    assert events(app)[-1] == "expired"
    assert complete(client, zhang, session_id, {"sandbox": "pass"}).status_code == 410


def test_a_session_of_a_replaced_provider_is_gone(app, client, zhang):
    session_id = start(client, zhang).json["session_id"]
    with app.app_context():
        db.session.execute(sa.update(FaceSession).values(provider="retired"))
        db.session.commit()
    assert complete(client, zhang, session_id, {"sandbox": "pass"}).status_code == 410
    assert face_records(app)[-1].reason == "provider_changed"


def test_unusable_evidence_leaves_the_session_open(app, client, zhang, check):
    session_id = start(client, zhang).json["session_id"]
    for evidence in ([], "pass", None, {"sandbox": 1}, {"sandbox": "maybe"}, {}):
        answer = check(COMPLETE, "POST", complete(client, zhang, session_id, evidence), 422)
        assert answer["error"] == "validation_failed"
    assert client.post(f"/api/v1/face/sessions/{session_id}/complete", headers=zhang, json={}).status_code == 422
    logged = [r for r in face_records(app) if r.event == "invalid_evidence"]
    # null is refused by the schema (a missing value); every other shape reaches the adapter and is logged.
    assert {r.reason for r in logged} == {"bad_shape", "unknown_magic"} and len(logged) == 5
    assert complete(client, zhang, session_id, {"sandbox": "pass"}).json["decision"] == "pass"


def test_a_body_over_the_face_limit_is_413_and_logged(app, make_app):
    other = make_app(FACE_MAX_BODY_BYTES=2048)
    client = other.test_client()
    zhang = bind_person(client, ZHANG_WEI)
    session_id = start(client, zhang).json["session_id"]
    answer = complete(client, zhang, session_id, {"sandbox": "pass", "padding": "x" * 4096})
    assert answer.status_code == 413 and answer.json["error"] == "payload_too_large"
    assert (face_records(app)[-1].event, face_records(app)[-1].reason) == ("invalid_evidence", "too_large")
    # The face limit applies to completions only; with the default limit a larger body is fine there.
    assert complete(client, zhang, session_id, {"sandbox": "pass"}).status_code == 200


def test_the_completion_accepts_bodies_above_the_general_limit(app, client, zhang):
    """Probe photos need more than MAX_CONTENT_LENGTH (1 MiB): the face endpoint has its own limit."""
    session_id = start(client, zhang).json["session_id"]
    answer = complete(client, zhang, session_id, {"sandbox": "x" * (1024 * 1024 + 10)})
    assert answer.status_code == 422  # parsed (and refused as unknown magic), not 413


@pytest.mark.postgres
def test_two_concurrent_completions_cannot_both_win(app, client, zhang, is_postgres):
    if not is_postgres:
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the race cannot happen there")
    session_id = start(client, zhang).json["session_id"]
    barrier = threading.Barrier(2)
    answers = []

    def completion():
        with app.test_client() as own:
            barrier.wait()
            answers.append(complete(own, zhang, session_id, {"sandbox": "pass"}))

    for _ in range(5):  # a few rounds, each on a fresh session, to give the race a chance
        barrier.reset()
        answers.clear()
        threads = [threading.Thread(target=completion) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 409], [a.json for a in answers]
        assert [a.json["error"] for a in answers if a.status_code == 409] == ["face_session_consumed"]
        session_id = start(client, zhang).json["session_id"]
    decisions = [r for r in face_records(app) if r.event == "decision" and r.purpose != "real_name"]
    assert len(decisions) == 5  # one per race (the real-name proof of the fixture aside)


def test_concurrent_completions_on_sqlite_still_consume_once(app, client, zhang):
    """The same race on whichever backend runs (on SQLite the writers are serialised)."""
    session_id = start(client, zhang).json["session_id"]
    answers = []

    def completion():
        with app.test_client() as own:
            answers.append(complete(own, zhang, session_id, {"sandbox": "pass"}))

    threads = [threading.Thread(target=completion) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409, 409]


# ------------------------------------------------------------------------------------------------ rate limit


def test_five_failures_lock_face_verification_with_retry_after(app, client, zhang, check):
    for attempt in range(1, 6):
        done = verify_with_sandbox(client, zhang, "no_match")
        assert done.json["decision"] == "fail"
        assert face_records(app)[-1].failures == attempt
    refused = start(client, zhang)
    check(SESSIONS, "POST", refused, 429)
    assert refused.json["error"] == "rate_limited"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    assert events(app)[-1] == "rate_limited"
    assert face_records(app)[-1].failure_limit == 5


def test_an_open_session_cannot_be_completed_once_locked(app, make_app):
    other = make_app(FACE_MAX_FAILURES=2)
    client = other.test_client()
    zhang = bind_person(client, ZHANG_WEI)
    waiting = start(client, zhang).json["session_id"]
    verify_with_sandbox(client, zhang, "not_live")
    verify_with_sandbox(client, zhang, "timeout")
    answer = complete(client, zhang, waiting, {"sandbox": "pass"})
    assert answer.status_code == 429 and "Retry-After" in answer.headers
    assert face_session(app, waiting).status == "created"  # refused, not consumed


def test_passes_do_not_count_and_the_limit_is_per_citizen(app, make_app):
    other = make_app(FACE_MAX_FAILURES=2)
    client = other.test_client()
    zhang, li = bind_person(client, ZHANG_WEI), bind_person(client, LI_NA)  # attempt 1 of each: the proof
    for _ in range(3):
        assert verify_with_sandbox(client, zhang, "pass").json["decision"] == "pass"
    verify_with_sandbox(client, zhang, "no_match")
    verify_with_sandbox(client, zhang, "no_match")
    assert start(client, zhang).status_code == 429
    assert verify_with_sandbox(client, li, "pass").status_code == 200
    attempts = [r.attempt for r in face_records(app) if r.event == "session_started"]
    assert attempts == [1, 1, 2, 3, 4, 5, 6, 2]


# ------------------------------------------------------------------------------------------------ consent


def test_consent_is_recorded_once_per_text_and_shown(app, client, check):
    zhang = claim_person(client, ZHANG_WEI)  # claimed only: no face verification, no consent yet
    view = check("/api/v1/me/biometric-consent", "GET", client.get("/api/v1/me/biometric-consent", headers=zhang), 200)
    assert view["active"] is False and view["receipt"] is None
    assert "人脸" in view["current"]["text"] and view["current"]["version"]
    first = start(client, zhang, purpose="real_name", consent_version=view["current"]["version"]).json
    second = start(client, zhang, purpose="real_name").json
    assert first["consent_id"] == second["consent_id"]
    view = client.get("/api/v1/me/biometric-consent", headers=zhang).json
    assert view["active"] is True and view["receipt"]["id"] == first["consent_id"]
    assert view["receipt"]["text"] == view["current"]["text"] and view["receipt"]["withdrawn_at"] is None
    assert events(app).count("consent_granted") == 1


def test_a_changed_consent_text_needs_a_new_receipt(app, make_app):
    client = make_app().test_client()
    zhang = bind_person(client, ZHANG_WEI)
    first = start(client, zhang).json["consent_id"]
    changed = make_app(FACE_CONSENT_VERSION="2099-01", FACE_CONSENT_TEXT="新的同意书").test_client()
    assert start(changed, zhang, consent_version="2025-06").json["error"] == "consent_required"
    second = start(changed, zhang, consent_version="2099-01").json["consent_id"]
    assert second != first
    with app.app_context():
        versions = db.session.scalars(sa.select(BiometricConsent.version).order_by(BiometricConsent.granted_at))
        assert list(versions) == ["2025-06", "2099-01"]


def test_withdrawal_ends_open_sessions_and_needs_new_consent(app, client, zhang, check):
    open_session = start(client, zhang).json["session_id"]
    withdrawn = check("/api/v1/me/biometric-consent", "DELETE",
                      client.delete("/api/v1/me/biometric-consent", headers=zhang), 200)
    assert withdrawn["active"] is False and withdrawn["receipt"]["withdrawn_at"] is not None
    assert events(app)[-1] == "consent_withdrawn"
    answer = complete(client, zhang, open_session, {"sandbox": "pass"})
    assert answer.status_code == 410 and face_records(app)[-1].reason == "consent_withdrawn"
    assert client.delete("/api/v1/me/biometric-consent", headers=zhang).status_code == 200  # idempotent
    assert start(client, zhang, biometric_consent=False).json["error"] == "consent_required"
    renewed = start(client, zhang)
    assert renewed.status_code == 201
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(BiometricConsent.id))) == 2


def test_staff_cannot_use_citizen_face_endpoints(client, staff_headers):
    auditor = staff_headers("auditor")
    assert start(client, auditor).status_code == 403
    assert client.get("/api/v1/me/biometric-consent", headers=auditor).status_code == 403
    assert client.post(SESSIONS, json={"purpose": "identity_check", "biometric_consent": True}).status_code == 401


# ------------------------------------------------------------------------------------------------ non-face path


def test_every_matter_guide_shows_its_non_face_path(client):
    """The 2025 face-recognition rules: every matter keeps a way without face recognition, in its guide."""
    codes, page = [], 1
    while True:
        listing = client.get("/api/v1/matters", query_string={"page": page, "per_page": 100}).json
        codes += [item["code"] for item in listing["items"]]
        if len(codes) >= listing["total"]:
            break
        page += 1
    assert len(codes) > 30
    for code in codes:
        guide = client.get(f"/api/v1/matters/{code}").json
        path = guide["non_face_path"]
        assert path.strip(), code
        assert any(word in path for word in ("窗口", "帮办", "代办", "现场", "到场", "大厅", "上门")), (code, path)
