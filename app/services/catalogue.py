"""The matter catalogue: search, guides, statistics, bundles, admin writes, the demo seed, and its cache.

The catalogue changes rarely and is read on every page of the mini-program, so the read operations return
ready-to-send JSON bodies from a per-process cache (`CatalogueCache`). Each entry is valid for one catalogue
revision: every write bumps the revision in the database, in the same transaction, and clears this
process's cache; other processes notice the new revision within CATALOGUE_CACHE_SECONDS.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass
from importlib import resources

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, selectinload

from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models.base import utcnow
from app.models.bundle import Bundle, BundleMatter
from app.models.matter import CATEGORIES, CatalogueState, Department, Material, Matter, MatterVersion
from app.schemas.catalogue import (
    CODE_RE,
    BundlePageSchema,
    BundleSchema,
    CatalogueStatsSchema,
    DataElementListSchema,
    MatterGuideSchema,
    MatterPageSchema,
    MatterWriteSchema,
)
from shared_data import elements

STATE_ID = 1
SEED_FILE = "catalogue.json"
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


# ------------------------------------------------------------------------------------------------ cache


@dataclass(frozen=True)
class Rendered:
    """A response body ready to send, with its strong ETag (a hash of the body itself)."""

    body: bytes
    etag: str
    revision: int


def render(payload, revision: int = 0) -> Rendered:
    """Serialize `payload` to the JSON the API sends (UTF-8, sorted keys) and tag it."""
    body = current_app.json.dumps(payload).encode()
    return Rendered(body, hashlib.sha256(body).hexdigest()[:32], revision)


class CatalogueCache:
    """A bounded LRU of rendered responses, trusted for `max_age` seconds before the revision is re-read.

    One instance per app (per process). Thread-safe: gunicorn's threaded workers share it.
    """

    def __init__(
        self,
        *,
        max_age: float,
        read_revision: Callable[[], int],
        max_entries: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_age = max_age
        self.max_entries = max_entries
        self._read_revision = read_revision
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._revision: int | None = None
        self._checked_at = float("-inf")

    def get(self, key: Hashable, build: Callable[[], object]) -> Rendered:
        """The rendered response for `key`, building it with `build()` on a miss."""
        revision = self.revision()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.revision == revision:
                self._entries.move_to_end(key)
                return entry
        entry = render(build(), revision)
        with self._lock:
            # A write may have landed while we built: keep the entry only if it is still current.
            if self._revision == revision:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return entry

    def revision(self) -> int:
        """The catalogue revision, re-read from the database at most every `max_age` seconds."""
        now = self._clock()
        if now - self._checked_at < self.max_age and self._revision is not None:
            return self._revision
        current = self._read_revision()
        with self._lock:
            if current != self._revision:
                self._entries.clear()
                self._revision = current
            self._checked_at = now
        return current

    def invalidate(self, revision: int) -> None:
        """Forget every entry: this process just wrote `revision`."""
        with self._lock:
            self._entries.clear()
            self._revision = revision
            self._checked_at = self._clock()

    def __len__(self) -> int:
        return len(self._entries)


def cache() -> CatalogueCache:
    """This app's catalogue cache, created on first use."""
    extensions = current_app.extensions
    found = extensions.get("catalogue_cache")
    if found is None:
        found = extensions["catalogue_cache"] = CatalogueCache(
            max_age=float(current_app.config["CATALOGUE_CACHE_SECONDS"]),
            read_revision=read_revision,
        )
    return found


def max_age() -> int:
    """How long clients and proxies may reuse a catalogue response (Cache-Control max-age)."""
    return int(round(float(current_app.config["CATALOGUE_CACHE_SECONDS"])))


def read_revision() -> int:
    """The catalogue revision as committed in the database (0 before anything was seeded)."""
    revision = db.session.execute(
        sa.select(CatalogueState.revision).where(CatalogueState.id == STATE_ID)
    ).scalar_one_or_none()
    return revision or 0


