"""The matter catalogue as clients see it: search, filters, guides, admin writes, statistics, bundles."""

from __future__ import annotations

import copy
import json

import pytest
import sqlalchemy as sa

from app.catalogue.seed import load_seed_file
from app.extensions import db
from app.metadata import Matter, MatterVersion
from tests.helpers import assert_error

SEED = load_seed_file()
SEED_MATTERS = {m["code"]: m for m in SEED["matters"]}


def codes(response) -> list[str]:
    return [item["code"] for item in response.json["items"]]


def all_pages(client, query: str = "") -> list[dict]:
    items, page = [], 1
    while True:
        response = client.get(f"/api/v1/matters?per_page=100&page={page}&{query}")
        assert response.status_code == 200, response.json
        items += response.json["items"]
        if page * 100 >= response.json["total"]:
            return items
        page += 1




def new_matter(code: str = "TEST-GG-001", **changes) -> dict:
    """A valid POST body: a seed matter under a new code."""
    body = copy.deepcopy(SEED_MATTERS["GJJ-GG-002"])
    body.update(code=code, name="测试事项公积金缴存查询")
    body.update(changes)
    return body


@pytest.fixture
def admin(staff_headers):
    return staff_headers("admin")


# ---------------------------------------------------------------------------------------------- search


def test_keyword_finds_every_housing_fund_matter_and_nothing_else(client):
    response = client.get("/api/v1/matters", query_string={"q": "公积金", "per_page": 100})

    assert response.status_code == 200
    expected = sorted(c for c, m in SEED_MATTERS.items() if m["category"] == "housing_fund")
    assert len(expected) >= 5
    assert sorted(codes(response)) == expected
    assert response.json["total"] == len(expected)
    assert {item["department"]["code"] for item in response.json["items"]} == {"gjj"}


def test_keyword_matches_department_names_codes_and_keywords(client):
    by_department = client.get("/api/v1/matters", query_string={"q": "出入境管理支队"})
    assert set(codes(by_department)) == {c for c, m in SEED_MATTERS.items() if m["department"] == "crj"}

    by_code = client.get("/api/v1/matters", query_string={"q": "gjj-gg-001"})
    assert codes(by_code) == ["GJJ-GG-001"]

    by_keyword = client.get("/api/v1/matters", query_string={"q": "上户口"})  # only in GA-QR-001's keywords
    assert codes(by_keyword) == ["GA-QR-001"]


@pytest.mark.parametrize("q", ["%", "_", "\\", "公积%金", "' OR 1=1 --"])
def test_keyword_wildcards_and_quotes_are_literal(client, q):
    response = client.get("/api/v1/matters", query_string={"q": q})

    assert response.status_code == 200
    assert response.json["total"] == 0 and response.json["items"] == []


def test_blank_keyword_is_no_keyword(client):
    assert client.get("/api/v1/matters?q=%20%20").json["total"] == len(SEED_MATTERS)


def test_filters_by_category_department_and_flags(client):
    vehicle = client.get("/api/v1/matters?category=vehicle&per_page=100")
    assert sorted(codes(vehicle)) == sorted(c for c, m in SEED_MATTERS.items() if m["category"] == "vehicle")
    assert all(item["category"] == "vehicle" for item in vehicle.json["items"])

    gjj = client.get("/api/v1/matters?department=gjj&per_page=100")
    assert {item["department"]["code"] for item in gjj.json["items"]} == {"gjj"}
    assert gjj.json["total"] == sum(1 for m in SEED_MATTERS.values() if m["department"] == "gjj")

    zero_face = all_pages(client, "zero_material=true&face=true")
    assert len(zero_face) >= 10
    assert all(item["zero_material"] and item["face"] for item in zero_face)

    offline = all_pages(client, "online=false")
    assert offline and not any(item["online"] for item in offline)
    everything = all_pages(client)
    assert len(all_pages(client, "online=true")) + len(offline) == len(everything)

    none = client.get("/api/v1/matters?department=nope")
    assert none.status_code == 200 and none.json["total"] == 0


