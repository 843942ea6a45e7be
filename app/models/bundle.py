"""一件事一次办: bundles of matters around one life event (opening a restaurant, a birth)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import IdMixin, TimestampMixin
from app.models.matter import Matter


class Bundle(IdMixin, TimestampMixin, db.Model):
    """A 一件事: one application fanning out to several matters, usually across departments."""

    __tablename__ = "bundles"

    code: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    life_event: Mapped[str] = mapped_column(String(100), nullable=False, default="")

    members: Mapped[list[BundleMatter]] = relationship(
        order_by="BundleMatter.position",
        cascade="all, delete-orphan",
        back_populates="bundle",
    )

    @property
    def matters(self) -> list[Matter]:
        """The bundle's matters in the order the citizen goes through them."""
        return [member.matter for member in self.members]


class BundleMatter(db.Model):
    """A matter's place in a bundle."""

    __tablename__ = "bundle_matters"

    bundle_id: Mapped[str] = mapped_column(ForeignKey("bundles.id", ondelete="CASCADE"), primary_key=True)
    matter_id: Mapped[str] = mapped_column(ForeignKey("matters.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    bundle: Mapped[Bundle] = relationship(back_populates="members")
    matter: Mapped[Matter] = relationship(lazy="joined", innerjoin=True)
