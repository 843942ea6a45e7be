"""免申即享: citizens who opt in are told when the shared data shows they meet a proactive matter's conditions,
with a draft application ready for them.

The opt-in is its own consent (separate from any application's): it names the matters (each marked
`proactive` in the catalogue) and exactly the data elements their conditions read, for one purpose text; it
needs an identity proven by face, like every other use of personal data, and is revocable at any time. A new
opt-in supersedes the citizen's previous one.

The periodic task `applications.proactive` (every PROACTIVE_RUN_SECONDS) evaluates **only** active opt-ins:
nobody is asked about without one. Each opt-in is re-read just before its bureaus are called, so a withdrawal
stops it at once, even during a pass. The calls go through the same engine as a prefill and are logged in the
data-access chain the same way (purpose: the opt-in's, acting user `system`, no application yet); only the
consented elements a matter's conditions still read are asked for. A citizen found eligible for a matter gets
a draft for it (timeline: `proactive_eligible`) and one subscription message, once per opt-in and matter (a
unique notice row). The draft then goes the usual way: consent to its prefill, prefill, submit.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Citizen
from app.applications.models import ProactiveNotice, ProactiveOptIn
from app.applications.services import consent, eligibility, lifecycle, notices, state
from app.applications.services.lifecycle import Actor
from app.applications.services.materials import REAL_NAME_ELEMENTS
from app.catalogue.models import Matter
from app.connectors.services import data_access
from app.connectors.services.runtime import runtime
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.notifications.services import enqueue
from app.pii import vault
from app.web.paging import Page, page_of
from shared_data.client import CallContext

PURPOSE = ("免申即享:定期向数据提供部门查询您选择的事项的受理条件所需的数据,"
           "符合条件时主动告知您并备好申请草稿;可随时撤回")
SYSTEM = Actor("system")
BATCH = 200


class NotProactive(ValidationFailed):
    error, message = "not_proactive", "所选事项不是免申即享事项"


def proactive_matters() -> list[Matter]:
    """Every matter marked proactive, by code."""
    return db.session.scalars(sa.select(Matter).where(Matter.proactive.is_(True)).order_by(Matter.code)).all()


def fetched_elements(matter: Matter) -> list[str]:
    """What the check asks bureaus for, for this matter: its conditions' elements but the identity's own."""
    return [name for name in matter.condition_elements if name not in REAL_NAME_ELEMENTS]


def offer() -> dict:
    """What a citizen can opt in to: each proactive matter with the elements its conditions read, the purpose."""
    return {"matters": [{"code": m.code, "name": m.name, "elements": fetched_elements(m)}
                        for m in proactive_matters()],
            "purpose": PURPOSE}


def required_for(matter_codes: Sequence[str]) -> dict:
    """The opt-in consent for these matters: {matter_codes, elements, purpose}; 422 `not_proactive` naming any
    code that is not a proactive matter (unknown codes included: nothing to opt in to)."""
    known = {m.code: m for m in proactive_matters()}
    wrong = [code for code in matter_codes if code not in known]
    if wrong:
        raise NotProactive(f"以下事项不是免申即享事项,不能选择:{'、'.join(wrong)}",
                           errors={"json": {"matter_codes": [f"不是免申即享事项:{code}" for code in wrong]}})
    elements: dict[str, None] = {}
    for code in matter_codes:
        for name in fetched_elements(known[code]):
            elements.setdefault(name, None)
    return {"matter_codes": sorted(set(matter_codes)), "elements": list(elements), "purpose": PURPOSE}


def opt_in(citizen: Citizen, matter_codes: Sequence[str], elements: Sequence[str], purpose: str
           ) -> ProactiveOptIn:
    """Record the opt-in (exactly the elements and purpose `required_for` the matters: 422 otherwise),
    superseding the citizen's previous one."""
    if len(set(matter_codes)) != len(matter_codes):
        raise ValidationFailed.field("matter_codes", "事项重复")
    required = required_for(matter_codes)
    consent.check_consent(required, elements, purpose)
    now = utcnow()
    db.session.execute(
        sa.update(ProactiveOptIn)
        .where(ProactiveOptIn.citizen_id == citizen.id, ProactiveOptIn.withdrawn_at.is_(None),
               ProactiveOptIn.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    row = ProactiveOptIn(citizen_id=citizen.id, matter_codes=required["matter_codes"],
                         elements=sorted(required["elements"]), purpose=purpose, granted_at=now)
    db.session.add(row)
    db.session.commit()
    return row


def list_opt_ins(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> Page:
    """The citizen's opt-ins, newest first (active, withdrawn and superseded)."""
    return page_of(
        sa.select(ProactiveOptIn).where(ProactiveOptIn.citizen_id == citizen.id)
        .order_by(ProactiveOptIn.granted_at.desc(), ProactiveOptIn.id),
        page=page, per_page=per_page,
    )


def withdraw(citizen: Citizen, opt_in_id: str) -> ProactiveOptIn:
    """Withdraw one of the citizen's opt-ins (idempotent): it is not evaluated again, from now on."""
    row = db.session.get(ProactiveOptIn, opt_in_id) if is_issued_id(opt_in_id) else None
    if row is None or row.citizen_id != citizen.id:
        raise NotFound("免申即享授权不存在")
    if row.withdrawn_at is None:
        row.withdrawn_at = utcnow()
        db.session.commit()
    return row


# ------------------------------------------------------------------------------------------------ the pass


def run(*, request_id: str = "proactive") -> dict[str, int]:
    """One pass over the active opt-ins (module docstring) → counts: evaluated, notified, skipped."""
    counts = {"evaluated": 0, "notified": 0, "skipped": 0}
    ids = db.session.scalars(
        sa.select(ProactiveOptIn.id).where(ProactiveOptIn.withdrawn_at.is_(None),
                                           ProactiveOptIn.superseded_at.is_(None))
        .order_by(ProactiveOptIn.last_evaluated_at.is_not(None), ProactiveOptIn.last_evaluated_at,
                  ProactiveOptIn.id).limit(BATCH)
    ).all()
    db.session.commit()
    for opt_in_id in ids:
        outcome = _evaluate(opt_in_id, request_id)
        counts["evaluated" if outcome is not None else "skipped"] += 1
        counts["notified"] += outcome or 0
    return counts


def _evaluate(opt_in_id: str, request_id: str) -> int | None:
    """Evaluate one opt-in if it is still active and its citizen's identity proven → matters notified."""
    row = db.session.get(ProactiveOptIn, opt_in_id, populate_existing=True)
    citizen = db.session.get(Citizen, row.citizen_id) if row is not None else None
    if row is None or row.status != "active" or citizen is None or not citizen.real_name_verified:
        db.session.rollback()
        return None
    told = set(db.session.scalars(sa.select(ProactiveNotice.matter_code)
                                  .where(ProactiveNotice.opt_in_id == row.id)))
    matters = [m for m in proactive_matters() if m.code in row.matter_codes and m.code not in told]
    consented = set(row.elements)
    wanted = list(dict.fromkeys(n for m in matters for n in fetched_elements(m) if n in consented))
    fields: dict[str, dict] = {}
    now = utcnow()
    if wanted:
        id_number = vault().decrypt(citizen.id_number_encrypted)
        # Bureaus are told the opt-in the call is made under (no application exists yet; the log records none).
        context = CallContext(purpose=row.purpose, application_id=f"proactive-{row.id}", acting_user=SYSTEM.ref,
                              request_id=request_id)
        outcomes: list = []
        db.session.commit()  # no transaction held open while the bureaus answer
        result = runtime().prefill(id_number, wanted, context, on_call=outcomes.append)
        with data_access.calls_logged(outcomes, id_number=id_number, context=context, application_id=None):
            fields = {name: {**result.fields[name].to_dict()} for name in wanted}
            row = db.session.get(ProactiveOptIn, opt_in_id, populate_existing=True)
            row.last_evaluated_at = now
            notified = 0
            if row.status == "active":  # withdrawn while the bureaus answered: nothing is used
                for matter in matters:
                    notified += _tell_if_eligible(row, citizen, matter, fields)
            db.session.commit()
        return notified
    row.last_evaluated_at = now
    db.session.commit()
    return 0


def _tell_if_eligible(row: ProactiveOptIn, citizen: Citizen, matter: Matter, fields: dict) -> int:
    """A draft, a notice and a message when every checked condition of `matter` is met; the caller commits."""
    checked = eligibility.evaluate(matter, {n: f for n, f in fields.items() if n in fetched_elements(matter)},
                                   citizen)
    if checked["result"] != "eligible":
        return 0
    try:
        with db.session.begin_nested():
            draft = state.new_draft(citizen, matter, Actor.of(citizen))
            lifecycle.add_event(draft, "proactive_eligible", SYSTEM, {
                "opt_in_id": row.id, "conditions": {str(c["index"]): c["result"] for c in checked["conditions"]}})
            db.session.add(ProactiveNotice(opt_in_id=row.id, matter_code=matter.code, application_id=draft.id))
            db.session.flush()
    except IntegrityError:  # another pass told them first
        return 0
    enqueue(citizen_id=citizen.id, application_id=draft.id, kind="proactive_eligible",
            data=notices.proactive_message(draft, matter.name))
    return 1
