"""Configuration, read from the environment when the app is created (not at import).

`APP_ENV` chooses the mode: `development` (the default: SQLite, in-memory state, the sandbox), `testing`
or `production`. Production refuses to start with a default or missing secret, the sandbox or the embedded
stores, and names each variable that is wrong. docs/configuration.md lists every variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

# Development-only values. Production checks that none of them is in use.
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEV_ENCRYPTION_KEY = "ZGV2LW9ubHktZGF0YS1rZXktMDEyMzQ1Njc4OWFiY2Q="  # Fernet key, base64 of 32 bytes
DEV_PSEUDONYM_KEY = "dev-only-pseudonym-key-0123456789abcdef"
DEV_WECHAT_SECRET = "sandbox-wechat-secret"

DEFAULT_INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


class ConfigError(RuntimeError):
    """The environment does not describe a configuration this mode may run with."""


def sqlalchemy_url(url: str) -> str:
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants the psycopg 3 driver named.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Settings:
    """Reads typed values from an environment mapping (os.environ by default), at call time."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        return value if value not in (None, "") else default

    def int(self, name: str, default: int) -> int:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc

    def float(self, name: str, default: float) -> float:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from exc

    def bool(self, name: str, default: bool) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        return raw.strip().lower() in {"1", "true", "yes", "on"}


def base_settings(env: Settings) -> dict:
    """Settings shared by every mode; each comes from the environment variable of its name."""
    instance_dir = Path(env.str("INSTANCE_DIR", str(DEFAULT_INSTANCE_DIR)))
    return {
        "INSTANCE_DIR": str(instance_dir),
        "SECRET_KEY": env.str("SECRET_KEY", DEV_SECRET),
        "JWT_SECRET_KEY": env.str("JWT_SECRET_KEY", DEV_SECRET),
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_SECONDS", 15 * 60)),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600)),
        "JWT_TOKEN_LOCATION": ["headers"],
        "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(
            env.str("DATABASE_URL", f"sqlite:///{instance_dir / 'zhangshangban.db'}")
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.str("REDIS_URL"),
        # Keys in Redis are prefixed so several deployments (or test runs) can share one server.
        "REDIS_KEY_PREFIX": env.str("REDIS_KEY_PREFIX", "zsb:"),
        # A body larger than this is answered 413 before it is read.
        "MAX_CONTENT_LENGTH": env.int("MAX_CONTENT_LENGTH", 1024 * 1024),
        # Personal data: Fernet keys (comma-separated, newest first, so older keys still decrypt while
        # records are re-encrypted) and the HMAC key for pseudonyms (lookups and logs never hold identity).
        "DATA_ENCRYPTION_KEYS": env.str("DATA_ENCRYPTION_KEYS", DEV_ENCRYPTION_KEY),
        "PSEUDONYM_KEY": env.str("PSEUDONYM_KEY", DEV_PSEUDONYM_KEY),
        "WECHAT_APPID": env.str("WECHAT_APPID", "wx-sandbox-appid"),
        "WECHAT_SECRET": env.str("WECHAT_SECRET", DEV_WECHAT_SECRET),
        # By default the WeChat API stand-in of the sandbox (`flask dev` starts it on SANDBOX_WECHAT_PORT).
        "WECHAT_API_BASE": env.str(
            "WECHAT_API_BASE",
            f"http://{env.str('SANDBOX_HOST', '127.0.0.1')}:{env.int('SANDBOX_WECHAT_PORT', 5001)}",
        ),
        "WECHAT_TIMEOUT_SECONDS": env.float("WECHAT_TIMEOUT_SECONDS", 5.0),
        # Staff login: this many failures for one username within the window lock it for the window.
        "STAFF_LOGIN_MAX_FAILURES": env.int("STAFF_LOGIN_MAX_FAILURES", 5),
        "STAFF_LOGIN_WINDOW_SECONDS": env.int("STAFF_LOGIN_WINDOW_SECONDS", 15 * 60),
        # Staff login attempts per client address, whatever the username (Flask-Limiter syntax): the
        # per-username lockout alone would let one address try a common password on every account.
        "STAFF_LOGIN_RATE_LIMIT": env.str("STAFF_LOGIN_RATE_LIMIT", "30 per minute"),
        "RATELIMIT_ENABLED": env.bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_DEFAULT": env.str("RATELIMIT_DEFAULT", "600 per minute"),
        # Behind a reverse proxy: how many proxies' X-Forwarded-For headers to trust (0 = none).
        "TRUSTED_PROXIES": env.int("TRUSTED_PROXIES", 0),
        # How long a process serves the catalogue from its cache before it re-checks the catalogue version.
        "CATALOGUE_CACHE_SECONDS": env.float("CATALOGUE_CACHE_SECONDS", 1.0),
        "SANDBOX_ENABLED": env.bool("SANDBOX_ENABLED", True),
        "SANDBOX_HOST": env.str("SANDBOX_HOST", "127.0.0.1"),
        "SANDBOX_WECHAT_PORT": env.int("SANDBOX_WECHAT_PORT", 5001),
        # flask-smorest / OpenAPI
        "API_TITLE": "掌上办 API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # The browser of whoever reads /docs loads Swagger UI from here; point it at an internal mirror
        # where clients have no internet access.
        "OPENAPI_SWAGGER_UI_URL": env.str("OPENAPI_SWAGGER_UI_URL", "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"),
    }


