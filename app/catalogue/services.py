"""The matter catalogue: search, guides, statistics, bundles, admin writes, the demo seed, and its cache.

The catalogue changes rarely and is read on every page of the mini-program, so the read operations return
ready-to-send JSON bodies from a per-process cache (`CatalogueCache`). Each entry is valid for one catalogue
revision: every write bumps the revision in the database, in the same transaction, and clears this
process's cache; other processes notice the new revision within CATALOGUE_CACHE_SECONDS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, selectinload

from app.catalogue import cache
from app.catalogue.models import (
    CATEGORIES,
    Bundle,
    Department,
    Material,
    Matter,
    MatterVersion,
)
from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.web.schemas import CODE_RE

# Body fields copied as they are onto a matter and onto each material (the rest need conversion).
MATTER_FIELDS = (
    "name",
    "matter_type",
    "category",
    "legal_basis",
    "conditions",
    "process",
    "legal_time_limit_days",
    "promised_time_limit_days",
    "fees",
    "result",
    "delivery",
    "place",
    "hours",
    "consultation_phone",
    "complaint_phone",
    "non_face_path",
    "proactive",
)
MATERIAL_FIELDS = (
    "name",
    "required",
    "original_count",
    "copy_count",
    "description",
    "evidence",
    "deferrable",
)


class PreconditionFailed(AppError):
    status_code, error, message = 412, "precondition_failed", "事项已被修改,请刷新后重试"


# ------------------------------------------------------------------------------------------------ reads


def search_matters(
    *,
    page: int = 1,
    per_page: int = 20,
    q: str | None = None,
    department: str | None = None,
    category: str | None = None,
    zero_material: bool | None = None,
    face: bool | None = None,
    online: bool | None = None,
) -> dict:
    """A page of matters: `{items, page, per_page, total}`; `q` matches name, code, keywords, department."""
    conditions = []
    if q:
        # icontains with autoescape: the keyword's % and _ are literal, and the value is a bound parameter.
        conditions.append(
            sa.or_(
                *(
                    column.icontains(q, autoescape=True)
                    for column in (Matter.name, Matter.code, Matter.keywords, Department.name)
                )
            )
        )
    if department:
        conditions.append(Matter.department_code == department)
    if category:
        conditions.append(Matter.category == category)
    for column, wanted in (
        (Matter.zero_material, zero_material),
        (Matter.face, face),
        (Matter.online, online),
    ):
        if wanted is not None:
            conditions.append(column.is_(wanted))
    base = sa.select(Matter).join(Matter.department).where(*conditions)
    total = db.session.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    items = db.session.scalars(
        base.options(contains_eager(Matter.department))
        .order_by(Matter.code)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def get_matter(code: str) -> Matter:
    """The matter with `code`, its department and materials loaded; NotFound if there is none."""
    matter = _find_matter(code)
    if matter is None:
        raise NotFound("事项不存在")
    return matter


def _find_matter(code: str, *, for_update: bool = False) -> Matter | None:
    if not CODE_RE.fullmatch(code):  # not a code we could have stored; spares the database odd input
        return None
    stmt = sa.select(Matter).where(Matter.code == code).options(selectinload(Matter.materials))
    if for_update:
        stmt = stmt.with_for_update(of=Matter)
    return db.session.scalars(stmt).one_or_none()


def compute_stats() -> dict:
    """Counts of matters: overall, per department and per category."""

    def flag(column):
        return sa.func.coalesce(sa.func.sum(sa.case((column.is_(True), 1), else_=0)), 0)

    both = sa.and_(Matter.zero_material.is_(True), Matter.face.is_(True))
    measures = (
        sa.func.count(Matter.id),
        flag(Matter.online),
        flag(Matter.zero_material),
        flag(Matter.face),
        sa.func.coalesce(sa.func.sum(sa.case((both, 1), else_=0)), 0),
    )
    names = ("total", "online", "zero_material", "face", "zero_material_and_face")

    def counts(row) -> dict:
        return dict(zip(names, (int(value or 0) for value in row), strict=True))

    overall = counts(db.session.execute(sa.select(*measures)).one())
    by_department = {
        row[0]: counts(row[1:])
        for row in db.session.execute(
            sa.select(Matter.department_code, *measures).group_by(Matter.department_code)
        )
    }
    by_category = {
        row[0]: counts(row[1:])
        for row in db.session.execute(sa.select(Matter.category, *measures).group_by(Matter.category))
    }
    empty = dict.fromkeys(names, 0)
    return {
        **overall,
        "departments": [
            {"code": d.code, "name": d.name, **by_department.get(d.code, empty)} for d in departments()
        ],
        "categories": [
            {"category": c, "label": label, **by_category.get(c, empty)} for c, label in CATEGORIES.items()
        ],
    }


def departments() -> list[Department]:
    """Every department, by code (the ones a matter may name)."""
    return db.session.scalars(sa.select(Department).order_by(Department.code)).all()


def bundle_page(page: int = 1, per_page: int = 20) -> dict:
    """A page of 一件事 bundles with their matters: `{items, page, per_page, total}`."""
    total = db.session.execute(sa.select(sa.func.count(Bundle.id))).scalar_one()
    items = db.session.scalars(
        sa.select(Bundle)
        .options(selectinload(Bundle.members))
        .order_by(Bundle.code)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def get_bundle(code: str) -> Bundle:
    """The bundle with `code`, its matters loaded; NotFound if there is none."""
    bundle = None
    if CODE_RE.fullmatch(code):
        bundle = db.session.scalars(
            sa.select(Bundle).where(Bundle.code == code).options(selectinload(Bundle.members))
        ).one_or_none()
    if bundle is None:
        raise NotFound("一件事不存在")
    return bundle



# ----------------------------------------------------------------------------------------------- writes


def create_matter(data: Mapping, *, changed_by: str) -> Matter:
    """Create a matter from a validated body; 422 for an unknown department, 409 if the code is taken."""
    department = _department(data["department"])
    if _find_matter(data["code"]) is not None:
        raise Conflict("事项编码已存在", errors={"json": {"code": ["事项编码已存在"]}})
    matter = Matter(code=data["code"], version=next_version(data["code"]))
    apply(matter, data, department)
    db.session.add(matter)
    record_version(matter, data, changed_by)
    try:
        cache.commit_change()
    except IntegrityError:
        # Another process created the same code between our check and our commit.
        db.session.rollback()
        raise Conflict("事项编码已存在", errors={"json": {"code": ["事项编码已存在"]}}) from None
    return matter


def replace_matter(code: str, data: Mapping, *, changed_by: str,
                   precondition: Callable[[Matter], bool] | None = None) -> Matter:
    """Replace the matter with `code` (version + 1, history kept).

    `precondition(matter)`, checked with the matter locked, is the caller's If-Match: False is a 412.
    """
    matter = _find_matter(code, for_update=True)
    if matter is None:
        raise NotFound("事项不存在")
    if precondition is not None and not precondition(matter):
        db.session.rollback()
        raise PreconditionFailed()
    if data.get("code") not in (None, code):
        db.session.rollback()
        raise ValidationFailed.field("code", "事项编码不能修改")
    department = _department(data["department"])
    matter.version += 1
    apply(matter, data, department)
    record_version(matter, {**data, "code": code}, changed_by)
    try:
        cache.commit_change()
    except IntegrityError:
        # The same matter replaced concurrently (both took the same version number): let the client retry.
        db.session.rollback()
        raise Conflict("事项正被他人修改,请刷新后重试") from None
    return matter


def _department(code: str) -> Department:
    department = db.session.get(Department, code)
    if department is None:
        db.session.rollback()
        raise ValidationFailed.field("department", f"未知的实施部门:{code}")
    return department


def apply(matter: Matter, data: Mapping, department: Department) -> None:
    """Copy a validated body onto `matter`, updating materials in place by code, and derive the flags."""
    for field in MATTER_FIELDS:
        setattr(matter, field, data[field])
    matter.department = department
    matter.department_code = department.code
    matter.keywords = " ".join(data["keywords"])
    # Keep material rows (and their ids) whose code survives, so later references to them stay valid.
    existing = {material.code: material for material in matter.materials}
    materials = []
    for position, item in enumerate(data["materials"]):
        material = existing.get(item["code"]) or Material(code=item["code"])
        for field in MATERIAL_FIELDS:
            setattr(material, field, item[field])
        material.position = position
        materials.append(material)
    matter.materials = materials
    matter.refresh_flags()


def next_version(code: str) -> int:
    # 1 for a new code; a code created again after its matter was removed continues its old history.
    latest = db.session.scalar(
        sa.select(sa.func.max(MatterVersion.version)).where(MatterVersion.matter_code == code)
    )
    return (latest or 0) + 1


def record_version(matter: Matter, data: Mapping, changed_by: str) -> None:
    db.session.add(
        MatterVersion(
            matter_code=matter.code,
            version=matter.version,
            snapshot=json.loads(json.dumps(dict(data))),
            changed_by=changed_by,
        )
    )


def matter_history(code: str) -> list[MatterVersion]:
    """Every recorded version of the matter with `code`, oldest first."""
    return db.session.scalars(
        sa.select(MatterVersion).where(MatterVersion.matter_code == code).order_by(MatterVersion.version)
    ).all()
