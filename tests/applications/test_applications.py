"""Drafts, consent and the prefill from the sandbox bureaus over real HTTP: provenance, faults, minimisation."""

from __future__ import annotations

import copy
import time

import pytest
import sqlalchemy as sa
from face_flow import bind_person, claim_person

from app.accounts.models import Citizen
from app.applications.models import Application
from app.catalogue.seed import load_seed_file
from app.connectors.models import DataAccessRecord
from app.extensions import db
from app.ledger.verify import verify_chain

ZHANG_WEI = ("张伟", "410105198503120013")
LI_NA = ("李娜", "410102199207040225")
CHEN_JING = ("陈静", "41010419650908058X")
ZHAO_LEI = ("赵磊", "410105199001010636")
SEED_MATTERS = {m["code"]: m for m in load_seed_file()["matters"]}

# A matter whose materials need data from all six sandbox bureaus, plus one element nobody provides.
SIX_BUREAUS = {
    "M_POP": ["person.name", "person.household_address"],
    "M_SI": ["social_insurance.status", "social_insurance.months_paid"],
    "M_HF": ["housing_fund.account_status", "housing_fund.balance"],
    "M_PROP": ["property.count"],
    "M_BIZ": ["business.uscc"],
    "M_MAR": ["marriage.status", "marriage.registration_date"],
    "M_TAX": ["tax.taxpayer_status"],
}
ELEMENT_BUREAU = {element: kind for kind, material in zip(
    ["population", "social_insurance", "housing_fund", "property", "business", "marriage", None],
    SIX_BUREAUS, strict=True) for element in SIX_BUREAUS[material]}
KIND_CONNECTOR = {"population": "ga-population", "social_insurance": "rsj-social-insurance",
                  "housing_fund": "gjj-housing-fund", "property": "zrzy-property", "business": "scjg-business",
                  "marriage": "mz-marriage"}


def matter_body(code: str, materials: dict[str, list[str]], *, critical: tuple[str, ...] = (),
                fallback: dict[str, str] | None = None) -> dict:
    body = copy.deepcopy(SEED_MATTERS["GJJ-GG-002"])
    body.update(code=code, name=f"测试事项{code}")
    body["materials"] = []
    for material_code, element_names in materials.items():
        option = {"type": "shared_data", "elements": element_names}
        if material_code in critical:
            option["critical"] = True
        evidence = [option]
        if fallback and material_code in fallback:
            evidence.append({"type": fallback[material_code]})
        body["materials"].append({"code": material_code, "name": f"材料{material_code}", "evidence": evidence})
    return body


@pytest.fixture
def admin(staff_headers):
    return staff_headers("admin")


@pytest.fixture
def six(client, admin):
    """The TEST-SIX matter: M_PROP falls back to a promise, M_BIZ to an upload."""
    body = matter_body("TEST-SIX", SIX_BUREAUS, fallback={"M_PROP": "promise", "M_BIZ": "upload"})
    response = client.post("/api/v1/matters", json=body, headers=admin)
    assert response.status_code == 201, response.json
    return "TEST-SIX"


@pytest.fixture
def zhang(citizen_as):
    return citizen_as(*ZHANG_WEI)


def draft(client, headers, matter_code: str) -> dict:
    response = client.post("/api/v1/applications", headers=headers, json={"matter_code": matter_code})
    assert response.status_code == 201, response.json
    return response.json


def consent(client, headers, created: dict):
    return client.post(f"/api/v1/applications/{created['id']}/consent", headers=headers,
                       json=created["consent_required"])


def prefill(client, headers, application_id: str):
    return client.post(f"/api/v1/applications/{application_id}/prefill", headers=headers)


def ready(client, headers, matter_code: str) -> dict:
    """A draft with consent given."""
    created = draft(client, headers, matter_code)
    assert consent(client, headers, created).status_code == 201
    return created


def access_records(app, application_id: str | None = None) -> list[DataAccessRecord]:
    with app.app_context():
        query = sa.select(DataAccessRecord).order_by(DataAccessRecord.seq)
        if application_id:
            query = query.where(DataAccessRecord.application_id == application_id)
        return db.session.scalars(query).all()


