"""Consent receipts: what a citizen agreed the prefill may fetch, for which application and purpose."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow

# The meaning of a receipt's fields; bump when what a receipt records changes, so old receipts stay readable.
RECEIPT_VERSION = 1


class ReceiptStatus:
    """What a consent's state is: active until the citizen withdraws it or a newer one supersedes it (the
    application's consent receipts, 免申即享 opt-ins); the class using it maps `withdrawn_at` and
    `superseded_at`."""

    @property
    def status(self) -> str:
        """active, withdrawn or superseded."""
        if self.withdrawn_at is not None:
            return "withdrawn"
        if self.superseded_at is not None:
            return "superseded"
        return "active"


class ConsentReceipt(ReceiptStatus, IdMixin, db.Model):
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
