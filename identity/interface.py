"""The face-verification interface every adapter implements, and the values that cross it.

The flow, as the app drives it (API.md, face section):

1. `adapter.start(verification_id=…, identity=…, purpose=…)` → `ProviderSession`: the app stores the session
   (`to_dict()`), binds it to (citizen, purpose, matter/application) and hands `client_payload` to the
   mini-program (for WeChat the `verifyId` of `wx.requestFacialVerify`).
2. The citizen does the face check on the phone (or uploads probe photos, for the `local` adapter).
3. `adapter.result(session=…, identity=…, evidence=…)` → `FaceResult`: the server fetches or computes the
   result itself. `evidence` is whatever the client sent; adapters that ask the provider (wechat) only check
   its shape and never trust a client-reported outcome.

Identity data (name, ID number, openid, reference photo) is passed in for one call and held in memory only:
adapters keep none of it, and none of it appears in a `ProviderSession`, a `FaceResult`, an exception
message or a log line. `similarity` and `threshold` are provider-neutral: the check passes when
`similarity >= threshold` (each adapter documents how it maps its own score onto that).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

from identity.errors import InvalidEvidence, SessionExpired

__all__ = [
    "Capabilities",
    "FaceResult",
    "FaceVerifier",
    "Identity",
    "Outcome",
    "ProviderSession",
    "check_verification_id",
    "utcnow",
]

# Our verification id doubles as the provider's serial number (WeChat's `out_seq_no`): short, URL-safe.
VERIFICATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (all times crossing this interface are)."""
    return datetime.now(UTC)


def check_verification_id(verification_id: str) -> str:
    """Return `verification_id` if it is 1-64 of `A-Z a-z 0-9 _ -`, else raise ValueError."""
    if not isinstance(verification_id, str) or not VERIFICATION_ID.fullmatch(verification_id):
        raise ValueError("verification_id must be 1-64 characters of A-Z a-z 0-9 _ -")
    return verification_id


class Outcome(StrEnum):
    """What a verification concluded about the citizen's face; only PASS lets anything through."""

    PASS = "pass"
    NO_MATCH = "no_match"
    NOT_LIVE = "not_live"
    POOR_QUALITY = "poor_quality"
    USER_CANCELLED = "user_cancelled"
    TIMEOUT = "timeout"
    PROVIDER_ERROR = "provider_error"


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can vouch for, so the app can refuse a matter the adapter cannot satisfy."""

    authoritative_source: bool  # compares against an authoritative source (the public-security photo)
    liveness: bool  # detects presentation attacks (a photo of a photo, a screen, a mask)
    returns_score: bool  # reports a similarity and the threshold it used
    needs_openid: bool = False  # `Identity.openid` is required
    needs_reference_photo: bool = False  # `Identity.reference_photo` is required (the app fetches it)

    def satisfies(self, *, liveness: bool = False, authoritative_source: bool = False) -> bool:
        """Whether a matter with these requirements can be satisfied by this adapter."""
        return (self.liveness or not liveness) and (self.authoritative_source or not authoritative_source)


@dataclass(frozen=True)
class Identity:
    """The citizen being verified, for one call; every field is personal data and hidden from repr."""

    name: str = field(repr=False)
    id_number: str = field(repr=False)
    openid: str | None = field(default=None, repr=False)
    reference_photo: bytes | None = field(default=None, repr=False)  # JPEG/PNG bytes from the registry

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.strip()):
            raise ValueError("identity name must be a non-empty string")
        if not (isinstance(self.id_number, str) and self.id_number.strip()):
            raise ValueError("identity id_number must be a non-empty string")

    def __repr__(self) -> str:
        return "Identity(<redacted>)"

    def __reduce__(self):
        # Pickling would copy identity data into caches, queues or crash dumps: refuse.
        raise TypeError("Identity holds personal data and must not be pickled")


@dataclass(frozen=True)
class ProviderSession:
    """A started provider session: what the app stores and hands back to `result()`.

    Holds no identity data. `state` is adapter-private (JSON-safe) data the adapter needs back.
    """

    provider: str
    verification_id: str
    provider_session_id: str
    client_payload: dict[str, Any]
    expires_at: datetime
    state: dict[str, Any] = field(default_factory=dict)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the session is past its expiry."""
        return (now or utcnow()) >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for storage (times as ISO 8601 UTC)."""
        return {
            "provider": self.provider,
            "verification_id": self.verification_id,
            "provider_session_id": self.provider_session_id,
            "client_payload": dict(self.client_payload),
            "expires_at": self.expires_at.astimezone(UTC).isoformat(),
            "state": dict(self.state),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderSession:
        """The session stored by `to_dict`."""
        expires_at = datetime.fromisoformat(data["expires_at"])
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must carry a timezone")
        return cls(
            provider=data["provider"],
            verification_id=data["verification_id"],
            provider_session_id=data["provider_session_id"],
            client_payload=dict(data.get("client_payload") or {}),
            expires_at=expires_at,
            state=dict(data.get("state") or {}),
        )


@dataclass(frozen=True)
class FaceResult:
    """A provider-neutral verdict: never a name, ID number, cert_hash, image or encoding."""

    outcome: Outcome
    provider: str
    adapter_version: str
    liveness: bool | None = None  # None: the adapter does not check, or the check did not get that far
    similarity: float | None = None  # pass requires similarity >= threshold (see the module docstring)
    threshold: float | None = None
    provider_code: str | None = None  # the provider's own result code, e.g. WeChat's verify_ret
    provider_request_id: str | None = None

    @property
    def passed(self) -> bool:
        """Whether this result lets the citizen through."""
        return self.outcome is Outcome.PASS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for the verification log)."""
        return {
            "outcome": self.outcome.value,
            "provider": self.provider,
            "adapter_version": self.adapter_version,
            "liveness": self.liveness,
            "similarity": self.similarity,
            "threshold": self.threshold,
            "provider_code": self.provider_code,
            "provider_request_id": self.provider_request_id,
        }


