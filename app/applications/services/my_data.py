"""The citizen's own view of the data-access log: who fetched which data about them, for which of their
applications and matters, when, why and with what outcome (the 数据使用记录 a citizen may ask for)."""

from __future__ import annotations

import sqlalchemy as sa

from app.accounts.models import Citizen
from app.applications.models import Application
from app.catalogue.models import Matter
from app.connectors.models import DataAccessRecord
from app.errors import NotFound
from app.extensions import db
from app.web.paging import Page, page_of
from shared_data.elements import ELEMENTS


def my_data_access(citizen: Citizen, *, page: int = 1, per_page: int = 20,
                   application_id: str | None = None) -> Page:
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
        return Page.empty(page=page, per_page=per_page)
    return page_of(
        sa.select(DataAccessRecord, Application.matter_code, Matter.name)
        .outerjoin(Application, Application.id == DataAccessRecord.application_id)
        .outerjoin(Matter, Matter.code == Application.matter_code)
        .where(*conditions)
        .order_by(DataAccessRecord.seq.desc()),
        page=page, per_page=per_page, scalars=False,
    ).map(lambda row: _citizen_item(*row))


def _citizen_item(record: DataAccessRecord, matter_code: str | None, matter_name: str | None) -> dict:
    kind = record.actor.partition(":")[0]
    return {
        "id": record.id,
        "seq": record.seq,
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
        # the staff id. `system` is the 免申即享 job acting on the citizen's opt-in.
        "acting_user": kind if kind in ("citizen", "system") else "agent",
        "outcome": record.outcome,
    }


def _element(name: str) -> dict:
    element = ELEMENTS.get(name)
    return {"name": name, "label": element.label if element else name}
