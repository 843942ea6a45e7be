"""Schemas of face verification: sessions, completion, biometric consent (the log's are the auditors', app/audit)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import Length, OneOf

from app.accounts.schemas import TokenPairSchema
from app.face.models import DECISIONS, PURPOSES
from app.web.jsontypes import JsonBoolean
from app.web.schemas import CODE_PATTERN, ENUM_FROM_CONFIG, FACE_EVIDENCE, FullMatch, RequestSchema, opaque_id

PROVIDER_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
PURPOSE_DOC = "; ".join(f"`{code}`: {label}" for code, label in PURPOSES.items())


def matter_code(**kwargs) -> fields.String:
    return fields.String(validate=FullMatch(CODE_PATTERN, error="事项编码格式无效"), **kwargs)


# ------------------------------------------------------------------------------------------------ sessions


class SessionCreateSchema(RequestSchema):
    purpose = fields.String(
        required=True, validate=OneOf(tuple(PURPOSES), error="未知的核验用途"),
        metadata={"description": f"why the citizen verifies (a code, so logs hold no free text): {PURPOSE_DOC}. "
                                 "`apply` needs `matter_code` or `application_id`"},
    )
    matter_code = matter_code(
        metadata={"description": "the matter the verification is for; it must offer 刷脸办 (`face`)"})
    application_id = opaque_id("an application of the caller; its matter is used")
    biometric_consent = JsonBoolean(
        required=True,
        metadata={"description": "must be true: the citizen agreed to the biometric consent text "
                                 "(GET /api/v1/me/biometric-consent), recorded separately from data consent; "
                                 "anything else is 422 `consent_required`",
                  "enum": [True]},
    )
    consent_version = fields.String(
        validate=Length(min=1, max=32),
        metadata={"description": "the version of the consent text the citizen was shown; when given and no "
                                 "longer current, 422 `consent_required`",
                  ENUM_FROM_CONFIG: "FACE_CONSENT_VERSION"},
    )


class SessionSchema(ma.Schema):
    session_id = fields.String(required=True)
    provider = fields.String(required=True, metadata={"description": "the configured adapter, e.g. wechat"})
    client_payload = fields.Dict(
        required=True,
        metadata={"description": "what the mini-program needs, per provider: wechat `{verifyId}` for "
                                 "wx.requestFacialVerify; sandbox/local: the evidence to send"},
    )
    expires_at = fields.AwareDateTime(required=True, metadata={"description": "complete before this time"})
    liveness = fields.Boolean(required=True, metadata={"description": "whether the provider detects liveness"})
    purpose = fields.String(required=True)
    matter_code = fields.String(required=True, allow_none=True)
    application_id = fields.String(required=True, allow_none=True)
    consent_id = fields.String(required=True, metadata={"description": "the biometric consent receipt used"})


class CompleteSchema(RequestSchema):
    evidence = fields.Raw(
        required=True,
        metadata={
            "type": "object",
            FACE_EVIDENCE: True,  # the document states the configured adapter's own schema here
            "description": "what the client has, per provider (never taken as the result; the server asks the "
                           "provider): sandbox `{\"sandbox\": \"pass\"|\"no_match\"|\"not_live\"|\"timeout\"}`; "
                           "wechat `{}` (after wx.requestFacialVerify); local `{\"images\": [<base64 JPEG/PNG>]}`",
        },
    )


class DecisionSchema(ma.Schema):
    session_id = fields.String(required=True)
    decision = fields.String(required=True, validate=OneOf(DECISIONS))
    reason = fields.String(
        required=True,
        metadata={"description": "`pass`; `pass_without_liveness` (matched, but the adapter detects no liveness "
                                 "and FACE_REQUIRE_LIVENESS is on: no verified window); or the failure: "
                                 "no_match, not_live, poor_quality, user_cancelled, timeout, provider_error, "
                                 "identity_mismatch"},
    )
    face_verified_until = fields.AwareDateTime(
        required=True, allow_none=True,
        metadata={"description": "the end of the face-verified window a pass opened (also on GET /me); "
                                 "null otherwise"},
    )
    non_face_path = fields.String(
        allow_none=True,
        metadata={"description": "on a failure: the matter's way without face recognition (null without a "
                                 "matter)"},
    )
    assurance = fields.String(
        metadata={"description": "the account's assurance level after this completion (`face` after a "
                                 "`real_name` pass)"},
    )
    tokens = fields.Nested(
        TokenPairSchema,
        metadata={"description": "after a `real_name` pass only: a new login session whose tokens carry "
                                 "`assurance: face`; use them from now on"},
    )


# ------------------------------------------------------------------------------------------------ consent


class ConsentTextSchema(ma.Schema):
    version = fields.String(required=True)
    text = fields.String(required=True)


class BiometricConsentReceiptSchema(ma.Schema):
    id = fields.String(required=True)
    version = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "the exact wording agreed to"})
    granted_at = fields.AwareDateTime(required=True)
    withdrawn_at = fields.AwareDateTime(required=True, allow_none=True)


class BiometricConsentSchema(ma.Schema):
    active = fields.Boolean(required=True, metadata={"description": "a consent to the current text is in force"})
    current = fields.Nested(ConsentTextSchema, required=True,
                            metadata={"description": "the text to show before asking for consent"})
    receipt = fields.Nested(BiometricConsentReceiptSchema, required=True, allow_none=True,
                            metadata={"description": "the active receipt, else the latest one; null if none"})