class FaceVerifier(ABC):
    """A face-verification adapter: one provider (or local method) behind the provider-neutral interface.

    Subclasses set `name` (the configuration name), `version` and `capabilities`, take keyword-only
    settings in `__init__` and read plain mappings in `from_config`. Instances are shared by the threads of
    a process and keep no per-verification state.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise ConfigurationError if optional packages the adapter needs are missing (default: none)."""
        return None

    @classmethod
    @abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """An adapter for the settings in `config` (a plain mapping, e.g. the app's config dict)."""

    @abstractmethod
    def start(self, *, verification_id: str, identity: Identity, purpose: str) -> ProviderSession:
        """Open a provider session for our `verification_id` and this citizen, for `purpose`.

        Raises IdentityDataMissing, ProviderUnavailable, ConfigurationError.
        """

    @abstractmethod
    def result(self, *, session: ProviderSession, identity: Identity, evidence: Mapping[str, Any]) -> FaceResult:
        """Fetch (or compute) the verdict for `session`; the client's `evidence` is never taken as the result.

        Raises InvalidEvidence, SessionExpired, ResultPending, IdentityMismatch, IdentityDataMissing,
        ReferenceUnusable, ProviderUnavailable, ConfigurationError.
        """

    def evidence_schema(self) -> dict[str, Any]:
        """The JSON Schema of the `evidence` a client sends to complete a session with this adapter.

        The API's OpenAPI document states it for the configured adapter, so clients (and the fuzzer) know
        exactly what is accepted. The default says only "an object"; adapters state their own shape.
        """
        return {"type": "object"}

    def close(self) -> None:
        """Release connections and other resources (default: nothing to release)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version}>"

    # Helpers for subclasses ------------------------------------------------------------------------------

    def _check_session(self, session: ProviderSession) -> None:
        """Raise if `session` belongs to another adapter or is past its expiry."""
        if not isinstance(session, ProviderSession) or session.provider != self.name:
            raise ValueError(f"not a session of the {self.name!r} face adapter")
        if session.expired():
            raise SessionExpired(f"the {self.name} face session has expired")

    @staticmethod
    def _check_evidence_mapping(evidence: Any) -> Mapping[str, Any]:
        """Return `evidence` if it is a JSON object (a Mapping with string keys), else raise InvalidEvidence."""
        if not isinstance(evidence, Mapping) or not all(isinstance(key, str) for key in evidence):
            raise InvalidEvidence("evidence must be a JSON object", reason="bad_shape")
        return evidence

    def _result(self, outcome: Outcome, **fields: Any) -> FaceResult:
        """A FaceResult stamped with this adapter's name and version."""
        return FaceResult(outcome=outcome, provider=self.name, adapter_version=self.version, **fields)
