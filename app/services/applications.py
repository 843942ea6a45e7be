"""Applications, from the draft to the prefill: consent receipts, shared-data prefill, material statuses.

The lifecycle starts here (BRIEF §4): a citizen creates a draft for a matter; the draft says which shared
data elements its materials need and for what purpose; the citizen consents to exactly that; the prefill then
fetches exactly those elements (minimisation) from the active connectors in parallel, logs every call in the
data-access chain, keeps the values (encrypted) with their provenance on the application, and tells for
each material whether shared data satisfied it.

Consent: valid for one application, one exact element set and one purpose text, until withdrawn. When the
matter is edited so that its element set (or name, hence purpose) changes, the old receipt no longer
matches and the next prefill answers 403 `consent_required` until the citizen consents again. A new consent
for the same application supersedes the previous one.

Critical data: a matter marks a `shared_data` evidence option `critical` when the application cannot go on
without it. If one of its elements is not `ok` after the prefill, the prefill is blocked with a clear error
naming the connector and bureau (`PrefillBlocked`) instead of returning empty fields: 503 when the bureau
failed, timed out or no connector provides the element (try again later), 422 when the bureau's registry has
no such record (trying again will not help).

Material statuses after a prefill (`material_status`), best first:
- `satisfied`: every element of one of its `shared_data` options came back `ok`;
- `available`: it offers face verification, an e-licence or a written promise (告知承诺). These are not
  checked yet — face verification and e-licences arrive with later issues — so they count as satisfiable
  without documents, as the catalogue's 零材料 flag does;
- `needs_upload`: only an upload is left; `in_person`: only a visit is left;
- `unavailable`: its only options are shared data, which did not come back (e.g. the bureau holds no record);
- `awaiting_prefill`: before the first prefill, for materials shared data may satisfy.
`zero_material` is true when every required material is `satisfied` or `available`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from app.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.models.application import Application, ApplicationEvent, ConsentReceipt
from app.models.base import utcnow
from app.models.citizen import Citizen
from app.models.matter import Material, Matter
from app.pii import vault
from app.services import catalogue, data_access
from app.services.runtime import runtime
from shared_data.client import CallContext
from shared_data.prefill import FieldResult

APPLICATION_ID_CHARS = frozenset("0123456789abcdef")
SATISFIABLE_WITHOUT_DOCUMENTS = ("face", "e_licence", "promise")
BUREAU_FAULTS = ("failed", "timeout", "skipped")
FIELD_STATUS_LABELS = {"failed": "查询失败", "timeout": "查询超时", "skipped": "暂无可用的数据提供方",
                       "not_found": "未查到记录"}


class ConsentRequired(Forbidden):
    error, message = "consent_required", "请先授权查询本事项所需的共享数据"


class ConsentMismatch(ValidationFailed):
    error, message = "consent_mismatch", "授权内容与本事项所需的数据或用途不一致"


class RealNameRequired(Forbidden):
    error, message = "real_name_required", "请先完成实名认证"


class NotADraft(Conflict):
    error, message = "invalid_transition", "申请已提交,不能再预填"


class PrefillBlocked(AppError):
    """A critical element could not be fetched: the prefill stops with the connector named."""

    status_code, error, message = 503, "prefill_blocked", "关键数据暂时无法获取,请稍后再试"


def acting_user(citizen: Citizen) -> str:
    """The pseudonymous id of the citizen acting (agents, a later issue, act as `staff:<id>`)."""
    return f"citizen:{citizen.id}"


# ------------------------------------------------------------------------------------------ what a matter needs


def shared_elements(matter: Matter) -> list[str]:
    """The data elements of the matter's `shared_data` evidence options, in first-use order."""
    seen: dict[str, None] = {}
    for material in matter.materials:
        for option in material.evidence:
            if option["type"] == "shared_data":
                for name in option.get("elements", ()):
                    seen.setdefault(name, None)
    return list(seen)


def critical_elements(matter: Matter) -> list[str]:
    """The elements of the `shared_data` options the matter marks critical."""
    seen: dict[str, None] = {}
    for material in matter.materials:
        for option in material.evidence:
            if option["type"] == "shared_data" and option.get("critical"):
                for name in option.get("elements", ()):
                    seen.setdefault(name, None)
    return list(seen)


