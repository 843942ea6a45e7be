"""The applicant's side of an application after the prefill: the form, the materials, submit, withdraw.

Locked fields: a prefilled value from an authoritative source (trust level A/B, `locked: true`) is what the
registry says; the applicant cannot change it. Every form update and every (re)submission compares the form
with the values the connectors returned and answers 409 `prefill_locked` naming the fields that differ, the
way Open Forms and FormSG protect verified data.

Submission: with an `Idempotency-Key` header a retry (a flaky phone network) gets the first answer again and
changes nothing (idempotency.py). What is submitted is frozen (state.py): later registry changes or prefills
do not alter it. A matter that offers face verification needs the citizen's face-verified window open unless
an authorised agent submits on the citizen's behalf, and the timeline says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.applications.models import (
    Application,
    ApplicationEvent,
    ApplicationMaterial,
    PromiseBreach,
)
from app.applications.services import idempotency, lifecycle, materials, state
from app.applications.services.lifecycle import Actor
from app.applications.storage import UploadNotFound, check_app_upload, upload_storage
from app.applications.workdays import work_calendar
from app.catalogue import services as catalogue
from app.catalogue.models import Material, Matter
from app.errors import Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import utcnow
from app.pii import vault


class EvidenceNotOffered(ValidationFailed):
    error, message = "evidence_not_offered", "该材料不接受这种提交方式"


class PromiseNotAllowed(Forbidden):
    error, message = "promise_not_allowed", "您有虚假承诺记录,不能再以告知承诺方式提交材料,请上传或到窗口提交"


# ------------------------------------------------------------------------------------------------ access


# -------------------------------------------------------------------------------------------------- values


def update_form(application: Application, actor: Actor, fields: Mapping[str, Any]) -> dict:
    """Replace the form's fields (PUT); locked prefilled values cannot change (409 `prefill_locked`)."""
    state.check_form_update(application, fields)
    state.write_form(application, actor, fields)
    db.session.commit()
    return {"application_id": application.id, "fields": dict(fields), "updated_at": application.updated_at}


# ----------------------------------------------------------------------------------------------- materials


def _material(matter: Matter, code: str) -> Material:
    for material in matter.materials:
        if material.code == code:
            return material
    raise NotFound("该事项没有这项材料")


def _provide(application: Application, actor: Actor, material: Material, event: str, detail: dict,
             **columns) -> ApplicationMaterial:
    db.session.execute(sa.delete(ApplicationMaterial).where(ApplicationMaterial.application_id == application.id,
                                                            ApplicationMaterial.material_code == material.code))
    row = ApplicationMaterial(application_id=application.id, material_code=material.code, acting_user=actor.ref,
                              provided_at=utcnow(), **columns)
    db.session.add(row)
    lifecycle.add_event(application, event, actor, {"material": material.code, **detail})
    db.session.commit()
    return row


def upload(application: Application, actor: Actor, material_code: str, data: bytes) -> dict:
    """Store an upload for a material that accepts one (type sniffed from the content, size limited)."""
    state.require_editable(application, "上传材料")
    matter = catalogue.get_matter(application.matter_code)
    material = _material(matter, material_code)
    if not material.offers("upload"):
        raise EvidenceNotOffered("该材料由共享数据、电子证照或其他方式提供,不需要上传")
    content_type = check_app_upload(data)
    stored = upload_storage().put(data)
    row = _provide(application, actor, material, "material_uploaded",
                   {"sha256": stored.sha256, "size": stored.size, "content_type": content_type},
                   via="upload", storage_key=stored.key, sha256=stored.sha256, size=stored.size,
                   content_type=content_type)
    return _provision_view(application, material, row)


def promise_to_sign(application: Application, material_code: str) -> dict:
    """The material's written promise (告知承诺书) as the applicant must sign it; 404 when it offers none."""
    material = _material(catalogue.get_matter(application.matter_code), material_code)
    text = materials.promise_text(material)
    if text is None:
        raise NotFound("该材料不适用告知承诺")
    return {"material_code": material.code, "text": text}


