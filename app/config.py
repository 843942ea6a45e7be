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
# The sandbox's checkpoint signing key (C2SP signed-note signer key, Ed25519). Public, so worthless: production
# refuses it. `flask audit generate-key NAME` makes a real one.
DEV_AUDIT_SIGNING_KEY = "PRIVATE+KEY+sandbox.zsb.invalid/audit+ba5fb9de+ARwsNnKWVDzLCYqCct1+EzP7mOmzkclcBbcifC2u74IH"
DEV_WECHAT_SECRET = "sandbox-wechat-secret"

# The biometric consent text of FACE_CONSENT_VERSION's default (what the mini-program shows before a face check).
DEFAULT_FACE_CONSENT_TEXT = (
    "为核验您的本人身份,本服务将采集您的人脸图像,并与公安机关等权威来源的证件照片进行比对。"
    "人脸信息属于敏感个人信息:仅用于本次身份核验,核验结束后不保存人脸图像或特征;"
    "核验记录只保存核验结果,不含姓名、身份证号码或人脸信息。"
    "您可以随时撤回本同意;不同意刷脸的,可通过窗口办理或预约帮办代办等方式办理,不影响您办理业务。"
)

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


def _list(raw: str | None) -> list[str] | None:
    """A comma-separated variable as a list (None when unset, so a default can be derived later)."""
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


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
        # --- background work (app/jobs): the queue's storage, the workers, the scheduler ---
        # sqlite (a file: one host, no server; development), redis (REDIS_URL: any number of hosts), or auto:
        # redis when REDIS_URL is set. Production requires redis.
        "JOBS_BACKEND": env.str("JOBS_BACKEND", "auto"),
        "JOBS_SQLITE_PATH": env.str("JOBS_SQLITE_PATH", str(instance_dir / "jobs.sqlite3")),
        # Worker threads per `flask jobs worker` process (more processes for more).
        "JOBS_WORKERS": env.int("JOBS_WORKERS", 4),
        # On SIGTERM a worker lets running tasks finish for at most this long, then interrupts them.
        "JOBS_SHUTDOWN_SECONDS": env.float("JOBS_SHUTDOWN_SECONDS", 30.0),
        # --- reminders (app/applications/services/reminders.py): materials brought later (容缺) ---
        # A citizen is reminded this many days before such a material is due (and once when it is overdue);
        # the pass runs this often.
        "REMINDER_DAYS_BEFORE": env.int("REMINDER_DAYS_BEFORE", 3),
        "REMINDER_RUN_SECONDS": env.float("REMINDER_RUN_SECONDS", 3600.0),
        # A supplement request (补正) still open this many days after it was made is reminded, once per request.
        "SUPPLEMENT_REMINDER_DAYS": env.int("SUPPLEMENT_REMINDER_DAYS", 5),
        # The first-time pass rate (一次性通过率) the statistics measure against: the seed city's target.
        "FIRST_TIME_PASS_TARGET": env.float("FIRST_TIME_PASS_TARGET", 0.95),
        # --- 免申即享 (app/applications/services/proactive.py): how often the opted-in citizens are checked ---
        # Daily: each pass asks the bureaus about every opted-in citizen, so more often costs them calls.
        "PROACTIVE_RUN_SECONDS": env.float("PROACTIVE_RUN_SECONDS", 86400.0),
        # --- retention (app/retention): how long each kind of personal data is kept, in days ---
        # Uploads of decided applications; the encrypted values (prefill, form, submission, address) of
        # decided applications; drafts nobody changed; face sessions after they expired.
        "RETENTION_UPLOAD_DAYS": env.int("RETENTION_UPLOAD_DAYS", 180),
        "RETENTION_SNAPSHOT_DAYS": env.int("RETENTION_SNAPSHOT_DAYS", 3 * 365),
        "RETENTION_DRAFT_DAYS": env.int("RETENTION_DRAFT_DAYS", 30),
        "RETENTION_FACE_SESSION_DAYS": env.int("RETENTION_FACE_SESSION_DAYS", 7),
        # How often the retention pass runs.
        "RETENTION_RUN_SECONDS": env.float("RETENTION_RUN_SECONDS", 3600.0),
        # How often the scheduler looks for periodic tasks that are due: no period may be shorter.
        "JOBS_TICK_SECONDS": env.float("JOBS_TICK_SECONDS", 10.0),
        # The hot path's cached reads (app/web/readcache.py): entries per process, and the longest any is served
        # (a bound on a change made by hand in the database; changes made by the service reach every process at
        # once through the version stamps). 0 turns the cache off.
        "READ_CACHE_ENTRIES": env.int("READ_CACHE_ENTRIES", 20_000),
        "READ_CACHE_SECONDS": env.float("READ_CACHE_SECONDS", 60.0),
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
        # --- subscription messages (app/notifications/services.py, the outbox worker) ---
        # The 办理进度 template chosen in the mini-program's console; its keys are thing1 事项名称, phrase2 办理
        # 状态, time3 更新时间, character_string4 申请编号, thing5 备注 (the sandbox stand-in knows this one).
        "WECHAT_SUBSCRIBE_TEMPLATE_ID": env.str("WECHAT_SUBSCRIBE_TEMPLATE_ID", "sandbox-status-template"),
        # The 账号安全提醒 template: thing1 变更事项, time2 变更时间, thing3 温馨提示. Sent to an account whose
        # face-bound identity moved to another account (换绑, app/face/services/real_name.py).
        "WECHAT_ACCOUNT_TEMPLATE_ID": env.str("WECHAT_ACCOUNT_TEMPLATE_ID", "sandbox-account-template"),
        # The mini-program page a message opens; {application_id} is filled in. Must exist in the released
        # mini-program (WeChat answers 41030 otherwise).
        "NOTIFY_APPLICATION_PAGE": env.str("NOTIFY_APPLICATION_PAGE", "pages/applications/detail?id={application_id}"),
        # Which build of the mini-program a message opens: developer, trial or formal (production's default).
        "NOTIFY_MINIPROGRAM_STATE": env.str("NOTIFY_MINIPROGRAM_STATE", "developer"),
        # Each message is queued for sending when its transaction commits; the sweep (a periodic task) queues
        # this often whatever is due and has no task, at most NOTIFY_BATCH_SIZE per run.
        "NOTIFY_SWEEP_SECONDS": env.float("NOTIFY_SWEEP_SECONDS", 60.0),
        "NOTIFY_BATCH_SIZE": env.int("NOTIFY_BATCH_SIZE", 500),
        # A message WeChat could not take (busy, down, quota) is tried again after base, 2×base, 4×base, …
        # seconds, at most this many attempts in all (6 with 30 s: over about 15 minutes), then `failed`.
        "NOTIFY_MAX_ATTEMPTS": env.int("NOTIFY_MAX_ATTEMPTS", 6),
        "NOTIFY_RETRY_BASE_SECONDS": env.float("NOTIFY_RETRY_BASE_SECONDS", 30.0),
        # Staff login: this many failures for one username within the window lock it for the window.
        "STAFF_LOGIN_MAX_FAILURES": env.int("STAFF_LOGIN_MAX_FAILURES", 5),
        "STAFF_LOGIN_WINDOW_SECONDS": env.int("STAFF_LOGIN_WINDOW_SECONDS", 15 * 60),
        # Staff login attempts per client address, whatever the username (Flask-Limiter syntax): the
        # per-username lockout alone would let one address try a common password on every account.
        "STAFF_LOGIN_RATE_LIMIT": env.str("STAFF_LOGIN_RATE_LIMIT", "30 per minute"),
        # --- the staff console (app/console/): a server-side session in the state store ---
        # It ends after this long without a request, and this long after login whatever happens.
        "CONSOLE_IDLE_SECONDS": env.int("CONSOLE_IDLE_SECONDS", 30 * 60),
        "CONSOLE_ABSOLUTE_SECONDS": env.int("CONSOLE_ABSOLUTE_SECONDS", 8 * 3600),
        # Flask's cookie carries only the session's opaque id (and the CSRF token's seed): JavaScript never
        # reads it, other sites' forms and requests never send it, and only over HTTPS in production.
        "SESSION_COOKIE_NAME": "zsb_console",
        "SESSION_COOKIE_PATH": "/console",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.bool("SESSION_COOKIE_SECURE", False),
        # CSRF is checked by the console's blueprint only (app/extensions.py says why), its token lives as
        # long as the session (whose timeouts bound it), not an hour of its own.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_ENABLED": env.bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_DEFAULT": env.str("RATELIMIT_DEFAULT", "600 per minute"),
        # While Redis is away the limits are not counted (logged), rather than every request failing: a counter
        # store's outage must not become the whole service's. What must fail closed (a revoked token) does,
        # with 503, in app/accounts/guard.py.
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Behind a reverse proxy: how many proxies' X-Forwarded-For headers to trust (0 = none).
        "TRUSTED_PROXIES": env.int("TRUSTED_PROXIES", 0),
        # How long a process serves the catalogue from its cache before it re-checks the catalogue version.
        "CATALOGUE_CACHE_SECONDS": env.float("CATALOGUE_CACHE_SECONDS", 1.0),
        "SANDBOX_ENABLED": env.bool("SANDBOX_ENABLED", True),
        # argon2-cffi's parameter profile for staff passwords (app/accounts/services/staff.py).
        "PASSWORD_HASH_PROFILE": env.str("PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY"),
        "SANDBOX_HOST": env.str("SANDBOX_HOST", "127.0.0.1"),
        "SANDBOX_WECHAT_PORT": env.int("SANDBOX_WECHAT_PORT", 5001),
        # The six sandbox bureaus listen on consecutive ports from here (population, social insurance,
        # housing fund, property, business, marriage: the order of app.sandbox.bureaus.KINDS).
        "SANDBOX_BUREAU_BASE_PORT": env.int("SANDBOX_BUREAU_BASE_PORT", 5010),
        # kind → base URL of each sandbox bureau; None derives them from SANDBOX_HOST and the base port.
        # Only set in code (the tests start the bureaus on free ports and pass their URLs).
        "SANDBOX_BUREAU_URLS": None,
        # --- shared-data connectors and prefill (app/connectors/services/runtime.py) ---
        # One overall deadline for a prefill: connectors that have not answered by then are `timeout`.
        "PREFILL_DEADLINE_SECONDS": env.float("PREFILL_DEADLINE_SECONDS", 3.0),
        # Threads calling connectors, shared by all prefills of a process; also each connector's connection
        # pool size. A hanging connector holds a thread up to its own timeout, so leave headroom.
        "PREFILL_MAX_WORKERS": env.int("PREFILL_MAX_WORKERS", 32),
        # Plain-http / private-address origins (`scheme://host:port`, comma-separated) connectors may use.
        # Unset: the sandbox bureaus' own origins while the sandbox is on, none otherwise (production).
        "CONNECTOR_ALLOWED_INSECURE_ORIGINS": _list(env.str("CONNECTOR_ALLOWED_INSECURE_ORIGINS")),
        # Per-connector circuit breaker: this many consecutive failures open it; after the reset time one
        # trial call may go out. State is per process (each process learns on its own that a bureau is down).
        "CONNECTOR_CIRCUIT_FAILURE_THRESHOLD": env.int("CONNECTOR_CIRCUIT_FAILURE_THRESHOLD", 5),
        "CONNECTOR_CIRCUIT_RESET_SECONDS": env.float("CONNECTOR_CIRCUIT_RESET_SECONDS", 30.0),
        # How long a process uses its connector registry before re-reading which connectors are active
        # (its own registry changes apply at once; other processes' within this time).
        "CONNECTOR_REGISTRY_REFRESH_SECONDS": env.float("CONNECTOR_REGISTRY_REFRESH_SECONDS", 1.0),
        # Retries (with backoff) of the on-demand health check when the bureau times out or answers 502-504.
        "CONNECTOR_HEALTH_RETRIES": env.int("CONNECTOR_HEALTH_RETRIES", 2),
        # The DNS resolver the URL guard uses (socket.getaddrinfo's signature); None = the system's. Only set
        # in code: tests pass a resolver so that no real DNS is consulted.
        "CONNECTOR_RESOLVER": None,
        # Real-name binding against the population registry: this many mismatches per citizen within the
        # window answer 429, so an account cannot probe which name goes with which ID number.
        "REAL_NAME_MAX_MISMATCHES": env.int("REAL_NAME_MAX_MISMATCHES", 5),
        "REAL_NAME_MISMATCH_WINDOW_SECONDS": env.int("REAL_NAME_MISMATCH_WINDOW_SECONDS", 24 * 3600),
        # Claims (POST /me/real-name) within the window, per account and per ID number, before 429: a claim
        # proves nothing, so an account gains nothing by many, and an ID number is not claimed by a crowd.
        "REAL_NAME_CLAIM_WINDOW_SECONDS": env.int("REAL_NAME_CLAIM_WINDOW_SECONDS", 3600),
        "REAL_NAME_MAX_CLAIMS_PER_ACCOUNT": env.int("REAL_NAME_MAX_CLAIMS_PER_ACCOUNT", 5),
        "REAL_NAME_MAX_CLAIMS_PER_ID_NUMBER": env.int("REAL_NAME_MAX_CLAIMS_PER_ID_NUMBER", 10),
        # --- the transparency log over the audit chains (app/ledger/checkpoints.py, docs/operations.md) ---
        # Checkpoints are signed with this signed-note signer key (Ed25519); its verifier key is served at
        # GET /api/v1/audit/public-keys. Verifier keys of retired signing keys stay listed (comma-separated)
        # so checkpoints signed before a rotation still verify.
        "AUDIT_SIGNING_KEY": env.str("AUDIT_SIGNING_KEY", DEV_AUDIT_SIGNING_KEY),
        "AUDIT_PREVIOUS_VERIFIER_KEYS": _list(env.str("AUDIT_PREVIOUS_VERIFIER_KEYS")),
        # The checkpoint origin of each log is "<AUDIT_LOG_ORIGIN>/<log>": the name auditors know the log by.
        "AUDIT_LOG_ORIGIN": env.str("AUDIT_LOG_ORIGIN", "sandbox.zsb.invalid/audit"),
        # While a log grows, a checkpoint is cut at least this often (the periodic task audit.checkpoints);
        # auditors can also cut one on demand.
        "AUDIT_CHECKPOINT_SECONDS": env.float("AUDIT_CHECKPOINT_SECONDS", 60.0),
        # Where each checkpoint is also published outside the database: `file` (an append-only file at
        # AUDIT_WITNESS_FILE) or `none` (development only: production refuses it).
        "AUDIT_WITNESS": env.str("AUDIT_WITNESS", "file"),
        "AUDIT_WITNESS_FILE": env.str("AUDIT_WITNESS_FILE", str(instance_dir / "audit-witness.jsonl")),
        # Rows per database round trip of an audit export (the response is streamed batch by batch).
        "AUDIT_EXPORT_BATCH_SIZE": env.int("AUDIT_EXPORT_BATCH_SIZE", 1000),
        # How records enter the audit chains (app/ledger/sequencer/): `auto` queues them and lets one
        # sequencer per chain chain them in batches on PostgreSQL (one writer at a time holding the chain's
        # head costs about 1.6 ms per append, so ~600 records/s per chain however many writers), and writes
        # directly on SQLite (one writer at a time anyway); `off` writes directly everywhere.
        "AUDIT_SEQUENCER": env.str("AUDIT_SEQUENCER", "auto"),
        # The longest an append waits for its records to be sequenced (they are durable before that) before
        # answering 503 audit_log_unavailable: what a dead or stuck sequencer costs a request.
        "AUDIT_SEQUENCE_WAIT_SECONDS": env.float("AUDIT_SEQUENCE_WAIT_SECONDS", 5.0),
        # --- face verification (identity/, app/face/services/sessions.py) ---
        # The adapter by registry name: sandbox (development only; production refuses it), wechat, local, or a
        # third-party adapter's entry-point name. Production defaults to wechat (人脸核身, authoritative).
        "FACE_PROVIDER": env.str("FACE_PROVIDER", "sandbox"),
        # How long a started session may be completed (the provider's own expiry applies when shorter).
        "FACE_SESSION_TTL_SECONDS": env.int("FACE_SESSION_TTL_SECONDS", 300),
        # How long a pass counts as fresh (citizens.face_verified_until; 刷脸办 submissions rely on it).
        "FACE_VERIFIED_WINDOW_SECONDS": env.int("FACE_VERIFIED_WINDOW_SECONDS", 600),
        # NIST SP 800-63B: at most 5 failed face attempts per citizen within the window (counted in the shared
        # store, Redis in production, so the limit holds across processes), then 429 until the window ends.
        "FACE_MAX_FAILURES": env.int("FACE_MAX_FAILURES", 5),
        "FACE_FAILURE_WINDOW_SECONDS": env.int("FACE_FAILURE_WINDOW_SECONDS", 3600),
        # Face verification that stands in for identity documents (a session for a 刷脸办 matter) needs an
        # adapter with liveness detection, and only such an adapter's pass opens the verified window. Turn off
        # only for an offline demo with the `local` adapter, which detects no presentation attacks.
        "FACE_REQUIRE_LIVENESS": env.bool("FACE_REQUIRE_LIVENESS", True),
        # The biometric consent (PIPL art. 29) citizens agree to, kept word for word with each receipt. Change
        # the version whenever the text changes: receipts of older versions do not cover new sessions.
        "FACE_CONSENT_VERSION": env.str("FACE_CONSENT_VERSION", "2025-06"),
        "FACE_CONSENT_TEXT": env.str("FACE_CONSENT_TEXT", DEFAULT_FACE_CONSENT_TEXT),
        # Largest body of POST /face/sessions/{id}/complete (the `local` adapter's probe photos, base64); other
        # endpoints keep MAX_CONTENT_LENGTH.
        "FACE_MAX_BODY_BYTES": env.int("FACE_MAX_BODY_BYTES", 4 * 1024 * 1024),
        # The `local` adapter (identity/local.py): dlib distance threshold (same person at or below it), limits
        # on each probe photo, photos per verification, and detector upsampling (0-2) for small faces.
        "FACE_LOCAL_MAX_DISTANCE": env.float("FACE_LOCAL_MAX_DISTANCE", 0.6),
        "FACE_LOCAL_MAX_IMAGE_BYTES": env.int("FACE_LOCAL_MAX_IMAGE_BYTES", 2 * 1024 * 1024),
        "FACE_LOCAL_MAX_PIXELS": env.int("FACE_LOCAL_MAX_PIXELS", 16_000_000),
        "FACE_LOCAL_MAX_SIDE": env.int("FACE_LOCAL_MAX_SIDE", 800),
        "FACE_LOCAL_MAX_PROBES": env.int("FACE_LOCAL_MAX_PROBES", 3),
        "FACE_LOCAL_UPSAMPLE": env.int("FACE_LOCAL_UPSAMPLE", 1),
        # --- working-day deadlines (app/applications/workdays.py) ---
        # Added to the built-in calendar (app/applications/data/holidays.json), which knows only the years
        # published when it was released: load each new year's State Council holiday notice here every
        # December. Comma-separated ISO dates or inclusive ranges (2027-10-01..2027-10-07); a date listed here
        # overrides the built-in one.
        "HOLIDAYS": env.str("HOLIDAYS", ""),
        # Saturdays and Sundays that are working days (调休), comma-separated ISO dates.
        "ADJUSTED_WORKDAYS": env.str("ADJUSTED_WORKDAYS", ""),
        # --- uploaded materials (app/applications/storage.py) ---
        # local (files under UPLOAD_DIR) or memory (tests and demos: lost on restart, so production refuses it).
        "UPLOAD_STORAGE": env.str("UPLOAD_STORAGE", "local"),
        # None: <INSTANCE_DIR>/uploads, derived when the storage is built so that moving INSTANCE_DIR moves it.
        "UPLOAD_DIR": env.str("UPLOAD_DIR"),
        # Per file. Only the upload endpoint accepts bodies this large: MAX_CONTENT_LENGTH stays small for the rest.
        "UPLOAD_MAX_BYTES": env.int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024),
        # MIME types accepted, recognised from the file's content (its first bytes), never its name or header.
        "UPLOAD_ALLOWED_TYPES": _list(env.str("UPLOAD_ALLOWED_TYPES"))
        or ["application/pdf", "image/jpeg", "image/png"],
        # --- the application lifecycle (app/applications/services/submitting.py, agents.py, evaluations.py) ---
        # 容缺受理: a deferred material is due this many working days after the applicant defers it.
        "DEFERRAL_WORKING_DAYS": env.int("DEFERRAL_WORKING_DAYS", 10),
        # The longest an agent authorisation (帮办代办) may run; citizens can revoke it earlier.
        "AGENT_AUTHORISATION_MAX_DAYS": env.int("AGENT_AUTHORISATION_MAX_DAYS", 90),
        # A poor grade (好差评 1–2) opens a rectification the department must close within this many working days.
        "RECTIFICATION_WORKING_DAYS": env.int("RECTIFICATION_WORKING_DAYS", 15),
        # flask-smorest / OpenAPI
        "API_TITLE": "掌上办 API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Where the browser of whoever reads /docs loads Swagger UI from: by default the app itself
        # (app/web/docs_assets.py), so the docs work on an offline intranet.
        "OPENAPI_SWAGGER_UI_URL": env.str("OPENAPI_SWAGGER_UI_URL", "/docs/assets/"),
    }


