"""Face verification (刷脸办): biometric consent, sessions bound on the server, results consumed once.

The flow (API.md, face section; BRIEF §4 points 4, 8-10):

1. `start_session`: a citizen and an explicit biometric consent (recorded separately, with the versioned
   text, PIPL art. 29) asks for a session for a purpose, optionally a matter or an application. Purpose
   `real_name` verifies the account's *claimed* identity (app/face/services/real_name.py); every other purpose the
   identity already proven by face. The session is bound to (citizen, ID-number pseudonym, purpose,
   matter/application, provider) and lives FACE_SESSION_TTL_SECONDS (or the provider's expiry when sooner).
   Refused: below the level the purpose needs → 403 `assurance_required`; no consent → 422
   `consent_required`; a matter that does not offer face verification → 422 `face_not_offered`; a matter
   needing liveness detection the configured adapter lacks → 422 `face_capability_missing`; too many
   recent failures → 429 `rate_limited` with Retry-After.
2. `complete_session`: the server asks the provider for the verdict (the client's evidence is never taken as
   the result), then consumes the session with one conditional UPDATE (`… WHERE status = 'created'`), so of
   two concurrent completions exactly one wins and the other gets 409 `face_session_consumed`. A pass opens
   the face-verified window (`citizens.face_verified_until`, FACE_VERIFIED_WINDOW_SECONDS); a pass of a
   `real_name` session also binds the identity to the account (`identity.bind_proven_identity`: assurance
   `face`, moving it from any other account) and answers new tokens carrying that level. Under
   FACE_REQUIRE_LIVENESS a pass from an adapter without liveness detection does neither.
   Answers that consume nothing, so the citizen can simply try again: 409 `face_result_pending` (the phone
   has not finished), 503 `upstream_unavailable` (the provider could not answer: nothing was decided, and
   WeChat still holds the result), 422/413 for unusable evidence, 422 `face_reference_unavailable` (no usable
   registry photo for the `local` adapter: the citizen is pointed to the non-face path).
3. Failures (every `fail` decision except `provider_error`, which is no verdict on the citizen's face) are
   counted per citizen in the shared store (Redis in production) within FACE_FAILURE_WINDOW_SECONDS; at
   FACE_MAX_FAILURES new sessions and completions answer 429 until the window ends. A pass does not reset the
   count: a verified account probing with other faces is still limited.

Every step, refusal and fault lands in the `face-verifications` hash chain (FaceVerificationRecord) with the
threshold and failure limit in force, never a name, ID number, cert_hash, image, encoding or token. The
identity (name and ID number decrypted from the vault, the openid, the registry photo for `local`) exists only
in local variables for the provider call. Records are appended after the request's own writes are committed
(the chain writer has its own transaction) and before the window is opened, so nothing is granted unlogged.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from app.accounts.models import Citizen, assurance_rank
from app.accounts.services.login import issue_tokens
from app.applications.services import state
from app.catalogue import services as catalogue
from app.catalogue.models import Matter
from app.config import ConfigError
from app.connectors.services import data_access
from app.connectors.services.runtime import runtime
from app.errors import (
    AppError,
    AssuranceRequired,
    Conflict,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)
from app.extensions import db
from app.face.models import PURPOSES, FaceSession
from app.face.services import consent as biometric
from app.face.services import limits
from app.face.services import log as face_log
from app.face.services import real_name as assurance
from app.face.services.log import EXTENSION, log_event, verifier
from app.modelbase import is_issued_id, new_id, utcnow
from app.pii import vault

# From the submodules: under the test runner `tests/identity/` (a directory without __init__) can shadow the
# package's own __init__ for an editable install, while its submodules still resolve.
from identity import registry
from identity.errors import (
    ConfigurationError,
    IdentityDataMissing,
    IdentityMismatch,
    InvalidEvidence,
    ProviderUnavailable,
    ReferenceUnusable,
    ResultPending,
    SessionExpired,
)
from identity.interface import FaceResult, FaceVerifier, Identity, Outcome, ProviderSession
from shared_data.client import CallContext

log = logging.getLogger(__name__)

# Outcomes that are no verdict on the citizen's face and do not count toward the failure limit.
NOT_COUNTED = frozenset({Outcome.PROVIDER_ERROR.value})
# The population registry's reference photo, for adapters comparing against it (`local`).
REFERENCE_PHOTO_ELEMENT = "person.photo"
REFERENCE_PHOTO_PURPOSE = "刷脸核验:调取人口库证件照片作为比对底图(仅用于本次比对,不留存)"
REFERENCE_PHOTO_CONTEXT = "face-verification"


# ------------------------------------------------------------------------------------------------ errors


class FaceNotOffered(ValidationFailed):
    error, message = "face_not_offered", "该事项不支持刷脸办理,请按办事指南中的其他方式办理"


class FaceCapabilityMissing(ValidationFailed):
    error = "face_capability_missing"
    message = "当前的人脸核验方式不具备该事项要求的活体检测,请按办事指南中的非刷脸方式办理"


class FaceReferenceUnavailable(ValidationFailed):
    error = "face_reference_unavailable"
    message = "暂无可用于比对的证件照片,无法刷脸核验,请按办事指南中的非刷脸方式办理"


class FaceSessionConsumed(Conflict):
    error, message = "face_session_consumed", "该人脸核验已使用,请重新发起核验"


class FaceResultPending(Conflict):
    error, message = "face_result_pending", "尚未完成刷脸,请在手机上完成后重试"


class FaceSessionExpired(AppError):
    status_code, error, message = 410, "face_session_expired", "人脸核验已过期,请重新发起核验"


class FaceProviderUnavailable(UpstreamUnavailable):
    message = "人脸核验服务暂时不可用,请稍后再试"


class EvidenceTooLarge(AppError):
    status_code, error, message = 413, "payload_too_large", "上传的核验材料过大"


def _invalid_evidence(reason: str) -> AppError:
    if reason == "too_large":
        return EvidenceTooLarge(errors={"json": {"evidence": [reason]}})
    return ValidationFailed("核验材料无效,请重新拍摄或上传", errors={"json": {"evidence": [reason]}})


# ------------------------------------------------------------------------------------------------ wiring


POSITIVE_SETTINGS = ("FACE_SESSION_TTL_SECONDS", "FACE_VERIFIED_WINDOW_SECONDS", "FACE_MAX_FAILURES",
                     "FACE_FAILURE_WINDOW_SECONDS", "FACE_MAX_BODY_BYTES")
MAX_CONSENT_VERSION_LENGTH = 32  # biometric_consents.version


def check_settings(config) -> None:
    """Raise ConfigError naming each face setting that cannot work (in every mode, not only production)."""
    problems = [f"{name} must be a positive integer" for name in POSITIVE_SETTINGS
                if not isinstance(config.get(name), int) or isinstance(config.get(name), bool) or config[name] < 1]
    version = config.get("FACE_CONSENT_VERSION")
    if not isinstance(version, str) or not 1 <= len(version) <= MAX_CONSENT_VERSION_LENGTH:
        problems.append(f"FACE_CONSENT_VERSION must be 1-{MAX_CONSENT_VERSION_LENGTH} characters")
    if not str(config.get("FACE_CONSENT_TEXT") or "").strip():
        problems.append("FACE_CONSENT_TEXT must not be empty")
    if problems:
        raise ConfigError("face verification configuration refused: " + "; ".join(problems))


def init_app(app: Flask) -> None:
    """Build the configured face adapter (FACE_PROVIDER) once per app; a bad configuration stops start-up."""
    check_settings(app.config)
    try:
        adapter = registry.from_config(app.config)
    except ConfigurationError as exc:
        raise ConfigError(f"FACE_PROVIDER={app.config.get('FACE_PROVIDER')!r}: {exc}") from exc
    if not adapter.capabilities.liveness:
        # Said at every start: operators must know this deployment's face checks can be fooled by a photo.
        log.warning("face adapter %r does no liveness detection%s", adapter.name,
                    "" if app.config["FACE_REQUIRE_LIVENESS"] else "; FACE_REQUIRE_LIVENESS is off")
    app.extensions[EXTENSION] = adapter


def _config(name: str):
    return current_app.config[name]


# ------------------------------------------------------------------------------------------------ identity


def _identity(citizen: Citizen, adapter: FaceVerifier, *, application_id: str | None, request_id: str) -> Identity:
    """The citizen's identity for one provider call, decrypted into memory only (never stored or logged)."""
    pii = vault()
    id_number = pii.decrypt(citizen.id_number_encrypted)
    photo = None
    if adapter.capabilities.needs_reference_photo:
        photo = _reference_photo(citizen, id_number, application_id=application_id, request_id=request_id)
    return Identity(pii.decrypt(citizen.real_name_encrypted), id_number, openid=citizen.openid,
                    reference_photo=photo)


