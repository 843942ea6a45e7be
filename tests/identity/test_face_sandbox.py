"""The sandbox adapter's magic evidence, and the interface's value types."""

from __future__ import annotations

import copy
import pickle
import time
from datetime import UTC, datetime, timedelta

import pytest
from face_helpers import ZHANG_WEI

from identity.errors import InvalidEvidence, SessionExpired
from identity.interface import Capabilities, FaceResult, Identity, Outcome, ProviderSession
from identity.sandbox import SandboxFaceAdapter


@pytest.fixture
def adapter() -> SandboxFaceAdapter:
    return SandboxFaceAdapter()


@pytest.fixture
def identity() -> Identity:
    return Identity(*ZHANG_WEI)


def complete(adapter, identity, evidence, **start):
    session = adapter.start(verification_id="v-1", identity=identity, purpose="测试", **start)
    return adapter.result(session=session, identity=identity, evidence=evidence)


@pytest.mark.parametrize(
    ("word", "outcome", "liveness"),
    [
        ("pass", Outcome.PASS, True),
        ("no_match", Outcome.NO_MATCH, True),
        ("not_live", Outcome.NOT_LIVE, False),
        ("timeout", Outcome.TIMEOUT, None),
    ],
)
def test_each_magic_word_gives_its_outcome(adapter, identity, word, outcome, liveness):
    result = complete(adapter, identity, {"sandbox": word})
    assert (result.outcome, result.liveness, result.provider_code) == (outcome, liveness, word)
    assert result.threshold == 0.8
    assert result.passed is (word == "pass")
    assert result.provider_request_id.startswith("sbx-req-")


def test_the_same_word_always_gives_the_same_outcome(adapter, identity):
    outcomes = {complete(adapter, identity, {"sandbox": "no_match"}).outcome for _ in range(5)}
    assert outcomes == {Outcome.NO_MATCH}


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ({"sandbox": "PASS"}, "unknown_magic"),
        ({"sandbox": True}, "unknown_magic"),
        ({"sandbox": ["pass"]}, "unknown_magic"),
        ({"sandbox": "pass", "liveness": True}, "bad_shape"),
        ({}, "bad_shape"),
        ("pass", "bad_shape"),
    ],
)
def test_other_evidence_is_invalid(adapter, identity, evidence, reason):
    with pytest.raises(InvalidEvidence) as raised:
        complete(adapter, identity, evidence)
    assert raised.value.reason == reason


def test_the_payload_lists_the_magic_words(adapter, identity):
    session = adapter.start(verification_id="v-1", identity=identity, purpose="测试")
    assert session.client_payload == {"evidence": {"sandbox": ["no_match", "not_live", "pass", "timeout"]}}


def test_sessions_expire_after_the_configured_time(identity):
    adapter = SandboxFaceAdapter(session_ttl_seconds=0.001)
    session = adapter.start(verification_id="v-1", identity=identity, purpose="测试")
    time.sleep(0.01)
    with pytest.raises(SessionExpired):
        adapter.result(session=session, identity=identity, evidence={"sandbox": "pass"})


def test_capabilities_and_what_they_satisfy():
    caps = SandboxFaceAdapter.capabilities
    assert (caps.authoritative_source, caps.liveness, caps.returns_score) == (False, True, True)
    assert caps.satisfies(liveness=True) and not caps.satisfies(authoritative_source=True)
    assert Capabilities(authoritative_source=True, liveness=False, returns_score=False).satisfies(
        authoritative_source=True) is True


# --- the interface's value types ------------------------------------------------------------------------

def test_an_identity_never_shows_its_data():
    identity = Identity(*ZHANG_WEI, openid="zw_openid", reference_photo=b"\xff\xd8\xff photo")
    for text in (repr(identity), str(identity), f"{identity!r}"):
        assert text == "Identity(<redacted>)"
    with pytest.raises(TypeError):
        pickle.dumps(identity)
    with pytest.raises(TypeError):
        copy.deepcopy(identity)


@pytest.mark.parametrize("name, id_number", [("", "410105198503120013"), ("张伟", "  "), (None, "1")])
def test_an_identity_needs_a_name_and_an_id_number(name, id_number):
    with pytest.raises(ValueError):
        Identity(name, id_number)


def test_a_provider_session_round_trips_through_a_dict():
    session = ProviderSession(
        provider="sandbox", verification_id="v-1", provider_session_id="sbx-1",
        client_payload={"a": 1}, expires_at=datetime(2030, 1, 1, 8, tzinfo=UTC), state={"k": "v"},
    )
    data = session.to_dict()
    assert data["expires_at"] == "2030-01-01T08:00:00+00:00"
    assert ProviderSession.from_dict(data) == session
    with pytest.raises(ValueError):
        ProviderSession.from_dict({**data, "expires_at": "2030-01-01T08:00:00"})  # naive time


def test_a_session_knows_when_it_has_expired():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    session = ProviderSession("sandbox", "v", "p", {}, now)
    assert session.expired(now) and not session.expired(now - timedelta(seconds=1))


def test_a_result_serialises_without_surprises():
    result = FaceResult(Outcome.NOT_LIVE, "sandbox", "1.0", liveness=False, threshold=0.8, provider_code="x")
    assert result.to_dict() == {
        "outcome": "not_live", "provider": "sandbox", "adapter_version": "1.0", "liveness": False,
        "similarity": None, "threshold": 0.8, "provider_code": "x", "provider_request_id": None,
    }
    assert not result.passed
