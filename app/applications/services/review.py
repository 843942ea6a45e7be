"""The department's side: the reviewers' inbox and decisions, delivery of the result, false promises.

A reviewer sees only the applications of their own department, and only once submitted (a draft is the
citizen's business); anything else is a 404, so a reviewer cannot even learn another department's ids exist.
Every decision is a lifecycle transition (app/applications/services/lifecycle.py): one winner under
concurrency, a timeline event and the citizen's notification in the same transaction.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.applications.models import Application, PromiseBreach
from app.applications.services import lifecycle, state
from app.applications.services.lifecycle import Actor
from app.applications.workdays import TIMEZONE, work_calendar
from app.catalogue import services as catalogue
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import utcnow
from app.pii import vault
from app.web.paging import Page, page_of

DEFAULT_CARRIER = "EMS"


def inbox(reviewer: Actor, *, status: str | None = None, overdue: bool | None = None,
          matter_code: str | None = None, submitted_from: date | None = None, submitted_to: date | None = None,
          page: int = 1, per_page: int = 20) -> Page:
    """The department's submitted applications, oldest submission first (the order they are worked); the
    submission days are the city's (Beijing time), as the reviewers read them."""
    condition = sa.and_(Application.department_code == reviewer.department_code,
                        Application.submitted_at.is_not(None))
    if status:
        condition = condition & (Application.status == status)
    if matter_code:
        condition = condition & (Application.matter_code == matter_code)
    if submitted_from:
        condition = condition & (Application.submitted_at >= _start_of(submitted_from))
    if submitted_to:
        condition = condition & (Application.submitted_at < _start_of(submitted_to + timedelta(days=1)))
    if overdue is not None:
        today = work_calendar().today()
        late = sa.and_(Application.promised_due_on < today, Application.status.not_in(lifecycle.DECIDED))
        condition = condition & (late if overdue else sa.not_(late))
    return page_of(
        sa.select(Application).where(condition)
        .options(joinedload(Application.matter), joinedload(Application.citizen))
        .order_by(Application.submitted_at, Application.id),
        page=page, per_page=per_page,
    )


def _start_of(day: date) -> datetime:
    """The first instant of `day` in the city, in UTC (as submission times are stored)."""
    return datetime.combine(day, time.min, TIMEZONE).astimezone(UTC)


def accept(application: Application, reviewer: Actor) -> Application:
    """受理: the application is complete and in proper form."""
    lifecycle.transition(application, "accept", reviewer, values={"accepted_at": utcnow()})
    return application


def request_supplement(application: Application, reviewer: Actor, items: Sequence[str]) -> Application:
    """一次性告知补正: everything the applicant must fix, at once."""
    lifecycle.transition(application, "request_supplement", reviewer, detail={"items": list(items)},
                         values={"supplement_items": list(items)}, remark=f"需补正 {len(items)} 项")
    return application


class ConditionsUndecided(Conflict):
    error, message = "conditions_undecided", "还有受理条件待人工判定,请先判定后再办结"


class ConditionNotDecidable(Conflict):
    error, message = "condition_not_decidable", "该受理条件无需或不能人工判定"


DECIDING_STATUSES = ("submitted", "accepted", "resubmitted")


