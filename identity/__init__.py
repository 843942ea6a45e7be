"""Face verification: the adapter interface, its registry and adapters (no Flask, no app imports).

    from identity import Identity, registry

    verifier = registry.from_config(app_config)          # FACE_PROVIDER = sandbox | wechat | local | …
    session = verifier.start(verification_id=vid, identity=Identity(name, id_number, openid=openid),
                             purpose="住房公积金提取")
    ...                                                   # the mini-program does the face check
    result = verifier.result(session=session, identity=identity, evidence=client_evidence)
    result.outcome, result.passed                         # Outcome.PASS, NO_MATCH, NOT_LIVE, …

`identity.interface` defines the types, `identity.errors` the exceptions (and which failures are outcomes
rather than exceptions), `identity.registry` the selection by name, and `identity.sandbox`,
`identity.wechat`, `identity.local` the built-in adapters.
"""

from identity import registry
from identity.errors import (
    ConfigurationError,
    FaceVerificationError,
    IdentityDataMissing,
    IdentityMismatch,
    InvalidEvidence,
    ProviderUnavailable,
    ReferenceUnusable,
    ResultPending,
    SessionExpired,
)
from identity.interface import Capabilities, FaceResult, FaceVerifier, Identity, Outcome, ProviderSession

__all__ = [
    "Capabilities",
    "ConfigurationError",
    "FaceResult",
    "FaceVerificationError",
    "FaceVerifier",
    "Identity",
    "IdentityDataMissing",
    "IdentityMismatch",
    "InvalidEvidence",
    "Outcome",
    "ProviderSession",
    "ProviderUnavailable",
    "ReferenceUnusable",
    "ResultPending",
    "SessionExpired",
    "registry",
]
