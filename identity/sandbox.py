"""The sandbox face adapter: deterministic magic evidence for development and tests, no network, no images.

`complete` evidence is exactly `{"sandbox": <word>}` (API.md, development sandbox):

| word       | outcome     | liveness | similarity / threshold |
|------------|-------------|----------|------------------------|
| `pass`     | pass        | True     | 0.95 / 0.8             |
| `no_match` | no_match    | True     | 0.2 / 0.8              |
| `not_live` | not_live    | False    | — / 0.8                |
| `timeout`  | timeout     | —        | — / 0.8                |

`timeout` simulates the citizen not finishing the face check in time (WeChat's "识别过程超时"): a verdict
the API answers as `decision: fail, reason: timeout`, not an unreachable provider (that would be a 503 and
leave the session open, which is not what a developer pressing "timeout" wants to see). Any other shape or
word raises InvalidEvidence.

It never looks at the identity beyond requiring one: it exists so the whole flow (consent, binding,
consumption, rate limits, the log) can run without a provider. Production mode must refuse it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Self

from identity.errors import ConfigurationError, InvalidEvidence
from identity.interface import (
    Capabilities,
    FaceResult,
    FaceVerifier,
    Identity,
    Outcome,
    ProviderSession,
    check_verification_id,
    utcnow,
)

MAGIC: dict[str, tuple[Outcome, bool | None, float | None]] = {
    # word → (outcome, liveness, similarity)
    "pass": (Outcome.PASS, True, 0.95),
    "no_match": (Outcome.NO_MATCH, True, 0.2),
    "not_live": (Outcome.NOT_LIVE, False, None),
    "timeout": (Outcome.TIMEOUT, None, None),
}
THRESHOLD = 0.8
DEFAULT_TTL_SECONDS = 300.0


class SandboxFaceAdapter(FaceVerifier):
    """Answers the outcome named by the magic evidence; see the module docstring."""

    name = "sandbox"
    version = "1.0"
    # It simulates a provider with liveness and scores, so the app's handling of both is exercised.
    capabilities = Capabilities(authoritative_source=False, liveness=True, returns_score=True)

    def __init__(self, *, session_ttl_seconds: float = DEFAULT_TTL_SECONDS):
        if not session_ttl_seconds > 0:
            raise ConfigurationError("session_ttl_seconds must be positive", reason="bad_settings")
        self.session_ttl = timedelta(seconds=session_ttl_seconds)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Reads FACE_SESSION_TTL_SECONDS (default 300)."""
        try:
            ttl = float(config.get("FACE_SESSION_TTL_SECONDS") or DEFAULT_TTL_SECONDS)
        except (TypeError, ValueError):
            raise ConfigurationError("FACE_SESSION_TTL_SECONDS must be a number", reason="bad_settings") from None
        return cls(session_ttl_seconds=ttl)

    def start(self, *, verification_id: str, identity: Identity, purpose: str) -> ProviderSession:
        """A session that tells the developer which evidence words exist."""
        check_verification_id(verification_id)
        if not isinstance(identity, Identity):
            raise TypeError("identity must be an Identity")
        return ProviderSession(
            provider=self.name,
            verification_id=verification_id,
            provider_session_id=f"sbx-{secrets.token_hex(12)}",
            client_payload={"evidence": {"sandbox": sorted(MAGIC)}},
            expires_at=utcnow() + self.session_ttl,
        )

    def evidence_schema(self) -> dict[str, Any]:
        return {"type": "object", "required": ["sandbox"], "additionalProperties": False,
                "properties": {"sandbox": {"type": "string", "enum": sorted(MAGIC)}}}

    def result(self, *, session: ProviderSession, identity: Identity, evidence: Mapping[str, Any]) -> FaceResult:
        """The outcome for the magic word in `evidence`."""
        self._check_session(session)
        evidence = self._check_evidence_mapping(evidence)
        if set(evidence) != {"sandbox"}:
            raise InvalidEvidence('sandbox evidence is exactly {"sandbox": <word>}', reason="bad_shape")
        word = evidence["sandbox"]
        if not isinstance(word, str) or word not in MAGIC:
            raise InvalidEvidence(f"sandbox evidence word must be one of {', '.join(sorted(MAGIC))}",
                                  reason="unknown_magic")
        outcome, liveness, similarity = MAGIC[word]
        return self._result(
            outcome,
            liveness=liveness,
            similarity=similarity,
            threshold=THRESHOLD,
            provider_code=word,
            provider_request_id=f"sbx-req-{secrets.token_hex(8)}",
        )