# --------------------------------------------------------------------------------------------------- drafts


def test_a_draft_lists_materials_and_the_consent_it_needs(client, zhang):
    body = draft(client, zhang, "GJJ-GG-001")

    assert body["status"] == "draft" and body["matter_code"] == "GJJ-GG-001" and len(body["id"]) == 32
    assert body["consent_required"]["elements"] == [
        "social_insurance.status", "social_insurance.retirement_date",
        "housing_fund.account_status", "housing_fund.account_number", "housing_fund.balance",
    ]
    purpose = body["consent_required"]["purpose"]
    assert "住房公积金提取(离休、退休)" in purpose and "GJJ-GG-001" in purpose
    # The identity: satisfied by the face pass that proved the real name (its window is open).
    assert {m["code"]: (m["status"], m["via"]) for m in body["materials"]} == {
        "IDENTITY": ("satisfied", "face"),
        "RETIREMENT": ("awaiting_prefill", "shared_data"),
        "HF_ACCOUNT": ("awaiting_prefill", "shared_data"),
        "BANK_CARD": ("available", "promise"),
    }


def test_drafts_of_unknown_matters_and_bad_bodies(client, zhang, row_counts):
    citizen_headers = zhang
    before = row_counts()
    assert client.post("/api/v1/applications", headers=citizen_headers,
                       json={"matter_code": "NOPE-001"}).status_code == 404
    for body in [{}, {"matter_code": ""}, {"matter_code": "GJJ GG"}, {"matter_code": "GJJ-GG-001", "x": 1},
                 {"matter_code": "GJJ-GG-001", "on_behalf_of": "someone"}]:
        response = client.post("/api/v1/applications", headers=citizen_headers, json=body)
        assert response.status_code == 422, body
    assert row_counts() == before


def test_listing_and_reading_own_applications(client, zhang):
    citizen_headers = zhang
    first = draft(client, citizen_headers, "GJJ-GG-001")
    second = draft(client, citizen_headers, "RSJ-GG-001")
    listing = client.get("/api/v1/applications", headers=citizen_headers).json
    assert [a["id"] for a in listing["items"]] == [second["id"], first["id"]] and listing["total"] == 2
    assert listing["items"][0]["matter_name"] == SEED_MATTERS["RSJ-GG-001"]["name"]
    detail = client.get(f"/api/v1/applications/{first['id']}", headers=citizen_headers).json
    assert detail["status"] == "draft" and detail["prefill"] is None and detail["consent"] is None
    assert [t["kind"] for t in detail["timeline"]] == ["created"]
    assert detail["timeline"][0]["actor"] == "citizen"


def test_another_citizens_application_is_404_everywhere(client, login_citizen, zhang, citizen_as):
    created = ready(client, zhang, "RSJ-GG-001")
    receipt_id = client.get("/api/v1/me/consents", headers=zhang).json["items"][0]["id"]
    other = citizen_as(*LI_NA)
    for response in [
        client.get(f"/api/v1/applications/{created['id']}", headers=other),
        consent(client, other, created),
        prefill(client, other, created["id"]),
        client.get(f"/api/v1/me/data-access?application_id={created['id']}", headers=other),
        client.delete(f"/api/v1/me/consents/{receipt_id}", headers=other),
    ]:
        assert response.status_code == 404, response.json
        assert response.json["error"] == "not_found"
    assert client.get("/api/v1/applications", headers=other).json["items"] == []


@pytest.mark.parametrize("who", ["admin", "auditor", "bureau-ga", "reviewer-gjj"])
def test_staff_cannot_use_the_citizen_endpoints(client, staff_headers, who):
    headers = staff_headers(who)
    assert client.post("/api/v1/applications", headers=headers, json={"matter_code": "GJJ-GG-001"}).status_code == 403
    assert client.get("/api/v1/applications", headers=headers).status_code == 403
    assert client.get("/api/v1/me/data-access", headers=headers).status_code == 403


# -------------------------------------------------------------------------------------------------- consent


