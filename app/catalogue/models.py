"""The matter catalogue: departments, matters (事项), their materials (申请材料) and version history.

A matter's `online`, `zero_material` and `face` flags are stored so lists can filter on them, and derived
from its materials (`Matter.refresh_flags`) by every write: nobody sets them by hand.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.modelbase import IdMixin, TimestampMixin, UTCDateTime, utcnow
from shared_data import conditions as rules

# Category codes and the labels citizens see: the seed city's five high-volume categories plus two more.
CATEGORIES: dict[str, str] = {
    "real_estate": "不动产登记",
    "housing_fund": "住房公积金",
    "social_insurance": "医保社保",
    "vehicle": "车驾管",
    "exit_entry": "出入境",
    "business": "企业开办/市场监管",
    "civil_affairs": "民政/婚姻/生育",
}
MATTER_TYPES = ("行政许可", "行政确认", "行政给付", "公共服务", "其他行政权力")
DEPARTMENT_KINDS = ("department", "bureau")

# Ways to satisfy a material. `upload` and `in_person` need the citizen to bring something; the others are
# satisfied from shared data, an e-licence, a face verification or a written promise (告知承诺).
EVIDENCE_TYPES = ("upload", "shared_data", "e_licence", "face", "promise", "in_person")
CITIZEN_SUPPLIED = frozenset({"upload", "in_person"})
TRUST_LEVELS = ("A", "B", "C", "D")
# BRIEF glossary: A issued by an authority, B checked by staff, C uploaded by the user, D the user's promise.
DEFAULT_TRUST_LEVEL = {
    "shared_data": "A",
    "e_licence": "A",
    "face": "A",
    "in_person": "B",
    "upload": "C",
    "promise": "D",
}
DELIVERY_METHODS = ("e_certificate", "mail", "window")
RESULT_KINDS = ("licence", "certificate", "decision", "payment", "record")


class Department(db.Model):
    """An implementing department (实施机构) or a data-providing bureau, known by its short code."""

    __tablename__ = "departments"

    # The code is the key other modules store (staff accounts, connectors), so it is the primary key.
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # `department` implements matters; `bureau` only provides shared data (e.g. 自然资源和规划局).
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="department")


class Matter(IdMixin, TimestampMixin, db.Model):
    """A service matter (事项) with the standard elements of its guide."""

    __tablename__ = "matters"
    # The list filters by category or department and orders by code; `code` itself is unique (indexed).
    __table_args__ = (
        Index("ix_matters_category_code", "category", "code"),
        Index("ix_matters_department_code_code", "department_code", "code"),
    )

    code: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    matter_type: Mapped[str] = mapped_column(String(16), nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), nullable=False)
    legal_basis: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # 受理条件: each a plain string (text only) or {text, rule, reviewer_may_decide} (shared_data/conditions.py).
    conditions: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    process: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    legal_time_limit_days: Mapped[int | None] = mapped_column(Integer)
    promised_time_limit_days: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    fees: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    result: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    delivery: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    place: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    hours: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    consultation_phone: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    complaint_phone: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    # The 2025 face-recognition rules require a non-face way to get every matter done; the guide shows it.
    non_face_path: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # Space-separated search terms, a plain text column so LIKE finds Chinese text on every backend
    # (a JSON column would hold \u escapes on some).
    keywords: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    online: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    zero_material: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    face: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # 免申即享: citizens who opt in are told when the shared data shows they meet every checked condition.
    proactive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=sa.false())

    department: Mapped[Department] = relationship(lazy="joined", innerjoin=True)
    materials: Mapped[list[Material]] = relationship(
        back_populates="matter",
        order_by="Material.position",
        cascade="all, delete-orphan",
    )

    @property
    def condition_list(self) -> list[rules.Condition]:
        """The conditions (受理条件), each its guide text and, where the data can decide it, a rule."""
        return rules.parse(self.conditions)

    @property
    def condition_texts(self) -> list[str]:
        return rules.texts(self.conditions)

    @property
    def condition_checks(self) -> list[dict]:
        """The checked conditions as the guide shows them: index, text, rule, elements, reviewer_may_decide."""
        return [{"index": index, "text": c.text, "rule": c.rule, "reviewer_may_decide": c.reviewer_may_decide,
                 "elements": rules.elements_of(c.rule)}
                for index, c in enumerate(self.condition_list) if c.checked]

    @property
    def condition_elements(self) -> list[str]:
        """Every data element the checked conditions read, in first-use order."""
        return rules.elements_needed(self.conditions)

    @property
    def keyword_list(self) -> list[str]:
        return self.keywords.split()

    @property
    def element_names(self) -> list[str]:
        """Every data element any evidence option of this matter names, in first-use order."""
        seen: dict[str, None] = {}
        for material in self.materials:
            for option in material.evidence:
                for name in option.get("elements", ()):
                    seen.setdefault(name, None)
        return list(seen)

    def refresh_flags(self) -> None:
        """Recompute online / zero_material / face from the materials (called by every write)."""
        required = [m for m in self.materials if m.required]
        self.zero_material = all(m.satisfiable_without_citizen_documents for m in required)
        self.online = not any(m.in_person_only for m in required)
        self.face = any(m.offers("face") for m in self.materials)


class Material(IdMixin, db.Model):
    """A material of a matter and the evidence options that can satisfy it."""

    __tablename__ = "materials"
    __table_args__ = (UniqueConstraint("matter_id", "code"),)

    matter_id: Mapped[str] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"), nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    original_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    copy_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # [{type, elements?, licence_type?, trust_level, note?}], in the order the guide offers them.
    evidence: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # 容缺受理: the application may be accepted without it, to be supplied later.
    deferrable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    matter: Mapped[Matter] = relationship(back_populates="materials")

    def offers(self, evidence_type: str) -> bool:
        return any(option["type"] == evidence_type for option in self.evidence)

    @property
    def satisfiable_without_citizen_documents(self) -> bool:
        """Some option needs neither an upload nor a visit (the 零材料 test for this material)."""
        return any(option["type"] not in CITIZEN_SUPPLIED for option in self.evidence)

    @property
    def in_person_only(self) -> bool:
        return bool(self.evidence) and all(option["type"] == "in_person" for option in self.evidence)


class MatterVersion(IdMixin, db.Model):
    """One version of a matter as written: the history admins' replacements leave behind."""

    __tablename__ = "matter_versions"
    __table_args__ = (UniqueConstraint("matter_code", "version"),)

    # By code, not by foreign key: history outlives the row it describes.
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    snapshot: Mapped[dict] = mapped_column(JSON, nullable=False)
    # `staff:<id>` of the admin, or `seed` for the demo catalogue.
    changed_by: Mapped[str] = mapped_column(String(64), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class CatalogueState(db.Model):
    """The single row holding the catalogue revision; every catalogue write bumps it (cache validation)."""

    __tablename__ = "catalogue_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


# 一件事一次办: bundles of matters around one life event (opening a restaurant, a birth).


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
