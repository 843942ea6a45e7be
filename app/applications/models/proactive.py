"""免申即享: a citizen's opt-in to be told when the shared data shows they meet a proactive matter's conditions,
and the notices sent under it.

The opt-in is a consent of its own (PIPL art. 14: specific, informed, revocable): it lists the matters and
exactly the data elements their conditions read, for one purpose text. Nobody is evaluated without one; a
withdrawn or superseded opt-in stops the evaluation at once (the periodic job reads only active ones).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.applications.models.consent import ReceiptStatus
from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow


class ProactiveOptIn(ReceiptStatus, IdMixin, db.Model):
    """A citizen's 免申即享 consent: these matters, these elements, this purpose, until withdrawn."""

    __tablename__ = "proactive_opt_ins"
    __table_args__ = (Index("ix_proactive_opt_ins_citizen_id_granted_at", "citizen_id", "granted_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    # Sorted matter codes and element names: exactly what was consented to.
    matter_codes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    elements: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a newer opt-in of the same citizen replaced this one.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProactiveNotice(IdMixin, db.Model):
    """One citizen told once, under one opt-in, that they are eligible for one matter (with the draft made)."""

    __tablename__ = "proactive_notices"
    # Told once per opt-in and matter, however often (or in how many processes) the job runs.
    __table_args__ = (UniqueConstraint("opt_in_id", "matter_code"),)

    opt_in_id: Mapped[str] = mapped_column(ForeignKey("proactive_opt_ins.id"), nullable=False)
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), nullable=False)
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
