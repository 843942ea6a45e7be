"""Alembic environment, run through Flask-Migrate (`flask db upgrade`, `flask db migrate`).

Importing app.metadata registers every table on the metadata, so autogenerate compares against all of them.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

import app.metadata  # noqa: F401  (registers every model's table)
from app.modelbase import UTCDateTime

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

db = current_app.extensions["migrate"].db
target_metadata = db.metadata


def render_item(type_, obj, autogen_context):
    """Write our UTC type as the plain column type it is, so migrations do not import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def skip_empty_autogenerate(context_, revision, directives):
    # `flask db migrate` with no model change should write no empty revision file.
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("No changes in schema detected.")


def configure_args() -> dict:
    args = dict(current_app.extensions["migrate"].configure_args)
    args.setdefault("process_revision_directives", skip_empty_autogenerate)
    args.setdefault("render_item", render_item)
    return args


def run_migrations_offline():
    """Emit SQL to stdout (`flask db upgrade --sql`) for DBAs who apply it by hand."""
    context.configure(
        url=db.engine.url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        **configure_args(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    with db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **configure_args())
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
