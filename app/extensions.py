"""Unbound extension instances, initialised in the app factory (app/__init__.py)."""

import sqlite3

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from app.errors import Api
from app.web.net import client_address
from app.web.ratelimit import PerAppLimiter
from app.web.tokens import CachingJWTManager

# Named constraints so Alembic migrations are identical on SQLite and PostgreSQL and can be altered later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = CachingJWTManager()  # verified claims kept per token text (app/web/tokens.py)
api = Api()
# CSRF protection for the staff console's forms and htmx requests only: WTF_CSRF_CHECK_DEFAULT is off
# (app/config.py), the console's blueprint checks each of its requests (app/console/views.py); the JSON API
# takes bearer tokens, which a browser never sends by itself, so it needs none.
csrf = CSRFProtect()
# Storage (memory or Redis) is chosen from each app's config in create_app; the default limit is read from
# the config per request, so it too belongs to the app.
limiter = PerAppLimiter(key_func=client_address, default_limits=[lambda: current_app.config["RATELIMIT_DEFAULT"]])


def remove_session_safely(app) -> None:
    """End each request's session even when its connection broke (the database restarted mid-request).

    Flask-SQLAlchemy's own teardown rolls the session back, and a rollback on a connection the server closed
    raises, after the response was made: the client would get gunicorn's bare 500 instead of it. This runs
    first (teardowns run last-registered first): the pool has already dropped the broken connection, so the
    session is only forgotten, and Flask-SQLAlchemy's teardown finds nothing left to do."""
    import logging

    from sqlalchemy.exc import SQLAlchemyError

    @app.teardown_appcontext
    def remove(_exc):
        try:
            db.session.remove()
        except SQLAlchemyError as error:
            logging.getLogger(__name__).warning("session ended on a broken connection: %s", type(error).__name__)
            db.session.registry.clear()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # SQLite ignores foreign keys unless asked, and WAL lets the dev server's readers run beside a writer.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
