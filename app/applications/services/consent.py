"""Consent receipts (BRIEF §4): before a prefill the citizen consents to exactly the data elements the
matter's materials need, for one purpose text, for one application.

A receipt is valid until withdrawn. When the matter is edited so that its element set (or name, hence
purpose) changes, the old receipt no longer matches and the next prefill answers 403 `consent_required`
until the citizen consents again. A new consent for the same application supersedes the previous one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from app.accounts.models import Citizen
from app.applications.models import (
    Application,
    ApplicationEvent,
    ConsentReceipt,
)
from app.applications.services import lifecycle, materials
from app.applications.services.lifecycle import Actor
from app.catalogue import services as catalogue
from app.catalogue.models import Matter
from app.errors import Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.web.paging import Page, page_of


class ConsentRequired(Forbidden):
    error, message = "consent_required", "请先授权查询本事项所需的共享数据"


class ConsentMismatch(ValidationFailed):
    error, message = "consent_mismatch", "授权内容与本事项所需的数据或用途不一致"


def shared_elements(matter: Matter) -> list[str]:
    """The data elements the prefill fetches, in first-use order: those of the matter's `shared_data` options,
    those of its `e_licence` options (the licence's data comes from the issuing bureau's connector) and those
    its conditions read, except the name and ID number a bound real name already holds."""
    seen: dict[str, None] = {}
    for material in matter.materials:
        for option in material.evidence:
            if option["type"] == "shared_data" or option["type"] == "e_licence":
                for name in option.get("elements", ()):
                    if option["type"] == "shared_data" or name not in materials.REAL_NAME_ELEMENTS:
                        seen.setdefault(name, None)
    # The pre-check (智能预审) reads what the matter's conditions name: fetched with the rest, under the same
    # consent — except the name and ID number, which the identity proven by face already holds.
    for name in matter.condition_elements:
        if name not in materials.REAL_NAME_ELEMENTS:
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
        "用于预填申请表、核验申请材料和受理条件(智能预审)"
    )


def consent_required(matter: Matter) -> dict:
    """What the citizen must consent to before a prefill: {elements, purpose}."""
    return {"elements": shared_elements(matter), "purpose": purpose_for(matter)}


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
    lifecycle.add_event(application, "consent_granted", citizen,
                        {"receipt_id": receipt.id, "elements": len(receipt.elements)})
    return receipt


def list_consents(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> Page:
    """A page of the citizen's consent receipts, newest first (withdrawn and superseded ones included)."""
    condition = ConsentReceipt.citizen_id == citizen.id
    return page_of(
        sa.select(ConsentReceipt).where(condition).order_by(ConsentReceipt.granted_at.desc(), ConsentReceipt.id),
        page=page, per_page=per_page,
    )


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


def valid_consent(application: Application, required: Mapping) -> ConsentReceipt | None:
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
