"""The data-access log: one chained record per connector call, and the citizen's own view of it.

Every call the prefill engine makes — found, not found, failed or timed out — becomes a `DataAccessRecord`
(app/models/access_log.py), appended to the `data-access` hash chain before any data from it is used: by
`record_calls` in a transaction of its own, or by `calls_logged` in the same transaction as what the caller
then stores (the application prefill: its snapshot, or the event saying why it stopped). Records hold the
keyed pseudonym of the citizen's ID number, never the number or a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from app.audit import chain
from app.errors import NotFound
from app.extensions import db
from app.models.access_log import DataAccessRecord
from app.models.application import Application
from app.models.citizen import Citizen
from app.models.matter import Matter
from app.pii import vault
from app.services.paging import page_of
from app.services.runtime import runtime
from shared_data.client import CallContext
from shared_data.elements import ELEMENTS
from shared_data.prefill import ConnectorOutcome

ERROR_LENGTH = 64


def record_calls(
    outcomes: Iterable[ConnectorOutcome], *, id_number: str, context: CallContext, application_id: str | None
) -> list[DataAccessRecord]:
    """Append one chained record per connector call (all in one transaction); raises if it cannot."""
    return chain.append_many(DataAccessRecord, _rows(outcomes, id_number, context, application_id))


@contextmanager
def calls_logged(
    outcomes: Iterable[ConnectorOutcome], *, id_number: str, context: CallContext, application_id: str | None
) -> Iterator[None]:
    """Log the calls in the transaction of the request session's next commit, in the block or at its end.

    For a service that stores what the calls returned (or why it stops) right after them: one commit for the
    log and that outcome, the log never behind it; should anything fail first, the records are still
    written on their own (app/audit/chain.py `appending`).
    """
    with chain.appending(db.session(), DataAccessRecord, _rows(outcomes, id_number, context, application_id)):
        yield


def _rows(outcomes: Iterable[ConnectorOutcome], id_number: str, context: CallContext,
          application_id: str | None) -> list[dict]:
    pseudonym = vault().pseudonym(id_number)
    rt = runtime()
    return [
        {
            "connector_id": outcome.connector_id,
            "bureau": rt.bureau_code(outcome.connector_id),
            "bureau_name": outcome.bureau,
            "citizen_pseudonym": pseudonym,
            "application_id": application_id,
            "purpose": context.purpose,
            "actor": context.acting_user,
            "elements_requested": list(outcome.elements_requested),
            "elements_returned": list(outcome.elements_returned),
            "outcome": outcome.status,
            "latency_ms": int(outcome.latency_ms),
            "error": (outcome.error or None) and outcome.error[:ERROR_LENGTH],
            "http_status": outcome.http_status,
            "request_id": context.request_id,
        }
        for outcome in outcomes
    ]


def my_data_access(citizen: Citizen, *, page: int = 1, per_page: int = 20,
                   application_id: str | None = None) -> dict:
    """Who fetched which data about the citizen, when, why and with what outcome; newest first.

    Matched through the pseudonym of the citizen's bound ID number (nothing before binding). Filtering by
    an application that is not the citizen's own is a 404, like reading it.
    """
    conditions = [DataAccessRecord.citizen_pseudonym == (citizen.id_number_hash or "")]
    if application_id is not None:
        owned = db.session.scalar(sa.select(Application.id).where(
            Application.id == application_id, Application.citizen_id == citizen.id))
        if owned is None:
            raise NotFound("申请不存在")
        conditions.append(DataAccessRecord.application_id == application_id)
    if citizen.id_number_hash is None:
        return {"items": [], "page": page, "per_page": per_page, "total": 0}
    rows, total = page_of(
        sa.select(DataAccessRecord, Application.matter_code, Matter.name)
        .outerjoin(Application, Application.id == DataAccessRecord.application_id)
        .outerjoin(Matter, Matter.code == Application.matter_code)
        .where(*conditions)
        .order_by(DataAccessRecord.seq.desc()),
        page=page, per_page=per_page, scalars=False,
    )
    items = [_citizen_item(record, matter_code, matter_name) for record, matter_code, matter_name in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def _citizen_item(record: DataAccessRecord, matter_code: str | None, matter_name: str | None) -> dict:
    kind = record.actor.partition(":")[0]
    return {
        "id": record.id,
        "at": record.recorded_at,
        "connector": record.connector_id,
        "bureau": record.bureau,
        "bureau_name": record.bureau_name,
        "elements_requested": [_element(name) for name in record.elements_requested],
        "elements_returned": list(record.elements_returned),
        "application_id": record.application_id,
        "matter_code": matter_code,
        "matter_name": matter_name,
        "purpose": record.purpose,
        # A staff actor is an agent acting on the citizen's behalf (帮办代办); the citizen sees the role, not
        # the staff id.
        "acting_user": "citizen" if kind == "citizen" else "agent",
        "outcome": record.outcome,
    }


def _element(name: str) -> dict:
    element = ELEMENTS.get(name)
    return {"name": name, "label": element.label if element else name}
