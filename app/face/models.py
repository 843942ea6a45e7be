"""Face verification: sessions, biometric consent receipts and the chained verification log.

- `FaceSession`: one verification, bound at its start to (citizen, purpose, matter/application, provider) and
  consumed at most once (app/face/services/sessions.py flips `status` with a conditional UPDATE). It stores the
  provider session (`ProviderSession.to_dict()`: the provider's session id and the client payload) and
  nothing biometric: no image, no encoding, no name, no ID number, no cert_hash.
- `BiometricConsent`: the citizen's separate consent to face recognition (PIPL art. 29), with the exact
  versioned text agreed to; withdrawn, never deleted.
- `FaceVerificationRecord`: one record per event of a verification (session started, result, decision,
  rate-limited, replay rejected, …) in the `face-verifications` hash chain (app/ledger/chain.py): written only
  by `append`/`append_many`, never updated or deleted. The citizen appears as the keyed pseudonym of the ID
  number (the value of `citizens.id_number_hash`); there is no column for a name, an ID number, a cert_hash,
  an image, an encoding, a raw provider answer or a token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.ledger.models import ChainColumns, ChainedRecord
from app.modelbase import IdMixin, TimestampMixin, UTCDateTime

# Why a citizen verifies their face: a fixed vocabulary, so the log never holds free text a client typed
# (which could hold a name). The label is what a provider is told.
PURPOSES: dict[str, str] = {
    "real_name": "实名认证:核验本人身份并绑定账号",
    "apply": "办理政务服务事项时核验本人身份",
    "identity_check": "核验本人身份",
    "account_security": "账户安全操作前核验本人身份",
}
SESSION_STATUSES = ("created", "consumed", "expired")
DECISIONS = ("pass", "fail")
# Events of the verification log, in the order a verification may produce them.
EVENTS = (
    "claim_recorded",  # an account claimed an identity (name and ID number): a claim, not proof
    "claim_refused",  # … refused: the registry holds another name, did not answer, or too many claims
    "identity_bound",  # a `real_name` pass bound the claimed identity to the account (assurance face)
    "identity_rebound",  # … moving it from another account (换绑); `reason` names that account
    "identity_unbound",  # an account lost its face-bound identity to another account's pass (tokens revoked)
    "claim_dropped",  # an account's mere claim on an identity ended when another account bound it
    "consent_granted",  # a biometric consent receipt was recorded
    "consent_withdrawn",  # … withdrawn (open sessions end with it)
    "session_refused",  # a start refused before the provider was asked (capability the matter needs)
    "session_started",  # the provider opened a session
    "start_failed",  # the provider could not open one (unavailable, misconfigured, no reference photo)
    "rate_limited",  # a start or completion refused: too many recent failures
    "wrong_citizen",  # someone completed another citizen's session (answered 404)
    "replay_rejected",  # a completion of an already consumed session (409)
    "expired",  # a completion of an expired session (410)
    "invalid_evidence",  # the client's evidence was unusable (422/413); the session stays open
    "reference_unavailable",  # no usable registry photo at completion (422); the session stays open
    "result_pending",  # the provider has no result yet (409); the session stays open
    "provider_unavailable",  # the provider could not answer (503); the session stays open
    "result",  # the provider's verdict (outcome, liveness, similarity, threshold, its codes)
    "decision",  # our decision on it: pass or fail, with the reason and the failure count
)


class BiometricConsent(IdMixin, db.Model):
    """A citizen's consent to face recognition: which text (version and exact wording), when, withdrawn when."""

    __tablename__ = "biometric_consents"
    __table_args__ = (Index("ix_biometric_consents_citizen_id_granted_at", "citizen_id", "granted_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    version: Mapped[str] = mapped_column(String(32), nullable=False)
    # The wording shown, kept with the receipt: the configured text may change without a new version.
    text: Mapped[str] = mapped_column(Text, nullable=False)
    text_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


class FaceSession(IdMixin, TimestampMixin, db.Model):
    """One face verification: the binding it was started with, the provider session, and its consumption.

    The id is opaque and doubles as our verification id at the provider (WeChat's `out_seq_no`).
    """

    __tablename__ = "face_sessions"
    # Counting a citizen's recent sessions (the attempt number) reads (citizen_id, created_at).
    __table_args__ = (Index("ix_face_sessions_citizen_id_created_at", "citizen_id", "created_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    # The keyed pseudonym of the ID number bound when the session started: completion checks it again.
    citizen_pseudonym: Mapped[str] = mapped_column(String(64), nullable=False)
    consent_id: Mapped[str] = mapped_column(ForeignKey("biometric_consents.id"), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    matter_code: Mapped[str | None] = mapped_column(String(64))
    application_id: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    adapter_version: Mapped[str] = mapped_column(String(16), nullable=False)
    # ProviderSession.to_dict(): the provider's session id, the client payload, adapter-private state.
    provider_session: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="created")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Which of the citizen's sessions within the failure window this is (1 = the first).
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    decision: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(48))


class FaceVerificationRecord(IdMixin, ChainColumns, ChainedRecord, db.Model):
    """One event of a face verification, in the `face-verifications` hash chain (see the module docstring)."""

    __tablename__ = "face_verification_records"
    # The auditor's query: one citizen (pseudonym) within a time range, in record order.
    __table_args__ = (
        Index("ix_face_verification_records_pseudonym_time", "citizen_pseudonym", "recorded_at", "seq"),
    )
    CHAIN = "face-verifications"
    HASHED_FIELDS = (
        "id",
        "event",
        "session_id",
        "citizen_pseudonym",
        "actor",
        "purpose",
        "matter_code",
        "application_id",
        "provider",
        "adapter_version",
        "provider_session_id",
        "provider_request_id",
        "provider_code",
        "outcome",
        "decision",
        "reason",
        "liveness",
        "similarity",
        "threshold",
        "attempt",
        "failures",
        "failure_limit",
        "verified_until",
        "request_id",
    )

    event: Mapped[str] = mapped_column(String(24), nullable=False)
    session_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # Keyed hash of the ID number of the citizen the event is about (for wrong_citizen: the session's owner).
    citizen_pseudonym: Mapped[str] = mapped_column(String(64), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)  # `citizen:<id>` of the caller
    purpose: Mapped[str | None] = mapped_column(String(32))
    matter_code: Mapped[str | None] = mapped_column(String(64))
    application_id: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    adapter_version: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_session_id: Mapped[str | None] = mapped_column(String(256))
    provider_request_id: Mapped[str | None] = mapped_column(String(64))
    provider_code: Mapped[str | None] = mapped_column(String(32))  # e.g. WeChat's verify_ret
    outcome: Mapped[str | None] = mapped_column(String(24))  # identity.Outcome of a `result`
    decision: Mapped[str | None] = mapped_column(String(8))  # pass / fail, on `decision` records
    reason: Mapped[str | None] = mapped_column(String(48))
    liveness: Mapped[bool | None] = mapped_column(Boolean)
    similarity: Mapped[float | None] = mapped_column(Float)
    # The similarity threshold the provider applied (NIST SP 800-63B: kept with every decision).
    threshold: Mapped[float | None] = mapped_column(Float)
    attempt: Mapped[int | None] = mapped_column(Integer)
    # Failures counted in the citizen's window after this decision, and the limit then in force.
    failures: Mapped[int | None] = mapped_column(Integer)
    failure_limit: Mapped[int | None] = mapped_column(Integer)
    verified_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(128), nullable=False)
