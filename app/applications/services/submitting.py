"""The applicant's side of an application after the prefill: the form, the materials, submit, withdraw.

Locked fields: a prefilled value from an authoritative source (trust level A/B, `locked: true`) is what the
registry says; the applicant cannot change it. Every form update and every (re)submission compares the form
with the values the connectors returned and answers 409 `prefill_locked` naming the fields that differ, the
way Open Forms and FormSG protect verified data.

Submission: with an `Idempotency-Key` header a retry (a flaky phone network) gets the first answer again and
changes nothing; the key is recorded in the same transaction as the status change. The submitted application
keeps a snapshot of the values (encrypted) and their provenance and material statuses (in clear), so later
registry changes or prefills do not alter what was submitted. A matter that offers face verification needs
the citizen's face-verified window open at submission (403 `face_verification_required`) unless an authorised
agent submits on the citizen's behalf — the agent is the non-face path the 2025 rules require, and the
timeline says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Citizen
from app.applications.models import (
    FORM_FIELD_PATTERN,
    MAX_FORM_FIELD_NAME,
    MAX_FORM_LIST,
    MAX_FORM_TEXT,
    Application,
    ApplicationMaterial,
    IdempotencyRecord,
    PromiseBreach,
)
from app.applications.services import agents, lifecycle, materials
from app.applications.services.lifecycle import Actor
from app.applications.storage import check_app_upload, upload_storage
from app.applications.workdays import work_calendar
from app.catalogue import services as catalogue
from app.catalogue.models import Material, Matter
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import utcnow
from app.pii import vault

FIELD_NAME = re.compile(FORM_FIELD_PATTERN)


class PrefillLocked(Conflict):
    error, message = "prefill_locked", "该信息来自权威数据源,不能修改"


class FaceVerificationRequired(Forbidden):
    error, message = "face_verification_required", "请先完成刷脸核验后再提交"


class MaterialsMissing(ValidationFailed):
    error, message = "materials_missing", "申请材料不齐全"


class EvidenceNotOffered(ValidationFailed):
    error, message = "evidence_not_offered", "该材料不接受这种提交方式"


class PromiseNotAllowed(Forbidden):
    error, message = "promise_not_allowed", "您有虚假承诺记录,不能再以告知承诺方式提交材料,请上传或到窗口提交"


class IdempotencyKeyReused(ValidationFailed):
    error, message = "idempotency_key_reused", "该 Idempotency-Key 已用于其他请求,请为新的请求生成新的 Key"


# ------------------------------------------------------------------------------------------------ access


def applicant_application(application_id: str, actor: Actor) -> Application:
    """The application if the actor is its citizen or an agent they authorised for it; otherwise a 404."""
    application = lifecycle.find(application_id)
    if application is not None:
        if actor.kind == "citizen" and application.citizen_id == actor.id:
            return application
        if actor.kind == "agent" and agents.authorised(actor.id, application.citizen_id, application.matter_code):
            return application
    raise NotFound("申请不存在")


def citizen_of(application: Application) -> Citizen:
    return db.session.get(Citizen, application.citizen_id)


def _require_editable(application: Application, action: str = "修改") -> None:
    if application.status not in lifecycle.EDITABLE:
        label = lifecycle.STATUS_LABELS.get(application.status, application.status)
        raise lifecycle.InvalidTransition(f"申请当前为“{label}”状态,不能{action}")


# -------------------------------------------------------------------------------------------------- values


def prefill_values(application: Application) -> dict[str, Any]:
    encrypted = application.prefill_values_encrypted
    return json.loads(vault().decrypt(encrypted)) if encrypted else {}


def form_values(application: Application) -> dict[str, Any]:
    encrypted = application.form_values_encrypted
    return json.loads(vault().decrypt(encrypted)) if encrypted else {}


def _locked_conflicts(application: Application, form: Mapping[str, Any]) -> list[str]:
    """Form fields that would change a locked prefilled value."""
    meta = application.prefill or {}
    values = prefill_values(application)
    return sorted(name for name, value in form.items()
                  if meta.get(name, {}).get("locked") and meta[name].get("status") == "ok"
                  and value != values.get(name))


def _raise_if_locked(application: Application, form: Mapping[str, Any]) -> None:
    conflicts = _locked_conflicts(application, form)
    if conflicts:
        raise PrefillLocked(
            f"以下信息来自权威数据源,不能修改:{'、'.join(conflicts)}",
            errors={"json": {"fields": {name: ["与共享数据返回的值不一致,该字段已锁定"] for name in conflicts}}},
        )


def _check_form(fields: Mapping[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        if not FIELD_NAME.fullmatch(name) or len(name) > MAX_FORM_FIELD_NAME:
            errors[name] = ["字段名须为小写字母、数字、下划线和点组成"]
        elif not _plain(value):
            errors[name] = [f"取值须为文字(不超过 {MAX_FORM_TEXT} 字)、数字、布尔值或它们的列表"]
    if errors:
        raise ValidationFailed(errors={"json": {"fields": errors}})


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_FORM_TEXT
    if isinstance(value, list) and depth == 0:
        return len(value) <= MAX_FORM_LIST and all(_plain(item, 1) for item in value)
    return False


def update_form(application: Application, actor: Actor, fields: Mapping[str, Any]) -> dict:
    """Replace the form's fields (PUT); locked prefilled values cannot change (409 `prefill_locked`)."""
    check_form_update(application, fields)
    write_form(application, actor, fields)
    db.session.commit()
    return {"application_id": application.id, "fields": dict(fields), "updated_at": application.updated_at}


