"""Small helpers every test module may use (instead of a copy per module)."""

from __future__ import annotations

from pathlib import Path

# Where the tests are, their data, and the repository they test (for subprocesses run in it).
TESTS = Path(__file__).resolve().parent
FACES = TESTS / "data" / "faces"
REPOSITORY = TESTS.parent

# The one error shape of API.md.
ERROR_SHAPE = {"code", "status", "error", "message"}


def bearer(token: str) -> dict:
    """The headers that carry an access token."""
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, error: str) -> dict:
    """`response` is the error `error` with `status`, in the one error shape; its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert ERROR_SHAPE <= body.keys(), body
    assert body["code"] == status and body["error"] == error and body["message"]
    return body
