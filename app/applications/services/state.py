"""An application's state, owned here: who may reach it, its decrypted values, its material statuses and the
frozen submission. The phase modules (drafting, submitting, review, bundles, agents, evaluations) read and
change an application through this module (and the status machine, lifecycle.py); they never call each other.

Access: an application is reached by its citizen or by an agent the citizen authorised for its matter
(帮办代办); anyone else gets a 404, so ids of others' applications cannot be probed. Values (the prefill, the
form, the submission) are personal data, encrypted at rest (app/pii.py) and decrypted here only.

The frozen submission: at submit (and at a resubmission after 补正) the prefill's provenance, the form's field
names and the material statuses are copied into `application.submission`, the values into
`submission_values_encrypted`, so later registry changes or prefills do not alter what was submitted. A
matter that offers face verification needs the citizen's face-verified window open at submission (403
`face_verification_required`) unless an authorised agent submits on the citizen's behalf — the agent is the
non-face path the 2025 rules require.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from app.accounts.models import Citizen
from app.applications.models import (
    FORM_FIELD_PATTERN,
    MAX_FORM_FIELD_NAME,
    MAX_FORM_LIST,
    MAX_FORM_TEXT,
    AgentAuthorisation,
    Application,
    ApplicationMaterial,
)
from app.applications.services import eligibility, lifecycle, materials
from app.applications.services.lifecycle import Actor
from app.catalogue import services as catalogue
from app.catalogue.models import Matter
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.pii import vault

FIELD_NAME = re.compile(FORM_FIELD_PATTERN)


class PrefillLocked(Conflict):
    error, message = "prefill_locked", "该信息来自权威数据源,不能修改"


class FaceVerificationRequired(Forbidden):
    error, message = "face_verification_required", "请先完成刷脸核验后再提交"


class MaterialsMissing(ValidationFailed):
    error, message = "materials_missing", "申请材料不齐全"


def applicant_application(application_id: str, actor: Actor) -> Application:
    """The application if the actor is its citizen or an agent they authorised for it; otherwise a 404."""
    application = lifecycle.find(application_id)
    if application is not None:
        if actor.kind == "citizen" and application.citizen_id == actor.id:
            return application
        if actor.kind == "agent" and authorised(actor.id, application.citizen_id, application.matter_code):
            return application
    raise NotFound("申请不存在")


def citizen_of(application: Application) -> Citizen:
    return db.session.get(Citizen, application.citizen_id)


def require_editable(application: Application, action: str = "修改") -> None:
    if application.status not in lifecycle.EDITABLE:
        label = lifecycle.STATUS_LABELS.get(application.status, application.status)
        raise lifecycle.InvalidTransition(f"申请当前为“{label}”状态,不能{action}")


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


def raise_if_locked(application: Application, form: Mapping[str, Any]) -> None:
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


def check_form_update(application: Application, fields: Mapping[str, Any]) -> None:
    """409 unless the application is editable and no locked value would change; 422 for malformed fields."""
    require_editable(application)
    _check_form(fields)
    raise_if_locked(application, fields)


def write_form(application: Application, actor: Actor, fields: Mapping[str, Any]) -> None:
    """Store the form (values encrypted) with its timeline event; the caller has checked it and commits."""
    application.form = {"fields": sorted(fields)}
    application.form_values_encrypted = vault().encrypt(json.dumps(dict(fields), ensure_ascii=False))
    application.updated_at = utcnow()
    lifecycle.add_event(application, "form_updated", actor, {"fields": len(fields)})


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


def prepare_submission(application: Application, actor: Actor) -> tuple[dict, dict]:
    """Check a draft can be submitted (403/409/422 otherwise) → (the columns to set, the timeline detail)."""
    matter = catalogue.get_matter(application.matter_code)
    detail = checked_for_submission(application, matter, citizen_of(application), actor)
    now = utcnow()
    snapshot, values = frozen(application, detail["materials"], detail["eligibility"])
    zero = materials.zero_material(matter, detail["materials"])
    columns = {
        "submitted_at": now,
        "submission": snapshot,
        "submission_values_encrypted": vault().encrypt(json.dumps(values, ensure_ascii=False)),
        "zero_material": zero,
        "eligibility_result": detail["eligibility"]["result"],
        **lifecycle.due_dates(now, matter.promised_time_limit_days, matter.legal_time_limit_days),
    }
    event = {"zero_material": zero, "face_verified": detail["face_verified"],
             "materials": {item["code"]: item["status"] for item in detail["materials"]},
             "eligibility": detail["eligibility"]["result"], "conditions_to_decide": detail["conditions_to_decide"]}
    return columns, event


def checked_for_submission(application: Application, matter: Matter, citizen: Citizen, actor: Actor) -> dict:
    """Face window, locked fields and materials, in the order a citizen can act on them."""
    face_ok = citizen.face_verified()
    if matter.face and not face_ok and actor.kind == "citizen":
        raise FaceVerificationRequired(
            f"“{matter.name}”须本人刷脸核验,请先完成刷脸核验(有效期内提交);不使用人脸识别的可{_non_face(matter)}"
        )
    raise_if_locked(application, form_values(application))
    # 智能预审, again, on what the stored prefill holds (a registry changed since is not looked at: what is
    # submitted is what was checked); conditions come before materials, as nothing provided would help.
    checked = eligibility.evaluate(matter, stored_fields(application), citizen)
    try:
        to_decide = eligibility.check_submittable(checked)
    except (eligibility.ConditionsNotMet, eligibility.ConditionsUnverified) as refused:
        # On the timeline (and so in the statistics: refusals for conditions), without values.
        lifecycle.add_event(application, "conditions_refused", actor, {
            "error": refused.error, "conditions": [c["index"] for c in refused.errors["conditions"]]})
        db.session.commit()
        raise
    statuses = current_materials(application, matter, citizen)
    todo = materials.missing(matter, statuses)
    if todo:
        raise MaterialsMissing(f"还有 {len(todo)} 项申请材料未提供", errors={"materials": todo})
    return {"materials": statuses, "face_verified": face_ok, "eligibility": checked, "conditions_to_decide": to_decide}


def _non_face(matter: Matter) -> str:
    return "委托帮办代办或到窗口办理" if not matter.non_face_path else "按办事指南的非刷脸方式办理"


def frozen(application: Application, statuses: list[dict], checked: dict) -> tuple[dict, dict]:
    """The snapshot (clear: provenance, material statuses, the pre-check without values) and the values to
    encrypt (the fields', the form's, and the full pre-check under `eligibility.VALUES_KEY`)."""
    values = {**prefill_values(application), **form_values(application), eligibility.VALUES_KEY: checked}
    snapshot = {
        "fields": application.prefill or {},
        "form_fields": sorted(form_values(application)),
        "materials": [jsonable(item) for item in statuses],
        "eligibility": eligibility.without_values(checked),
        "frozen_at": utcnow().isoformat(),
    }
    return snapshot, values


def submitted_eligibility(application: Application, values: Mapping[str, Any] | None = None) -> dict | None:
    """The pre-check frozen at submission, with its values where they are kept (not after retention erased
    them) and each reviewer decision; None for an application submitted before pre-checks."""
    stored = (application.submission or {}).get("eligibility")
    if stored is None:
        return None
    if values is None:
        encrypted = application.submission_values_encrypted
        values = json.loads(vault().decrypt(encrypted)) if encrypted else {}
    checked = values.get(eligibility.VALUES_KEY) or stored
    decisions = application.condition_decisions or {}
    notes = json.loads(vault().decrypt(application.condition_notes_encrypted)) \
        if application.condition_notes_encrypted else {}
    conditions = []
    for condition in checked["conditions"]:
        decision = decisions.get(str(condition["index"]))
        if decision is not None:
            decision = {**decision, "by": "reviewer", "note": notes.get(str(condition["index"]))}
        conditions.append({**condition, "decision": decision})
    return {"result": checked["result"], "conditions": conditions}


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


DATETIME_KEYS = frozenset({"submitted_at", "uploaded_at", "promised_at"})


DATE_KEYS = frozenset({"promised_due_on", "legal_due_on", "due_on"})


def jsonable(value: Any) -> Any:
    """Dates and times as ISO strings (JSON columns hold no datetime objects)."""
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def thaw(value: Any) -> Any:
    """The inverse of `jsonable` for the keys that hold dates and times."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(item, str) and key in DATETIME_KEYS:
                out[key] = datetime.fromisoformat(item)
            elif isinstance(item, str) and key in DATE_KEYS:
                out[key] = date.fromisoformat(item)
            else:
                out[key] = thaw(item)
        return out
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


