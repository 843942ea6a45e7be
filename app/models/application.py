"""Applications (申请) and the consent receipts their prefill rests on.

This issue builds the start of the lifecycle: a draft for a matter, the citizen's consent to fetch the
shared data its materials need, and the prefill. The review lifecycle (submit, accept, …) and the agent flow
(帮办代办) extend these tables later; `agent_id` is their placeholder.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import IdMixin, TimestampMixin, UTCDateTime, utcnow

APPLICATION_STATUSES = ("draft",)
# The meaning of a receipt's fields; bump when what a receipt records changes, so old receipts stay readable.
RECEIPT_VERSION = 1


class Application(IdMixin, TimestampMixin, db.Model):
    """A citizen's application for one matter, with the prefilled fields and their provenance."""

    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_citizen_id_created_at", "citizen_id", "created_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    # By code (and the version applied for): matters are replaced, never deleted, and keep their history.
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    matter_version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="draft")
    # Who acts: `citizen:<id>`, or `staff:<id>` of an agent applying on the citizen's behalf (a later issue).
    acting_user: Mapped[str] = mapped_column(String(64), nullable=False)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    # Fields the citizen filled in (PUT …/form, a later issue).
    form: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    # The last prefill, per element: {status, locked, source, error}; the values themselves are personal data
    # and are kept encrypted in `prefill_values_encrypted` (a JSON object element → value).
    prefill: Mapped[dict | None] = mapped_column(JSON)
    prefill_values_encrypted: Mapped[str | None] = mapped_column(Text)
    prefilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    events: Mapped[list[ApplicationEvent]] = relationship(
        order_by="ApplicationEvent.at", cascade="all, delete-orphan", back_populates="application"
    )


class ApplicationEvent(IdMixin, db.Model):
    """One step of an application's timeline (created, consent granted, prefilled, …)."""

    __tablename__ = "application_events"

    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Non-personal details only (counts, statuses, connector ids): the timeline is shown and kept long.
    detail: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)

    application: Mapped[Application] = relationship(back_populates="events")


class ConsentReceipt(IdMixin, db.Model):
    """A citizen's consent: this application may fetch exactly these elements for this purpose."""

    __tablename__ = "consent_receipts"
    __table_args__ = (Index("ix_consent_receipts_citizen_id_granted_at", "citizen_id", "granted_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), nullable=False, index=True)
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    # Sorted element names: the exact set consented to.
    elements: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    acting_user: Mapped[str] = mapped_column(String(64), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a newer consent for the same application replaced this one.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=RECEIPT_VERSION)

    @property
    def status(self) -> str:
        """active, withdrawn or superseded."""
        if self.withdrawn_at is not None:
            return "withdrawn"
        if self.superseded_at is not None:
            return "superseded"
        return "active"