def development(env: Settings) -> dict:
    return base_settings(env)


def testing(env: Settings) -> dict:
    settings = base_settings(env)
    # Tests that exercise a limit tighten it themselves; the rest (fuzzing logs in often) must not trip it.
    settings.update(
        TESTING=True, RATELIMIT_DEFAULT="100000 per minute", STAFF_LOGIN_RATE_LIMIT="100000 per minute",
        # The suite logs staff in thousands of times; argon2's cheapest parameters keep each login at well
        # under a millisecond instead of 0.1 s (production refuses them).
        PASSWORD_HASH_PROFILE=env.str("PASSWORD_HASH_PROFILE", "CHEAPEST"),
    )
    return settings


def production(env: Settings) -> dict:
    settings = base_settings(env)
    settings["SANDBOX_ENABLED"] = env.bool("SANDBOX_ENABLED", False)
    # The sandbox face adapter passes anyone who says "pass": production verifies with WeChat by default.
    settings["FACE_PROVIDER"] = env.str("FACE_PROVIDER", "wechat")
    # Citizens have the released mini-program: messages open it, not a developer build.
    settings["NOTIFY_MINIPROGRAM_STATE"] = env.str("NOTIFY_MINIPROGRAM_STATE", "formal")
    # The console's cookie only over HTTPS (behind the TLS-terminating proxy, TRUSTED_PROXIES).
    settings["SESSION_COOKIE_SECURE"] = env.bool("SESSION_COOKIE_SECURE", True)
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
    if not settings.get("AUDIT_SIGNING_KEY") or settings.get("AUDIT_SIGNING_KEY") == DEV_AUDIT_SIGNING_KEY:
        problems.append("AUDIT_SIGNING_KEY is missing or still the sandbox key (flask audit generate-key makes one)")
    if str(settings.get("AUDIT_LOG_ORIGIN", "")).startswith("sandbox."):
        problems.append("AUDIT_LOG_ORIGIN is still the sandbox origin (name the log, e.g. zsb.example.gov.cn/audit)")
    if settings.get("AUDIT_WITNESS") == "none":
        problems.append("AUDIT_WITNESS must publish checkpoints outside the database in production (file)")
    if settings.get("PASSWORD_HASH_PROFILE") not in PRODUCTION_HASH_PROFILES:
        problems.append(f"PASSWORD_HASH_PROFILE must be one of {', '.join(PRODUCTION_HASH_PROFILES)} in production")
    if str(settings.get("FACE_PROVIDER") or "").strip() in ("", "sandbox"):
        problems.append("FACE_PROVIDER must name a real face provider in production (not the sandbox)")
    if str(settings.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
        problems.append("DATABASE_URL must name a PostgreSQL database in production")
    if not settings.get("REDIS_URL"):
        problems.append("REDIS_URL is required in production (revocations and rate limits are shared)")
    if str(settings.get("JOBS_BACKEND", "auto")).strip().lower() == "sqlite":
        problems.append("JOBS_BACKEND must be redis in production (a SQLite queue serves one host only)")
    if not str(settings.get("WECHAT_API_BASE", "")).startswith("https://"):
        problems.append("WECHAT_API_BASE must be the https address of the WeChat API (https://api.weixin.qq.com)")
    if str(settings.get("WECHAT_APPID", "")).startswith("wx-sandbox"):
        problems.append("WECHAT_APPID is missing or still the sandbox value")
    # WeChat would refuse every status message with the stand-in's template (40037): none would reach anyone.
    for template in ("WECHAT_SUBSCRIBE_TEMPLATE_ID", "WECHAT_ACCOUNT_TEMPLATE_ID"):
        if str(settings.get(template, "")).startswith("sandbox"):
            problems.append(f"{template} is missing or still the sandbox value")
    if problems:
        raise ConfigError("production configuration refused: " + "; ".join(problems))


# argon2-cffi's profiles fit for real passwords (RFC 9106's two recommendations).
PRODUCTION_HASH_PROFILES = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY")
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
