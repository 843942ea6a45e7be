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
    GRADE_LABELS,
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
from app.catalogue.models import Matter
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.pii import vault
from app.web.paging import page_of


class EvaluationNotAllowed(Conflict):
    error, message = "evaluation_not_allowed", "申请办结后才能评价"


class AlreadyEvaluated(Conflict):
    error, message = "already_evaluated", "该申请已经评价过,每件申请只能评价一次"


# ---------------------------------------------------------------------------------------- the applicant


def evaluate(application: Application, actor: Actor, grade: int, comment: str | None) -> dict:
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
    return evaluation_view(evaluation, rectification)


def get_evaluation(application: Application) -> dict:
    """The application's evaluation with its rectification's status; 404 when not evaluated yet."""
    evaluation = _evaluation_of(application.id)
    if evaluation is None:
        raise NotFound("该申请尚未评价")
    rectification = db.session.scalar(sa.select(Rectification).where(Rectification.evaluation_id == evaluation.id))
    return evaluation_view(evaluation, rectification)


def evaluation_view(evaluation: Evaluation, rectification: Rectification | None) -> dict:
    """What the applicant sees of their evaluation."""
    return {
        "id": evaluation.id,
        "application_id": evaluation.application_id,
        "grade": evaluation.grade,
        "grade_label": GRADE_LABELS[evaluation.grade],
        "comment": _comment(evaluation.comment_encrypted),
        "created_at": evaluation.created_at,
        "rectification": None if rectification is None else {
            "id": rectification.id, "status": rectification.status, "due_on": rectification.due_on,
        },
    }


def _evaluation_of(application_id: str) -> Evaluation | None:
    return db.session.scalar(sa.select(Evaluation).where(Evaluation.application_id == application_id))


def _comment(stored: str) -> str | None:
    return vault().decrypt(stored) if stored else None


# ----------------------------------------------------------------------------------------- the reviewers


def list_rectifications(reviewer: Actor, *, status: str | None = None, overdue: bool | None = None,
                        page: int = 1, per_page: int = 20) -> dict:
    """The department's rectifications, the most urgent (earliest due) first."""
    condition = Rectification.department_code == reviewer.department_code
    if status:
        condition = condition & (Rectification.status == status)
    if overdue is not None:
        late = overdue_condition(work_calendar().today())
        condition = condition & (late if overdue else sa.not_(late))
    rows = page_of(
        sa.select(Rectification, Evaluation, Application.matter_code, Matter.name)
        .join(Evaluation, Evaluation.id == Rectification.evaluation_id)
        .join(Application, Application.id == Rectification.application_id)
        .outerjoin(Matter, Matter.code == Application.matter_code)
        .where(condition)
        .order_by(Rectification.due_on, Rectification.created_at, Rectification.id),
        page=page, per_page=per_page, scalars=False,
    )
    as_of = work_calendar().today()
    return rows.map(lambda row: rectification_view(*row, as_of=as_of))


def resolve(rectification_id: str, reviewer: Actor, resolution: str) -> dict:
    """整改完成: the department says what it changed."""
    return _close(rectification_id, reviewer, "resolved", resolution, "说明整改情况")


def mark_unfixable(rectification_id: str, reviewer: Actor, reason: str) -> dict:
    """无法整改: the department says why the complaint cannot be rectified (a reason is required)."""
    return _close(rectification_id, reviewer, "unfixable", reason, "说明无法整改的原因")


def rectification_view(rect: Rectification, evaluation: Evaluation, matter_code: str, matter_name: str | None,
                       *, as_of: date | None = None) -> dict:
    """A rectification as the department's reviewers see it, with the grade and comment behind it."""
    return {
        "id": rect.id,
        "application_id": rect.application_id,
        "matter_code": matter_code,
        "matter_name": matter_name or matter_code,
        "evaluation_id": evaluation.id,
        "grade": evaluation.grade,
        "grade_label": GRADE_LABELS[evaluation.grade],
        "comment": _comment(evaluation.comment_encrypted),
        "evaluated_at": evaluation.created_at,
        "status": rect.status,
        "status_label": RECTIFICATION_LABELS[rect.status],
        "due_on": rect.due_on,
        "overdue": rect.status == "open" and (as_of or work_calendar().today()) > rect.due_on,
        "resolution": rect.resolution,
        "resolved_by": rect.resolved_by,
        "resolved_at": rect.resolved_at,
        "created_at": rect.created_at,
    }


def _close(rectification_id: str, reviewer: Actor, target: str, text: str, what: str) -> dict:
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
    evaluation = db.session.get(Evaluation, rect.evaluation_id)
    name = db.session.scalar(sa.select(Matter.name).where(Matter.code == application.matter_code))
    return rectification_view(rect, evaluation, application.matter_code, name)


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
