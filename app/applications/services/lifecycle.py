"""The application lifecycle: who may act on an application, its states and transitions, its timeline.

States (BRIEF §4; the seed city's 全程网办 flow):

    draft ─submit→ submitted ─accept→ accepted ─request_supplement→ supplement_requested
                      │                  │  ▲                              │
                      │                  │  └──────────── resubmitted ←─resubmit┘
                      │                  ├─approve→ approved ─deliver→ delivered
                      └──────────────────┴─reject→ rejected
    draft | submitted ─withdraw→ withdrawn  (the citizen, before acceptance)

Every transition is one `UPDATE … WHERE id = :id AND status IN (:allowed) AND revision = :seen` that also
bumps `revision`: of two concurrent transitions on one application exactly one updates a row, the other gets
409 `invalid_transition` (on PostgreSQL the second UPDATE waits for the first and then re-checks its WHERE).
The timeline event and the citizen's notification (the outbox, app/notifications/services.py) are written in
the same transaction as the status, so a crash loses all three or none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from app.accounts.models import Citizen, StaffUser
from app.applications.models import STATUS_LABELS, Application, ApplicationEvent
from app.applications.models.application import DECIDED_STATUSES
from app.applications.services import notices
from app.applications.workdays import work_calendar
from app.catalogue.models import Matter
from app.errors import Conflict, NotFound
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.web import readcache

# action → (states it may start from, the state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({"draft"}), "submitted"),
    "withdraw": (frozenset({"draft", "submitted"}), "withdrawn"),
    "accept": (frozenset({"submitted"}), "accepted"),
    "request_supplement": (frozenset({"accepted", "resubmitted"}), "supplement_requested"),
    "resubmit": (frozenset({"supplement_requested"}), "resubmitted"),
    "approve": (frozenset({"accepted", "resubmitted"}), "approved"),
    # 不予受理 (from submitted) or 不予许可 (after acceptance, also when a supplement never came).
    "reject": (frozenset({"submitted", "accepted", "supplement_requested", "resubmitted"}), "rejected"),
    "deliver": (frozenset({"approved"}), "delivered"),
}
# The applicant may still change the form and the materials.
EDITABLE = frozenset({"draft", "supplement_requested"})
# Decided: processing time and deadlines stop counting.
DECIDED = DECIDED_STATUSES
# The applicant has got an answer and may evaluate it (好差评).
COMPLETED = frozenset({"approved", "rejected", "delivered"})


class InvalidTransition(Conflict):
    error, message = "invalid_transition", "申请当前的状态不能进行此操作"


@dataclass(frozen=True)
class Actor:
    """Who acts: the citizen themself, an agent on their behalf (帮办代办), a reviewer, or the system."""

    kind: str  # citizen | agent | reviewer | system
    id: str | None = None
    department_code: str | None = None

    @property
    def ref(self) -> str:
        """The pseudonymous reference kept on timelines and logs (`citizen:<id>`, `staff:<id>`, …)."""
        if self.kind == "citizen":
            return f"citizen:{self.id}"
        if self.kind == "agent":
            # `staff:` is what the data-access log already shows its citizens as "an agent".
            return f"staff:{self.id}"
        if self.kind == "reviewer":
            return f"reviewer:{self.id}"
        return "system"

    @classmethod
    def of(cls, user: Citizen | StaffUser, role: str | None = None) -> Actor:
        if isinstance(user, Citizen):
            return cls("citizen", user.id)
        return cls(role or "agent", user.id, user.department_code)


def actor_kind(ref: str) -> str:
    """citizen, agent, reviewer or system, from a stored actor reference."""
    prefix = ref.split(":", 1)[0]
    return {"citizen": "citizen", "staff": "agent", "reviewer": "reviewer"}.get(prefix, "system")


def find(application_id: str) -> Application | None:
    """The application with this id, or None for an unknown or malformed id."""
    if is_issued_id(application_id):
        return db.session.get(Application, application_id)
    return None


def reviewer_application(application_id: str, reviewer: Actor) -> Application:
    """An application the reviewer's department decides, once submitted; anything else is a 404."""
    application = find(application_id)
    if (application is None or reviewer.department_code is None
            or application.department_code != reviewer.department_code or application.submitted_at is None):
        raise NotFound("申请不存在")
    return application


# ------------------------------------------------------------------------------------------- transitions