def _reference_photo(citizen: Citizen, id_number: str, *, application_id: str | None, request_id: str) -> bytes:
    """The registry photo from the population connector (the call is logged in the data-access chain).

    Raises the library's own exceptions so callers handle them like the adapter's: no record or no photo →
    IdentityDataMissing; the bureau failing, timing out or no active connector providing photos →
    ProviderUnavailable (it is not the citizen's fault and may pass).
    """
    context = CallContext(purpose=REFERENCE_PHOTO_PURPOSE, application_id=application_id or REFERENCE_PHOTO_CONTEXT,
                          acting_user=f"citizen:{citizen.id}", request_id=request_id)
    outcomes: list = []
    result = runtime().prefill(id_number, [REFERENCE_PHOTO_ELEMENT], context, on_call=outcomes.append)
    data_access.record_calls(outcomes, id_number=id_number, context=context, application_id=application_id)
    field = result.fields[REFERENCE_PHOTO_ELEMENT]
    if field.status in ("failed", "timeout", "skipped"):
        raise ProviderUnavailable(f"the population registry photo is {field.status}",
                                  reason=f"reference_{field.status}")
    if field.status != "ok" or not isinstance(field.value, str) or not field.value:
        raise IdentityDataMissing("reference_photo")
    try:
        return base64.b64decode(field.value, validate=True)
    except (binascii.Error, ValueError):
        raise ReferenceUnusable("the registry photo is not base64", reason="not_base64") from None


