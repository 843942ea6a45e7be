"""Biometric consent (PIPL art. 29: separate consent for sensitive personal information): a citizen agrees to
the current wording (FACE_CONSENT_VERSION + FACE_CONSENT_TEXT) before any face session; a receipt records what
they agreed to, and withdrawing it ends their open sessions. Granting and withdrawing are logged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Citizen
from app.errors import ValidationFailed
from app.extensions import db
from app.face.models import BiometricConsent, FaceSession
from app.face.services.log import log_event
from app.modelbase import utcnow


@dataclass(frozen=True)
class ConsentText:
    version: str
    text: str


@dataclass(frozen=True)
class ConsentState:
    """The wording citizens agree to now, and the citizen's receipt (the active one, else the latest)."""

    active: bool
    current: ConsentText
    receipt: BiometricConsent | None


class BiometricConsentRequired(ValidationFailed):
    error, message = "consent_required", "请先阅读并同意人脸识别授权"


def consent_text() -> tuple[str, str]:
    """(version, text) of the biometric consent citizens agree to now."""
    return str(_setting("FACE_CONSENT_VERSION")), str(_setting("FACE_CONSENT_TEXT"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def active_consent(citizen: Citizen) -> BiometricConsent | None:
    """The citizen's unwithdrawn consent to the current version and wording, if any."""
    version, text = consent_text()
    return db.session.scalars(
        sa.select(BiometricConsent)
        .where(BiometricConsent.citizen_id == citizen.id, BiometricConsent.withdrawn_at.is_(None),
               BiometricConsent.version == version, BiometricConsent.text_sha256 == _sha256(text))
        .order_by(BiometricConsent.granted_at.desc())
        .limit(1)
    ).first()


def grant_consent(citizen: Citizen, *, request_id: str) -> BiometricConsent:
    """The active consent, recording a new receipt (and its log record) if there is none."""
    consent = active_consent(citizen)
    if consent is not None:
        return consent
    version, text = consent_text()
    consent = BiometricConsent(citizen_id=citizen.id, version=version, text=text, text_sha256=_sha256(text),
                               granted_at=utcnow())
    db.session.add(consent)
    db.session.commit()
    log_event("consent_granted", citizen, request_id=request_id, reason=f"version:{version}")
    return consent


def consent_view(citizen: Citizen) -> ConsentState:
    """The current consent text and the citizen's latest receipt (active or withdrawn)."""
    version, text = consent_text()
    latest = db.session.scalars(
        sa.select(BiometricConsent).where(BiometricConsent.citizen_id == citizen.id)
        .order_by(BiometricConsent.granted_at.desc()).limit(1)
    ).first()
    active = active_consent(citizen)
    return ConsentState(active=active is not None, current=ConsentText(version, text), receipt=active or latest)


def withdraw_consent(citizen: Citizen, *, request_id: str) -> ConsentState:
    """Withdraw the citizen's biometric consent (idempotent): open sessions end, new ones need a new consent."""
    now = utcnow()
    withdrawn = db.session.execute(
        sa.update(BiometricConsent)
        .where(BiometricConsent.citizen_id == citizen.id, BiometricConsent.withdrawn_at.is_(None))
        .values(withdrawn_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    # A consent withdrawn mid-verification must not be completed on: the sessions it covered end now.
    db.session.execute(
        sa.update(FaceSession)
        .where(FaceSession.citizen_id == citizen.id, FaceSession.status == "created")
        .values(status="expired", reason="consent_withdrawn"),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    if withdrawn and citizen.id_number_hash:
        log_event("consent_withdrawn", citizen, request_id=request_id)
    return consent_view(citizen)


def _setting(name: str):
    return current_app.config[name]
