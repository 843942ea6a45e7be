"""Request authentication of the connector wire protocol: HMAC-SHA256 signatures, or a plain API key.

Used on both sides: `client.ConnectorClient` signs, bureau services (the sandbox bureaus, and any bureau
that wants a reference implementation) verify.

HMAC: the caller sends `X-Timestamp` (Unix seconds, decimal), `X-Nonce` (16–64 characters of
`A-Z a-z 0-9 _ -`, fresh per request) and `X-Signature` = lowercase hex HMAC-SHA256(secret, canonical string),
where the canonical string is five lines joined by `\\n`:

    METHOD                  upper case, e.g. POST
    path                    the URL path as sent, without the query string, e.g. /rkk/v1/query
    timestamp               exactly the X-Timestamp value
    nonce                   exactly the X-Nonce value
    sha256(body)            lowercase hex SHA-256 of the raw body bytes (of b"" when there is no body)

The verifier accepts a timestamp within ±`window_seconds` (300) of its clock and each nonce once: it remembers
nonces for twice the window, so a captured request cannot be replayed inside the window and is stale outside
it. The nonce memory here (`NonceCache`) is per process, which is right for one bureau process (the sandbox);
a bureau running several processes needs a shared store for it.

API key: `X-Api-Key: <secret>`, compared in constant time. It proves less (a leaked request leaks the key and
allows replays), so HMAC is the default.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping

from shared_data.errors import SignatureInvalid

TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
SIGNATURE_HEADER = "X-Signature"
API_KEY_HEADER = "X-Api-Key"

DEFAULT_WINDOW_SECONDS = 300
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
TIMESTAMP = re.compile(r"\d{1,12}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")


def body_digest(body: bytes) -> str:
    """Lowercase hex SHA-256 of the raw body."""
    return hashlib.sha256(body).hexdigest()


def canonical_string(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The string that is signed: method, path, timestamp, nonce and body digest, one per line."""
    return "\n".join((method.upper(), path, timestamp, nonce, body_digest(body)))


def sign(secret: str, canonical: str) -> str:
    """Lowercase hex HMAC-SHA256 of `canonical` under `secret`."""
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """A fresh random nonce (32 hex characters)."""
    return secrets.token_hex(16)


def signature_headers(
    secret: str, method: str, path: str, body: bytes, *, timestamp: int, nonce: str | None = None
) -> dict[str, str]:
    """The X-Timestamp, X-Nonce and X-Signature headers for one request."""
    ts = str(int(timestamp))
    nonce = nonce or new_nonce()
    return {
        TIMESTAMP_HEADER: ts,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, canonical_string(method, path, ts, nonce, body)),
    }


class NonceCache:
    """The nonces seen in the last `ttl_seconds`, in process memory; thread-safe."""

    def __init__(self, *, ttl_seconds: float = 2 * DEFAULT_WINDOW_SECONDS, max_entries: int = 100_000):
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()  # nonce → expiry, oldest first
        self._lock = threading.Lock()

    def add(self, nonce: str, now: float) -> bool:
        """Remember `nonce`; False if it was already seen within the TTL (a replay)."""
        with self._lock:
            while self._seen:
                oldest, expiry = next(iter(self._seen.items()))
                if expiry > now and len(self._seen) < self.max_entries:
                    break
                # Expired, or the memory is full: forgetting the oldest early only weakens replay
                # protection for requests that are about to become stale anyway.
                del self._seen[oldest]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now + self.ttl_seconds
            return True


def verify_signature(
    secret: str,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    nonces: NonceCache,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> None:
    """Check an HMAC-signed request; SignatureInvalid(reason) if it fails, the nonce is remembered if not."""
    timestamp = headers.get(TIMESTAMP_HEADER) or ""
    nonce = headers.get(NONCE_HEADER) or ""
    signature = (headers.get(SIGNATURE_HEADER) or "").lower()
    if not (timestamp and nonce and signature):
        raise SignatureInvalid("missing_signature")
    if not (TIMESTAMP.fullmatch(timestamp) and NONCE.fullmatch(nonce) and SIGNATURE.fullmatch(signature)):
        raise SignatureInvalid("malformed_signature")
    if abs(now - int(timestamp)) > window_seconds:
        raise SignatureInvalid("stale_timestamp")
    expected = sign(secret, canonical_string(method, path, timestamp, nonce, body))
    if not hmac.compare_digest(expected, signature):
        raise SignatureInvalid("bad_signature")
    # Only a correctly signed request may take a place in the nonce memory.
    if not nonces.add(nonce, now):
        raise SignatureInvalid("replayed_nonce")


def verify_api_key(secret: str, presented: str | None) -> None:
    """Check an X-Api-Key value in constant time; SignatureInvalid if it is missing or wrong."""
    if not presented:
        raise SignatureInvalid("missing_api_key")
    if not hmac.compare_digest(secret.encode(), presented.encode()):
        raise SignatureInvalid("bad_api_key")