def test_prefill_without_consent_is_403_and_calls_nobody(app, client, zhang, bureaus):
    created = draft(client, zhang, "RSJ-GG-001")
    response = prefill(client, zhang, created["id"])
    assert response.status_code == 403 and response.json["error"] == "consent_required"
    assert bureaus.state("social_insurance")["queries"] == 0
    assert access_records(app, created["id"]) == []


@pytest.mark.parametrize("change", [
    {"elements": ["social_insurance.status"]},  # fewer
    {"elements": ["social_insurance.status", "social_insurance.months_paid", "social_insurance.employer",
                  "person.name"]},  # more
    {"elements": ["social_insurance.status", "social_insurance.status", "social_insurance.months_paid"]},
    {"purpose": "随便看看"},
    {"elements": []},
])
def test_consent_must_match_exactly(client, zhang, row_counts, change):
    created = draft(client, zhang, "RSJ-GG-001")
    before = row_counts()
    response = client.post(f"/api/v1/applications/{created['id']}/consent", headers=zhang,
                           json={**created["consent_required"], **change})
    assert response.status_code == 422 and response.json["error"] == "consent_mismatch"
    assert set(response.json["errors"]["json"]) <= {"elements", "purpose"}
    assert row_counts() == before


def test_consent_in_another_order_is_the_same_consent(client, zhang):
    created = draft(client, zhang, "RSJ-GG-001")
    required = created["consent_required"]
    response = client.post(f"/api/v1/applications/{created['id']}/consent", headers=zhang,
                           json={"elements": list(reversed(required["elements"])), "purpose": required["purpose"]})
    assert response.status_code == 201
    receipt = response.json
    assert receipt["status"] == "active" and receipt["elements"] == sorted(required["elements"])
    assert receipt["application_id"] == created["id"] and receipt["purpose"] == required["purpose"]
    assert receipt["withdrawn_at"] is None and receipt["version"] == 1


def test_withdrawn_consent_stops_further_prefill(app, client, zhang, bureaus):
    created = ready(client, zhang, "RSJ-GG-001")
    assert prefill(client, zhang, created["id"]).status_code == 200
    receipt = client.get("/api/v1/me/consents", headers=zhang).json["items"][0]

    withdrawn = client.delete(f"/api/v1/me/consents/{receipt['id']}", headers=zhang)

    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn" and withdrawn.json["withdrawn_at"]
    assert client.delete(f"/api/v1/me/consents/{receipt['id']}", headers=zhang).json == withdrawn.json
    calls = bureaus.state("social_insurance")["queries"]
    response = prefill(client, zhang, created["id"])
    assert response.status_code == 403 and response.json["error"] == "consent_required"
    assert bureaus.state("social_insurance")["queries"] == calls
    detail = client.get(f"/api/v1/applications/{created['id']}", headers=zhang).json
    assert detail["consent"] is None
    assert [t["kind"] for t in detail["timeline"]] == ["created", "consent_granted", "prefilled", "consent_withdrawn"]
    # Consenting again works.
    assert consent(client, zhang, created).status_code == 201
    assert prefill(client, zhang, created["id"]).status_code == 200


def test_a_new_consent_supersedes_the_previous_one(client, zhang):
    created = ready(client, zhang, "RSJ-GG-001")
    assert consent(client, zhang, created).status_code == 201
    receipts = client.get("/api/v1/me/consents", headers=zhang).json["items"]
    assert [r["status"] for r in receipts] == ["active", "superseded"]


def test_editing_the_matter_requires_consent_again(client, zhang, admin, bureaus):
    created = ready(client, zhang, "RSJ-GG-001")
    assert prefill(client, zhang, created["id"]).status_code == 200
    body = copy.deepcopy(SEED_MATTERS["RSJ-GG-001"])
    body["materials"][1]["evidence"][0]["elements"].append("social_insurance.card_status")
    assert client.put("/api/v1/matters/RSJ-GG-001", json=body, headers=admin).status_code == 200
    calls = bureaus.state("social_insurance")["queries"]

    response = prefill(client, zhang, created["id"])

    assert response.status_code == 403 and response.json["error"] == "consent_required"
    assert bureaus.state("social_insurance")["queries"] == calls
    detail = client.get(f"/api/v1/applications/{created['id']}", headers=zhang).json
    assert "social_insurance.card_status" in detail["consent_required"]["elements"] and detail["consent"] is None
    assert client.post(f"/api/v1/applications/{created['id']}/consent", headers=zhang,
                       json=detail["consent_required"]).status_code == 201
    again = prefill(client, zhang, created["id"])
    assert again.status_code == 200 and again.json["fields"]["social_insurance.card_status"]["value"] == "正常"


