"""Applications, from the draft to the prefill: drafts, consent receipts, shared-data prefill.

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

Material statuses (`app/applications/services/materials.py`): each material is met by shared data, an e-licence, face
verification, an upload, a signed promise or a deferral, or says what is left (`available`, `needs_upload`,
`in_person`, `unavailable`, `awaiting_prefill`); `zero_material` is true when no required material needs a
document from this citizen. The elements fetched are those of the `shared_data` options and of the
`e_licence` options (the licence's data comes from the issuing bureau), minus the name and ID number a bound
real name already holds.

Everything after the prefill (form, materials, submission, review) is in `submission.py`, `review.py` and
`lifecycle.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime

import sqlalchemy as sa

from app.accounts.models import Citizen
from app.applications.models import Application, ApplicationEvent, ConsentReceipt
from app.applications.services import agents, lifecycle, materials
from app.applications.services import submitting as submission
from app.applications.services.lifecycle import Actor
from app.catalogue import services as catalogue
from app.catalogue.models import Matter
from app.connectors.services import data_access
from app.connectors.services.runtime import runtime
from app.errors import AppError, AssuranceRequired, Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.pii import vault
from app.web.paging import page_of
from shared_data.client import CallContext
from shared_data.prefill import FieldResult

SATISFIABLE_WITHOUT_DOCUMENTS = ("face", "e_licence", "promise")
BUREAU_FAULTS = ("failed", "timeout", "skipped")
FIELD_STATUS_LABELS = {"failed": "查询失败", "timeout": "查询超时", "skipped": "暂无可用的数据提供方",
                       "not_found": "未查到记录"}


class ConsentRequired(Forbidden):
    error, message = "consent_required", "请先授权查询本事项所需的共享数据"


class ConsentMismatch(ValidationFailed):
    error, message = "consent_mismatch", "授权内容与本事项所需的数据或用途不一致"




class NotADraft(Conflict):
    error, message = "invalid_transition", "申请已提交,不能再预填"


class PrefillBlocked(AppError):
    """A critical element could not be fetched: the prefill stops with the connector named."""

    status_code, error, message = 503, "prefill_blocked", "关键数据暂时无法获取,请稍后再试"


# ------------------------------------------------------------------------------------------ what a matter needs


def shared_elements(matter: Matter) -> list[str]:
    """The data elements the prefill fetches, in first-use order: those of the matter's `shared_data` options,
    and those of its `e_licence` options (the licence's data comes from the issuing bureau's connector) except
    the name and ID number a bound real name already holds."""
    seen: dict[str, None] = {}
    for material in matter.materials:
        for option in material.evidence:
            if option["type"] == "shared_data" or option["type"] == "e_licence":
                for name in option.get("elements", ()):
                    if option["type"] == "shared_data" or name not in materials.REAL_NAME_ELEMENTS:
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


def apply(actor: Actor, matter_code: str, on_behalf_of: str | None) -> Application:
    """A draft for the calling citizen, or for the citizen `on_behalf_of` who authorised the calling agent for
    this matter (403 `agent_not_authorised` otherwise); 404 for an unknown matter."""
    if actor.kind == "agent":
        if not on_behalf_of:
            raise ValidationFailed.field("on_behalf_of", "代办时须填写委托人的编号")
        catalogue.get_matter(matter_code)
        citizen = agents.principal_for(actor.id, on_behalf_of, matter_code)
    else:
        if on_behalf_of:
            raise ValidationFailed.field("on_behalf_of", "本人办理时不需要填写此字段")
        citizen = db.session.get(Citizen, actor.id)
    return create_draft(citizen, matter_code, actor)


def create_draft(citizen: Citizen, matter_code: str, actor: Actor | None = None) -> Application:
    """A draft application of the citizen for the matter, by the citizen or an authorised agent; 404 for an
    unknown matter."""
    application = new_draft(citizen, catalogue.get_matter(matter_code), actor or Actor.of(citizen))
    db.session.commit()
    return application


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
    return submission.applicant_application(application_id, Actor.of(citizen))


def list_applications(citizen: Citizen, *, page: int = 1, per_page: int = 20, status: str | None = None) -> dict:
    """A page of the citizen's applications, newest first."""
    condition = Application.citizen_id == citizen.id
    if status:
        condition = condition & (Application.status == status)
    rows, total = page_of(
        sa.select(Application).where(condition).order_by(Application.created_at.desc(), Application.id),
        page=page, per_page=per_page,
    )
    names = _matter_names({row.matter_code for row in rows})
    items = [{**_summary(row), "matter_name": names.get(row.matter_code, row.matter_code)} for row in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def draft_view(application: Application) -> dict:
    """The answer to creating a draft: its materials and the consent its prefill needs."""
    matter = catalogue.get_matter(application.matter_code)
    citizen = submission.citizen_of(application)
    return {
        **_summary(application),
        "matter_name": matter.name,
        "materials": submission.current_materials(application, matter, citizen),
        "consent_required": consent_required(matter),
    }


def detail_view(application: Application) -> dict:
    """The application with its timeline, consent, last prefill, deadlines and decision.

    Values (prefill, form, submission) are decrypted for the applicant and the reviewing department only;
    callers have checked the viewer may see this application.
    """
    matter = catalogue.get_matter(application.matter_code)
    citizen = submission.citizen_of(application)
    fields = _stored_fields(application)
    materials_now = submission.current_materials(application, matter, citizen)
    prefill = None
    if fields is not None:
        prefill = {
            "fields": fields,
            "materials": materials_now,
            "zero_material": materials.zero_material(matter, materials_now),
            "prefilled_at": application.prefilled_at,
        }
    required = consent_required(matter)
    frozen = submission.thawed_submission(application)
    submitted = None
    if frozen is not None:
        values = json.loads(vault().decrypt(application.submission_values_encrypted))
        submitted = {
            "fields": {name: {**meta, "value": values.get(name)} for name, meta in frozen["fields"].items()},
            "form": {name: values.get(name) for name in frozen["form_fields"]},
            "materials": frozen["materials"],
        }
    delivery = dict(application.delivery) if application.delivery else None
    if delivery and application.delivery_address_encrypted:
        delivery["recipient"] = json.loads(vault().decrypt(application.delivery_address_encrypted))
    return {
        **_summary(application),
        "matter_name": matter.name,
        "department_code": application.department_code,
        "materials": frozen["materials"] if frozen and application.status not in lifecycle.EDITABLE
        else materials_now,
        "consent_required": required,
        "consent": _valid_consent(application, required),
        "prefill": prefill,
        "form": submission.form_values(application),
        "submission": submitted,
        "zero_material": application.zero_material if frozen else materials.zero_material(matter, materials_now),
        "submitted_at": application.submitted_at,
        "accepted_at": application.accepted_at,
        "decided_at": application.decided_at,
        "delivered_at": application.delivered_at,
        "promised_due_on": application.promised_due_on,
        "legal_due_on": application.legal_due_on,
        "overdue": lifecycle.is_overdue(application),
        "supplement_items": application.supplement_items,
        "result": application.result,
        "rejection_reason": application.rejection_reason,
        "delivery": delivery,
        "acting_user": lifecycle.actor_kind(application.acting_user),
        "timeline": lifecycle.timeline(application),
    }


def _add_event(application: Application, kind: str, who: Citizen | Actor, detail: dict) -> None:
    # Added to the session, not appended to `application.events`: that would load the whole timeline first.
    lifecycle.add_event(application, kind, who if isinstance(who, Actor) else Actor.of(who), detail)


def _summary(application: Application) -> dict:
    return {
        "id": application.id,
        "status": application.status,
        "status_label": lifecycle.STATUS_LABELS.get(application.status, application.status),
        "matter_code": application.matter_code,
        "matter_version": application.matter_version,
        "created_at": application.created_at,
        "updated_at": application.updated_at,
        "submitted_at": application.submitted_at,
        "promised_due_on": application.promised_due_on,
        "overdue": lifecycle.is_overdue(application),
        "bundle_application_id": application.bundle_application_id,
    }


def _matter_names(codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(db.session.execute(sa.select(Matter.code, Matter.name).where(Matter.code.in_(codes))).all())


# ---------------------------------------------------------------------------------------------- consent


def grant_consent(application: Application, citizen: Citizen, elements: Sequence[str], purpose: str
                  ) -> ConsentReceipt:
    """Record the citizen's consent; it must name exactly the required elements and the purpose (422)."""
    matter = catalogue.get_matter(application.matter_code)
    required = consent_required(matter)
    check_consent(required, elements, purpose)
    receipt = record_consent(application, citizen, required)
    db.session.commit()
    return receipt


def check_consent(required: Mapping, elements: Sequence[str], purpose: str) -> None:
    """422 `consent_mismatch` unless `elements` and `purpose` are exactly what is required."""
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


def record_consent(application: Application, citizen: Citizen, required: Mapping) -> ConsentReceipt:
    """Add the receipt for `required` (superseding the application's previous one); the caller commits."""
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
        matter_code=application.matter_code,
        elements=sorted(required["elements"]),
        purpose=required["purpose"],
        acting_user=Actor.of(citizen).ref,
        granted_at=now,
    )
    db.session.add(receipt)
    db.session.flush()
    _add_event(application, "consent_granted", citizen,
               {"receipt_id": receipt.id, "elements": len(receipt.elements)})
    return receipt


def list_consents(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> dict:
    """A page of the citizen's consent receipts, newest first (withdrawn and superseded ones included)."""
    condition = ConsentReceipt.citizen_id == citizen.id
    items, total = page_of(
        sa.select(ConsentReceipt).where(condition).order_by(ConsentReceipt.granted_at.desc(), ConsentReceipt.id),
        page=page, per_page=per_page,
    )
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def withdraw_consent(receipt_id: str, citizen: Citizen) -> ConsentReceipt:
    """Withdraw one of the citizen's receipts (idempotent); no further prefill rests on it."""
    receipt = None
    if is_issued_id(receipt_id):
        receipt = db.session.get(ConsentReceipt, receipt_id)
    if receipt is None or receipt.citizen_id != citizen.id:
        raise NotFound("授权记录不存在")
    if receipt.withdrawn_at is None:
        receipt.withdrawn_at = utcnow()
        db.session.add(ApplicationEvent(application_id=receipt.application_id, kind="consent_withdrawn",
                                        actor=Actor.of(citizen).ref, detail={"receipt_id": receipt.id}))
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


def prefill(application: Application, citizen: Citizen, *, request_id: str, actor: Actor | None = None) -> dict:
    """Fetch the matter's shared data for the application (module docstring); the answer of POST …/prefill.

    `actor` is who asks: the citizen (the default) or an agent they authorised; bureaus and the data-access
    log are told who it was.
    """
    return prefill_many([application], citizen, request_id=request_id, actor=actor)[0]


def prefill_many(drafts: Sequence[Application], citizen: Citizen, *, request_id: str, actor: Actor | None = None,
                 purpose: str | None = None, log_as: str | None = None) -> list[dict]:
    """Prefill several drafts of one citizen with one fetch: each connector is called once for the union of the
    elements the drafts need (一件事 bundles), and each draft keeps its own.

    `purpose` and `log_as` (the id the calls are logged under) default to the single draft's receipt and id.
    """
    actor = actor or Actor.of(citizen)
    plans = []
    for application in drafts:
        if application.status != "draft":
            raise NotADraft()
        matter = catalogue.get_matter(application.matter_code)
        required = consent_required(matter)
        receipt = _valid_consent(application, required)
        if required["elements"] and receipt is None:
            raise ConsentRequired()
        plans.append((application, matter, required["elements"], receipt))
    if not citizen.real_name_verified:
        # The views already require `face`; an agent's principal must hold it too (their authorisation does).
        raise AssuranceRequired(citizen.assurance)
    union = list(dict.fromkeys(name for _, _, needed, _ in plans for name in needed))
    fetched: dict[str, dict] = {}
    answers = []
    with ExitStack() as logged:
        if union:
            first = next(plan for plan in plans if plan[2])
            id_number = vault().decrypt(citizen.id_number_encrypted)
            context = CallContext(purpose=purpose or first[3].purpose, application_id=log_as or first[0].id,
                                  acting_user=actor.ref, request_id=request_id)
            outcomes = []
            _end_read_transaction()
            result = runtime().prefill(id_number, union, context, on_call=outcomes.append)
            # The calls are logged in the transaction of the next commit, the blocked event's or the snapshot's:
            # never after what uses their data, and no commit of their own. Should anything fail before that
            # commit, they are logged on their own all the same.
            logged.enter_context(data_access.calls_logged(outcomes, id_number=id_number, context=context,
                                                          application_id=context.application_id))
            fetched = {name: _field(result.fields[name]) for name in union}
            for application, matter, needed, _ in plans:
                _raise_if_blocked(application, actor, matter, {name: fetched[name] for name in needed})
        for application, matter, needed, _ in plans:
            fields = {name: fetched[name] for name in needed}
            statuses = submission.current_materials(application, matter, citizen, fields)
            # The answer is built before the commit: the commit expires what the session loaded, and reading the
            # application or matter afterwards would load them again (three more queries).
            answers.append({
                "application_id": application.id,
                "fields": fields,
                "materials": statuses,
                "zero_material": materials.zero_material(matter, statuses),
                "prefilled_at": _store(application, actor, fields),
            })
        db.session.commit()
    return answers


def _end_read_transaction() -> None:
    """Give the database connection back before waiting on bureaus for up to the deadline.

    Nothing is written yet, so committing only ends the read transaction; what the session loaded stays loaded
    (not expired), so nothing is read again afterwards. The transaction that follows the calls is then a new
    one, which the data-access log shares with the snapshot (on SQLite it must start with the log's write lock).
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def _field(result: FieldResult) -> dict:
    return {**result.to_dict(), "error": result.error}


def _raise_if_blocked(application: Application, citizen: Citizen | Actor, matter: Matter, fields: dict) -> None:
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


def _store(application: Application, citizen: Citizen | Actor, fields: Mapping[str, dict]) -> datetime:
    """Keep the prefill on the application: provenance in clear, values encrypted (they are personal data).

    Returns the time stored as `prefilled_at`; the caller commits.
    """
    values = {name: field["value"] for name, field in fields.items() if field["value"] is not None}
    application.prefill = {name: {k: v for k, v in field.items() if k != "value"} for name, field in fields.items()}
    application.prefill_values_encrypted = vault().encrypt(json.dumps(values, ensure_ascii=False))
    application.prefilled_at = prefilled_at = utcnow()
    counts: dict[str, int] = {}
    for field in fields.values():
        counts[field["status"]] = counts.get(field["status"], 0) + 1
    _add_event(application, "prefilled", citizen, {"fields": counts})
    return prefilled_at


def _stored_fields(application: Application) -> dict[str, dict] | None:
    if application.prefill is None:
        return None
    encrypted = application.prefill_values_encrypted
    values = json.loads(vault().decrypt(encrypted)) if encrypted else {}
    return {name: {**meta, "value": values.get(name)} for name, meta in application.prefill.items()}
