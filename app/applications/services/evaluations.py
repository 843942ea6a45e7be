"""好差评: the applicant's grade of a completed application, and the rectifications (整改) poor grades open.

Only the citizen who applied rates the service, once, after getting an answer (approved, rejected or
delivered): it is their satisfaction, so an agent acting for them (帮办代办) may not. A grade of 1 or 2
(不满意, 非常不满意) opens a rectification for the department that decided the application, due
RECTIFICATION_WORKING_DAYS working days later, in the same transaction as the evaluation. A reviewer of that
department resolves it, or marks it unfixable with the reason; like application transitions, that is one
conditional UPDATE (`WHERE status = 'open'`), so of two concurrent decisions exactly one lands.

The comment is free text and may name people, so it is stored encrypted (app/pii.py) and shown only to the
applicant and the department's reviewers; timelines record the grade only.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.applications.models import (
    GRADES,
    POOR_GRADES,
    RECTIFICATION_LABELS,
    Application,
    Evaluation,
    Rectification,
)
from app.applications.services import lifecycle
from app.applications.services.lifecycle import Actor
from app.applications.workdays import work_calendar
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.pii import vault
from app.web.paging import Page, page_of


class EvaluationNotAllowed(Conflict):
    error, message = "evaluation_not_allowed", "申请办结后才能评价"


class AlreadyEvaluated(Conflict):
    error, message = "already_evaluated", "该申请已经评价过,每件申请只能评价一次"


# ---------------------------------------------------------------------------------------- the applicant


def evaluate(application: Application, actor: Actor, grade: int, comment: str | None) -> Evaluation:
    """Record the applicant's grade (1–5) of a completed application; 1–2 open a rectification."""
    if actor.kind != "citizen":
        raise Forbidden("评价须由申请人本人作出")
    if application.citizen_id != actor.id:
        raise NotFound("申请不存在")
    if isinstance(grade, bool) or grade not in GRADES:
        raise ValidationFailed.field("grade", "评价等级应为 1 至 5")
    if application.status not in lifecycle.COMPLETED:
        label = lifecycle.STATUS_LABELS.get(application.status, application.status)
        raise EvaluationNotAllowed(f"申请当前为“{label}”状态,办结后才能评价",
                                   errors={"status": {"current": [application.status]}})
    if _evaluation_of(application.id) is not None:
        raise AlreadyEvaluated()
    comment = (comment or "").strip()
    evaluation = Evaluation(
        application_id=application.id, citizen_id=application.citizen_id,
        department_code=application.department_code, matter_code=application.matter_code, grade=grade,
        comment_encrypted=vault().encrypt(comment) if comment else "", created_at=utcnow(),
    )
    try:
        db.session.add(evaluation)
        # Flushed first: a concurrent evaluation of the same application fails here on the unique constraint.
        db.session.flush()
        rectification = None
        if grade in POOR_GRADES:
            days = current_app.config["RECTIFICATION_WORKING_DAYS"]
            rectification = Rectification(
                evaluation_id=evaluation.id, application_id=application.id,
                department_code=evaluation.department_code, status="open",
                due_on=work_calendar().add_working_days(evaluation.created_at, days), created_at=utcnow(),
            )
            db.session.add(rectification)
        lifecycle.add_event(application, "evaluated", actor, {"grade": grade}, at=evaluation.created_at)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyEvaluated() from None
    return evaluation


def get_evaluation(application: Application) -> Evaluation:
    """The application's evaluation with its rectification's status; 404 when not evaluated yet."""
    evaluation = _evaluation_of(application.id)
    if evaluation is None:
        raise NotFound("该申请尚未评价")
    return evaluation


def _evaluation_of(application_id: str) -> Evaluation | None:
    return db.session.scalar(sa.select(Evaluation).where(Evaluation.application_id == application_id))


# ----------------------------------------------------------------------------------------- the reviewers


def list_rectifications(reviewer: Actor, *, status: str | None = None, overdue: bool | None = None,
                        page: int = 1, per_page: int = 20) -> Page:
    """The department's rectifications, the most urgent (earliest due) first."""
    condition = Rectification.department_code == reviewer.department_code
    if status:
        condition = condition & (Rectification.status == status)
    if overdue is not None:
        late = overdue_condition(work_calendar().today())
        condition = condition & (late if overdue else sa.not_(late))
    return page_of(
        sa.select(Rectification).where(condition)
        .order_by(Rectification.due_on, Rectification.created_at, Rectification.id),
        page=page, per_page=per_page,
    )


def resolve(rectification_id: str, reviewer: Actor, resolution: str) -> Rectification:
    """整改完成: the department says what it changed."""
    return _close(rectification_id, reviewer, "resolved", resolution, "说明整改情况")


def mark_unfixable(rectification_id: str, reviewer: Actor, reason: str) -> Rectification:
    """无法整改: the department says why the complaint cannot be rectified (a reason is required)."""
    return _close(rectification_id, reviewer, "unfixable", reason, "说明无法整改的原因")


def _close(rectification_id: str, reviewer: Actor, target: str, text: str, what: str) -> Rectification:
    rect = _department_rectification(rectification_id, reviewer)
    text = (text or "").strip()
    if not text:
        field = "resolution" if target == "resolved" else "reason"
        raise ValidationFailed.field(field, f"请{what}")
    if rect.status != "open":
        raise _not_open(rect.status)
    now = utcnow()
    result = db.session.execute(
        sa.update(Rectification)
        .where(Rectification.id == rect.id, Rectification.status == "open")
        .values(status=target, resolution=text, resolved_by=reviewer.ref, resolved_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        # Another reviewer closed it first.
        db.session.rollback()
        raise _not_open(db.session.scalar(sa.select(Rectification.status).where(Rectification.id == rect.id)))
    db.session.expire(rect)
    application = db.session.get(Application, rect.application_id)
    lifecycle.add_event(application, f"rectification_{target}", reviewer, {"rectification": rect.id}, at=now)
    db.session.commit()
    return rect


def _department_rectification(rectification_id: str, reviewer: Actor) -> Rectification:
    """One of the reviewer's department's rectifications; anyone else's (or none) is a 404."""
    rect = None
    if is_issued_id(rectification_id):
        rect = db.session.get(Rectification, rectification_id)
    if rect is None or reviewer.department_code is None or rect.department_code != reviewer.department_code:
        raise NotFound("整改不存在")
    return rect


def _not_open(status: str) -> lifecycle.InvalidTransition:
    label = RECTIFICATION_LABELS.get(status, status)
    return lifecycle.InvalidTransition(f"该整改已是“{label}”状态,不能再处理",
                                       errors={"status": {"current": [status]}})


def overdue_condition(as_of: date):
    """SQL: the rectification is open and past its due date (it lasts until the end of `due_on`)."""
    return sa.and_(Rectification.status == "open", Rectification.due_on < as_of)
