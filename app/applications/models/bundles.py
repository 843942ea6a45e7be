"""一件事 bundle applications: one citizen's applications for the matters of a bundle, handled together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow


class BundleApplication(IdMixin, db.Model):
    """One 一件事 application: one form, one consent, one prefill, fanned out to a child per matter."""

    __tablename__ = "bundle_applications"
    __table_args__ = (Index("ix_bundle_applications_citizen_id_created_at", "citizen_id", "created_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    bundle_code: Mapped[str] = mapped_column(String(64), nullable=False)
    acting_user: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