def _bump_revision() -> int:
    """Advance the revision inside the caller's transaction (atomic in SQL, so processes cannot collide)."""
    updated = db.session.execute(
        sa.update(CatalogueState)
        .where(CatalogueState.id == STATE_ID)
        .values(revision=CatalogueState.revision + 1, updated_at=utcnow())
    )
    if updated.rowcount == 0:
        db.session.add(CatalogueState(id=STATE_ID, revision=1))
        db.session.flush()
        return 1
    return db.session.execute(
        sa.select(CatalogueState.revision).where(CatalogueState.id == STATE_ID)
    ).scalar_one()


def _commit_write() -> None:
    """Bump the revision, commit, and clear this process's cache (the caller's changes are pending)."""
    revision = _bump_revision()
    db.session.commit()
    cache().invalidate(revision)


# ------------------------------------------------------------------------------------------------ reads


def matter_page(args: Mapping) -> Rendered:
    """The rendered page of matters matching the query arguments (q, filters, page, per_page)."""
    key = ("matters", tuple(sorted(args.items())))
    return cache().get(key, lambda: MatterPageSchema().dump(search_matters(**args)))


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


def matter_guide(code: str) -> Rendered:
    """The rendered guide (一次告知) of the matter with `code`; NotFound if there is none."""
    return cache().get(("guide", code), lambda: MatterGuideSchema().dump(get_matter(code)))


def guide_etag(matter: Matter) -> str:
    """The ETag GET /matters/{code} sends for `matter` as it is now."""
    return render(MatterGuideSchema().dump(matter)).etag


def catalogue_stats() -> Rendered:
    """Rendered counts of online, zero-material and face matters, overall, per department and category."""
    return cache().get(("stats",), lambda: CatalogueStatsSchema().dump(compute_stats()))


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
    departments = db.session.scalars(sa.select(Department).order_by(Department.code)).all()
    return {
        **overall,
        "departments": [
            {"code": d.code, "name": d.name, **by_department.get(d.code, empty)} for d in departments
        ],
        "categories": [
            {"category": c, "label": label, **by_category.get(c, empty)} for c, label in CATEGORIES.items()
        ],
    }


def element_providers() -> dict[str, list[str]]:
    """Element name → ids of the active connectors providing it (the connector registry's answer).

    Connector approval, disabling and changes to active connectors call `changed()`, so cached responses
    that show providers are refreshed.
    """
    from app.services.connectors import element_providers as providers

    return providers()


def data_elements() -> Rendered:
    """The rendered dictionary of standard data elements with their providers."""

    def build():
        providers = element_providers()
        items = [
            {**asdict(element), "providers": providers.get(name, [])}
            for name, element in elements.ELEMENTS.items()
        ]
        return DataElementListSchema().dump({"items": items})

    return cache().get(("data-elements",), build)


