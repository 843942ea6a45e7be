"""How the service commits a record: its hash-chain link, and its leaf in the Merkle tree.

These definitions are shared, byte for byte, by the service that writes records and by the offline verifier
that checks them, so a record hashes the same everywhere:

- `canonical_json`: sorted keys, no whitespace, UTF-8, datetimes as UTC ISO 8601 with microseconds and `Z`
  (one spelling per instant; naive datetimes are taken as local time, as `astimezone` does).
- `record_hash`: the existing hash chain, SHA-256(previous record's hex hash ‖ "\\n" ‖ canonical JSON).
- `leaf_data`: a *salted* commitment SHA-256(domain ‖ salt ‖ canonical JSON). The tree, its proofs and its
  checkpoints are published; the records (personal data) are not. A random per-record salt keeps anyone
  holding a leaf hash from confirming a guess of the record (ID number, date, outcome) by hashing it; the
  domain prefix keeps these hashes apart from any other SHA-256 use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from tlog import merkle

__all__ = ["LEAF_DOMAIN", "canonical_json", "iso_utc", "leaf_data", "record_hash", "record_leaf_hash"]

LEAF_DOMAIN = b"zsb-log-leaf/v1\x00"


def iso_utc(value: datetime) -> str:
    """UTC ISO 8601 with microseconds and `Z`: one spelling per instant, so hashes are reproducible."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: Any) -> str:
    if isinstance(value, datetime):  # before date: a datetime is a date
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable in an audit record: {type(value).__name__}")


def canonical_json(payload: Mapping) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes a record's hashes are taken over."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default).encode("utf-8")


def record_hash(prev_hash_hex: str, payload: Mapping) -> str:
    """The record's link in its hash chain (hex SHA-256 over the previous hash and the canonical JSON)."""
    return hashlib.sha256(prev_hash_hex.encode("ascii") + b"\n" + canonical_json(payload)).hexdigest()


def leaf_data(salt: bytes, payload: Mapping) -> bytes:
    """The salted commitment to a record that the tree's leaf holds (never the record itself)."""
    return hashlib.sha256(LEAF_DOMAIN + bytes(salt) + canonical_json(payload)).digest()


def record_leaf_hash(salt: bytes, payload: Mapping) -> bytes:
    """The record's leaf hash in the tree: RFC 9162's leaf hash of `leaf_data`."""
    return merkle.hash_leaf(leaf_data(salt, payload))


# Byte-level forms of the definitions above, for a caller that hashes many records (the service's verifier):
# the canonical JSON is most of the cost of hashing a record, so it is encoded once per record and both hashes
# are taken over the same bytes.

#: canonical_json's encoder, built once (json.dumps builds a new one on every call with these options).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def canonical_encoder() -> Callable[[Mapping], str]:
    """canonical_json as a reusable function: `encode(payload).encode("utf-8")` is `canonical_json(payload)`.

    On CPython it calls the C encoder that `_CANONICAL.encode` would build on every call, built once (without
    the check for circular references, which a record read from columns cannot have).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _CANONICAL.encode
    encode = make(None, _default, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    return lambda payload: "".join(encode(payload, 0))


def record_hash_of(prev_hash_hex: str, body: bytes) -> str:
    """`record_hash` from the record's canonical JSON bytes (`body`)."""
    return hashlib.sha256(prev_hash_hex.encode("ascii") + b"\n" + body).hexdigest()


def leaf_data_of(salt: bytes, body: bytes) -> bytes:
    """`leaf_data` from the record's canonical JSON bytes (`body`)."""
    return hashlib.sha256(LEAF_DOMAIN + bytes(salt) + body).digest()


def record_leaf_hash_of(salt: bytes, body: bytes) -> bytes:
    """`record_leaf_hash` from the record's canonical JSON bytes: `merkle.hash_leaf(leaf_data_of(salt, body))`,
    written out in one expression (it runs once per record verified)."""
    return hashlib.sha256(b"\x00" + hashlib.sha256(LEAF_DOMAIN + salt + body).digest()).digest()
