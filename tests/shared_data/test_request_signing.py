"""HMAC request signing: the canonical string, verification, clock window, nonce replay, API keys."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from shared_data import signing
from shared_data.errors import SignatureInvalid

SECRET = "bureau-secret-0123456789"
BODY = b'{"id_number":"410105198503120013","elements":["person.name"]}'
NOW = 1_718_000_000


def signed(**overrides) -> dict[str, str]:
    headers = signing.signature_headers(SECRET, "POST", "/rkxx/v1/query", BODY, timestamp=NOW)
    headers.update(overrides)
    return headers


def verify(headers, *, body=BODY, now=NOW, path="/rkxx/v1/query", method="POST", nonces=None, secret=SECRET):
    signing.verify_signature(
        secret,
        method=method,
        path=path,
        headers=headers,
        body=body,
        now=now,
        nonces=nonces or signing.NonceCache(),
    )


def test_the_signature_is_hmac_sha256_over_the_documented_canonical_string():
    headers = signing.signature_headers(SECRET, "post", "/q", b"{}", timestamp=NOW, nonce="n" * 16)
    canonical = "\n".join(["POST", "/q", str(NOW), "n" * 16, hashlib.sha256(b"{}").hexdigest()])
    expected = hmac.new(SECRET.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert headers == {"X-Timestamp": str(NOW), "X-Nonce": "n" * 16, "X-Signature": expected}


def test_a_correct_signature_verifies():
    verify(signed())
    verify(signed(), now=NOW + 300)
    verify(signed(), now=NOW - 300)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": BODY.replace(b"person.name", b"person.photo")}, "bad_signature"),
        ({"path": "/rkxx/v1/other"}, "bad_signature"),
        ({"method": "PUT"}, "bad_signature"),
        ({"secret": "another-secret-0123456789"}, "bad_signature"),
        ({"now": NOW + 301}, "stale_timestamp"),
        ({"now": NOW - 301}, "stale_timestamp"),
    ],
)
def test_tampering_or_a_stale_timestamp_is_refused(change, reason):
    with pytest.raises(SignatureInvalid) as caught:
        verify(signed(), **change)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_signature"),
        ({"X-Timestamp": str(NOW), "X-Nonce": "n" * 16}, "missing_signature"),
        ({"X-Timestamp": "soon", "X-Nonce": "n" * 16, "X-Signature": "0" * 64}, "malformed_signature"),
        ({"X-Timestamp": str(NOW), "X-Nonce": "short", "X-Signature": "0" * 64}, "malformed_signature"),
        ({"X-Timestamp": str(NOW), "X-Nonce": "n" * 16, "X-Signature": "zz"}, "malformed_signature"),
    ],
)
def test_missing_or_malformed_signature_headers_are_refused(headers, reason):
    with pytest.raises(SignatureInvalid) as caught:
        verify(headers)
    assert caught.value.reason == reason


def test_a_nonce_is_accepted_once():
    nonces = signing.NonceCache()
    headers = signed()
    verify(headers, nonces=nonces)
    with pytest.raises(SignatureInvalid) as caught:
        verify(headers, nonces=nonces)
    assert caught.value.reason == "replayed_nonce"


def test_a_forged_request_does_not_use_up_the_nonce():
    nonces = signing.NonceCache()
    headers = signed()
    with pytest.raises(SignatureInvalid):
        verify(headers, nonces=nonces, body=b"forged")
    verify(headers, nonces=nonces)


def test_the_nonce_memory_forgets_after_its_ttl_and_stays_bounded():
    nonces = signing.NonceCache(ttl_seconds=600, max_entries=3)
    assert nonces.add("a" * 16, 0) and not nonces.add("a" * 16, 599)
    assert nonces.add("a" * 16, 601)  # expired: by then the request it came with is stale anyway
    for name in "bcd":
        assert nonces.add(name * 16, 700)
    assert len(nonces._seen) == 3


def test_api_keys_compare_in_constant_time_and_refuse_absence():
    signing.verify_api_key(SECRET, SECRET)
    for presented, reason in ((None, "missing_api_key"), ("", "missing_api_key"), ("wrong", "bad_api_key")):
        with pytest.raises(SignatureInvalid) as caught:
            signing.verify_api_key(SECRET, presented)
        assert caught.value.reason == reason