def bundle_page(page: int = 1, per_page: int = 20) -> Rendered:
    """A rendered page of 一件事 bundles with their matters."""

    def build():
        total = db.session.execute(sa.select(sa.func.count(Bundle.id))).scalar_one()
        items = db.session.scalars(
            sa.select(Bundle)
            .options(selectinload(Bundle.members))
            .order_by(Bundle.code)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        return BundlePageSchema().dump({"items": items, "page": page, "per_page": per_page, "total": total})

    return cache().get(("bundles", page, per_page), build)


def bundle_detail(code: str) -> Rendered:
    """The rendered bundle with `code` and a summary of each matter; NotFound if there is none."""

    def build():
        bundle = None
        if CODE_RE.fullmatch(code):
            bundle = db.session.scalars(
                sa.select(Bundle).where(Bundle.code == code).options(selectinload(Bundle.members))
            ).one_or_none()
        if bundle is None:
            raise NotFound("一件事不存在")
        return BundleSchema().dump(bundle)

    return cache().get(("bundle", code), build)


def changed() -> None:
    """Record that something the catalogue responses show changed (bumps the revision and commits)."""
    _commit_write()


# ----------------------------------------------------------------------------------------------- writes


def create_matter(data: Mapping, *, changed_by: str) -> Matter:
    """Create a matter from a validated body; 422 for an unknown department, 409 if the code is taken."""
    department = _department(data["department"])
    if _find_matter(data["code"]) is not None:
        raise Conflict("事项编码已存在", errors={"json": {"code": ["事项编码已存在"]}})
    matter = Matter(code=data["code"], version=_next_version(data["code"]))
    _apply(matter, data, department)
    db.session.add(matter)
    _record_version(matter, data, changed_by)
    try:
        _commit_write()
    except IntegrityError:
        # Another process created the same code between our check and our commit.
        db.session.rollback()
        raise Conflict("事项编码已存在", errors={"json": {"code": ["事项编码已存在"]}}) from None
    return matter


def replace_matter(code: str, data: Mapping, *, changed_by: str, if_match=None) -> Matter:
    """Replace the matter with `code` (version + 1, history kept).

    `if_match` is the request's If-Match header (werkzeug ETags) or None; a mismatch is a 412.
    """
    matter = _find_matter(code, for_update=True)
    if matter is None:
        raise NotFound("事项不存在")
    if if_match and not if_match.contains(guide_etag(matter)):
        db.session.rollback()
        raise PreconditionFailed()
    if data.get("code") not in (None, code):
        db.session.rollback()
        raise ValidationFailed.field("code", "事项编码不能修改")
    department = _department(data["department"])
    matter.version += 1
    _apply(matter, data, department)
    _record_version(matter, {**data, "code": code}, changed_by)
    try:
        _commit_write()
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


def _apply(matter: Matter, data: Mapping, department: Department) -> None:
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


def _next_version(code: str) -> int:
    # 1 for a new code; a code created again after its matter was removed continues its old history.
    latest = db.session.scalar(
        sa.select(sa.func.max(MatterVersion.version)).where(MatterVersion.matter_code == code)
    )
    return (latest or 0) + 1


def _record_version(matter: Matter, data: Mapping, changed_by: str) -> None:
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


# ------------------------------------------------------------------------------------------------- seed


def load_seed_file() -> dict:
    """The demo catalogue shipped with the package (app/data/catalogue.json)."""
    return json.loads(resources.files("app").joinpath("data", SEED_FILE).read_text(encoding="utf-8"))


def seed_catalogue(data: dict | None = None) -> int:
    """Insert the departments, matters and bundles of the seed that are missing; return the matters inserted.

    Idempotent, and never overwrites: what exists (perhaps edited by an admin since) is left as it is.
    """
    data = load_seed_file() if data is None else data
    inserted_anything = False
    known_departments = set(db.session.scalars(sa.select(Department.code)))
    for item in data["departments"]:
        if item["code"] not in known_departments:
            db.session.add(
                Department(code=item["code"], name=item["name"], kind=item.get("kind", "department"))
            )
            inserted_anything = True
    db.session.flush()

    known_matters = set(db.session.scalars(sa.select(Matter.code)))
    schema = MatterWriteSchema()
    matters_inserted = 0
    for item in data["matters"]:
        if item["code"] in known_matters:
            continue
        body = schema.load(item)  # the seed passes the admin's validation, or seeding fails loudly
        department = db.session.get(Department, body["department"])
        if department is None:
            raise ValueError(f"seed matter {body['code']}: unknown department {body['department']!r}")
        matter = Matter(code=body["code"], version=_next_version(body["code"]))
        _apply(matter, body, department)
        db.session.add(matter)
        _record_version(matter, body, "seed")
        matters_inserted += 1
    db.session.flush()

    known_bundles = set(db.session.scalars(sa.select(Bundle.code)))
    for item in data["bundles"]:
        if item["code"] in known_bundles:
            continue
        bundle = Bundle(
            code=item["code"],
            name=item["name"],
            description=item.get("description", ""),
            life_event=item.get("life_event", ""),
        )
        for position, matter_code in enumerate(item["matters"]):
            matter = db.session.scalars(sa.select(Matter).where(Matter.code == matter_code)).one()
            bundle.members.append(BundleMatter(matter=matter, position=position))
        db.session.add(bundle)
        inserted_anything = True

    if inserted_anything or matters_inserted:
        _commit_write()
    else:
        db.session.commit()
    return matters_inserted
