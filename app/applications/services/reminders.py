"""Reminders of materials a citizen owes: those they chose to bring later (容缺) — a message when one is due
within REMINDER_DAYS_BEFORE days, and one more if it becomes overdue — and a supplement (补正) a reviewer asked
for that is still open SUPPLEMENT_REMINDER_DAYS after the request. Each is sent once (the notification's id is
derived from the material and the stage, or from the application's revision, which every request for a
supplement advances: app/notifications/services.py `enqueue(once=…)`).

Only applications still being processed are reminded (a decided or withdrawn one needs nothing more). Run by the
periodic task applications.reminders (app/applications/tasks.py); the outbox sends the messages.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.applications.models import Application, ApplicationMaterial
from app.applications.services import lifecycle, notices
from app.catalogue.models import Material, Matter
from app.extensions import db
from app.notifications.services import already_sent, enqueue

BATCH = 200


def remind_deferred(today: date, days_before: int) -> dict[str, int]:
    """Queue the reminders due on `today`; returns how many of each stage were written."""
    counts = {"due_soon": 0, "overdue": 0}
    rows = db.session.execute(
        sa.select(ApplicationMaterial, Application, Matter.name, Material.name)
        .join(Application, Application.id == ApplicationMaterial.application_id)
        .join(Matter, Matter.code == Application.matter_code)
        .join(Material, sa.and_(Material.matter_id == Matter.id, Material.code == ApplicationMaterial.material_code))
        .where(ApplicationMaterial.via == "deferred", ApplicationMaterial.due_on.is_not(None),
               ApplicationMaterial.due_on <= today + timedelta(days=days_before),
               Application.status.not_in(lifecycle.DECIDED | {"draft"}))
        .order_by(ApplicationMaterial.due_on).limit(BATCH * 10)).all()
    for material_row, application, matter_name, material_name in rows:
        stage = "overdue" if material_row.due_on < today else "due_soon"
        message = notices.material_due_message(application, matter_name, material_name, material_row.due_on,
                                               overdue=stage == "overdue")
        if _send_once(f"material_due:{material_row.id}:{stage}", application, message):
            counts[stage] += 1
    return counts


def remind_supplements(now: datetime, after_days: int) -> int:
    """Queue a reminder for each supplement request (补正) still open `after_days` after it was made; returns
    how many were written."""
    rows = db.session.execute(
        sa.select(Application, Matter.name)
        .join(Matter, Matter.code == Application.matter_code)
        .where(Application.status == "supplement_requested", Application.updated_at <= now - timedelta(days=after_days))
        .order_by(Application.updated_at).limit(BATCH * 10)).all()
    written = 0
    for application, matter_name in rows:
        # The revision names this request: a later one (after a resubmission) is reminded again.
        key = f"supplement_due:{application.id}:{application.revision}"
        if _send_once(key, application, notices.supplement_due_message(application, matter_name)):
            written += 1
    return written


def _send_once(key: str, application: Application, message: dict) -> bool:
    """Write the reminder `key` unless it was written before; whether this call wrote it."""
    if already_sent(key):
        return False
    enqueue(citizen_id=application.citizen_id, application_id=application.id, kind="material_due", once=key,
            data=message)
    try:
        db.session.commit()
    except IntegrityError:  # another worker wrote it between our look and our write
        db.session.rollback()
        return False
    return True