def test_list_items_are_summaries(client):
    item = client.get("/api/v1/matters?q=GJJ-GG-001").json["items"][0]

    assert item == {
        "code": "GJJ-GG-001",
        "name": SEED_MATTERS["GJJ-GG-001"]["name"],
        "department": {"code": "gjj", "name": "郑州住房公积金管理中心"},
        "category": "housing_fund",
        "matter_type": "公共服务",
        "online": True,
        "zero_material": True,
        "face": True,
        "promised_time_limit_days": 0,
    }


def test_pagination_walks_every_matter_once(client):
    first = client.get("/api/v1/matters?per_page=7")
    assert first.json["page"] == 1 and first.json["per_page"] == 7 and len(first.json["items"]) == 7
    total = first.json["total"]
    assert total == len(SEED_MATTERS)

    seen = []
    for page in range(1, total // 7 + 2):
        seen += codes(client.get(f"/api/v1/matters?per_page=7&page={page}"))
    assert sorted(seen) == sorted(SEED_MATTERS) and len(seen) == len(set(seen))

    beyond = client.get("/api/v1/matters?per_page=7&page=99")
    assert beyond.status_code == 200 and beyond.json["items"] == [] and beyond.json["total"] == total


@pytest.mark.parametrize(
    "query",
    [
        "per_page=101",
        "per_page=0",
        "page=0",
        "page=abc",
        "category=parking",
        "zero_material=maybe",
        "sort=name",
        "q=" + "长" * 51,
        "q=%00",
    ],
)
def test_bad_query_arguments_are_422(client, query):
    body = assert_error(client.get(f"/api/v1/matters?{query}"), 422, "validation_failed")
    assert "query" in body["errors"]


# ------------------------------------------------------------------------------------------------ guide


def test_guide_tells_everything_at_once(client):
    response = client.get("/api/v1/matters/GJJ-GG-001")

    assert response.status_code == 200
    guide = response.json
    seed = SEED_MATTERS["GJJ-GG-001"]
    for field in (
        "name",
        "matter_type",
        "category",
        "legal_basis",
        "process",
        "legal_time_limit_days",
        "promised_time_limit_days",
        "delivery",
        "place",
        "hours",
        "consultation_phone",
        "complaint_phone",
        "non_face_path",
        "keywords",
    ):
        assert guide[field] == seed[field], field
    # The guide reads every condition as text; those the shared data decides carry their rule as well.
    assert guide["conditions"] == [c if isinstance(c, str) else c["text"] for c in seed["conditions"]]
    assert [(c["index"], c["rule"], c["reviewer_may_decide"]) for c in guide["condition_checks"]] == [
        (i, c["rule"], c.get("reviewer_may_decide", False)) for i, c in enumerate(seed["conditions"])
        if isinstance(c, dict)]
    assert guide["condition_checks"][0]["elements"] == ["social_insurance.status"]
    assert guide["proactive"] is True
    assert "住房公积金管理条例" in guide["legal_basis"]
    assert guide["non_face_path"]  # the 2025 face rules: a way without face recognition
    assert guide["department"] == {"code": "gjj", "name": "郑州住房公积金管理中心"}
    assert guide["category_label"] == "住房公积金"
    assert guide["fees"] == {"free": True, "items": []}
    assert guide["result"] == seed["result"]
    assert guide["version"] == 1 and guide["created_at"] and guide["updated_at"]
    assert (guide["online"], guide["zero_material"], guide["face"]) == (True, True, True)

    assert [m["code"] for m in guide["materials"]] == [m["code"] for m in seed["materials"]]
    identity = guide["materials"][0]
    assert identity["required"] is True and identity["original_count"] == 1
    face = identity["evidence"][0]
    assert face["type"] == "face" and face["trust_level"] == "A"
    assert {"name": "person.name", "label": "姓名", "type": "string", "personal": True} in face["elements"]
    assert [o["type"] for o in identity["evidence"]] == ["face", "e_licence", "in_person"]
    assert identity["evidence"][1]["licence_type"] == "居民身份证电子证照"

    labels = {e["name"]: e["label"] for e in guide["data_elements"]}
    assert labels["housing_fund.account_status"] == "住房公积金账户状态"
    assert {"person.name", "person.id_number", "social_insurance.status"} <= set(labels)


def test_guide_shows_fees_and_upload_materials(client):
    guide = client.get("/api/v1/matters/BDC-QR-001").json

    assert guide["fees"]["free"] is False and guide["fees"]["items"][0]["amount"] == 80
    contract = next(m for m in guide["materials"] if m["code"] == "SALE_CONTRACT")
    assert [o["type"] for o in contract["evidence"]] == ["upload"]
    assert contract["evidence"][0]["trust_level"] == "C"
    assert guide["zero_material"] is False and guide["online"] is True


@pytest.mark.parametrize("code", ["NO-SUCH-001", "gjj-gg-001", "a%00b", "%E5%85%AC"])
def test_unknown_matter_is_404(client, code):
    assert_error(client.get(f"/api/v1/matters/{code}"), 404, "not_found")


# ---------------------------------------------------------------------------------------- admin writes


def test_admin_creates_a_matter_with_derived_flags(client, admin):
    body = new_matter(
        materials=[
            {
                "code": "PROMISE",
                "name": "承诺书",
                "evidence": [{"type": "promise", "note": "在线承诺"}],
            }
        ]
    )

    response = client.post("/api/v1/matters", json=body, headers=admin)

    assert response.status_code == 201, response.json
    assert response.json["code"] == "TEST-GG-001" and response.json["version"] == 1
    assert (response.json["online"], response.json["zero_material"], response.json["face"]) == (
        True,
        True,
        False,
    )
    assert response.json["materials"][0]["evidence"][0]["trust_level"] == "D"  # the default for a promise
    guide = client.get("/api/v1/matters/TEST-GG-001")
    assert guide.status_code == 200 and guide.json["name"] == "测试事项公积金缴存查询"
    assert "TEST-GG-001" in codes(client.get("/api/v1/matters?q=测试事项"))
    with client.application.app_context():
        history = db.session.scalars(
            sa.select(MatterVersion).where(MatterVersion.matter_code == "TEST-GG-001")
        ).all()
        assert [(h.version, h.changed_by.startswith("staff:")) for h in history] == [(1, True)]


@pytest.mark.parametrize(
    "evidence, flags",
    [
        ([{"type": "upload"}], (True, False, False)),
        ([{"type": "in_person"}], (False, False, False)),
        ([{"type": "upload"}, {"type": "face"}], (True, True, True)),
        ([{"type": "in_person"}, {"type": "shared_data", "elements": ["person.name"]}], (True, True, False)),
    ],
)
def test_flags_follow_the_evidence_of_required_materials(client, admin, evidence, flags):
    body = new_matter(
        materials=[
            {"code": "M1", "name": "材料一", "evidence": evidence},
            # An optional material that needs a visit changes neither online nor zero_material.
            {"code": "M2", "name": "材料二", "required": False, "evidence": [{"type": "in_person"}]},
        ]
    )

    created = client.post("/api/v1/matters", json=body, headers=admin).json

    assert (created["online"], created["zero_material"], created["face"]) == flags


def test_duplicate_code_is_409_and_changes_nothing(client, admin, row_counts):
    before = row_counts()

    body = assert_error(
        client.post("/api/v1/matters", json=new_matter(code="GJJ-GG-001"), headers=admin), 409, "conflict"
    )

    assert "code" in body["errors"]["json"]
    assert row_counts() == before
    assert client.get("/api/v1/matters/GJJ-GG-001").json["name"] == SEED_MATTERS["GJJ-GG-001"]["name"]


def _material_with(evidence: list) -> list:
    return [{"code": "M1", "name": "材料一", "evidence": evidence}]


BAD_BODIES = {
    "unknown department": (dict(department="nope"), ["department"]),
    "unknown data element": (
        dict(materials=_material_with([{"type": "shared_data", "elements": ["person.shoe_size"]}])),
        ["materials", "0", "evidence", "0", "elements", "0"],
    ),
    "unknown evidence type": (
        dict(materials=_material_with([{"type": "fax"}])),
        ["materials", "0", "evidence", "0", "type"],
    ),
    "shared data without elements": (
        dict(materials=_material_with([{"type": "shared_data"}])),
        ["materials", "0", "evidence", "0", "elements"],
    ),
    "e-licence without its type": (
        dict(materials=_material_with([{"type": "e_licence"}])),
        ["materials", "0", "evidence", "0", "licence_type"],
    ),
    "bad trust level": (
        dict(materials=_material_with([{"type": "upload", "trust_level": "E"}])),
        ["materials", "0", "evidence", "0", "trust_level"],
    ),
    "material without evidence": (dict(materials=_material_with([])), ["materials", "0", "evidence"]),
    "unknown evidence field": (
        dict(materials=_material_with([{"type": "upload", "colour": "red"}])),
        ["materials", "0", "evidence", "0", "colour"],
    ),
    "duplicate material codes": (dict(materials=_material_with([{"type": "upload"}]) * 2), ["materials"]),
    "unknown category": (dict(category="parking"), ["category"]),
    "unknown matter type": (dict(matter_type="行政处罚"), ["matter_type"]),
    "promise longer than the law": (
        dict(legal_time_limit_days=3, promised_time_limit_days=5),
        ["promised_time_limit_days"],
    ),
    "no non-face path": (dict(non_face_path=""), ["non_face_path"]),
    "bad phone": (dict(consultation_phone="call us"), ["consultation_phone"]),
    "bad code": (dict(code="has space"), ["code"]),
    "code with a trailing newline": (dict(code="TEST-1\n"), ["code"]),
    "keyword with a newline": (dict(keywords=["公积金\n"]), ["keywords", "0"]),
    "control character": (dict(name="公积金\x00"), ["name"]),
    "lone surrogate": (dict(place="\ud800"), ["place"]),
    "free with fee items": (
        dict(fees={"free": True, "items": [{"name": "工本费", "amount": 10}]}),
        ["fees", "items"],
    ),
    "negative fee": (
        dict(fees={"free": False, "items": [{"name": "工本费", "amount": -1}]}),
        ["fees", "items", "0", "amount"],
    ),
    "bad delivery": (dict(delivery=["pigeon"]), ["delivery", "0"]),
    "unknown field": (dict(colour="red"), ["colour"]),
    "wrong type": (dict(promised_time_limit_days="soon"), ["promised_time_limit_days"]),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_matter_bodies_are_422_and_change_nothing(client, admin, row_counts, case):
    changes, path = BAD_BODIES[case]
    before = row_counts()

    # Sent as ASCII-escaped JSON, as a client would send a lone surrogate.
    response = client.post(
        "/api/v1/matters",
        data=json.dumps(new_matter(**changes)),
        content_type="application/json",
        headers=admin,
    )

    body = assert_error(response, 422, "validation_failed")

    node = body["errors"]["json"]
    for key in path:
        node = node[key]
    assert node, case
    assert row_counts() == before


def test_missing_required_fields_are_each_reported(client, admin, row_counts):
    before = row_counts()

    body = assert_error(
        client.post("/api/v1/matters", json={"code": "X-1"}, headers=admin), 422, "validation_failed"
    )

    assert {"name", "department", "legal_basis", "non_face_path", "fees", "result"} <= set(
        body["errors"]["json"]
    )
    assert row_counts() == before


def test_admin_replaces_a_matter_and_history_is_kept(client, admin):
    body = copy.deepcopy(SEED_MATTERS["GJJ-GG-002"])
    del body["code"]
    body["name"] = "住房公积金缴存证明(新版)"
    body["materials"][1]["evidence"] = [{"type": "upload", "note": "上传单位出具的缴存证明"}]

    response = client.put("/api/v1/matters/GJJ-GG-002", json=body, headers=admin)

    assert response.status_code == 200, response.json
    assert response.json["version"] == 2 and response.json["zero_material"] is False
    assert response.headers["ETag"] == client.get("/api/v1/matters/GJJ-GG-002").headers["ETag"]
    with client.application.app_context():
        history = db.session.scalars(
            sa.select(MatterVersion)
            .where(MatterVersion.matter_code == "GJJ-GG-002")
            .order_by(MatterVersion.version)
        ).all()
        assert [h.version for h in history] == [1, 2]
        assert history[0].snapshot["name"] == SEED_MATTERS["GJJ-GG-002"]["name"]
        assert history[1].snapshot["name"] == "住房公积金缴存证明(新版)"
        assert history[0].changed_by == "seed" and history[1].changed_by.startswith("staff:")


def test_replace_updates_materials_in_place_by_code(client, admin):
    with client.application.app_context():
        before = {
            m.code: m.id
            for m in db.session.scalars(sa.select(Matter).where(Matter.code == "GJJ-GG-001")).one().materials
        }
    body = copy.deepcopy(SEED_MATTERS["GJJ-GG-001"])
    body["materials"] = [body["materials"][2], body["materials"][0]]  # keep two, reorder, drop the rest

    response = client.put("/api/v1/matters/GJJ-GG-001", json=body, headers=admin)

    assert response.status_code == 200, response.json
    assert [m["code"] for m in response.json["materials"]] == ["HF_ACCOUNT", "IDENTITY"]
    with client.application.app_context():
        after = {
            m.code: m.id
            for m in db.session.scalars(sa.select(Matter).where(Matter.code == "GJJ-GG-001")).one().materials
        }
    assert after == {"HF_ACCOUNT": before["HF_ACCOUNT"], "IDENTITY": before["IDENTITY"]}


def test_replace_checks_if_match(client, admin, row_counts):
    etag = client.get("/api/v1/matters/GJJ-GG-003").headers["ETag"]
    body = copy.deepcopy(SEED_MATTERS["GJJ-GG-003"])
    body["name"] = "住房公积金提取(租房)"
    before = row_counts()

    stale = client.put("/api/v1/matters/GJJ-GG-003", json=body, headers={**admin, "If-Match": '"0123"'})

    assert_error(stale, 412, "precondition_failed")
    assert row_counts() == before
    fresh = client.put("/api/v1/matters/GJJ-GG-003", json=body, headers={**admin, "If-Match": etag})
    assert fresh.status_code == 200 and fresh.json["version"] == 2
    # The tag the first writer saw is now stale for everyone else.
    again = client.put("/api/v1/matters/GJJ-GG-003", json=body, headers={**admin, "If-Match": etag})
    assert_error(again, 412, "precondition_failed")


def test_replace_of_an_absent_matter_is_404(client, admin, row_counts):
    before = row_counts()
    body = new_matter()
    del body["code"]

    assert_error(client.put("/api/v1/matters/NO-SUCH-001", json=body, headers=admin), 404, "not_found")
    assert row_counts() == before


def test_replace_cannot_change_the_code_or_break_rules(client, admin, row_counts):
    before = row_counts()

    renamed = client.put("/api/v1/matters/GJJ-GG-002", json=new_matter(code="GJJ-GG-999"), headers=admin)
    unknown_department = client.put(
        "/api/v1/matters/GJJ-GG-002", json=new_matter(code="GJJ-GG-002", department="nope"), headers=admin
    )

    assert "code" in assert_error(renamed, 422, "validation_failed")["errors"]["json"]
    assert "department" in assert_error(unknown_department, 422, "validation_failed")["errors"]["json"]
    assert row_counts() == before
    assert client.get("/api/v1/matters/GJJ-GG-002").json["version"] == 1


@pytest.mark.parametrize("method, path", [("post", "/api/v1/matters"), ("put", "/api/v1/matters/GJJ-GG-002")])
def test_only_admins_write_the_catalogue(client, staff_headers, citizen_headers, row_counts, method, path):
    body = new_matter(code="GJJ-GG-002")
    call = getattr(client, method)
    auditor, citizen = staff_headers("auditor"), citizen_headers
    before = row_counts()

    assert_error(call(path, json=body), 401, "unauthorized")
    assert_error(call(path, json=body, headers=auditor), 403, "forbidden")
    assert_error(call(path, json=body, headers=citizen), 403, "forbidden")
    assert row_counts() == before


def test_malformed_json_is_a_clean_error(client, admin, row_counts):
    before = row_counts()

    response = client.post(
        "/api/v1/matters", data="{not json", content_type="application/json", headers=admin
    )

    assert response.status_code in (400, 422) and response.json["error"]
    assert row_counts() == before


# ------------------------------------------------------------------------------------------------ stats


def _expected_counts(matters) -> dict:
    """Counts recomputed from the seed file with the rules of BRIEF's glossary, independently of the app."""

    def needs_citizen(option):
        return option["type"] in ("upload", "in_person")

    counts = {"total": 0, "online": 0, "zero_material": 0, "face": 0, "zero_material_and_face": 0}
    for matter in matters:
        required = [m for m in matter["materials"] if m.get("required", True)]
        zero = all(any(not needs_citizen(o) for o in m["evidence"]) for m in required)
        online = not any(all(o["type"] == "in_person" for o in m["evidence"]) for m in required)
        face = any(o["type"] == "face" for m in matter["materials"] for o in m["evidence"])
        counts["total"] += 1
        counts["online"] += online
        counts["zero_material"] += zero
        counts["face"] += face
        counts["zero_material_and_face"] += zero and face
    return counts


def test_stats_match_the_seed(client):
    stats = client.get("/api/v1/stats/catalog").json

    matters = list(SEED_MATTERS.values())
    assert {k: stats[k] for k in _expected_counts([])} == _expected_counts(matters)
    by_department = {d["code"]: d for d in stats["departments"]}
    for department in SEED["departments"]:
        mine = [m for m in matters if m["department"] == department["code"]]
        entry = by_department[department["code"]]
        assert {k: entry[k] for k in _expected_counts([])} == _expected_counts(mine)
        assert entry["name"] == department["name"]
    categories = {c["category"]: c for c in stats["categories"]}
    assert set(categories) == {
        "real_estate",
        "housing_fund",
        "social_insurance",
        "vehicle",
        "exit_entry",
        "business",
        "civil_affairs",
    }
    assert categories["housing_fund"]["label"] == "住房公积金"
    assert sum(c["total"] for c in categories.values()) == stats["total"] == len(matters)
    assert stats["zero_material_and_face"] >= 10


def test_stats_follow_admin_writes(client, admin):
    before = client.get("/api/v1/stats/catalog").json

    client.post("/api/v1/matters", json=new_matter(), headers=admin)

    after = client.get("/api/v1/stats/catalog").json
    assert after["total"] == before["total"] + 1
    assert after["zero_material_and_face"] == before["zero_material_and_face"] + 1


# ----------------------------------------------------------------------------- data elements, bundles


def test_data_elements_list_the_dictionary(client):
    from shared_data.elements import ELEMENTS

    items = client.get("/api/v1/data-elements").json["items"]

    assert [i["name"] for i in items] == list(ELEMENTS)
    photo = next(i for i in items if i["name"] == "person.photo")
    assert photo["type"] == "image" and photo["label"] and photo["personal"] is True
    # The seeded sandbox connectors are the active providers; elements no bureau shares have none.
    providers = {i["name"]: i["providers"] for i in items}
    assert providers["person.name"] == ["ga-population"]
    assert providers["housing_fund.balance"] == ["gjj-housing-fund"]
    assert providers["tax.taxpayer_status"] == []


def test_bundles_list_their_matters(client):
    response = client.get("/api/v1/bundles")

    assert response.status_code == 200
    bundles = {b["code"]: b for b in response.json["items"]}
    assert {"kaiban-canyin", "xinshenger-chusheng"} <= set(bundles)
    assert response.json["total"] == len(SEED["bundles"])
    restaurant = bundles["kaiban-canyin"]
    assert restaurant["name"] == "开办餐饮店" and len(restaurant["matters"]) >= 3
    assert restaurant["matters"][0] == {
        "code": "SCJG-XK-001",
        "name": SEED_MATTERS["SCJG-XK-001"]["name"],
        "department": {"code": "scjg", "name": "郑州市市场监督管理局"},
    }
    assert len({m["department"]["code"] for m in restaurant["matters"]}) >= 3  # across departments


def test_bundle_detail_and_404(client):
    birth = client.get("/api/v1/bundles/xinshenger-chusheng")

    assert birth.status_code == 200
    assert [m["code"] for m in birth.json["matters"]] == [
        "WJW-GG-001",
        "GA-QR-001",
        "YBJ-GG-002",
        "RSJ-GG-004",
    ]
    assert all("zero_material" in m and "department" in m for m in birth.json["matters"])
    assert_error(client.get("/api/v1/bundles/no-such-bundle"), 404, "not_found")
    assert_error(client.get("/api/v1/bundles?per_page=0"), 422, "validation_failed")
