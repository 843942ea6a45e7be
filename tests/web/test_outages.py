"""Our own dependencies going away: a clear 503 the client may retry, never a 500; /readyz says which.

The servers here are addresses nothing listens on (a database, a Redis), so every connection is refused at
once; tests/soak/ restarts real ones mid-traffic.
"""

from __future__ import annotations

from tests.helpers import assert_error, bearer

NOBODY = "127.0.0.1:9"  # the discard port: nothing listens on it here


def test_a_database_that_refuses_connections_answers_503(make_app):
    down = make_app(DATABASE_URL=f"postgresql://postgres@{NOBODY}/zsb")
    client = down.test_client()
    refused = client.get("/api/v1/matters/GJJ-GG-002")
    body = assert_error(refused, 503, "service_unavailable")
    assert refused.headers["Retry-After"] == "5" and "稍后" in body["message"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["errors"]["checks"]["database"] == "failed"


def test_a_redis_that_refuses_connections_refuses_tokens_with_503(app, client, login_citizen, make_app):
    """The revocation list cannot be read: the token is not taken on trust (fail closed), and says why."""
    token = login_citizen("outage-redis")["access_token"]
    down = make_app(REDIS_URL=f"redis://{NOBODY}/0")
    refused = down.test_client().get("/api/v1/me", headers=bearer(token))
    assert_error(refused, 503, "service_unavailable")
    ready = down.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.json["errors"]["checks"]["state"] == "failed"
    # Anonymous reads need no Redis (rate limits are not counted meanwhile): the catalogue still answers.
    assert down.test_client().get("/api/v1/matters/GJJ-GG-002").status_code == 200
