"""The verified-token memory (app/web/tokens.py): a repeat is cheaper, never weaker.

Each test uses a token the process has verified already (its first request), then shows that what must
refuse it still does: expiry, revocation, another signature, another app's key.
"""

from __future__ import annotations

import time
from datetime import timedelta

from tests.helpers import assert_error, bearer


def test_a_remembered_token_still_expires(app, make_app):
    short = make_app(JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=1))
    client = short.test_client()
    login = client.post("/api/v1/auth/wechat/login", json={"code": "dev-cache-expiry"})
    assert login.status_code == 200, login.json
    token = login.json["access_token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200  # from memory
    time.sleep(1.2)
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "unauthorized")


def test_a_remembered_token_is_refused_at_once_after_logout(client, login_citizen):
    token = login_citizen("cache-logout")["access_token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code in (200, 204)
    refused = assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "unauthorized")
    assert "注销" in refused["message"]


def test_another_signature_on_the_same_claims_is_not_remembered(client, login_citizen):
    token = login_citizen("cache-signature")["access_token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    header, claims, signature = token.split(".")
    forged = ".".join((header, claims, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")))
    assert_error(client.get("/api/v1/me", headers=bearer(forged)), 401, "unauthorized")


def test_an_app_with_another_key_does_not_take_anothers_remembered_token(client, login_citizen, make_app):
    token = login_citizen("cache-keys")["access_token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    other = make_app(JWT_SECRET_KEY="another-deployment-secret-0123456789abcdef")
    assert_error(other.test_client().get("/api/v1/me", headers=bearer(token)), 401, "unauthorized")
