"""The one error shape of API.md, for every kind of error a client can meet."""

import pytest

from tests.helpers import assert_error


def test_unknown_path_is_404_in_the_error_shape(client):
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_405_with_allow_header(client):
    response = client.delete("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/auth/wechat/login", data="{not json", content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_wrong_content_type_is_415(client):
    response = client.post("/api/v1/auth/wechat/login", data="code=dev-x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_missing_and_unknown_fields_are_422_per_field(client):
    body = assert_error(client.post("/api/v1/auth/wechat/login", json={"nope": 1}), 422, "validation_failed")
    assert set(body["errors"]["json"]) == {"code", "nope"}


def test_wrong_type_is_422(client):
    body = assert_error(client.post("/api/v1/auth/wechat/login", json={"code": 12}), 422, "validation_failed")
    assert "code" in body["errors"]["json"]


def test_oversized_body_is_413(client, app):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/api/v1/auth/wechat/login", json={"code": big})
    assert_error(response, 413, "payload_too_large")


def test_missing_token_is_401(client):
    assert_error(client.get("/api/v1/me"), 401, "unauthorized")


def test_garbage_token_is_401(client):
    assert_error(client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"}), 401, "unauthorized")


@pytest.fixture
def fresh_app(app, make_app):
    """A separate app on the test database, so a test may add routes or tighten limits before its first request."""
    return make_app(RATELIMIT_DEFAULT="2 per minute")


def test_unhandled_exception_is_500_without_internals(fresh_app):
    @fresh_app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: /etc/passwd")

    response = fresh_app.test_client().get("/boom")
    body = assert_error(response, 500, "internal_error")
    assert "internals" not in response.get_data(as_text=True)
    assert "errors" not in body


def test_rate_limit_is_429_with_retry_after(fresh_app):
    client = fresh_app.test_client()
    for _ in range(2):
        assert client.get("/api/v1/matters").status_code == 200
    response = client.get("/api/v1/matters")
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


def test_openapi_document_and_docs_are_served(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/matters" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_readyz_reports_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_database_is_down(make_app):
    broken = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    response = broken.test_client().get("/readyz")
    body = assert_error(response, 503, "not_ready")
    assert body["errors"]["checks"]["database"] == "failed"


def test_retry_after_only_on_answers_that_ask_to_retry(client):
    """Flask-Limiter's headers put Retry-After on every answer; a client honouring it would wait after a 200."""
    assert "Retry-After" not in client.get("/api/v1/matters").headers
    refused = client.post("/api/v1/auth/staff/login", json={"username": "nobody", "password": "wrong"})
    assert refused.status_code == 401 and "Retry-After" not in refused.headers
