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


# Settings production accepts (each test that refuses one changes one of them).
PRODUCTION_SETTINGS = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "JWT_SECRET_KEY": "j" * 40,
    "PSEUDONYM_KEY": "p" * 40,
    "DATA_ENCRYPTION_KEYS": "Zm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc4OWFiY2RlZmc=",
    "WECHAT_APPID": "wx0123456789abcdef",
    "WECHAT_SECRET": "a-real-secret",
    "WECHAT_API_BASE": "https://api.weixin.qq.com",
    "WECHAT_SUBSCRIBE_TEMPLATE_ID": "Hb7kT0yPZ2Gx9cQe1mA4rLdNw3sVfU8oJ6iK5nBtYpE",
    "WECHAT_ACCOUNT_TEMPLATE_ID": "q3Wm8ZtR1yUe5xKc0LvBn7sDa2FgHj4PoI9uTrEwQsY",
    "DATABASE_URL": "postgresql://app@db.internal/zsb",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SANDBOX_ENABLED": False,
    "AUDIT_SIGNING_KEY": "PRIVATE+KEY+zsb.example.gov.cn/audit+25937502+AasVnBcNBSupxmHivmPrRLooLhbNML/rP2pgIAt59EAY",
    "AUDIT_LOG_ORIGIN": "zsb.example.gov.cn/audit",
}