# ------------------------------------------------------------------------------------------------ start


def _binding(citizen: Citizen, *, purpose: str, matter_code: str | None,
             application_id: str | None) -> tuple[str | None, str | None, Matter | None]:
    """The matter and application a session binds to (the application's own matter when one is given)."""
    if application_id is not None:
        application = state.own_application(application_id, citizen)
        if matter_code is not None and matter_code != application.matter_code:
            raise ValidationFailed.field("matter_code", "事项编码与申请不一致")
        matter_code = application.matter_code
    matter = catalogue.get_matter(matter_code) if matter_code is not None else None
    if purpose == "apply" and matter is None:
        raise ValidationFailed.field("matter_code", "办理事项时请提供事项编码或申请编号")
    if matter is not None and not matter.face:
        raise FaceNotOffered()
    return matter_code, application_id, matter


def start_session(citizen: Citizen, *, purpose: str, biometric_consent: bool, matter_code: str | None = None,
                  application_id: str | None = None, consent_version: str | None = None,
                  request_id: str) -> dict:
    """Open a face session at the provider, bound to the citizen, purpose and matter (module docstring).

    `real_name` needs the account's identity claimed (or already bound: it may be proven again); every other
    purpose needs it bound by face.
    """
    needed = "claimed" if purpose == "real_name" else "face"
    if assurance_rank(citizen.assurance) < assurance_rank(needed) or not citizen.id_number_hash:
        raise AssuranceRequired(citizen.assurance, needed)
    if purpose == "real_name" and (matter_code is not None or application_id is not None):
        field = "matter_code" if matter_code is not None else "application_id"
        raise ValidationFailed.field(field, "实名认证核验不关联事项或申请")
    version, _text = biometric.consent_text()
    if biometric_consent is not True:
        raise biometric.BiometricConsentRequired(errors={"json": {"biometric_consent": ["须同意人脸识别授权"]}})
    if consent_version is not None and consent_version != version:
        raise biometric.BiometricConsentRequired("人脸识别授权书已更新,请阅读新版本后重新同意",
                                                 errors={"json": {"consent_version": [f"当前版本为 {version}"]}})
    matter_code, application_id, matter = _binding(citizen, purpose=purpose, matter_code=matter_code,
                                                   application_id=application_id)
    adapter = verifier()
    binding = {"purpose": purpose, "matter_code": matter_code, "application_id": application_id}
    if matter is not None and _config("FACE_REQUIRE_LIVENESS") and not adapter.capabilities.liveness:
        log_event("session_refused", citizen, request_id=request_id, reason="liveness_unavailable",
                  **binding)
        raise FaceCapabilityMissing(errors={"json": {"matter_code": ["liveness_unavailable"]}})
    limits.refuse_if_locked(citizen, request_id=request_id, **binding)
    consent = biometric.grant_consent(citizen, request_id=request_id)

    session = FaceSession(
        citizen_id=citizen.id, citizen_pseudonym=citizen.id_number_hash, consent_id=consent.id,
        provider=adapter.name, adapter_version=adapter.version, status="created",
        attempt=limits.attempt_number(citizen), **binding,
    )
    session.id = new_id()  # also our verification id at the provider (WeChat's out_seq_no)
    identity = None
    try:
        identity = _identity(citizen, adapter, application_id=application_id, request_id=request_id)
        provider_session = adapter.start(verification_id=session.id, identity=identity, purpose=PURPOSES[purpose])
    except (IdentityDataMissing, ReferenceUnusable) as exc:
        log_event("start_failed", citizen, request_id=request_id, session=session, reason=exc.reason)
        raise FaceReferenceUnavailable() from None
    except (ProviderUnavailable, ConfigurationError) as exc:
        _log_provider_fault(exc, "start")
        log_event("start_failed", citizen, request_id=request_id, session=session, reason=exc.reason)
        raise FaceProviderUnavailable() from None
    finally:
        identity = None  # noqa: F841 - the identity lives for the provider call only

    ttl = timedelta(seconds=int(_config("FACE_SESSION_TTL_SECONDS")))
    session.expires_at = min(provider_session.expires_at, utcnow() + ttl)
    session.provider_session = provider_session.to_dict()
    db.session.add(session)
    db.session.commit()
    log_event("session_started", citizen, request_id=request_id, session=session,
              failure_limit=int(_config("FACE_MAX_FAILURES")))
    return {
        "session_id": session.id,
        "provider": session.provider,
        "client_payload": provider_session.client_payload,
        "expires_at": session.expires_at,
        "liveness": adapter.capabilities.liveness,
        "consent_id": consent.id,
        **binding,
    }


