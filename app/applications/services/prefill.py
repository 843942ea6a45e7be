"""The prefill: the matter's shared data fetched for a draft, exactly the consented elements (minimisation),
from the active connectors in parallel; every call logged in the data-access chain; the values kept
(encrypted) with their provenance on the application; each material told whether shared data satisfied it.

Critical data: a matter marks a `shared_data` evidence option `critical` when the application cannot go on
without it. If one of its elements is not `ok` after the prefill, the prefill is blocked with a clear error
naming the connector and bureau (`PrefillBlocked`) instead of returning empty fields: 503 when the bureau
failed, timed out or no connector provides the element (try again later), 422 when the bureau's registry has
no such record (trying again will not help).

一件事 bundles prefill several drafts with one fetch (`prefill_many`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime

from app.accounts.models import Citizen
from app.applications.models import (
    Application,
)
from app.applications.services import consent, eligibility, lifecycle, materials, state
from app.applications.services.lifecycle import Actor
from app.catalogue import services as catalogue
from app.catalogue.models import Matter
from app.connectors.services import data_access
from app.connectors.services.runtime import runtime
from app.errors import AppError, AssuranceRequired, Conflict
from app.extensions import db
from app.modelbase import utcnow
from app.pii import vault
from shared_data.client import CallContext
from shared_data.prefill import FieldResult

BUREAU_FAULTS = ("failed", "timeout", "skipped")


FIELD_STATUS_LABELS = {"failed": "查询失败", "timeout": "查询超时", "skipped": "暂无可用的数据提供方",
                       "not_found": "未查到记录"}


class NotADraft(Conflict):
    error, message = "invalid_transition", "申请已提交,不能再预填"


class PrefillBlocked(AppError):
    """A critical element could not be fetched: the prefill stops with the connector named."""

    status_code, error, message = 503, "prefill_blocked", "关键数据暂时无法获取,请稍后再试"


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
        required = consent.consent_required(matter)
        receipt = consent.valid_consent(application, required)
        if required["elements"] and receipt is None:
            raise consent.ConsentRequired()
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
                _raise_if_blocked(application, actor, matter, {name: fetched[name] for name in needed}, citizen)
        for application, matter, needed, _ in plans:
            fields = {name: fetched[name] for name in needed}
            statuses = state.current_materials(application, matter, citizen, fields)
            # The answer is built before the commit: the commit expires what the session loaded, and reading the
            # application or matter afterwards would load them again (three more queries).
            answers.append({
                "application_id": application.id,
                "fields": fields,
                "materials": statuses,
                "zero_material": materials.zero_material(matter, statuses),
                # 智能预审: the conditions over what was just fetched, with the values and provenance they used.
                "eligibility": (checked := eligibility.evaluate(matter, fields, citizen)),
                "prefilled_at": _store(application, actor, fields, checked),
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


def _raise_if_blocked(application: Application, citizen: Citizen | Actor, matter: Matter, fields: dict,
                      person: Citizen) -> None:
    blocking = {name: fields[name] for name in consent.critical_elements(matter) if fields[name]["status"] != "ok"}
    if not blocking:
        return
    detail = {
        name: {"status": field["status"],
               "connector": field["source"]["connector"] if field["source"] else None,
               "bureau": field["source"]["bureau"] if field["source"] else None}
        for name, field in blocking.items()
    }
    blocked = {name: {"status": d["status"], "connector": d["connector"]} for name, d in detail.items()}
    lifecycle.add_event(application, "prefill_blocked", citizen, {"fields": blocked})
    db.session.commit()
    upstream = any(d["status"] in BUREAU_FAULTS for d in detail.values())
    name, first = next(iter(detail.items()))
    source = f"{first['bureau']}({first['connector']})" if first["connector"] else "数据提供方"
    label = FIELD_STATUS_LABELS.get(first["status"], first["status"])
    if upstream:
        message = f"办理本事项必需的数据“{name}”暂时无法从{source}获取({label}),请稍后再试"
    else:
        message = f"{source}没有您的“{name}”记录({label}),本事项无法在线办理,请咨询办理部门"
    # The pre-check still tells what the data that did come back decides (一次告知): a condition the citizen
    # does not meet is worth knowing before trying again.
    checked = eligibility.evaluate(matter, fields, person)
    raise PrefillBlocked(message, errors={"prefill": detail, "eligibility": checked},
                         status_code=503 if upstream else 422)


def _store(application: Application, citizen: Citizen | Actor, fields: Mapping[str, dict], checked: dict
           ) -> datetime:
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
    lifecycle.add_event(application, "prefilled", citizen, {"fields": counts, "eligibility": checked["result"]})
    return prefilled_at