def promise(application: Application, actor: Actor, material_code: str, text: str) -> dict:
    """Sign the material's written promise (告知承诺); refused to anyone with a recorded false promise."""
    state.require_editable(application, "签署承诺")
    matter = catalogue.get_matter(application.matter_code)
    material = _material(matter, material_code)
    expected = materials.promise_text(material)
    if expected is None:
        raise EvidenceNotOffered("该材料不适用告知承诺")
    if text != expected:
        raise ValidationFailed.field("text", "承诺内容须与本材料的承诺书全文一致(见 promise_text)")
    breach = db.session.scalar(sa.select(PromiseBreach.id).where(PromiseBreach.citizen_id == application.citizen_id)
                               .limit(1))
    if breach is not None:
        raise PromiseNotAllowed()
    row = _provide(application, actor, material, "material_promised", {}, via="promise", promise_text=expected)
    return _provision_view(application, material, row)


def defer(application: Application, actor: Actor, material_code: str) -> dict:
    """Defer a material the matter marks deferrable (容缺受理), due within DEFERRAL_WORKING_DAYS."""
    state.require_editable(application, "申请容缺")
    matter = catalogue.get_matter(application.matter_code)
    material = _material(matter, material_code)
    if not material.deferrable:
        raise EvidenceNotOffered("该材料不适用容缺受理,须在提交前提供")
    due_on = work_calendar().add_working_days(utcnow(), current_app.config["DEFERRAL_WORKING_DAYS"])
    row = _provide(application, actor, material, "material_deferred", {"due_on": due_on.isoformat()},
                   via="deferred", due_on=due_on)
    return _provision_view(application, material, row)


def _provision_view(application: Application, material: Material, row: ApplicationMaterial) -> dict:
    citizen = state.citizen_of(application)
    status = materials.material_status(material, application.prefill, provided=row,
                                       face_ok=citizen.face_verified(), real_name=citizen.real_name_verified)
    return {"application_id": application.id, **status}


def open_upload(application: Application, material_code: str) -> tuple[bytes, str]:
    """The bytes and type of the material's upload (the caller has checked who may see it)."""
    row = state.provided_materials(application).get(material_code)
    if row is None or row.via != "upload":
        raise NotFound("该材料没有上传的文件")
    if row.storage_key is None:  # deleted under retention (app/retention); the row still says what it was
        raise UploadNotFound()
    return upload_storage().open(row.storage_key), row.content_type


# -------------------------------------------------------------------------------------------------- submit


def submit(application: Application, actor: Actor, *, idempotency_key: str | None) -> dict:
    """Submit the draft (module docstring); the answer of POST …/submit."""
    scope = f"submit:{application.id}"
    if idempotency_key:
        replay = idempotency.replayed(actor, idempotency_key, scope)
        if replay is not None:
            return replay
    if application.status != "draft":
        raise lifecycle.invalid_transition(application.status, "submit")
    columns, event = state.prepare_submission(application, actor)
    try:
        lifecycle.transition(application, "submit", actor, detail=event, values=columns, commit=False)
    except lifecycle.InvalidTransition:
        # A retry with the same key that raced the first one: it lost the update, so answer what the first did.
        replay = idempotency.replayed(actor, idempotency_key, scope) if idempotency_key else None
        if replay is None:
            raise
        return replay
    answer = state.submission_answer(application)
    return idempotency.commit_once(actor, idempotency_key, scope, answer)


def resubmit(application: Application, actor: Actor) -> dict:
    """Answer a supplement request (补正): the same checks as a submission, then back to the reviewer."""
    if application.status != "supplement_requested":
        raise lifecycle.invalid_transition(application.status, "resubmit")
    matter = catalogue.get_matter(application.matter_code)
    detail = state.checked_for_submission(application, matter, state.citizen_of(application), actor)
    snapshot, values = state.frozen(application, detail["materials"], detail["eligibility"])
    now = utcnow()
    paused_since = _last_event_time(application, "supplement_requested") or now
    columns = {
        "submission": snapshot,
        "submission_values_encrypted": vault().encrypt(json.dumps(values, ensure_ascii=False)),
        "supplement_items": None,
        **lifecycle.extend_due_dates(application, paused_since, now),
    }
    lifecycle.transition(application, "resubmit", actor, detail={"materials": {
        item["code"]: item["status"] for item in detail["materials"]}}, values=columns)
    return state.submission_answer(application)


def withdraw(application: Application, actor: Actor, reason: str | None) -> dict:
    """Withdraw the application before it is accepted."""
    lifecycle.transition(application, "withdraw", actor, detail={"reason": bool(reason)},
                         values={"decided_at": utcnow()})
    return state.submission_answer(application)


def _last_event_time(application: Application, kind: str) -> datetime | None:
    return db.session.scalar(sa.select(sa.func.max(ApplicationEvent.at))
                             .where(ApplicationEvent.application_id == application.id, ApplicationEvent.kind == kind))


