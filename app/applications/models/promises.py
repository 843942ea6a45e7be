"""False promises (告知承诺) a reviewer found: they take the promise option away from the citizen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow


class PromiseBreach(IdMixin, db.Model):
    """A false written promise (虚假承诺) a reviewer recorded: its maker may not use promises again."""

    __tablename__ = "promise_breaches"

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False, index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), nullable=False)
    material_code: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
