"""Retention of applications' personal data (app/retention says what expires when, and why).

Each function does one kind, in batches of BATCH rows per transaction (a long pass never holds one long
transaction; a draft is one transaction of its own), and returns how many it did. Files go before the rows
that name them are changed: a crash in between leaves a row naming a file already gone, which the next pass
finishes (deleting is idempotent), never a file nobody names (which no pass could find again).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.applications.models import Application, ApplicationMaterial
from app.applications.services import lifecycle
from app.applications.services.lifecycle import Actor
from app.applications.storage import upload_storage
from app.extensions import db

BATCH = 200
SYSTEM = Actor("system")
SNAPSHOT_COLUMNS = ("prefill_values_encrypted", "form_values_encrypted", "submission_values_encrypted",
                    "delivery_address_encrypted", "condition_notes_encrypted")


def _decided_before(cutoff: datetime):
    """Decided applications whose decision (or delivery, or withdrawal) is older than `cutoff`."""
    decided = sa.func.coalesce(Application.delivered_at, Application.decided_at, Application.updated_at)
    return sa.and_(Application.status.in_(lifecycle.DECIDED), decided < cutoff)


def erase_uploads(cutoff: datetime) -> int:
    """Delete the upload files of applications decided before `cutoff`; returns the materials erased."""
    erased = 0
    while True:
        rows = db.session.execute(
            sa.select(ApplicationMaterial.id, ApplicationMaterial.application_id, ApplicationMaterial.storage_key)
            .join(Application, Application.id == ApplicationMaterial.application_id)
            .where(ApplicationMaterial.storage_key.is_not(None), _decided_before(cutoff))
            .limit(BATCH)).all()
        if not rows:
            return erased
        _erase_files(rows)
        by_application: dict[str, int] = {}
        for row in rows:
            by_application[row.application_id] = by_application.get(row.application_id, 0) + 1
        db.session.execute(sa.update(ApplicationMaterial).where(ApplicationMaterial.id.in_([r.id for r in rows]))
                           .values(storage_key=None))
        for application_id, count in by_application.items():
            lifecycle.add_event(db.session.get(Application, application_id), "uploads_erased", SYSTEM,
                                {"count": count})
        db.session.commit()
        erased += len(rows)


def expire_drafts(cutoff: datetime, days: int) -> int:
    """Withdraw drafts unchanged since `cutoff`, erasing their values and uploads; returns how many."""
    expired = 0
    while True:
        ids = db.session.scalars(
            sa.select(Application.id).where(Application.status == "draft", Application.updated_at < cutoff)
            .order_by(Application.updated_at).limit(BATCH)).all()
        db.session.rollback()
        if not ids:
            return expired
        for application_id in ids:
            expired += _expire_draft(application_id, cutoff, days)


def _expire_draft(application_id: str, cutoff: datetime, days: int) -> int:
    # The draft is withdrawn first, in the transaction (its row locked on PostgreSQL; the status machine's
    # revision check everywhere), and only then are its files deleted, before the commit: a citizen changing or
    # submitting it at this moment either wins (the withdrawal fails and no file is touched) or waits and
    # finds it withdrawn (409). No file of a live draft or of a submission is ever deleted.
    draft = db.session.scalar(sa.select(Application).where(
        Application.id == application_id, Application.status == "draft", Application.updated_at < cutoff)
        .with_for_update())
    if draft is None:  # changed meanwhile (submitted, edited, withdrawn): no longer a stale draft
        db.session.rollback()
        return 0
    rows = db.session.execute(
        sa.select(ApplicationMaterial.id, ApplicationMaterial.application_id, ApplicationMaterial.storage_key)
        .where(ApplicationMaterial.application_id == draft.id, ApplicationMaterial.storage_key.is_not(None))).all()
    try:
        lifecycle.transition(draft, "withdraw", SYSTEM, detail={"reason": "expired", "days": days},
                             remark=f"草稿{days}天未修改,已自动撤回", commit=False,
                             values={"prefill_values_encrypted": None, "form_values_encrypted": None})
    except lifecycle.InvalidTransition:  # changed between the read and the write (transition rolled back)
        return 0
    db.session.execute(sa.update(ApplicationMaterial).where(ApplicationMaterial.application_id == draft.id)
                       .values(storage_key=None))
    _erase_files(rows)
    db.session.commit()
    return 1


def erase_snapshots(cutoff: datetime) -> int:
    """Erase the encrypted values of applications decided before `cutoff`; returns how many applications."""
    erased = 0
    holds_values = sa.or_(*(getattr(Application, column).is_not(None) for column in SNAPSHOT_COLUMNS))
    while True:
        ids = db.session.scalars(
            sa.select(Application.id).where(_decided_before(cutoff), holds_values).limit(BATCH)).all()
        if not ids:
            return erased
        db.session.execute(sa.update(Application).where(Application.id.in_(ids))
                           .values(dict.fromkeys(SNAPSHOT_COLUMNS))
                           .execution_options(synchronize_session=False))
        for application_id in ids:
            lifecycle.add_event(db.session.get(Application, application_id), "values_erased", SYSTEM, {})
        db.session.commit()
        erased += len(ids)


def _erase_files(rows) -> None:
    """Delete the files `rows` name, except those another record not in `rows` still names (identical
    uploads share one file)."""
    keys = {row.storage_key for row in rows}
    if not keys:
        return
    ours = [row.id for row in rows]
    shared = set(db.session.scalars(
        sa.select(ApplicationMaterial.storage_key)
        .where(ApplicationMaterial.storage_key.in_(keys), ApplicationMaterial.id.not_in(ours))))
    storage = upload_storage()
    for key in keys - shared:
        storage.delete(key)
