"""Evaluations (好差评) of finished applications, and the rectifications poor grades open."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.applications.workdays import work_calendar
from app.catalogue.models import Matter
from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow
from app.pii import vault

GRADES = range(1, 6)
# The national 好差评 scale; 1 and 2 are the bad reviews that must be rectified.
GRADE_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
POOR_GRADES = frozenset({1, 2})
RECTIFICATION_STATUSES = ("open", "resolved", "unfixable")
RECTIFICATION_LABELS = {"open": "整改中", "resolved": "已整改", "unfixable": "无法整改"}


class Evaluation(IdMixin, db.Model):
    """好差评: the applicant's grade (1–5) of a completed application, one per application."""

    __tablename__ = "evaluations"

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), nullable=False, unique=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    department_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    grade: Mapped[int] = mapped_column(Integer, nullable=False)
    # Free text that may name people: encrypted (app/pii.py), "" when there is none.
    comment_encrypted: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    rectification: Mapped[Rectification | None] = relationship(back_populates="evaluation")
    matter: Mapped[Matter | None] = relationship(
        primaryjoin="foreign(Evaluation.matter_code) == Matter.code", viewonly=True, lazy="joined")

    @property
    def grade_label(self) -> str:
        return GRADE_LABELS[self.grade]

    @property
    def comment(self) -> str | None:
        """The comment, decrypted (for the applicant and the department only)."""
        return vault().decrypt(self.comment_encrypted) if self.comment_encrypted else None


class Rectification(IdMixin, db.Model):
    """The department's rectification (整改) of a poor grade: open until resolved or marked unfixable."""

    __tablename__ = "rectifications"
    __table_args__ = (Index("ix_rectifications_department_code_status", "department_code", "status"),)

    evaluation_id: Mapped[str] = mapped_column(ForeignKey("evaluations.id"), nullable=False, unique=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), nullable=False)
    department_code: Mapped[str] = mapped_column(String(32), nullable=False)
    # open, resolved or unfixable
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    evaluation: Mapped[Evaluation] = relationship(back_populates="rectification", lazy="joined")

    @property
    def status_label(self) -> str:
        return RECTIFICATION_LABELS[self.status]

    @property
    def overdue(self) -> bool:
        """Open and past its due date (it lasts until the end of `due_on`)."""
        return self.status == "open" and work_calendar().today() > self.due_on

    # What the reviewers see of the evaluation behind it.
    @property
    def matter_code(self) -> str:
        return self.evaluation.matter_code

    @property
    def matter_name(self) -> str:
        matter = self.evaluation.matter
        return matter.name if matter is not None else self.evaluation.matter_code

    @property
    def grade(self) -> int:
        return self.evaluation.grade

    @property
    def grade_label(self) -> str:
        return self.evaluation.grade_label

    @property
    def comment(self) -> str | None:
        return self.evaluation.comment

    @property
    def evaluated_at(self) -> datetime:
        return self.evaluation.created_at
