"""The demo catalogue shipped with the package, and seeding it: departments, matters (validated as an
admin's body would be) and bundles. Idempotent; it never overwrites what an admin has edited since."""

from __future__ import annotations

import json
from importlib import resources

import sqlalchemy as sa

from app.catalogue import cache
from app.catalogue import services as catalogue
from app.catalogue.models import Bundle, BundleMatter, Department, Matter
from app.catalogue.schemas import MatterWriteSchema
from app.extensions import db

SEED_FILE = "catalogue.json"


def load_seed_file() -> dict:
    """The demo catalogue shipped with the package (app/catalogue/data/catalogue.json)."""
    return json.loads(resources.files("app.catalogue").joinpath("data", SEED_FILE).read_text(encoding="utf-8"))


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
        matter = Matter(code=body["code"], version=catalogue.next_version(body["code"]))
        catalogue.apply(matter, body, department)
        db.session.add(matter)
        catalogue.record_version(matter, body, "seed")
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
        cache.commit_change()
    else:
        db.session.commit()
    return matters_inserted
