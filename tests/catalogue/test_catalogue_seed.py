"""The demo catalogue: what the seed file holds, and seeding that is idempotent and never overwrites."""

from __future__ import annotations

import copy

import pytest
import sqlalchemy as sa

from app.catalogue import cache as catalogue
from app.catalogue.seed import load_seed_file, seed_catalogue
from app.extensions import db
from app.metadata import Bundle, Department, Matter
from shared_data import elements

SEED = load_seed_file()
CATEGORIES = {
    "real_estate",
    "housing_fund",
    "social_insurance",
    "vehicle",
    "exit_entry",
    "business",
    "civil_affairs",
}
DEPARTMENTS = {"gjj", "ga", "crj", "cgs", "rsj", "ybj", "bdc", "zrzy", "scjg", "mz", "wjw", "sw"}


def matters_by_code(app) -> dict[str, Matter]:
    with app.app_context():
        return {m.code: m for m in db.session.scalars(sa.select(Matter))}


def test_seed_file_has_the_departments_other_modules_rely_on():
    assert {d["code"] for d in SEED["departments"]} == DEPARTMENTS
    assert all(d["name"].startswith(("郑州", "国家税务总局郑州")) for d in SEED["departments"])


def test_seed_file_covers_the_catalogue_the_issue_asks_for():
    matters = SEED["matters"]
    assert len(matters) >= 30
    assert {m["category"] for m in matters} == CATEGORIES
    assert len({m["code"] for m in matters}) == len(matters)
    department_codes = {d["code"] for d in SEED["departments"]}
    for matter in matters:
        assert matter["department"] in department_codes, matter["code"]
        assert matter["non_face_path"] and matter["legal_basis"].startswith("《"), matter["code"]
        assert "12345" in (matter["complaint_phone"], matter["consultation_phone"]), matter["code"]
        for material in matter["materials"]:
            for option in material["evidence"]:
                for name in option.get("elements", []):
                    assert elements.exists(name), f"{matter['code']}/{material['code']}: {name}"


def test_seeded_catalogue_has_zero_material_face_matters_and_some_that_are_not(app):
    matters = matters_by_code(app)

    assert len(matters) == len(SEED["matters"])
    assert sum(m.zero_material and m.face for m in matters.values()) >= 10
    # Not everything is zero-material: a contract to upload, a photo to upload, originals to bring.
    assert not matters["BDC-QR-001"].zero_material
    assert not matters["CGS-XK-001"].zero_material
    assert not matters["BDC-QR-003"].online and not matters["MZ-QR-001"].online


def test_the_demo_housing_fund_matter_maps_to_shared_data(app):
    with app.app_context():
        matter = db.session.scalars(sa.select(Matter).where(Matter.code == "GJJ-GG-001")).one()
        assert (matter.category, matter.department_code) == ("housing_fund", "gjj")
        assert matter.zero_material and matter.face and matter.online
        assert {
            "person.name",
            "person.id_number",
            "housing_fund.account_status",
            "social_insurance.status",
        } <= set(matter.element_names)


def test_seed_bundles_list_their_matters(app):
    assert len(SEED["bundles"]) >= 2
    with app.app_context():
        bundles = {b.code: b for b in db.session.scalars(sa.select(Bundle))}
        assert {"kaiban-canyin", "xinshenger-chusheng"} <= set(bundles)
        for bundle in bundles.values():
            assert len(bundle.matters) >= 3, bundle.code
        restaurant = [m.name for m in bundles["kaiban-canyin"].matters]
        assert any("食品经营许可" in name for name in restaurant)
        assert any("公积金" in name for name in restaurant)


def test_seeding_twice_changes_nothing(app, row_counts):
    before = row_counts()
    with app.app_context():
        revision = catalogue.read_revision()

        assert seed_catalogue() == 0

        assert catalogue.read_revision() == revision
    assert row_counts() == before


def test_seeding_never_overwrites_an_admin_edit(app, client, staff_headers):
    body = copy.deepcopy(next(m for m in SEED["matters"] if m["code"] == "GJJ-GG-002"))
    body["name"] = "管理员改过的名称"
    assert (
        client.put("/api/v1/matters/GJJ-GG-002", json=body, headers=staff_headers("admin")).status_code == 200
    )

    with app.app_context():
        assert seed_catalogue() == 0

    guide = client.get("/api/v1/matters/GJJ-GG-002").json
    assert guide["name"] == "管理员改过的名称" and guide["version"] == 2


def test_seeding_adds_what_is_missing(app, client, row_counts):
    before = row_counts()
    with app.app_context():
        # A matter in no bundle, as if the seed file had gained it since the last run.
        db.session.delete(db.session.scalars(sa.select(Matter).where(Matter.code == "CRJ-GG-001")).one())
        db.session.commit()
    assert client.get("/api/v1/matters/CRJ-GG-001").status_code == 404

    with app.app_context():
        assert seed_catalogue() == 1

    guide = client.get("/api/v1/matters/CRJ-GG-001")
    assert guide.status_code == 200
    assert guide.json["version"] == 2  # its history goes on from the version removed
    after = row_counts()
    assert after["matter_versions"] == before["matter_versions"] + 1
    assert {k: v for k, v in after.items() if k != "matter_versions"} == {
        k: v for k, v in before.items() if k != "matter_versions"
    }


def test_a_bad_seed_file_fails_loudly(app):
    import marshmallow as ma

    broken = copy.deepcopy(SEED)
    broken["matters"] = [
        dict(
            SEED["matters"][0],
            code="NEW-001",
            department="gjj",
            materials=[
                {"code": "X", "name": "X", "evidence": [{"type": "shared_data", "elements": ["nope.nope"]}]}
            ],
        )
    ]
    with app.app_context():
        with pytest.raises(ma.ValidationError):
            seed_catalogue(broken)
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == len(DEPARTMENTS)