def test_drafts_need_an_identity_proven_by_face(client, citizen_headers):
    # Logged in only, then claimed: neither may start an application (tests/face/test_assurance.py: the attacks).
    for headers in (citizen_headers, claim_person(client, ("刘洋", "41012220010215047X"))):
        response = client.post("/api/v1/applications", headers=headers, json={"matter_code": "RSJ-GG-001"})
        assert response.status_code == 403 and response.json["error"] == "assurance_required"


# -------------------------------------------------------------------------------------------------- prefill


def test_prefill_from_six_bureaus_with_provenance(app, client, zhang, six, bureaus):
    created = ready(client, zhang, six)

    response = prefill(client, zhang, created["id"])

    assert response.status_code == 200, response.json
    body = response.json
    fields = body["fields"]
    assert set(fields) == set(ELEMENT_BUREAU)
    assert fields["person.name"]["value"] == "张伟"
    assert fields["person.household_address"]["value"].startswith("河南省郑州市金水区")
    assert fields["social_insurance.months_paid"]["value"] == 120
    assert fields["housing_fund.balance"]["value"] == 86432.15
    assert fields["property.count"]["value"] == 1
    assert (fields["marriage.status"]["value"], fields["marriage.registration_date"]["value"]) == ("已婚", "2012-10-08")
    for element, kind in ELEMENT_BUREAU.items():
        field = fields[element]
        if kind is None:
            assert (field["status"], field["value"], field["locked"], field["source"]) == ("skipped", None, False, None)
            continue
        source = field["source"]
        assert source["connector"] == KIND_CONNECTOR[kind] and source["trust_level"] == "A"
        assert source["fetched_at"].endswith("Z")
        if kind == "business":  # 张伟 runs no business
            assert (field["status"], field["value"], field["locked"]) == ("not_found", None, False)
        else:
            assert field["status"] == "ok" and field["locked"] is True
            assert source["source_updated_at"].endswith("Z")
    assert fields["person.name"]["source"]["bureau"] == "郑州市公安局"
    assert fields["person.name"]["source"]["source_updated_at"] == "2024-03-18T02:12:45Z"  # 10:12:45 Beijing
    statuses = {m["code"]: (m["status"], m["via"]) for m in body["materials"]}
    assert statuses == {
        "M_POP": ("satisfied", "shared_data"), "M_SI": ("satisfied", "shared_data"),
        "M_HF": ("satisfied", "shared_data"), "M_PROP": ("satisfied", "shared_data"),
        "M_BIZ": ("needs_upload", "upload"), "M_MAR": ("satisfied", "shared_data"),
        "M_TAX": ("unavailable", None),
    }
    assert body["zero_material"] is False
    # One chained record per connector call, in the data-access log.
    records = access_records(app, created["id"])
    assert sorted(r.connector_id for r in records) == sorted(KIND_CONNECTOR.values())
    by_connector = {r.connector_id: r for r in records}
    assert by_connector["scjg-business"].outcome == "not_found"
    assert by_connector["ga-population"].elements_returned == ["person.name", "person.household_address"]
    assert {r.purpose for r in records} == {created["consent_required"]["purpose"]}
    with app.app_context():
        assert verify_chain(DataAccessRecord).ok