def transition(application: Application, action: str, actor: Actor, *, detail: dict | None = None,
               values: dict[str, Any] | None = None, remark: str | None = None, commit: bool = True) -> None:
    """Move the application by `action`, recording the event and the notification; 409 when not allowed.

    `values` are further columns set in the same UPDATE (timestamps, the decision, …).
    """
    allowed, target = TRANSITIONS[action]
    if application.status not in allowed:
        raise invalid_transition(application.status, action)
    now = utcnow()
    result = db.session.execute(
        sa.update(Application)
        .where(Application.id == application.id, Application.status.in_(allowed),
               Application.revision == application.revision)
        .values(status=target, revision=Application.revision + 1, updated_at=now, **(values or {}))
        .execution_options(synchronize_session=False,
                           **readcache.touching(readcache.applications_stamp(application.citizen_id)))
    )
    if result.rowcount != 1:
        # Someone else moved it first: report the state it is in now.
        db.session.rollback()
        current = db.session.scalar(sa.select(Application.status).where(Application.id == application.id))
        raise invalid_transition(current or application.status, action)
    db.session.expire(application)
    add_event(application, target, actor, detail or {}, at=now)
    notify(application, target, remark=remark)
    if commit:
        db.session.commit()


def invalid_transition(status: str, action: str) -> InvalidTransition:
    """The 409 for `action` on an application in `status`, naming both (in Chinese for the citizen)."""
    label = STATUS_LABELS.get(status, status)
    return InvalidTransition(f"申请当前为“{label}”状态,不能{ACTION_LABELS.get(action, action)}",
                             errors={"status": {"current": [status], "action": [action]}})


ACTION_LABELS = {
    "submit": "提交",
    "withdraw": "撤回",
    "accept": "受理",
    "request_supplement": "要求补正",
    "resubmit": "补正后重新提交",
    "decide_condition": "判定受理条件",
    "approve": "办结",
    "reject": "作出不予受理或不予许可决定",
    "deliver": "送达",
}


def add_event(application: Application, kind: str, actor: Actor | Citizen, detail: dict, *,
              at: datetime | None = None) -> None:
    """Add a timeline event (non-personal details only) to the session; the caller commits.

    Added to the session, not appended to `application.events`: that would load the whole timeline first.
    """
    actor = actor if isinstance(actor, Actor) else Actor.of(actor)
    db.session.add(ApplicationEvent(application_id=application.id, kind=kind, actor=actor.ref,
                                    detail=detail, at=at or utcnow()))


def notify(application: Application, status: str, *, remark: str | None = None) -> None:
    """Queue the citizen's subscription message about the new status (sent by the outbox worker)."""
    matter_name = db.session.scalar(sa.select(Matter.name).where(Matter.code == application.matter_code))
    notices.notify_status_change(application, matter_name or application.matter_code, status, remark=remark)


def timeline(application: Application) -> list[dict]:
    """The application's events, oldest first, as shown to its applicant and reviewers."""
    events = db.session.scalars(
        sa.select(ApplicationEvent).where(ApplicationEvent.application_id == application.id)
        .order_by(ApplicationEvent.at, ApplicationEvent.id)
    ).all()
    return [{"at": event.at, "kind": event.kind, "actor": actor_kind(event.actor), "detail": event.detail}
            for event in events]


# -------------------------------------------------------------------------------------------- deadlines


def due_dates(submitted_at: datetime, promised_days: int, legal_days: int | None) -> dict[str, date | None]:
    """The promised and legal deadlines of an application submitted at `submitted_at` (working days)."""
    calendar = work_calendar()
    return {
        "promised_due_on": calendar.add_working_days(submitted_at, promised_days),
        "legal_due_on": calendar.add_working_days(submitted_at, legal_days) if legal_days is not None else None,
    }


def extend_due_dates(application: Application, paused_since: datetime, now: datetime) -> dict[str, date | None]:
    """Deadlines pushed back by the working days spent waiting for the applicant's supplement (补正期间不计时)."""
    calendar = work_calendar()
    paused = calendar.working_days_between(paused_since, now)
    return {
        name: calendar.add_working_days(due, paused) if due is not None and paused else due
        for name, due in (("promised_due_on", application.promised_due_on),
                          ("legal_due_on", application.legal_due_on))
    }


def status_counts(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """{status: count} with every status present (zero when none)."""
    counts = dict.fromkeys(STATUS_LABELS, 0)
    counts.update(dict(rows))
    return counts
