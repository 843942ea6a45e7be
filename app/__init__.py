"""The application factory: it only wires configuration, extensions, blueprints, handlers and adapters."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config as config_module


def create_app(overrides: Mapping | None = None) -> Flask:
    """Build the app: config → extensions → blueprints → error handlers → adapters → CLI."""
    app = Flask(__name__, instance_relative_config=False)
    load_config(app, overrides)
    register_extensions(app)
    register_blueprints(app)
    register_request_guards(app)
    register_error_handlers(app)
    register_adapters(app)
    describe_configuration(app)
    register_commands(app)
    return app


def dispose(app: Flask) -> None:
    """Close the connections an app holds (database, Redis) before it is dropped; used again, they reopen.

    Why: a process that builds more than one app (the tests; a management script) would otherwise leave each
    one's sockets to the garbage collector, which closes them at no predictable time, with a warning."""
    from app.extensions import db
    from app.web.ratelimit import close_storage

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["state"].close()
    app.extensions["jobs"].close()
    close_storage(app)


def load_config(app: Flask, overrides: Mapping | None) -> None:
    """Settings from the environment (APP_ENV picks the mode), then explicit overrides, then validation."""
    overrides = dict(overrides or {})
    app.config.update(config_module.load(overrides.get("APP_ENV")))
    app.config.update(overrides)
    if "DATABASE_URL" in overrides:
        app.config["SQLALCHEMY_DATABASE_URI"] = config_module.sqlalchemy_url(overrides["DATABASE_URL"])
    config_module.validate(app.config)
    # JSON in and out under one policy (app/bodies.py): bounded, finite, storable; Chinese as UTF-8.
    from app.bodies import PolicyJSONProvider

    app.json = PolicyJSONProvider(app)
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Alembic announces each of its plugins at INFO on every start: noise, not information.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def register_extensions(app: Flask) -> None:
    """Database, migrations, JWT, rate limiter, OpenAPI, shared state and the personal-data vault."""
    from app import pii
    from app.accounts import guard as auth
    from app.extensions import api, csrf, db, jwt, limiter, migrate, remove_session_safely
    from app.state import create_store
    from app.web import openapi, readcache

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _ensure_sqlite_dir(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    remove_session_safely(app)  # after db.init_app: teardowns run in reverse, so this one runs first
    csrf.init_app(app)  # checks only where a blueprint asks (the console): WTF_CSRF_CHECK_DEFAULT is off
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True, compare_type=True)
    jwt.init_app(app)
    auth.init_app(app)
    redis_url = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", app.config["REDIS_KEY_PREFIX"] + "rl")
    limiter.init_app(app)
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}})
    openapi.init_app(api)
    app.extensions["state"] = create_store(redis_url, app.config["REDIS_KEY_PREFIX"])
    readcache.init_app(app)
    pii.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Every API blueprint, through flask-smorest so each lands in the OpenAPI document; /docs's own assets;
    the staff console (plain Flask: HTML pages are no part of the API's document)."""
    from app import console
    from app.blueprints import BLUEPRINTS, COMPONENTS
    from app.extensions import api
    from app.web import docs_assets

    for name, schema in COMPONENTS.items():
        api.spec.components.schema(name, schema)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_assets.blp)
    console.init_app(app)


def register_request_guards(app: Flask) -> None:
    """Steps around every view: the body's content type, identifiers in the URL and the request's text are
    checked; the response carries the request id."""
    from app.web import requestid
    from app.web.guards import refuse_identifiers_in_url, refuse_unstorable_text, require_json_body

    app.before_request(require_json_body)
    app.before_request(refuse_identifiers_in_url)
    app.before_request(refuse_unstorable_text)
    requestid.init_app(app)


def register_error_handlers(app: Flask) -> None:
    """One error shape for every error (app/errors.py)."""
    from app.errors import register_error_handlers as register

    register(app)


def register_adapters(app: Flask) -> None:
    """Outbound integrations chosen by configuration (WeChat, shared-data connectors, the face provider), and
    the job queue."""
    from app import jobs
    from app.applications import storage, workdays
    from app.audit import transparency
    from app.connectors.services import runtime
    from app.face.services import sessions as face
    from app.integrations import wechat

    if app.config["SANDBOX_ENABLED"]:
        from app import sandbox

        sandbox.init_app(app)  # first: it widens the connectors' URL guard for the sandbox bureaus
    wechat.init_app(app)
    runtime.init_app(app)
    face.init_app(app)
    workdays.init_app(app)
    storage.init_app(app)
    transparency.init_app(app)  # the audit logs' witness
    jobs.init_app(app)  # the job queue and the domains' tasks (app/jobs)


def describe_configuration(app: Flask) -> None:
    """The OpenAPI document states what this deployment's configuration decides (consent version, evidence)."""
    from app.extensions import api
    from app.face.services.log import EXTENSION as FACE_ADAPTER
    from app.web import openapi

    openapi.describe_configuration(api, app, face_evidence=app.extensions[FACE_ADAPTER].evidence_schema())


def register_commands(app: Flask) -> None:
    """`flask` CLI commands: seeding, staff accounts, the development server with its sandbox."""
    from app import cli, devserver, maintenance

    cli.init_app(app)
    devserver.init_app(app)
    maintenance.init_app(app)


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _ensure_sqlite_dir(uri: str) -> None:
    from pathlib import Path

    path = uri.split("sqlite:///", 1)[-1] if uri.startswith("sqlite:///") else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
