"""帮办代办: a citizen authorises an agent to apply for one matter on their behalf, for a time window.

The authorisation is the citizen's own act (granted with the citizen's token, revocable at any time); an
agent's every action on the citizen's applications checks it afresh, so a revoked or expired one stops the
agent at once (403 when creating, 404 for the applications themselves: an unauthorised agent must not learn
they exist). Agents act as `staff:<id>`; the timeline and the data-access log show them as the acting user.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Citizen, StaffUser
from app.applications.models import AgentAuthorisation
from app.catalogue import services as catalogue
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import is_issued_id, utcnow
from app.web.paging import Page, page_of


def grant(citizen: Citizen, *, agent_username: str, matter_code: str, valid_until: datetime) -> AgentAuthorisation:
    """Authorise the agent account for the matter until `valid_until` (at most AGENT_AUTHORISATION_MAX_DAYS)."""
    matter = catalogue.get_matter(matter_code)
    agent = db.session.scalar(sa.select(StaffUser).where(StaffUser.username == agent_username))
    if agent is None or not agent.active or "agent" not in agent.roles:
        raise ValidationFailed.field("agent", "没有这个帮办代办人员账号", error="unknown_agent")
    now = utcnow()
    longest = timedelta(days=current_app.config["AGENT_AUTHORISATION_MAX_DAYS"])
    if valid_until <= now:
        raise ValidationFailed.field("valid_until", "授权截止时间须晚于当前时间")
    if valid_until - now > longest:
        raise ValidationFailed.field("valid_until", f"授权期限最长 {longest.days} 天")
    authorisation = AgentAuthorisation(citizen_id=citizen.id, agent_id=agent.id, matter_code=matter.code,
                                       valid_from=now, valid_until=valid_until, created_at=now)
    db.session.add(authorisation)
    db.session.commit()
    return authorisation


def list_for_citizen(citizen: Citizen, *, page: int = 1, per_page: int = 20) -> Page:
    """The citizen's authorisations, newest first."""
    return _page(AgentAuthorisation.citizen_id == citizen.id, page, per_page)


def list_for_agent(agent: StaffUser, *, page: int = 1, per_page: int = 20) -> Page:
    """The authorisations given to the agent, newest first (the schema adds whom each is from)."""
    return _page(AgentAuthorisation.agent_id == agent.id, page, per_page)


def _page(condition, page: int, per_page: int) -> Page:
    return page_of(
        sa.select(AgentAuthorisation).where(condition)
        .order_by(AgentAuthorisation.created_at.desc(), AgentAuthorisation.id),
        page=page, per_page=per_page,
    )


def revoke(citizen: Citizen, authorisation_id: str) -> AgentAuthorisation:
    """Revoke one of the citizen's authorisations (idempotent); the agent is stopped at once."""
    authorisation = db.session.get(AgentAuthorisation, authorisation_id) if is_issued_id(authorisation_id) else None
    if authorisation is None or authorisation.citizen_id != citizen.id:
        raise NotFound("授权不存在")
    if authorisation.revoked_at is None:
        authorisation.revoked_at = utcnow()
        db.session.commit()
    return authorisation