def test_a_zero_material_matter_for_this_citizen(app, client, zhang):
    created = ready(client, zhang, "RSJ-GG-001")
    body = prefill(client, zhang, created["id"]).json
    # The identity card is satisfied by the face verification that proved the real name (its window is open).
    assert {m["code"]: (m["status"], m["via"]) for m in body["materials"]} == {
        "IDENTITY": ("satisfied", "face"), "SI_RECORD": ("satisfied", "shared_data")}
    assert body["zero_material"] is True
    # Once the window has closed, the identity card's e-licence rests on the real name proven by face.
    with app.app_context():
        db.session.execute(sa.update(Citizen).values(face_verified_until=None))
        db.session.commit()
    body = prefill(client, zhang, created["id"]).json
    assert {m["code"]: (m["status"], m["via"]) for m in body["materials"]} == {
        "IDENTITY": ("satisfied", "e_licence"), "SI_RECORD": ("satisfied", "shared_data")}


def test_only_the_needed_elements_are_requested_and_kept(app, client, zhang, bureaus):
    created = ready(client, zhang, "RSJ-GG-001")
    body = prefill(client, zhang, created["id"]).json

    journal = bureaus.journal("social_insurance")
    assert len(journal) == 1
    query = journal[0]
    assert query["elements"] == ["social_insurance.status", "social_insurance.months_paid",
                                 "social_insurance.employer"]
    assert query["purpose"] == created["consent_required"]["purpose"]
    assert query["application_id"] == created["id"]
    assert query["acting_user"].startswith("citizen:")
    assert query["request_id"]
    for kind in ("housing_fund", "property", "business", "marriage"):
        assert bureaus.state(kind)["queries"] == 0, kind
    # The population registry was asked once, by the real-name binding, for the name only.
    assert [(q["elements"], q["purpose"], q["application_id"]) for q in bureaus.journal("population")] == [
        (["person.name"], "实名认证", "real-name-binding")]
    assert set(body["fields"]) == set(query["elements"])
    with app.app_context():
        stored = db.session.get(Application, created["id"])
        assert set(stored.prefill) == set(query["elements"])


def test_the_request_id_reaches_the_bureau_and_the_log(app, client, zhang, bureaus):
    created = ready(client, zhang, "RSJ-GG-001")
    response = client.post(f"/api/v1/applications/{created['id']}/prefill", headers={
        **zhang, "X-Request-Id": "gateway-req-000123"})
    assert response.headers["X-Request-Id"] == "gateway-req-000123"
    assert bureaus.journal("social_insurance")[0]["request_id"] == "gateway-req-000123"
    assert access_records(app, created["id"])[0].request_id == "gateway-req-000123"
    odd = client.post(f"/api/v1/applications/{created['id']}/prefill", headers={**zhang, "X-Request-Id": "a b"})
    assert odd.headers["X-Request-Id"] != "a b" and len(odd.headers["X-Request-Id"]) == 32


def test_prefill_values_are_encrypted_on_the_application_and_shown_to_the_owner(app, client, zhang):
    created = ready(client, zhang, "RSJ-GG-001")
    answer = prefill(client, zhang, created["id"]).json
    with app.app_context():
        row = dict(db.session.execute(sa.text("SELECT * FROM applications WHERE id = :id"),
                                      {"id": created["id"]}).mappings().one())
    assert "郑州启明软件科技有限公司" not in str(row)
    assert "ok" in str(row["prefill"])  # provenance and statuses are kept in clear
    detail = client.get(f"/api/v1/applications/{created['id']}", headers=zhang).json
    assert detail["prefill"]["fields"] == answer["fields"]
    assert detail["prefill"]["zero_material"] is True
    assert detail["consent"]["status"] == "active"
    assert detail["timeline"][-1]["kind"] == "prefilled"
    assert detail["timeline"][-1]["detail"] == {"fields": {"ok": 3}, "eligibility": "eligible"}


# ------------------------------------------------------------------------------------------------------ faults

FAULTS = [
    # mode, options, field status, log error
    pytest.param("slow", {}, "timeout", "deadline_exceeded", id="slow"),
    pytest.param("hang", {}, "timeout", "deadline_exceeded", id="hang"),
    pytest.param("dribble", {"delay_ms": 300}, "timeout", "deadline_exceeded", id="dribble"),
    pytest.param("error500", {}, "failed", "http_500", id="error500"),
    pytest.param("malformed", {}, "failed", "malformed_response", id="malformed"),
    pytest.param("oversized", {"size_bytes": 4 * 1024 * 1024}, "failed", "response_too_large", id="oversized"),
    pytest.param("wrong_content_type", {}, "failed", "unexpected_content_type", id="wrong-content-type"),
    pytest.param("redirect", {}, "failed", "redirect_refused", id="redirect-to-metadata"),
]