def development(env: Settings) -> dict:
    return base_settings(env)


def testing(env: Settings) -> dict:
    settings = base_settings(env)
    # Tests that exercise a limit tighten it themselves; the rest (fuzzing logs in often) must not trip it.
    settings.update(
        TESTING=True, RATELIMIT_DEFAULT="100000 per minute", STAFF_LOGIN_RATE_LIMIT="100000 per minute"
    )
    return settings


def production(env: Settings) -> dict:
    settings = base_settings(env)
    settings["SANDBOX_ENABLED"] = env.bool("SANDBOX_ENABLED", False)
    return settings


def validate_production(settings: Mapping) -> None:
    """Raise ConfigError naming every variable that makes `settings` unsafe for production."""
    problems = []
    defaults = {
        "SECRET_KEY": DEV_SECRET,
        "JWT_SECRET_KEY": DEV_SECRET,
        "PSEUDONYM_KEY": DEV_PSEUDONYM_KEY,
        "WECHAT_SECRET": DEV_WECHAT_SECRET,
    }
    for name, default in defaults.items():
        value = settings.get(name)
        if not value or value == default:
            problems.append(f"{name} is missing or still the development default")
        elif len(value) < 32 and name != "WECHAT_SECRET":
            problems.append(f"{name} must be at least 32 characters")
    keys = settings.get("DATA_ENCRYPTION_KEYS") or ""
    if not keys or DEV_ENCRYPTION_KEY in keys.split(","):
        problems.append("DATA_ENCRYPTION_KEYS is missing or contains the development key")
    if settings.get("SANDBOX_ENABLED"):
        problems.append("SANDBOX_ENABLED must be off in production")
    if str(settings.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
        problems.append("DATABASE_URL must name a PostgreSQL database in production")
    if not settings.get("REDIS_URL"):
        problems.append("REDIS_URL is required in production (revocations and rate limits are shared)")
    if str(settings.get("WECHAT_APPID", "")).startswith("wx-sandbox"):
        problems.append("WECHAT_APPID is missing or still the sandbox value")
    if problems:
        raise ConfigError("production configuration refused: " + "; ".join(problems))


MODES = {"development": development, "testing": testing, "production": production}


def load(mode: str | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Settings for `mode` (APP_ENV, development when unset) read from `environ` (os.environ)."""
    environ = os.environ if environ is None else environ
    mode = mode or environ.get("APP_ENV") or "development"
    try:
        build = MODES[mode]
    except KeyError:
        raise ConfigError(f"APP_ENV must be one of {sorted(MODES)}, got {mode!r}") from None
    settings = build(Settings(environ))
    settings["APP_ENV"] = mode
    return settings


def validate(settings: Mapping) -> None:
    """Refuse settings this mode may not run with (only production has rules)."""
    if settings.get("APP_ENV") == "production":
        validate_production(settings)