def purpose_for(matter: Matter) -> str:
    """The purpose text the citizen consents to and every call carries (in Chinese, naming the matter)."""
    return (
        f"办理“{matter.name}”(事项编码 {matter.code}):向数据提供部门查询申请材料所需的数据,"
        "用于预填申请表和核验申请材料"
    )


def consent_required(matter: Matter) -> dict:
    """What the citizen must consent to before a prefill: {elements, purpose}."""
    return {"elements": shared_elements(matter), "purpose": purpose_for(matter)}


# ----------------------------------------------------------------------------------------------- drafts


def create_draft(citizen: Citizen, matter_code: str) -> Application:
    """A draft application of the citizen for the matter; 404 for an unknown matter."""
    matter = catalogue.get_matter(matter_code)
    application = Application(
        citizen_id=citizen.id,
        matter_code=matter.code,
        matter_version=matter.version,
        status="draft",
        acting_user=acting_user(citizen),
        form={},
    )
    application.events.append(ApplicationEvent(kind="created", actor=acting_user(citizen),
                                                detail={"matter_version": matter.version}))
    db.session.add(application)
    db.session.commit()
    return application


def own_application(application_id: str, citizen: Citizen) -> Application:
    """The citizen's application with this id; anyone else's (or none) is a 404."""
    application = None
    if len(application_id) == 32 and set(application_id) <= APPLICATION_ID_CHARS:
        application = db.session.get(Application, application_id)
    if application is None or application.citizen_id != citizen.id:
        raise NotFound("申请不存在")
    return application


