"""The contract every face adapter passes: one test class run over every registered adapter.

Each adapter name in `registry.available()` needs a harness below that knows how to make its provider say
"pass" and "no match" (the sandbox's magic words, the WeChat stand-in's phone endpoint, two photos for
`local`). A newly registered adapter without a harness fails `test_every_adapter_has_a_harness`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jsonschema_rs
import pytest
from face_helpers import ZHANG_WEI, Phone, b64, encode, make_wechat_adapter, open_image

from identity import registry
from identity.errors import InvalidEvidence, SessionExpired
from identity.interface import Capabilities, FaceResult, FaceVerifier, Identity, Outcome, ProviderSession, utcnow
from identity.wechat import cert_hash

# Evidence no adapter accepts: not a JSON object.
NOT_AN_OBJECT: list[Any] = ["pass", ["sandbox", "pass"], None, 42, {1: "pass"}]


@dataclass
class Harness:
    """How to drive one adapter through the contract."""

    adapter: FaceVerifier
    identity: Identity
    passing: Callable[[ProviderSession], dict]
    failing: Callable[[ProviderSession], dict]
    bad_evidence: list[Any] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # strings that must never appear in any output


def sandbox_harness(request) -> Harness:
    return Harness(
        adapter=registry.create("sandbox"),
        identity=Identity(*ZHANG_WEI, openid="zhangwei_openid"),
        passing=lambda session: {"sandbox": "pass"},
        failing=lambda session: {"sandbox": "no_match"},
        bad_evidence=[{}, {"sandbox": "maybe"}, {"sandbox": "pass", "extra": 1}, {"result": "pass"}],
    )


def wechat_harness(request) -> Harness:
    server = request.getfixturevalue("wechat_server")
    request.getfixturevalue("quiet_werkzeug")
    phone = Phone(server.url)
    adapter = make_wechat_adapter(server.url)
    request.addfinalizer(adapter.close)

    def with_phone(word: str) -> Callable[[ProviderSession], dict]:
        def evidence(session: ProviderSession) -> dict:
            phone.did(session.provider_session_id, word)
            # What a client might send: the SDK's callback. The adapter must not believe it.
            return {"verifyResult": "10000", "errCode": 0}
        return evidence

    return Harness(
        adapter=adapter,
        identity=Identity(*ZHANG_WEI, openid="zhangwei_openid"),
        passing=with_phone("pass"),
        failing=with_phone("no_match"),
        secrets=[cert_hash(*ZHANG_WEI)],
    )


def local_harness(request) -> Harness:
    adapter = request.getfixturevalue("local_adapter")
    astronaut = request.getfixturevalue("astronaut")
    grace_hopper = request.getfixturevalue("grace_hopper")
    probe = encode(open_image(astronaut), "JPEG", quality=70)  # a fresh capture, not the reference bytes
    return Harness(
        adapter=adapter,
        identity=Identity(*ZHANG_WEI, reference_photo=astronaut),
        passing=lambda session: {"image": b64(probe)},
        failing=lambda session: {"image": b64(grace_hopper)},
        bad_evidence=[{}, {"image": "not base64!"}, {"images": []}, {"image": b64(b"GIF89a....")}],
        secrets=[b64(astronaut)[:64]],
    )


HARNESSES: dict[str, Callable[[Any], Harness]] = {
    "sandbox": sandbox_harness,
    "wechat": wechat_harness,
    "local": local_harness,
}


def test_every_adapter_has_a_harness():
    assert set(registry.available()) <= set(HARNESSES), "add a contract harness for each new face adapter"


@pytest.fixture(params=sorted(HARNESSES))
def harness(request) -> Harness:
    return HARNESSES[request.param](request)


def leaks(harness: Harness, *texts: str) -> list[str]:
    """The identity values (and adapter-specific secrets) that appear in any of `texts`."""
    identity = harness.identity
    needles = [identity.name, identity.id_number, identity.id_number[-8:], *harness.secrets]
    if identity.openid:
        needles.append(identity.openid)
    return [needle for needle in needles for text in texts if needle in text]


class TestFaceAdapterContract:
    """Run over every registered adapter (the `harness` fixture is parametrized by adapter name)."""

    def start(self, harness: Harness, verification_id: str = "ver_0001") -> ProviderSession:
        return harness.adapter.start(verification_id=verification_id, identity=harness.identity,
                                     purpose="住房公积金提取:核验申请人身份")

    def test_declares_name_version_and_capabilities(self, harness):
        adapter = harness.adapter
        assert registry.get(adapter.name) is type(adapter)
        assert isinstance(adapter.version, str) and adapter.version
        assert isinstance(adapter.capabilities, Capabilities)
        caps = adapter.capabilities
        assert all(isinstance(value, bool) for value in dataclasses.astuple(caps))
        assert caps.satisfies() is True
        assert caps.satisfies(liveness=True) is caps.liveness

    def test_start_returns_a_session_with_a_payload_and_a_future_expiry(self, harness):
        session = self.start(harness)
        assert isinstance(session, ProviderSession)
        assert session.provider == harness.adapter.name and session.verification_id == "ver_0001"
        assert isinstance(session.provider_session_id, str) and session.provider_session_id
        assert isinstance(session.client_payload, dict) and session.client_payload
        assert session.expires_at.tzinfo is not None
        assert utcnow() < session.expires_at < utcnow() + timedelta(days=1)
        json.dumps(session.to_dict())  # storable as JSON

    def test_each_start_is_a_new_session(self, harness):
        assert self.start(harness, "ver_a").provider_session_id != self.start(harness, "ver_b").provider_session_id

    def test_a_pass_is_reported_as_an_outcome(self, harness):
        session = self.start(harness)
        result = harness.adapter.result(session=session, identity=harness.identity, evidence=harness.passing(session))
        assert isinstance(result, FaceResult)
        assert result.outcome is Outcome.PASS and result.passed
        assert (result.provider, result.adapter_version) == (harness.adapter.name, harness.adapter.version)

    def test_a_failure_is_reported_as_an_outcome(self, harness):
        session = self.start(harness)
        result = harness.adapter.result(session=session, identity=harness.identity, evidence=harness.failing(session))
        assert result.outcome is Outcome.NO_MATCH and not result.passed

    def test_scores_and_liveness_follow_the_capabilities(self, harness):
        caps = harness.adapter.capabilities
        session = self.start(harness)
        passed = harness.adapter.result(session=session, identity=harness.identity, evidence=harness.passing(session))
        if caps.returns_score:
            assert passed.similarity is not None and passed.threshold is not None
            assert passed.similarity >= passed.threshold
        else:
            assert passed.similarity is None and passed.threshold is None
        if not caps.liveness:
            assert passed.liveness is None  # never claims a liveness check it did not do

    def test_a_stored_session_can_be_completed(self, harness):
        session = ProviderSession.from_dict(json.loads(json.dumps(self.start(harness).to_dict())))
        result = harness.adapter.result(session=session, identity=harness.identity, evidence=harness.passing(session))
        assert result.passed

    def test_results_and_sessions_never_contain_the_identity(self, harness):
        session = self.start(harness)
        results = [
            harness.adapter.result(session=session, identity=harness.identity, evidence=harness.passing(session)),
            harness.adapter.result(session=session, identity=harness.identity, evidence=harness.failing(session)),
        ]
        texts = [repr(session), json.dumps(session.to_dict(), ensure_ascii=False), repr(harness.identity),
                 repr(harness.adapter), repr(vars(harness.adapter))]
        for result in results:
            texts += [repr(result), json.dumps(result.to_dict(), ensure_ascii=False)]
        assert leaks(harness, *texts) == []

    @pytest.mark.parametrize("evidence", NOT_AN_OBJECT, ids=repr)
    def test_evidence_that_is_not_an_object_is_invalid(self, harness, evidence):
        session = self.start(harness)
        with pytest.raises(InvalidEvidence) as raised:
            harness.adapter.result(session=session, identity=harness.identity, evidence=evidence)
        assert raised.value.reason == "bad_shape"

    def test_adapter_specific_bad_evidence_is_invalid(self, harness):
        session = self.start(harness)
        for evidence in harness.bad_evidence:
            with pytest.raises(InvalidEvidence) as raised:
                harness.adapter.result(session=session, identity=harness.identity, evidence=evidence)
            assert leaks(harness, str(raised.value)) == []

    def test_the_evidence_schema_states_what_the_adapter_takes(self, harness):
        # The API's OpenAPI document publishes this schema; clients build evidence from it.
        validator = jsonschema_rs.validator_for(harness.adapter.evidence_schema())
        session = self.start(harness)
        assert validator.is_valid(harness.passing(session)) and validator.is_valid(harness.failing(session))
        for evidence in NOT_AN_OBJECT[:-1]:  # (a non-string key cannot be written in JSON at all)
            assert not validator.is_valid(evidence), evidence
        shape_errors = []
        for evidence in harness.bad_evidence:
            try:
                harness.adapter.result(session=session, identity=harness.identity, evidence=evidence)
            except InvalidEvidence as refused:
                if refused.reason == "bad_shape":
                    shape_errors.append(evidence)
        assert not any(validator.is_valid(evidence) for evidence in shape_errors), shape_errors

    def test_an_expired_session_raises_session_expired(self, harness):
        session = self.start(harness)
        evidence = harness.passing(session)
        late = dataclasses.replace(session, expires_at=utcnow() - timedelta(seconds=1))
        with pytest.raises(SessionExpired):
            harness.adapter.result(session=late, identity=harness.identity, evidence=evidence)

    def test_a_session_of_another_adapter_is_refused(self, harness):
        session = dataclasses.replace(self.start(harness), provider="someone_else")
        with pytest.raises(ValueError):
            harness.adapter.result(session=session, identity=harness.identity, evidence=harness.passing(session))

    @pytest.mark.parametrize("verification_id", ["", "has space", "x" * 65, "斜杠/"])
    def test_a_bad_verification_id_is_refused(self, harness, verification_id):
        with pytest.raises(ValueError):
            self.start(harness, verification_id)