def decide_condition(application: Application, reviewer: Actor, index: int, met: bool, note: str | None
                     ) -> Application:
    """A reviewer decides a condition the shared data left `unknown` and the matter lets a reviewer decide;
    the decision (met or not, who, when) is on the timeline, its note (which may name people) encrypted.

    404 for a condition the submission has no check for; 409 `condition_not_decidable` when it was not
    submitted as unknown or was decided already; 409 `invalid_transition` once the application is decided.
    """
    if application.status not in DECIDING_STATUSES:
        raise lifecycle.invalid_transition(application.status, "decide_condition")
    checks = ((application.submission or {}).get("eligibility") or {}).get("conditions") or []
    check = next((c for c in checks if c["index"] == index and c.get("checked")), None)
    if check is None:
        raise NotFound("该申请没有这条待核验的受理条件")
    if index not in application.conditions_to_decide:
        raise ConditionNotDecidable("该受理条件已由共享数据核验或已人工判定,不能再判定")
    decisions = dict(application.condition_decisions or {})
    decisions[str(index)] = {"met": met, "by": reviewer.ref, "at": utcnow().isoformat()}
    notes = json.loads(vault().decrypt(application.condition_notes_encrypted)) \
        if application.condition_notes_encrypted else {}
    if note:
        notes[str(index)] = note
    # A conditional update, so of two reviewers deciding at once only one writes (as for transitions).
    updated = db.session.execute(
        sa.update(Application)
        .where(Application.id == application.id, Application.revision == application.revision,
               Application.status.in_(DECIDING_STATUSES))
        .values(condition_decisions=decisions, revision=Application.revision + 1,
                condition_notes_encrypted=vault().encrypt(json.dumps(notes, ensure_ascii=False)) if notes else None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated != 1:
        db.session.rollback()
        raise ConditionNotDecidable("申请刚被他人处理,请刷新后重试")
    lifecycle.add_event(application, "condition_decided", reviewer,
                        {"index": index, "met": met, "note": bool(note)})
    db.session.commit()
    db.session.refresh(application)
    return application


def approve(application: Application, reviewer: Actor, result: Mapping | None) -> Application:
    """办结 with the result (a licence, certificate or decision); its number is generated when not given.

    Not while a condition submitted as unknown waits for the reviewer's decision (409 `conditions_undecided`),
    nor when one was decided not met (reject it instead)."""
    pending = application.conditions_to_decide
    if pending:
        raise ConditionsUndecided(errors={"conditions": pending})
    refused = [int(i) for i, d in (application.condition_decisions or {}).items() if not d.get("met")]
    if refused:
        raise ConditionsUndecided("有受理条件经人工判定为不符合,不能办结,请作出不予受理(驳回)决定",
                                  error="conditions_not_met", errors={"conditions": sorted(refused)})
    matter = catalogue.get_matter(application.matter_code)
    now = utcnow()
    decided = {
        "name": (result or {}).get("name") or matter.result.get("name") or matter.name,
        "number": (result or {}).get("number") or f"{matter.code}-{now:%Y%m%d}-{secrets.token_hex(4).upper()}",
        "note": (result or {}).get("note"),
    }
    lifecycle.transition(application, "approve", reviewer, detail={"result": decided["name"]},
                         values={"result": decided, "decided_at": now})
    return application


def reject(application: Application, reviewer: Actor, reason: str) -> Application:
    """不予受理 / 不予许可, with the reason the applicant is told."""
    lifecycle.transition(application, "reject", reviewer, detail={}, values={"rejection_reason": reason,
                                                                            "decided_at": utcnow()},
                         remark=reason)
    return application


def deliver(application: Application, reviewer: Actor, body: Mapping) -> Application:
    """送达 the result: an e-certificate, or by mail free of charge (免费邮寄) with its tracking number."""
    delivery: dict = {"method": body["method"], "fee": 0}
    address = None
    if body["method"] == "e_certificate":
        delivery["certificate_number"] = body.get("certificate_number") or (application.result or {}).get("number")
    else:
        missing = [name for name in ("recipient", "tracking_number") if not body.get(name)]
        if missing:
            raise ValidationFailed("邮寄送达须填写收件人和快递单号",
                                   errors={"json": {name: ["邮寄送达时必填"] for name in missing}})
        delivery["carrier"] = body.get("carrier") or DEFAULT_CARRIER
        delivery["tracking_number"] = body["tracking_number"]
        # Name, phone and address are personal data: kept encrypted, shown to the applicant and the department.
        address = vault().encrypt(json.dumps(dict(body["recipient"]), ensure_ascii=False))
    lifecycle.transition(application, "deliver", reviewer,
                         detail={key: value for key, value in delivery.items() if key != "certificate_number"},
                         values={"delivery": delivery, "delivery_address_encrypted": address,
                                 "delivered_at": utcnow()})
    return application


def record_promise_breach(application: Application, reviewer: Actor, material_code: str, reason: str) -> dict:
    """Record that the applicant's written promise for a material was false; they lose the promise option."""
    provided = state.provided_materials(application).get(material_code)
    if provided is None or provided.via != "promise":
        raise ValidationFailed.field("material_code", "该申请的这项材料不是以告知承诺方式提交的")
    breach = PromiseBreach(citizen_id=application.citizen_id, application_id=application.id,
                           material_code=material_code, reason=reason, recorded_by=reviewer.ref)
    db.session.add(breach)
    lifecycle.add_event(application, "promise_breach_recorded", reviewer, {"material": material_code})
    db.session.commit()
    return {"id": breach.id, "application_id": application.id, "material_code": material_code,
            "reason": reason, "recorded_at": breach.recorded_at}