def thawed_submission(application: Application) -> dict | None:
    """The submission snapshot with its dates as date objects again (for the API schemas)."""
    return thaw(application.submission) if application.submission else None


def new_draft(citizen: Citizen, matter: Matter, actor: Actor) -> Application:
    """Add a draft for the matter, routed to its department, with its `created` event; the caller commits."""
    application = Application(
        citizen_id=citizen.id,
        matter_code=matter.code,
        matter_version=matter.version,
        department_code=matter.department_code,
        status="draft",
        acting_user=actor.ref,
        agent_id=actor.id if actor.kind == "agent" else None,
        form={},
    )
    db.session.add(application)
    db.session.flush()
    lifecycle.add_event(application, "created", actor, {"matter_version": matter.version})
    return application


def own_application(application_id: str, citizen: Citizen) -> Application:
    """The citizen's application with this id; anyone else's (or none) is a 404."""
    return applicant_application(application_id, Actor.of(citizen))


def stored_fields(application: Application) -> dict[str, dict] | None:
    if application.prefill is None:
        return None
    encrypted = application.prefill_values_encrypted
    values = json.loads(vault().decrypt(encrypted)) if encrypted else {}
    return {name: {**meta, "value": values.get(name)} for name, meta in application.prefill.items()}


class AgentNotAuthorised(Forbidden):
    error, message = "agent_not_authorised", "没有该群众对本事项的有效授权,不能代为办理"


def authorised(agent_id: str, citizen_id: str, matter_code: str, *, at: datetime | None = None) -> bool:
    """The citizen has a current, unrevoked authorisation of this agent for this matter.

    Only while the granting account holds the identity at `face`: an authorisation is the proven person's act
    (it moves with the identity on a 换绑), never a mere claim's.
    """
    at = at or utcnow()
    return db.session.scalar(
        sa.select(AgentAuthorisation.id).join(Citizen, Citizen.id == AgentAuthorisation.citizen_id).where(
            Citizen.assurance == "face",
            AgentAuthorisation.agent_id == agent_id,
            AgentAuthorisation.citizen_id == citizen_id,
            AgentAuthorisation.matter_code == matter_code,
            AgentAuthorisation.revoked_at.is_(None),
            AgentAuthorisation.valid_from <= at,
            AgentAuthorisation.valid_until > at,
        ).limit(1)
    ) is not None


def principal_for(agent_id: str, citizen_id: str, matter_code: str) -> Citizen:
    """The citizen an agent applies for, after checking the authorisation (403 `agent_not_authorised`)."""
    citizen = db.session.get(Citizen, citizen_id) if is_issued_id(citizen_id) else None
    if citizen is None or not authorised(agent_id, citizen.id, matter_code):
        raise AgentNotAuthorised()
    return citizen