@pytest.mark.parametrize(("mode", "options", "status", "error"), FAULTS)
@pytest.mark.parametrize("kind", ["population", "housing_fund"])
def test_a_faulty_bureau_degrades_only_its_own_fields(app, client, zhang, six, bureaus, kind, mode, options,
                                                      status, error):
    created = ready(client, zhang, six)
    bureaus.set_mode(kind, mode, **options)
    started = time.monotonic()

    response = prefill(client, zhang, created["id"])

    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.json
    assert elapsed < app.config["PREFILL_DEADLINE_SECONDS"] + 1.0
    fields = response.json["fields"]
    for element, element_kind in ELEMENT_BUREAU.items():
        if element_kind == kind:
            assert (fields[element]["status"], fields[element]["value"], fields[element]["locked"]) == (
                status, None, False), element
            assert fields[element]["source"]["connector"] == KIND_CONNECTOR[kind]
            assert fields[element]["source"]["fetched_at"] is None
        elif element_kind in ("population", "social_insurance", "housing_fund", "property", "marriage"):
            assert fields[element]["status"] == "ok", element
    material = {"population": "M_POP", "housing_fund": "M_HF"}[kind]
    assert {m["code"]: m["status"] for m in response.json["materials"]}[material] == "unavailable"
    records = access_records(app, created["id"])
    assert len(records) == 6  # each call logged exactly once, the faulty one included
    faulty = [r for r in records if r.connector_id == KIND_CONNECTOR[kind]]
    assert len(faulty) == 1 and (faulty[0].outcome, faulty[0].error) == (status, error)
    assert faulty[0].elements_returned == []


def test_wrong_types_fail_field_by_field(app, client, zhang, six, bureaus):
    created = ready(client, zhang, six)
    bureaus.set_mode("social_insurance", "wrong_types")
    bureaus.set_mode("marriage", "wrong_types")

    fields = prefill(client, zhang, created["id"]).json["fields"]

    # Strings stay readable; the integer "一百二十" and the date "八五年三月十二日" do not fit their types.
    status, months = fields["social_insurance.status"], fields["social_insurance.months_paid"]
    assert (status["status"], status["value"]) == ("ok", "参保缴费")
    assert (months["status"], months["value"]) == ("failed", None)
    assert fields["marriage.status"]["status"] == "ok"
    assert fields["marriage.registration_date"]["status"] == "failed"
    records = {r.connector_id: r for r in access_records(app, created["id"])}
    assert records["rsj-social-insurance"].outcome == "ok"
    assert records["rsj-social-insurance"].elements_returned == ["social_insurance.status"]


def test_a_faulty_bureau_does_not_hold_the_prefill_past_its_deadline(app, client, zhang, six, bureaus):
    created = ready(client, zhang, six)
    for kind in KIND_CONNECTOR:
        bureaus.set_mode(kind, "hang")
    started = time.monotonic()
    response = prefill(client, zhang, created["id"])
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert {f["status"] for f in response.json["fields"].values()} == {"timeout", "skipped"}
    assert elapsed < app.config["PREFILL_DEADLINE_SECONDS"] + 0.5


def test_the_circuit_breaker_opens_after_repeated_failures(app, make_app, bureaus):
    other = make_app(CONNECTOR_CIRCUIT_FAILURE_THRESHOLD=2, CONNECTOR_CIRCUIT_RESET_SECONDS=60)
    client = other.test_client()
    headers = bind_person(client, ("张伟", "410105198503120013"), openid="breaker")
    created = ready(client, headers, "RSJ-GG-001")
    bureaus.set_mode("social_insurance", "error500")
    for _ in range(2):
        assert prefill(client, headers, created["id"]).json["fields"]["social_insurance.status"]["status"] == "failed"
    queries = bureaus.state("social_insurance")["queries"]
    bureaus.set_mode("social_insurance", "normal")

    third = prefill(client, headers, created["id"])

    assert third.json["fields"]["social_insurance.status"]["status"] == "failed"
    assert bureaus.state("social_insurance")["queries"] == queries  # not even asked
    with other.app_context():
        last = db.session.scalars(sa.select(DataAccessRecord).order_by(DataAccessRecord.seq.desc())).first()
        assert (last.outcome, last.error) == ("failed", "circuit_open")


