"""Operator commands: re-encrypting personal data (columns and upload files) after a key rotation."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db
from app.pii import vault

# Every encrypted column, by model. A new encrypted column must be added here to be rotated.
ENCRYPTED_COLUMNS = {
    "app.accounts.models:Citizen": ("session_key_encrypted", "real_name_encrypted", "id_number_encrypted"),
    "app.connectors.models:Connector": ("secret_encrypted",),
    "app.applications.models:Application": (
        "prefill_values_encrypted",
        "form_values_encrypted",
        "submission_values_encrypted",
        "delivery_address_encrypted",
    ),
    # 好差评 comments are free text that may name people (app/applications/services/evaluations.py); "" when none.
    "app.applications.models:Evaluation": ("comment_encrypted",),
}


def _model(path: str):
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def reencrypt_all(batch_size: int = 500) -> int:
    """Re-encrypt every encrypted value under the newest key; returns the number of values rewritten."""
    pii = vault()
    rewritten = 0
    for path, columns in ENCRYPTED_COLUMNS.items():
        model = _model(path)
        last_id = ""
        while True:
            rows = db.session.scalars(
                select(model).where(model.id > last_id).order_by(model.id).limit(batch_size)
            ).all()
            if not rows:
                break
            for row in rows:
                for column in columns:
                    value = getattr(row, column)
                    if value:
                        setattr(row, column, pii.reencrypt(value))
                        rewritten += 1
            last_id = rows[-1].id
            # One transaction per batch: an interrupted run leaves only whole rows, all readable.
            db.session.commit()
    return rewritten + reencrypt_uploads()


def reencrypt_uploads() -> int:
    """Seal every upload file the applications still name under the newest key (and any file stored before
    uploads were encrypted); returns the number of files rewritten. Each file is replaced whole."""
    from app.applications.models import ApplicationMaterial
    from app.applications.storage import UploadNotFound, upload_storage

    storage = upload_storage()
    rewritten = 0
    keys = db.session.scalars(select(ApplicationMaterial.storage_key).where(
        ApplicationMaterial.storage_key.is_not(None)).distinct()).all()
    for key in keys:
        try:
            storage.reencrypt(key)
        except UploadNotFound:
            continue  # a file removed meanwhile (retention, a withdrawn draft)
        rewritten += 1
    return rewritten


@click.command("reencrypt")
@with_appcontext
def reencrypt_command():
    """Re-encrypt personal data under the first key of DATA_ENCRYPTION_KEYS (run after adding a key)."""
    count = reencrypt_all()
    click.echo(f"re-encrypted {count} values (columns and upload files); older keys may now be removed from "
               "DATA_ENCRYPTION_KEYS")


def init_app(app: Flask) -> None:
    app.cli.add_command(reencrypt_command)