def list_applications(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> dict:
    """A page of the citizen's applications, newest first."""
    condition = Application.citizen_id == citizen.id
    total = db.session.scalar(sa.select(sa.func.count(Application.id)).where(condition))
    rows = db.session.scalars(
        sa.select(Application).where(condition)
        .order_by(Application.created_at.desc(), Application.id)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    names = _matter_names({row.matter_code for row in rows})
    items = [{**_summary(row), "matter_name": names.get(row.matter_code, row.matter_code)} for row in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def draft_view(application: Application) -> dict:
    """The answer to creating a draft: its materials and the consent its prefill needs."""
    matter = catalogue.get_matter(application.matter_code)
    return {
        **_summary(application),
        "matter_name": matter.name,
        "materials": [material_status(material, None) for material in matter.materials],
        "consent_required": consent_required(matter),
    }


def detail_view(application: Application) -> dict:
    """The application with its timeline, current consent and last prefill (values decrypted for the owner)."""
    matter = catalogue.get_matter(application.matter_code)
    fields = _stored_fields(application)
    materials = [material_status(material, fields) for material in matter.materials]
    prefill = None
    if fields is not None:
        prefill = {
            "fields": {name: field for name, field in fields.items()},
            "materials": materials,
            "zero_material": zero_material(matter, materials),
            "prefilled_at": application.prefilled_at,
        }
    required = consent_required(matter)
    return {
        **_summary(application),
        "matter_name": matter.name,
        "materials": materials,
        "consent_required": required,
        "consent": _valid_consent(application, required),
        "prefill": prefill,
        "timeline": [
            {"at": event.at, "kind": event.kind, "actor": _actor_kind(event.actor), "detail": event.detail}
            for event in application.events
        ],
    }


def _add_event(application: Application, kind: str, citizen: Citizen, detail: dict) -> None:
    # Added to the session, not appended to `application.events`: that would load the whole timeline first.
    db.session.add(ApplicationEvent(application_id=application.id, kind=kind, actor=acting_user(citizen),
                                    detail=detail))


def _summary(application: Application) -> dict:
    return {
        "id": application.id,
        "status": application.status,
        "matter_code": application.matter_code,
        "matter_version": application.matter_version,
        "created_at": application.created_at,
        "updated_at": application.updated_at,
    }


def _matter_names(codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(db.session.execute(sa.select(Matter.code, Matter.name).where(Matter.code.in_(codes))).all())


def _actor_kind(actor: str) -> str:
    return "citizen" if actor.startswith("citizen:") else "agent" if actor.startswith("staff:") else actor


# ---------------------------------------------------------------------------------------------- consent


def grant_consent(application: Application, citizen: Citizen, elements: Sequence[str], purpose: str
                  ) -> ConsentReceipt:
    """Record the citizen's consent; it must name exactly the required elements and the purpose (422)."""
    matter = catalogue.get_matter(application.matter_code)
    required = consent_required(matter)
    errors = {}
    if len(set(elements)) != len(elements) or set(elements) != set(required["elements"]):
        missing = sorted(set(required["elements"]) - set(elements))
        extra = sorted(set(elements) - set(required["elements"]))
        errors["elements"] = [f"缺少:{name}" for name in missing] + [f"多余:{name}" for name in extra] or [
            "数据项重复"]
    if purpose != required["purpose"]:
        errors["purpose"] = ["用途须与申请草稿中的 consent_required.purpose 一致"]
    if errors:
        raise ConsentMismatch(errors={"json": errors})
    now = utcnow()
    db.session.execute(
        sa.update(ConsentReceipt)
        .where(ConsentReceipt.application_id == application.id, ConsentReceipt.withdrawn_at.is_(None),
               ConsentReceipt.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    receipt = ConsentReceipt(
        citizen_id=citizen.id,
        application_id=application.id,
        matter_code=matter.code,
        elements=sorted(required["elements"]),
        purpose=purpose,
        acting_user=acting_user(citizen),
        granted_at=now,
    )
    db.session.add(receipt)
    db.session.flush()
    _add_event(application, "consent_granted", citizen,
               {"receipt_id": receipt.id, "elements": len(receipt.elements)})
    db.session.commit()
    return receipt


def list_consents(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> dict:
    """A page of the citizen's consent receipts, newest first (withdrawn and superseded ones included)."""
    condition = ConsentReceipt.citizen_id == citizen.id
    total = db.session.scalar(sa.select(sa.func.count(ConsentReceipt.id)).where(condition))
    items = db.session.scalars(
        sa.select(ConsentReceipt).where(condition)
        .order_by(ConsentReceipt.granted_at.desc(), ConsentReceipt.id)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def withdraw_consent(receipt_id: str, citizen: Citizen) -> ConsentReceipt:
    """Withdraw one of the citizen's receipts (idempotent); no further prefill rests on it."""
    receipt = None
    if len(receipt_id) == 32 and set(receipt_id) <= APPLICATION_ID_CHARS:
        receipt = db.session.get(ConsentReceipt, receipt_id)
    if receipt is None or receipt.citizen_id != citizen.id:
        raise NotFound("授权记录不存在")
    if receipt.withdrawn_at is None:
        receipt.withdrawn_at = utcnow()
        db.session.add(ApplicationEvent(application_id=receipt.application_id, kind="consent_withdrawn",
                                        actor=acting_user(citizen), detail={"receipt_id": receipt.id}))
        db.session.commit()
    return receipt


def _valid_consent(application: Application, required: Mapping) -> ConsentReceipt | None:
    """The application's active receipt if it covers exactly the required elements and purpose."""
    receipts = db.session.scalars(
        sa.select(ConsentReceipt).where(
            ConsentReceipt.application_id == application.id,
            ConsentReceipt.withdrawn_at.is_(None),
            ConsentReceipt.superseded_at.is_(None),
        )
    ).all()
    wanted = sorted(required["elements"])
    return next((r for r in receipts if sorted(r.elements) == wanted and r.purpose == required["purpose"]), None)


# ---------------------------------------------------------------------------------------------- prefill


def prefill(application: Application, citizen: Citizen, *, request_id: str) -> dict:
    """Fetch the matter's shared data for the application (module docstring); the answer of POST …/prefill."""
    if application.status != "draft":
        raise NotADraft()
    matter = catalogue.get_matter(application.matter_code)
    required = consent_required(matter)
    needed = required["elements"]
    receipt = _valid_consent(application, required)
    if needed and receipt is None:
        raise ConsentRequired()
    if not citizen.id_number_encrypted:
        raise RealNameRequired()
    fields: dict[str, dict] = {}
    if needed:
        id_number = vault().decrypt(citizen.id_number_encrypted)
        context = CallContext(purpose=receipt.purpose, application_id=application.id,
                              acting_user=acting_user(citizen), request_id=request_id)
        outcomes = []
        _end_read_transaction()
        result = runtime().prefill(id_number, needed, context, on_call=outcomes.append)
        data_access.record_calls(outcomes, id_number=id_number, context=context, application_id=application.id)
        fields = {name: _field(result.fields[name]) for name in needed}
        _raise_if_blocked(application, citizen, matter, fields)
    materials = [material_status(material, fields) for material in matter.materials]
    _store(application, citizen, fields)
    return {
        "application_id": application.id,
        "fields": fields,
        "materials": materials,
        "zero_material": zero_material(matter, materials),
        "prefilled_at": application.prefilled_at,
    }


def _end_read_transaction() -> None:
    """Give the database connection back before waiting on bureaus for up to the deadline.

    Nothing is written yet, so committing only ends the read transaction; what the session loaded stays loaded
    (not expired), so nothing is read again afterwards. It also means no write of ours is pending when the
    log appends in its own transaction (SQLite allows one writer at a time).
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def _field(result: FieldResult) -> dict:
    return {**result.to_dict(), "error": result.error}


def _raise_if_blocked(application: Application, citizen: Citizen, matter: Matter, fields: dict) -> None:
    blocking = {name: fields[name] for name in critical_elements(matter) if fields[name]["status"] != "ok"}
    if not blocking:
        return
    detail = {
        name: {"status": field["status"],
               "connector": field["source"]["connector"] if field["source"] else None,
               "bureau": field["source"]["bureau"] if field["source"] else None}
        for name, field in blocking.items()
    }
    _add_event(application, "prefill_blocked", citizen,
               {"fields": {name: {"status": d["status"], "connector": d["connector"]} for name, d in detail.items()}})
    db.session.commit()
    upstream = any(d["status"] in BUREAU_FAULTS for d in detail.values())
    name, first = next(iter(detail.items()))
    source = f"{first['bureau']}({first['connector']})" if first["connector"] else "数据提供方"
    label = FIELD_STATUS_LABELS.get(first["status"], first["status"])
    if upstream:
        message = f"办理本事项必需的数据“{name}”暂时无法从{source}获取({label}),请稍后再试"
    else:
        message = f"{source}没有您的“{name}”记录({label}),本事项无法在线办理,请咨询办理部门"
    raise PrefillBlocked(message, errors={"prefill": detail}, status_code=503 if upstream else 422)


def _store(application: Application, citizen: Citizen, fields: Mapping[str, dict]) -> None:
    """Keep the prefill on the application: provenance in clear, values encrypted (they are personal data)."""
    values = {name: field["value"] for name, field in fields.items() if field["value"] is not None}
    application.prefill = {name: {k: v for k, v in field.items() if k != "value"} for name, field in fields.items()}
    application.prefill_values_encrypted = vault().encrypt(json.dumps(values, ensure_ascii=False))
    application.prefilled_at = utcnow()
    counts: dict[str, int] = {}
    for field in fields.values():
        counts[field["status"]] = counts.get(field["status"], 0) + 1
    _add_event(application, "prefilled", citizen, {"fields": counts})
    db.session.commit()


def _stored_fields(application: Application) -> dict[str, dict] | None:
    if application.prefill is None:
        return None
    encrypted = application.prefill_values_encrypted
    values = json.loads(vault().decrypt(encrypted)) if encrypted else {}
    return {name: {**meta, "value": values.get(name)} for name, meta in application.prefill.items()}


# -------------------------------------------------------------------------------------------- materials


def material_status(material: Material, fields: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """How the material stands (module docstring); `fields` None before the first prefill."""
    options = material.evidence
    types = [option["type"] for option in options]
    shared = [option for option in options if option["type"] == "shared_data"]
    status, via = "unavailable", None
    if shared and fields is None:
        status, via = "awaiting_prefill", "shared_data"
    elif any(all((fields or {}).get(name, {}).get("status") == "ok" for name in option.get("elements", ()))
             for option in shared):
        status, via = "satisfied", "shared_data"
    elif kind := next((t for t in types if t in SATISFIABLE_WITHOUT_DOCUMENTS), None):
        status, via = "available", kind
    elif "upload" in types:
        status, via = "needs_upload", "upload"
    elif "in_person" in types:
        status, via = "in_person", "in_person"
    return {"code": material.code, "name": material.name, "required": material.required, "status": status,
            "via": via}


def zero_material(matter: Matter, materials: Sequence[Mapping]) -> bool:
    """No required material needs an upload or a visit (or is unavailable) for this citizen."""
    required = {material.code for material in matter.materials if material.required}
    return all(item["status"] in ("satisfied", "available") for item in materials if item["code"] in required)
