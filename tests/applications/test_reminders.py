"""Reminders of what a citizen owes: materials brought later (容缺) — one message when due soon, one when
overdue, each once, only for applications still being processed — and supplement requests (补正) left open,
once per request; sent through the outbox to the WeChat stand-in."""

from __future__ import annotations

from datetime import timedelta

import requests
import sqlalchemy as sa
from application_flow import create, url
from face_flow import LI_NA

from app.applications.models import Application, ApplicationMaterial
from app.applications.workdays import work_calendar
from app.catalogue.models import Material
from app.extensions import db
from app.modelbase import utcnow
from app.notifications.models import Notification
from app.notifications.services import deliver_pending


def deferred_application(app, client, headers) -> str:
    with app.app_context():
        material = db.session.scalars(sa.select(Material).where(Material.deferrable.is_(True))).first()
        matter_code, material_code = material.matter.code, material.code
    created = create(client, headers, matter_code)
    deferred = client.post(url(created["id"], f"materials/{material_code}/defer"), headers=headers)
    assert deferred.status_code == 201, deferred.json
    return created["id"]


def set_state(application_id: str, *, status: str, due_in_days: int) -> None:
    today = work_calendar().today()
    db.session.execute(sa.update(Application).where(Application.id == application_id).values(status=status))
    db.session.execute(sa.update(ApplicationMaterial).where(ApplicationMaterial.application_id == application_id,
                                                            ApplicationMaterial.via == "deferred")
                       .values(due_on=today + timedelta(days=due_in_days)))
    db.session.commit()


def remind(app) -> str:
    result = app.test_cli_runner().invoke(args=["jobs", "run", "applications.reminders"])
    assert result.exit_code == 0, result.output
    return result.output


def reminders_for(application_id: str) -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Notification).where(Notification.application_id == application_id,
                                                                 Notification.kind == "material_due")))


def test_a_material_due_soon_and_then_overdue_is_reminded_once_each(app, client, citizen_as, wechat_server):
    li = citizen_as(*LI_NA)
    application_id = deferred_application(app, client, li)
    with app.app_context():
        set_state(application_id, status="accepted", due_in_days=2)
    assert "'due_soon': 1, 'overdue': 0" in remind(app)
    assert "'due_soon': 0, 'overdue': 0" in remind(app)  # once
    with app.app_context():
        set_state(application_id, status="accepted", due_in_days=-1)
    assert "'due_soon': 0, 'overdue': 1" in remind(app)
    assert "'due_soon': 0, 'overdue': 0" in remind(app)
    with app.app_context():
        assert len(reminders_for(application_id)) == 2
        assert deliver_pending(limit=10)["sent"] == 2
    sent = requests.get(f"{wechat_server.url}/_sandbox/messages", timeout=5).json()["messages"]
    mine = [m for m in sent if m["data"]["character_string4"]["value"] == application_id]
    assert [m["data"]["phrase2"]["value"] for m in mine] == ["待补材料", "待补材料"]
    assert "前补交" in mine[0]["data"]["thing5"]["value"] and "逾期" in mine[1]["data"]["thing5"]["value"]


def test_drafts_decided_applications_and_distant_dates_get_no_reminder(app, client, citizen_as):
    li = citizen_as(*LI_NA)
    cases = [("draft", 1), ("approved", -1), ("withdrawn", 1), ("submitted", 10)]
    ids = []
    for status, days in cases:
        application_id = deferred_application(app, client, li)
        with app.app_context():
            set_state(application_id, status=status, due_in_days=days)
        ids.append(application_id)
    assert "'due_soon': 0, 'overdue': 0" in remind(app)
    with app.app_context():
        assert all(reminders_for(i) == [] for i in ids)


def supplement_requested(application_id: str, *, days_ago: int, items: list[str]) -> None:
    """As a reviewer's 补正 request leaves it, `days_ago` days back (the next round advances the revision)."""
    db.session.execute(sa.update(Application).where(Application.id == application_id).values(
        status="supplement_requested", supplement_items=items, revision=Application.revision + 1,
        updated_at=utcnow() - timedelta(days=days_ago)))
    db.session.commit()


def test_an_open_supplement_request_is_reminded_once_per_request(app, client, citizen_as, wechat_server):
    li = citizen_as(*LI_NA)
    waiting, fresh = create(client, li, "GJJ-GG-002")["id"], create(client, li, "GJJ-GG-002")["id"]
    with app.app_context():
        supplement_requested(waiting, days_ago=app.config["SUPPLEMENT_REMINDER_DAYS"] + 1, items=["身份证", "银行卡"])
        supplement_requested(fresh, days_ago=1, items=["身份证"])
    assert "'supplement': 1" in remind(app)
    assert "'supplement': 0" in remind(app)  # once
    with app.app_context():
        assert len(reminders_for(waiting)) == 1 and reminders_for(fresh) == []
        # Resubmitted, then asked again: another request, another reminder when it too is left open.
        supplement_requested(waiting, days_ago=app.config["SUPPLEMENT_REMINDER_DAYS"] + 1, items=["银行卡"])
    assert "'supplement': 1" in remind(app)
    with app.app_context():
        assert deliver_pending(limit=10)["sent"] == 2
    sent = requests.get(f"{wechat_server.url}/_sandbox/messages", timeout=5).json()["messages"]
    mine = [m["data"] for m in sent if m["data"]["character_string4"]["value"] == waiting]
    assert [m["phrase2"]["value"] for m in mine] == ["待补正", "待补正"]
    assert "2项待补正" in mine[0]["thing5"]["value"] and "1项待补正" in mine[1]["thing5"]["value"]
