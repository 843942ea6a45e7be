"""Agents' authorisations (帮办代办): a citizen lets a staff agent act for them on one matter until a date."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Citizen, StaffUser
from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow


class AgentAuthorisation(IdMixin, db.Model):
    """A citizen's authorisation for an agent to apply on their behalf (帮办代办): one matter, a time window."""

    __tablename__ = "agent_authorisations"
    __table_args__ = (Index("ix_agent_authorisations_agent_id_citizen_id", "agent_id", "citizen_id"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False, index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), nullable=False)
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    agent: Mapped[StaffUser] = relationship(lazy="joined")
    citizen: Mapped[Citizen] = relationship(lazy="joined")

    @property
    def status(self) -> str:
        """`revoked`, `active` until `valid_until`, then `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.valid_until > utcnow() else "expired"
