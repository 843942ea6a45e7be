"""Face-verification configuration: the adapter is built at start-up; production refuses the sandbox."""

import pytest
from test_config import production_env

from app import create_app
from app.config import ConfigError


def test_development_and_tests_verify_with_the_sandbox(app):
    assert app.config["FACE_PROVIDER"] == "sandbox"
    assert app.extensions["face_verifier"].name == "sandbox"


def test_production_defaults_to_wechat(monkeypatch):
    production_env(monkeypatch)
    monkeypatch.delenv("FACE_PROVIDER", raising=False)
    app = create_app({"APP_ENV": "production"})
    assert app.extensions["face_verifier"].name == "wechat"


def test_production_refuses_the_sandbox_face_provider(monkeypatch):
    production_env(monkeypatch)
    monkeypatch.setenv("FACE_PROVIDER", "sandbox")
    with pytest.raises(ConfigError, match="FACE_PROVIDER"):
        create_app({"APP_ENV": "production"})


def test_an_unknown_provider_stops_start_up_naming_the_variable():
    with pytest.raises(ConfigError, match="FACE_PROVIDER='acme'.*unknown face adapter"):
        create_app({"APP_ENV": "testing", "DATABASE_URL": "sqlite://", "FACE_PROVIDER": "acme"})


@pytest.mark.parametrize(("setting", "value"), [
    ("FACE_MAX_FAILURES", 0),
    ("FACE_VERIFIED_WINDOW_SECONDS", -1),
    ("FACE_SESSION_TTL_SECONDS", "300"),
    ("FACE_CONSENT_VERSION", "v" * 33),
    ("FACE_CONSENT_TEXT", " "),
])
def test_unusable_face_settings_are_refused_by_name(setting, value):
    with pytest.raises(ConfigError, match=setting):
        create_app({"APP_ENV": "testing", "DATABASE_URL": "sqlite://", setting: value})


def test_face_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACE_MAX_FAILURES", "10")
    monkeypatch.setenv("FACE_VERIFIED_WINDOW_SECONDS", "120")
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": "sqlite://"})
    assert (app.config["FACE_MAX_FAILURES"], app.config["FACE_VERIFIED_WINDOW_SECONDS"]) == (10, 120)