def check_form_update(application: Application, fields: Mapping[str, Any]) -> None:
    """409 unless the application is editable and no locked value would change; 422 for malformed fields."""
    _require_editable(application)
    _check_form(fields)
    _raise_if_locked(application, fields)


def write_form(application: Application, actor: Actor, fields: Mapping[str, Any]) -> None:
    """Store the form (values encrypted) with its timeline event; the caller has checked it and commits."""
    application.form = {"fields": sorted(fields)}
    application.form_values_encrypted = vault().encrypt(json.dumps(dict(fields), ensure_ascii=False))
    application.updated_at = utcnow()
    lifecycle.add_event(application, "form_updated", actor, {"fields": len(fields)})


# ----------------------------------------------------------------------------------------------- materials


def provided_materials(application: Application) -> dict[str, ApplicationMaterial]:
    rows = db.session.scalars(sa.select(ApplicationMaterial)
                              .where(ApplicationMaterial.application_id == application.id)).all()
    return {row.material_code: row for row in rows}


def current_materials(application: Application, matter: Matter, citizen: Citizen,
                      fields: Mapping[str, Mapping] | None = None) -> list[dict]:
    """The live material statuses of an application being prepared, from `fields` (a prefill's, just fetched)
    or the stored prefill."""
    return materials.statuses(
        matter, fields if fields is not None else application.prefill, provided=provided_materials(application),
        face_ok=citizen.face_verified(), real_name=citizen.real_name_verified,
    )


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
    _require_editable(application, "上传材料")
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
    _require_editable(application, "签署承诺")
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
    _require_editable(application, "申请容缺")
    matter = catalogue.get_matter(application.matter_code)
    material = _material(matter, material_code)
    if not material.deferrable:
        raise EvidenceNotOffered("该材料不适用容缺受理,须在提交前提供")
    due_on = work_calendar().add_working_days(utcnow(), current_app.config["DEFERRAL_WORKING_DAYS"])
    row = _provide(application, actor, material, "material_deferred", {"due_on": due_on.isoformat()},
                   via="deferred", due_on=due_on)
    return _provision_view(application, material, row)


def _provision_view(application: Application, material: Material, row: ApplicationMaterial) -> dict:
    citizen = citizen_of(application)
    status = materials.material_status(material, application.prefill, provided=row,
                                       face_ok=citizen.face_verified(), real_name=citizen.real_name_verified)
    return {"application_id": application.id, **status}


def open_upload(application: Application, material_code: str) -> tuple[bytes, str]:
    """The bytes and type of the material's upload (the caller has checked who may see it)."""
    row = provided_materials(application).get(material_code)
    if row is None or row.via != "upload":
        raise NotFound("该材料没有上传的文件")
    return upload_storage().open(row.storage_key), row.content_type


# -------------------------------------------------------------------------------------------------- submit


def submit(application: Application, actor: Actor, *, idempotency_key: str | None) -> dict:
    """Submit the draft (module docstring); the answer of POST …/submit."""
    scope = f"submit:{application.id}"
    if idempotency_key:
        replay = replayed(actor, idempotency_key, scope)
        if replay is not None:
            return replay
    if application.status != "draft":
        raise lifecycle.invalid_transition(application.status, "submit")
    columns, event = prepare_submission(application, actor)
    try:
        lifecycle.transition(application, "submit", actor, detail=event, values=columns, commit=False)
    except lifecycle.InvalidTransition:
        # A retry with the same key that raced the first one: it lost the update, so answer what the first did.
        replay = replayed(actor, idempotency_key, scope) if idempotency_key else None
        if replay is None:
            raise
        return replay
    answer = submission_answer(application)
    return commit_once(actor, idempotency_key, scope, answer)


def prepare_submission(application: Application, actor: Actor) -> tuple[dict, dict]:
    """Check a draft can be submitted (403/409/422 otherwise) → (the columns to set, the timeline detail)."""
    matter = catalogue.get_matter(application.matter_code)
    detail = _checked_for_submission(application, matter, citizen_of(application), actor)
    now = utcnow()
    snapshot, values = _snapshot(application, detail["materials"])
    zero = materials.zero_material(matter, detail["materials"])
    columns = {
        "submitted_at": now,
        "submission": snapshot,
        "submission_values_encrypted": vault().encrypt(json.dumps(values, ensure_ascii=False)),
        "zero_material": zero,
        **lifecycle.due_dates(now, matter.promised_time_limit_days, matter.legal_time_limit_days),
    }
    event = {"zero_material": zero, "face_verified": detail["face_verified"],
             "materials": {item["code"]: item["status"] for item in detail["materials"]}}
    return columns, event


