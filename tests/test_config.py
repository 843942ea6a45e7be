"""Production refuses unsafe settings, naming each variable; development runs on defaults."""

import pytest

from app import create_app
from app.config import ConfigError
from tests.helpers import PRODUCTION_SETTINGS

SAFE = PRODUCTION_SETTINGS


def production_env(monkeypatch, **changes):
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "PSEUDONYM_KEY", "DATA_ENCRYPTION_KEYS", "WECHAT_APPID",
                 "WECHAT_SECRET", "WECHAT_API_BASE", "WECHAT_SUBSCRIBE_TEMPLATE_ID", "WECHAT_ACCOUNT_TEMPLATE_ID",
                 "DATABASE_URL", "REDIS_URL", "AUDIT_SIGNING_KEY", "AUDIT_LOG_ORIGIN", "AUDIT_WITNESS",
                 "SANDBOX_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    settings = {**SAFE, **changes}
    for name, value in settings.items():
        if value is not None and name != "SANDBOX_ENABLED":
            monkeypatch.setenv(name, str(value))
    if settings["SANDBOX_ENABLED"]:
        monkeypatch.setenv("SANDBOX_ENABLED", "1")


def test_production_starts_with_safe_settings(monkeypatch):
    production_env(monkeypatch)
    app = create_app({"APP_ENV": "production"})
    assert app.config["SANDBOX_ENABLED"] is False


@pytest.mark.parametrize(
    "change, variable",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY"),
        ({"PSEUDONYM_KEY": None}, "PSEUDONYM_KEY"),
        ({"DATA_ENCRYPTION_KEYS": None}, "DATA_ENCRYPTION_KEYS"),
        ({"WECHAT_SECRET": None}, "WECHAT_SECRET"),
        ({"WECHAT_APPID": None}, "WECHAT_APPID"),
        ({"WECHAT_API_BASE": None}, "WECHAT_API_BASE"),
        ({"WECHAT_SUBSCRIBE_TEMPLATE_ID": None}, "WECHAT_SUBSCRIBE_TEMPLATE_ID"),
        ({"WECHAT_ACCOUNT_TEMPLATE_ID": None}, "WECHAT_ACCOUNT_TEMPLATE_ID"),
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"SANDBOX_ENABLED": True}, "SANDBOX_ENABLED"),
        ({"PASSWORD_HASH_PROFILE": "CHEAPEST"}, "PASSWORD_HASH_PROFILE"),
        ({"AUDIT_SIGNING_KEY": None}, "AUDIT_SIGNING_KEY"),
        ({"AUDIT_LOG_ORIGIN": None}, "AUDIT_LOG_ORIGIN"),
        ({"AUDIT_WITNESS": "none"}, "AUDIT_WITNESS"),
    ],
)
def test_production_refuses_unsafe_settings_and_names_the_variable(monkeypatch, change, variable):
    production_env(monkeypatch, **change)
    with pytest.raises(ConfigError, match=variable):
        create_app({"APP_ENV": "production"})


def test_unknown_mode_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV"):
        create_app({"APP_ENV": "staging"})


def test_malformed_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "lots")
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        create_app({"APP_ENV": "testing"})