def _log_provider_fault(exc: Exception, step: str) -> None:
    if isinstance(exc, ConfigurationError):
        # Every verification fails until an operator acts.
        log.error("face provider refused the configuration at %s (%s)", step, exc.reason)
    else:
        log.warning("face provider unavailable at %s (%s)", step, getattr(exc, "reason", "unknown"))


# ------------------------------------------------------------------------------------------------ complete


def _own_session(session_id: str, citizen: Citizen, *, request_id: str) -> FaceSession:
    """The caller's session; another citizen's is a 404 like a missing one (and is logged)."""
    session = None
    if is_issued_id(session_id):
        session = db.session.get(FaceSession, session_id)
    if session is None:
        raise NotFound("人脸核验不存在")
    if session.citizen_id != citizen.id:
        log_event("wrong_citizen", citizen, request_id=request_id, session=session,
                  reason="not_the_session_owner")
        raise NotFound("人脸核验不存在")
    return session


def _expire(session: FaceSession, citizen: Citizen, *, reason: str, request_id: str) -> AppError:
    """Mark the session expired (if still open), log it, and return the 410 to raise."""
    db.session.execute(
        sa.update(FaceSession).where(FaceSession.id == session.id, FaceSession.status == "created")
        .values(status="expired", reason=reason),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    log_event("expired", citizen, request_id=request_id, session=session, reason=reason)
    return FaceSessionExpired()


def _refuse_unusable(session: FaceSession, citizen: Citizen, *, request_id: str) -> None:
    """Raise the answer for a session that cannot be completed now: consumed, expired, or another provider's."""
    if session.status == "consumed":
        log_event("replay_rejected", citizen, request_id=request_id, session=session,
                  reason="already_consumed")
        raise FaceSessionConsumed()
    if session.status == "expired":
        raise _expire(session, citizen, reason=session.reason or "expired", request_id=request_id)
    if session.expires_at <= utcnow():
        raise _expire(session, citizen, reason="expired", request_id=request_id)
    if session.provider != verifier().name:
        # The deployment switched providers: the old provider's session cannot be asked any more.
        raise _expire(session, citizen, reason="provider_changed", request_id=request_id)


def check_body_size(session_id: str, citizen: Citizen, *, request_id: str) -> None:
    """The completion body is larger than FACE_MAX_BODY_BYTES: log it against the session and answer 413."""
    session = _own_session(session_id, citizen, request_id=request_id)
    log_event("invalid_evidence", citizen, request_id=request_id, session=session, reason="too_large")
    raise EvidenceTooLarge()


def complete_session(session_id: str, citizen: Citizen, *, evidence: Any, request_id: str) -> dict:
    """Fetch the provider's verdict, consume the session once, decide, log, open the window on a pass."""
    session = _own_session(session_id, citizen, request_id=request_id)
    _refuse_unusable(session, citizen, request_id=request_id)
    limits.refuse_if_locked(citizen, request_id=request_id, session=session)
    adapter = verifier()

    result: FaceResult | None = None
    reason: str
    identity = None
    try:
        if session.citizen_pseudonym != citizen.id_number_hash:
            raise IdentityMismatch("the citizen's bound identity changed since the session started")
        identity = _identity(citizen, adapter, application_id=session.application_id, request_id=request_id)
        result = adapter.result(session=ProviderSession.from_dict(session.provider_session), identity=identity,
                                evidence=evidence)
        reason = result.outcome.value
    except IdentityMismatch as exc:
        reason = exc.reason  # a failed decision, never a pass
    except InvalidEvidence as exc:
        log_event("invalid_evidence", citizen, request_id=request_id, session=session, reason=exc.reason)
        raise _invalid_evidence(exc.reason) from None
    except SessionExpired:
        raise _expire(session, citizen, reason="provider_expired", request_id=request_id) from None
    except ResultPending:
        log_event("result_pending", citizen, request_id=request_id, session=session, reason="result_pending")
        raise FaceResultPending() from None
    except (IdentityDataMissing, ReferenceUnusable) as exc:
        log_event("reference_unavailable", citizen, request_id=request_id, session=session,
                  reason=exc.reason)
        raise FaceReferenceUnavailable() from None
    except (ProviderUnavailable, ConfigurationError) as exc:
        _log_provider_fault(exc, "result")
        log_event("provider_unavailable", citizen, request_id=request_id, session=session,
                  reason=exc.reason)
        raise FaceProviderUnavailable() from None
    finally:
        identity = None  # noqa: F841 - the identity lives for the provider call only

    passed = result is not None and result.passed
    decision = "pass" if passed else "fail"
    now = utcnow()
    won = db.session.execute(
        sa.update(FaceSession)
        .where(FaceSession.id == session.id, FaceSession.status == "created")
        .values(status="consumed", consumed_at=now, decision=decision, reason=reason),
        execution_options={"synchronize_session": False},
    ).rowcount == 1
    db.session.commit()
    if not won:
        # Another completion consumed it (or a withdrawal ended it) while we asked the provider.
        db.session.refresh(session)
        _refuse_unusable(session, citizen, request_id=request_id)
        raise FaceSessionConsumed()  # pragma: no cover - _refuse_unusable raised for every other status

    failures = None
    if not passed and reason not in NOT_COUNTED:
        failures = limits.count_failure(citizen)
    opens_window = passed and (adapter.capabilities.liveness or not _config("FACE_REQUIRE_LIVENESS"))
    verified_until = now + timedelta(seconds=int(_config("FACE_VERIFIED_WINDOW_SECONDS"))) if opens_window else None
    if passed and not opens_window:
        reason = "pass_without_liveness"

    rows = []
    if result is not None:
        rows.append(face_log.record(
            "result", citizen, request_id=request_id, session=session, outcome=result.outcome.value,
            liveness=result.liveness, similarity=result.similarity, threshold=result.threshold,
            provider_code=result.provider_code, provider_request_id=result.provider_request_id,
            adapter_version=result.adapter_version,
        ))
    rows.append(face_log.record(
        "decision", citizen, request_id=request_id, session=session, decision=decision, reason=reason,
        outcome=result.outcome.value if result else None, threshold=result.threshold if result else None,
        failures=failures, failure_limit=int(_config("FACE_MAX_FAILURES")), verified_until=verified_until,
    ))
    face_log.append(*rows)  # logged before the window opens: nothing is granted unlogged

    bound = verified_until is not None and session.purpose == "real_name" and assurance.bind_proven_identity(
        citizen, session, request_id=request_id)
    if verified_until is not None:
        citizen.face_verified_until = verified_until
        db.session.commit()
    answer: dict[str, Any] = {"session_id": session.id, "decision": decision, "reason": reason,
                              "face_verified_until": verified_until, "assurance": citizen.assurance}
    if bound:
        answer["tokens"] = issue_tokens(citizen)
    if not passed:
        answer["non_face_path"] = _non_face_path(session.matter_code)
    return answer


def _non_face_path(matter_code: str | None) -> str | None:
    """The matter's way without face recognition, shown with a failure (2025 face-recognition rules)."""
    if matter_code is None:
        return None
    return db.session.scalar(sa.select(Matter.non_face_path).where(Matter.code == matter_code))