def commit_once(actor: Actor, idempotency_key: str | None, scope: str, answer: dict) -> dict:
    """Commit the pending change together with the key's record, so a retry finds one or the other, never half."""
    if idempotency_key:
        db.session.add(IdempotencyRecord(principal=actor.ref, key=idempotency_key, scope=scope, status_code=200,
                                         response=_jsonable(answer)))
    try:
        db.session.commit()
    except IntegrityError:
        # The same key raced in from a second connection and won: answer what it answered.
        db.session.rollback()
        replay = replayed(actor, idempotency_key, scope) if idempotency_key else None
        if replay is None:
            raise
        return replay
    return answer


def resubmit(application: Application, actor: Actor) -> dict:
    """Answer a supplement request (补正): the same checks as a submission, then back to the reviewer."""
    if application.status != "supplement_requested":
        raise lifecycle.invalid_transition(application.status, "resubmit")
    matter = catalogue.get_matter(application.matter_code)
    detail = _checked_for_submission(application, matter, citizen_of(application), actor)
    snapshot, values = _snapshot(application, detail["materials"])
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
    return submission_answer(application)


def withdraw(application: Application, actor: Actor, reason: str | None) -> dict:
    """Withdraw the application before it is accepted."""
    lifecycle.transition(application, "withdraw", actor, detail={"reason": bool(reason)},
                         values={"decided_at": utcnow()})
    return submission_answer(application)


def _checked_for_submission(application: Application, matter: Matter, citizen: Citizen, actor: Actor) -> dict:
    """Face window, locked fields and materials, in the order a citizen can act on them."""
    face_ok = citizen.face_verified()
    if matter.face and not face_ok and actor.kind == "citizen":
        raise FaceVerificationRequired(
            f"“{matter.name}”须本人刷脸核验,请先完成刷脸核验(有效期内提交);不使用人脸识别的可{_non_face(matter)}"
        )
    _raise_if_locked(application, form_values(application))
    statuses = current_materials(application, matter, citizen)
    todo = materials.missing(matter, statuses)
    if todo:
        raise MaterialsMissing(f"还有 {len(todo)} 项申请材料未提供", errors={"materials": todo})
    return {"materials": statuses, "face_verified": face_ok}


def _non_face(matter: Matter) -> str:
    return "委托帮办代办或到窗口办理" if not matter.non_face_path else "按办事指南的非刷脸方式办理"


def _snapshot(application: Application, statuses: list[dict]) -> tuple[dict, dict]:
    values = {**prefill_values(application), **form_values(application)}
    snapshot = {
        "fields": application.prefill or {},
        "form_fields": sorted(form_values(application)),
        "materials": [_jsonable(item) for item in statuses],
        "frozen_at": utcnow().isoformat(),
    }
    return snapshot, values


def _last_event_time(application: Application, kind: str) -> datetime | None:
    from app.applications.models import ApplicationEvent

    return db.session.scalar(sa.select(sa.func.max(ApplicationEvent.at))
                             .where(ApplicationEvent.application_id == application.id, ApplicationEvent.kind == kind))


def submission_answer(application: Application) -> dict:
    """{id, status, …} after a submission-side transition."""
    return {
        "id": application.id,
        "status": application.status,
        "matter_code": application.matter_code,
        "submitted_at": application.submitted_at,
        "zero_material": application.zero_material,
        "promised_due_on": application.promised_due_on,
        "legal_due_on": application.legal_due_on,
    }


def replayed(actor: Actor, key: str, scope: str) -> dict | None:
    """The stored answer of an earlier request with this key (422 when it was for something else)."""
    record = db.session.scalar(sa.select(IdempotencyRecord).where(IdempotencyRecord.principal == actor.ref,
                                                                  IdempotencyRecord.key == key))
    if record is None:
        return None
    if record.scope != scope:
        raise IdempotencyKeyReused()
    return _thaw(record.response)


DATETIME_KEYS = frozenset({"submitted_at", "uploaded_at", "promised_at"})
DATE_KEYS = frozenset({"promised_due_on", "legal_due_on", "due_on"})


def _jsonable(value: Any) -> Any:
    """Dates and times as ISO strings (JSON columns hold no datetime objects)."""
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _thaw(value: Any) -> Any:
    """The inverse of `_jsonable` for the keys that hold dates and times."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(item, str) and key in DATETIME_KEYS:
                out[key] = datetime.fromisoformat(item)
            elif isinstance(item, str) and key in DATE_KEYS:
                out[key] = date.fromisoformat(item)
            else:
                out[key] = _thaw(item)
        return out
    if isinstance(value, list):
        return [_thaw(item) for item in value]
    return value


def thawed_submission(application: Application) -> dict | None:
    """The submission snapshot with its dates as date objects again (for the API schemas)."""
    return _thaw(application.submission) if application.submission else None