# ---------------------------------------------------------------------------------------------------- critical


def test_a_critical_bureau_failing_blocks_with_its_name(app, client, zhang, bureaus):
    created = ready(client, zhang, "GJJ-GG-001")
    bureaus.set_mode("housing_fund", "error500")

    response = prefill(client, zhang, created["id"])

    assert response.status_code == 503, response.json
    body = response.json
    assert body["error"] == "prefill_blocked"
    assert "郑州住房公积金管理中心" in body["message"] and "gjj-housing-fund" in body["message"]
    assert body["errors"]["prefill"]["housing_fund.account_status"] == {
        "status": "failed", "connector": "gjj-housing-fund", "bureau": "郑州住房公积金管理中心"}
    # The calls happened and are logged; nothing was stored as a prefill.
    assert {r.connector_id for r in access_records(app, created["id"])} == {"gjj-housing-fund",
                                                                             "rsj-social-insurance"}
    detail = client.get(f"/api/v1/applications/{created['id']}", headers=zhang).json
    assert detail["prefill"] is None and detail["timeline"][-1]["kind"] == "prefill_blocked"


def test_a_critical_bureau_timing_out_blocks(client, zhang, bureaus):
    created = ready(client, zhang, "GJJ-GG-001")
    bureaus.set_mode("housing_fund", "hang")
    response = prefill(client, zhang, created["id"])
    assert response.status_code == 503 and response.json["error"] == "prefill_blocked"


def test_a_critical_record_that_does_not_exist_is_422(client, citizen_as):
    chen = citizen_as(*CHEN_JING)  # retired, but no housing fund account
    created = ready(client, chen, "GJJ-GG-001")
    response = prefill(client, chen, created["id"])
    assert response.status_code == 422 and response.json["error"] == "prefill_blocked"
    assert response.json["errors"]["prefill"]["housing_fund.balance"]["status"] == "not_found"


def test_a_critical_element_without_an_active_provider_blocks(client, zhang, admin):
    client.post("/api/v1/connectors/gjj-housing-fund/disable", headers=admin)
    created = ready(client, zhang, "GJJ-GG-001")
    response = prefill(client, zhang, created["id"])
    assert response.status_code == 503 and response.json["error"] == "prefill_blocked"
    assert response.json["errors"]["prefill"]["housing_fund.balance"] == {
        "status": "skipped", "connector": None, "bureau": None}


def test_a_non_critical_failure_of_the_same_matter_degrades(client, zhang, bureaus):
    created = ready(client, zhang, "GJJ-GG-001")
    bureaus.set_mode("social_insurance", "error500")
    response = prefill(client, zhang, created["id"])
    assert response.status_code == 200
    statuses = {m["code"]: (m["status"], m["via"]) for m in response.json["materials"]}
    # The retirement proof's e-licence rests on the same registry, so only its upload is left.
    assert statuses["RETIREMENT"] == ("needs_upload", "upload")
    assert statuses["HF_ACCOUNT"] == ("satisfied", "shared_data")
    assert response.json["zero_material"] is False


def test_critical_is_only_for_shared_data_options(client, admin):
    body = matter_body("TEST-CRIT", {"M1": ["person.name"]})
    body["materials"][0]["evidence"] = [{"type": "upload", "critical": True}]
    response = client.post("/api/v1/matters", json=body, headers=admin)
    assert response.status_code == 422


def test_a_matter_needing_no_shared_data_prefills_without_calls(app, client, zhang):
    created = draft(client, zhang, "YBJ-JF-002")  # face / upload / in person only
    assert created["consent_required"]["elements"] == []
    response = prefill(client, zhang, created["id"])
    assert response.status_code == 200 and response.json["fields"] == {}
    assert response.json["zero_material"] is False
    assert access_records(app, created["id"]) == []
