"""Typed exceptions of the face-verification library; the app maps each to its error shape.

What is an exception and what is an outcome
-------------------------------------------

A verification that ran and produced a verdict about the citizen's face is a `FaceResult` outcome, even a
failed one (`no_match`, `not_live`, `poor_quality` — e.g. a probe photo with no face in it —,
`user_cancelled`, `timeout`, `provider_error`): the citizen may try again and the attempt counts.

An exception means there is no verdict to record about the citizen:

- `InvalidEvidence`: the client sent evidence of the wrong shape, not base64, not a JPEG/PNG by content, too
  large, with too many pixels, or an unknown magic word → 422 `validation_failed` (413 `payload_too_large`
  when `reason == "too_large"`).
- `SessionExpired`: the provider session is past its expiry (ours or the provider's) → 410
  `face_session_expired`.
- `ResultPending`: the provider has no result yet (the citizen has not finished on the phone) → 409; the
  session stays usable and is not consumed.
- `IdentityMismatch`: the identity presented with the result is not the one the session was started for
  (cert_hash, openid or serial number differ at the provider) → a failed decision, logged; never a pass.
- `IdentityDataMissing`: the adapter needs data the identity lacks (an openid, a reference photo) → 422;
  offer the non-face path.
- `ReferenceUnusable`: the reference photo from the registry cannot be used (not an image, no face) → 422;
  offer the non-face path.
- `ProviderUnavailable`: the provider is down, busy, slow, answers 5xx or garbage → 503
  `upstream_unavailable`; the session is not consumed.
- `ConfigurationError`: unknown adapter name, missing optional packages, bad settings, credentials refused
  → refuse to start / 503.

Messages never contain a name, an ID number, a cert_hash, an access token, an image or an encoding: they
reach logs. Each exception carries a stable snake_case `reason` for the API and the verification log.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "FaceVerificationError",
    "IdentityDataMissing",
    "IdentityMismatch",
    "InvalidEvidence",
    "ProviderUnavailable",
    "ReferenceUnusable",
    "ResultPending",
    "SessionExpired",
]


class FaceVerificationError(Exception):
    """Base class of this library's errors; `reason` is a stable snake_case word."""

    default_reason = "face_verification_error"

    def __init__(self, message: str = "", *, reason: str | None = None):
        self.reason = reason or self.default_reason
        super().__init__(message or self.reason)


class ProviderUnavailable(FaceVerificationError):
    """The provider could not be reached or gave no usable answer (busy, 5xx, timeout, garbage)."""

    default_reason = "provider_unavailable"


class ConfigurationError(FaceVerificationError):
    """The deployment is misconfigured: unknown adapter, missing optional packages, bad or refused settings."""

    default_reason = "configuration_error"


class SessionExpired(FaceVerificationError):
    """The provider session is past its expiry; start a new one."""

    default_reason = "session_expired"


class ResultPending(FaceVerificationError):
    """The provider has no result for the session yet; the session stays usable."""

    default_reason = "result_pending"


class IdentityMismatch(FaceVerificationError):
    """The identity given with the result is not the one the provider session was started for."""

    default_reason = "identity_mismatch"


class IdentityDataMissing(FaceVerificationError, ValueError):
    """The adapter needs a piece of the identity that is absent; `field` names it (never its value)."""

    default_reason = "identity_data_missing"

    def __init__(self, field: str):
        self.field = field
        super().__init__(f"this face adapter needs the identity's {field}", reason=f"{field}_missing")


class ReferenceUnusable(FaceVerificationError, ValueError):
    """The reference photo cannot be compared against (`reason`: not_an_image, too_large, no_face, …)."""

    default_reason = "reference_unusable"


class InvalidEvidence(FaceVerificationError, ValueError):
    """The client's evidence is unusable as sent (`reason`: bad_shape, not_base64, too_large, not_an_image, …)."""

    default_reason = "invalid_evidence"
