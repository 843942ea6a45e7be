"""一件事一次办: one bundle application fanned out to one child application per matter.

The citizen fills in one form, gives one consent and gets one prefill for the whole life event; each child is
an ordinary application of its matter, routed to its own department and decided there, in parallel with the
others (BRIEF: 一件事, 并联审批). What is shared is done once:

- consent: the citizen consents once to the union of the children's elements, for the bundle's purpose; a
  receipt is recorded for each child with exactly its own elements and purpose, so each child's prefill rests on
  a receipt of its own, and withdrawing a child's receipt stops that child only;
- prefill: each connector is called once for the union of the elements it provides (the calls are logged once,
  under the bundle application's id), and each child keeps the fields its matter needs;
- form: the fields go to every child still editable; a locked value in any child refuses the whole update;
- submit: every child is checked first, then all are submitted in one transaction (all or none), with an
  `Idempotency-Key` like a single application.

The bundle's status aggregates its children: `draft` (none submitted yet), `in_progress`, `completed` (every
child approved or delivered), `rejected` (all decided and at least one rejected), `withdrawn` (all withdrawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from app.accounts.models import Citizen
from app.applications.models import Application, BundleApplication
from app.applications.services import consent as consents
from app.applications.services import idempotency, lifecycle, state
from app.applications.services import prefill as prefilling
from app.applications.services.lifecycle import Actor
from app.catalogue import services as catalogue
from app.catalogue.models import Bundle
from app.errors import AppError, NotFound
from app.extensions import db
from app.modelbase import is_issued_id
from app.web.paging import Page, page_of

# ------------------------------------------------------------------------------------------------ access


def _bundle(code: str) -> Bundle:
    bundle = db.session.scalar(sa.select(Bundle).where(Bundle.code == code)) if len(code) <= 64 else None
    if bundle is None:
        raise NotFound("一件事不存在")
    return bundle


def applicant_bundle(bundle_application_id: str, actor: Actor) -> BundleApplication:
    """The bundle application if the actor is its citizen (agents act on the children); otherwise a 404."""
    row = None
    if is_issued_id(bundle_application_id):
        row = db.session.get(BundleApplication, bundle_application_id)
    if row is None or actor.kind != "citizen" or row.citizen_id != actor.id:
        raise NotFound("一件事申请不存在")
    return row


def children(row: BundleApplication) -> list[Application]:
    return list(db.session.scalars(
        sa.select(Application).where(Application.bundle_application_id == row.id)
        .order_by(Application.created_at, Application.id)
    ))


# ------------------------------------------------------------------------------------------------ create


def create(citizen: Citizen, bundle_code: str) -> BundleApplication:
    """The bundle application and one draft per matter, in one transaction."""
    bundle = _bundle(bundle_code)
    actor = Actor.of(citizen)
    row = BundleApplication(citizen_id=citizen.id, bundle_code=bundle.code, acting_user=actor.ref)
    db.session.add(row)
    db.session.flush()
    for matter in bundle.matters:
        child = state.new_draft(citizen, catalogue.get_matter(matter.code), actor)
        child.bundle_application_id = row.id
    db.session.commit()
    return row


def consent_required(row: BundleApplication, kids: Sequence[Application] | None = None) -> dict:
    """The union of the children's elements and the bundle's purpose: what the one consent covers."""
    bundle = _bundle(row.bundle_code)
    seen: dict[str, None] = {}
    for child in kids if kids is not None else children(row):
        for name in consents.consent_required(catalogue.get_matter(child.matter_code))["elements"]:
            seen.setdefault(name, None)
    names = "、".join(matter.name for matter in bundle.matters)
    purpose = (f"办理一件事“{bundle.name}”(包括{names}):向数据提供部门查询申请材料所需的数据,"
               "用于预填各事项的申请表和核验申请材料")
    return {"elements": list(seen), "purpose": purpose}


def status_of(statuses: Sequence[str]) -> str:
    """The bundle's status from its children's (module docstring)."""
    states = set(statuses)
    if not states or states == {"draft"}:
        return "draft"
    if states == {"withdrawn"}:
        return "withdrawn"
    if states <= {"approved", "delivered"}:
        return "completed"
    if states <= lifecycle.DECIDED and "rejected" in states:
        return "rejected"
    return "in_progress"


def view(row: BundleApplication) -> dict:
    """The bundle application with its children and the consent it needs."""
    bundle = _bundle(row.bundle_code)
    kids = children(row)
    names = {matter.code: matter.name for matter in bundle.matters}
    return {
        "id": row.id,
        "bundle_code": bundle.code,
        "bundle_name": bundle.name,
        "status": status_of([child.status for child in kids]),
        "created_at": row.created_at,
        "children": [{
            "id": child.id,
            "matter_code": child.matter_code,
            "matter_name": names.get(child.matter_code, child.matter_code),
            "department_code": child.department_code,
            "status": child.status,
            "status_label": lifecycle.STATUS_LABELS[child.status],
            "promised_due_on": child.promised_due_on,
        } for child in kids],
        "consent_required": consent_required(row, kids),
    }


def list_for(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> Page:
    condition = BundleApplication.citizen_id == citizen.id
    return page_of(
        sa.select(BundleApplication).where(condition)
        .order_by(BundleApplication.created_at.desc(), BundleApplication.id),
        page=page, per_page=per_page,
    ).map(view)


# ------------------------------------------------------------------------------------ consent, form, submit


def consent(row: BundleApplication, citizen: Citizen, elements: Sequence[str], purpose: str) -> dict:
    """One consent for the bundle → a receipt per child with exactly its own elements and purpose."""
    kids = [child for child in children(row) if child.status == "draft"]
    consents.check_consent(consent_required(row, kids), elements, purpose)
    receipts = []
    for child in kids:
        required = consents.consent_required(catalogue.get_matter(child.matter_code))
        if required["elements"]:
            receipts.append(consents.record_consent(child, citizen, required))
    db.session.commit()
    return {"bundle_application_id": row.id, "elements": list(elements), "purpose": purpose,
            "receipts": receipts}


def prefill(row: BundleApplication, citizen: Citizen, *, request_id: str) -> dict:
    """One prefill for every draft child: each connector called once for the union of elements."""
    kids = [child for child in children(row) if child.status == "draft"]
    result = prefilling.prefill_many(kids, citizen, actor=Actor.of(citizen), request_id=request_id,
                                     purpose=consent_required(row, kids)["purpose"], log_as=row.id)
    fields: dict[str, Any] = {}
    for answer in result:
        fields.update(answer["fields"])
    return {
        "bundle_application_id": row.id,
        "fields": fields,
        "children": [{"id": answer["application_id"], "matter_code": child.matter_code,
                      "materials": answer["materials"], "zero_material": answer["zero_material"],
                      "eligibility": answer["eligibility"]}
                     for child, answer in zip(kids, result, strict=True)],
        "zero_material": all(answer["zero_material"] for answer in result),
        # 智能预审 of the whole: one child not eligible makes the bundle so (its submission would be refused).
        "eligibility_result": _overall([answer["eligibility"]["result"] for answer in result]),
    }


def _overall(results: list[str]) -> str:
    if "not_eligible" in results:
        return "not_eligible"
    return "unknown" if "unknown" in results else "eligible"


def update_form(row: BundleApplication, actor: Actor, fields: Mapping[str, Any]) -> dict:
    """The shared form, filled once: written to every editable child, or to none if any child refuses."""
    kids = [child for child in children(row) if child.status in lifecycle.EDITABLE]
    for child in kids:
        state.check_form_update(child, fields)
    for child in kids:
        state.write_form(child, actor, fields)
    db.session.commit()
    return {"bundle_application_id": row.id, "fields": dict(fields),
            "children": [child.id for child in kids]}


def submit(row: BundleApplication, actor: Actor, *, idempotency_key: str | None) -> dict:
    """Submit every draft child at once (all or none); a retry with the same key gets the same answer."""
    scope = f"bundle-submit:{row.id}"
    if idempotency_key:
        replay = idempotency.replayed(actor, idempotency_key, scope)
        if replay is not None:
            return replay
    kids = [child for child in children(row) if child.status == "draft"]
    if not kids:
        raise lifecycle.InvalidTransition("这件一件事申请已经提交过了")
    prepared = []
    for child in kids:
        try:
            prepared.append((child, *state.prepare_submission(child, actor)))
        except AppError as exc:
            # Say which of the bundle's matters is not ready.
            exc.message = f"“{catalogue.get_matter(child.matter_code).name}”:{exc.message}"
            raise
    for child, columns, event in prepared:
        lifecycle.transition(child, "submit", actor, detail={**event, "bundle_application_id": row.id},
                             values=columns, commit=False)
    answer = {"id": row.id, "status": "in_progress",
              "children": [state.submission_answer(child) for child in kids]}
    return idempotency.commit_once(actor, idempotency_key, scope, answer)
