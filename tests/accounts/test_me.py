"""The citizen's own record and real-name claims: GB 11643 checks, encryption at rest, no "taken" oracle.

Proving a claim by face, binding and rebinding: tests/face/test_assurance.py.
"""

from datetime import datetime

import pytest
import sqlalchemy as sa
from face_flow import prove

from app.extensions import db
from app.pii import vault
from tests.helpers import bearer

ZHANG_WEI = {"name": "张伟", "id_number": "410105198503120013"}
# API.md's sandbox people: every one must bind (王强 and 陈静 were born before their district codes existed).
SANDBOX_PEOPLE = [
    ("张伟", "410105198503120013"),
    ("李娜", "410102199207040225"),
    ("王强", "410103197811300350"),
    ("刘洋", "41012220010215047X"),
    ("陈静", "41010419650908058X"),
    ("赵磊", "410105199001010636"),
]

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def with_check_char(first17: str) -> str:
    """Complete 17 digits with their ISO 7064 MOD 11-2 check character (BRIEF §5, computed independently)."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]




def bind(client, headers, name, id_number):
    return client.post("/api/v1/me/real-name", headers=headers, json={"name": name, "id_number": id_number})


def citizen_row(app, citizen_id: str) -> dict:
    """Every column of the citizen's row, as the database holds it."""
    with app.app_context():
        row = db.session.execute(sa.text("SELECT * FROM citizens WHERE id = :id"), {"id": citizen_id})
        return dict(row.mappings().one())


def test_check_char_helper_matches_the_sandbox_people():
    for _name, number in SANDBOX_PEOPLE:
        assert with_check_char(number[:17]) == number


def test_profile_before_binding(client, citizen_headers):
    response = client.get("/api/v1/me", headers=citizen_headers)
    assert response.status_code == 200
    body = response.json
    assert body["assurance"] == "none" and body["real_name_verified"] is False
    assert body["real_name"] is None and body["id_number"] is None and body["face_verified_until"] is None
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


def test_a_claim_shows_only_masked_identity_and_proves_nothing(client, citizen_headers):
    response = bind(client, citizen_headers, **ZHANG_WEI)
    assert response.status_code == 200
    body = response.json
    assert body["assurance"] == "claimed"
    assert body["real_name_verified"] is False
    assert body["real_name"] == "张*"
    assert body["id_number"] == "4101**********0013"
    assert client.get("/api/v1/me", headers=citizen_headers).json == body
    assert "张伟" not in response.get_data(as_text=True)
    assert "410105198503120013" not in response.get_data(as_text=True)


def test_identity_is_encrypted_at_rest_and_found_by_its_keyed_hash(app, client, login_citizen):
    tokens = login_citizen("alice")
    bind(client, bearer(tokens["access_token"]), **ZHANG_WEI)
    row = citizen_row(app, tokens["citizen"]["id"])
    for value in row.values():
        assert "410105198503120013" not in str(value)
        assert "张伟" not in str(value)
    with app.app_context():
        assert vault().decrypt(row["id_number_encrypted"]) == "410105198503120013"
        assert vault().decrypt(row["real_name_encrypted"]) == "张伟"
        assert row["id_number_hash"] == vault().pseudonym("410105198503120013")
    assert row["id_number_masked"] == "4101**********0013"


@pytest.fixture
def no_population_registry(client, staff_headers):
    """No active connector provides person.name: binding rests on the number's own validity."""
    response = client.post("/api/v1/connectors/ga-population/disable", headers=staff_headers("admin"))
    assert response.status_code == 200 and response.json["status"] == "disabled"


@pytest.mark.parametrize(("name", "id_number"), SANDBOX_PEOPLE[:5])
def test_every_sandbox_person_in_the_registry_can_bind(client, login_citizen, name, id_number):
    headers = bearer(login_citizen(f"person-{id_number}")["access_token"])
    response = bind(client, headers, name, id_number)
    assert response.status_code == 200, response.json
    assert response.json["id_number"] == id_number[:4] + "*" * 10 + id_number[-4:]


@pytest.mark.parametrize(("name", "id_number"), SANDBOX_PEOPLE)
def test_without_a_population_registry_every_valid_number_binds(client, login_citizen, no_population_registry,
                                                                 name, id_number):
    headers = bearer(login_citizen(f"person-{id_number}")["access_token"])
    response = bind(client, headers, name, id_number)
    assert response.status_code == 200, response.json


def test_lowercase_x_is_normalised(app, client, login_citizen):
    tokens = login_citizen("liu")
    response = bind(client, bearer(tokens["access_token"]), "刘洋", "41012220010215047x")
    assert response.status_code == 200
    assert response.json["id_number"] == "4101**********047X"
    with app.app_context():
        stored = vault().decrypt(citizen_row(app, tokens["citizen"]["id"])["id_number_encrypted"])
    assert stored == "41012220010215047X"


INVALID_ID_NUMBERS = [
    pytest.param("410105198503120014", "身份证号码校验位错误", id="wrong-check-char"),
    pytest.param(with_check_char("41010520990101001"), "出生日期无效", id="born-2099"),
    pytest.param(with_check_char("41010519850231001"), "出生日期无效", id="31-february"),
    pytest.param(with_check_char("41010519851301001"), "出生日期无效", id="month-13"),
    pytest.param(with_check_char("41010518500101001"), "出生日期无效", id="born-1850"),
    pytest.param(with_check_char("99010519850312001"), "地区代码无效", id="unknown-province"),
    pytest.param(with_check_char("41019919850312001"), "地区代码无效", id="unknown-county"),
    pytest.param(with_check_char("11010320120101001"), "地区代码无效", id="code-retired-before-birth"),
    pytest.param("41010519850312001", "身份证号码应为18位", id="17-chars"),
    pytest.param("4101051985031200133", "身份证号码应为18位", id="19-chars"),
    pytest.param("", "身份证号码应为18位", id="empty"),
    pytest.param("41010519850312001A", "身份证号码只能由17位数字和1位数字或X组成", id="letter"),
    pytest.param("4101051985031200X3", "身份证号码只能由17位数字和1位数字或X组成", id="x-in-the-middle"),
    pytest.param("４10105198503120013", "身份证号码只能由17位数字和1位数字或X组成", id="fullwidth-digit"),
    pytest.param("410105 98503120013", "身份证号码只能由17位数字和1位数字或X组成", id="space"),
]


@pytest.mark.parametrize(("id_number", "message"), INVALID_ID_NUMBERS)
def test_invalid_id_numbers_are_422_and_change_nothing(client, citizen_headers, row_counts, id_number,
                                                       message):
    before_rows, before_me = row_counts(), client.get("/api/v1/me", headers=citizen_headers).json
    response = bind(client, citizen_headers, "张伟", id_number)
    assert response.status_code == 422
    body = response.json
    assert body["error"] == "validation_failed"
    assert body["message"] == message
    assert message in body["errors"]["json"]["id_number"]
    assert row_counts() == before_rows
    assert client.get("/api/v1/me", headers=citizen_headers).json == before_me


def test_every_problem_of_an_id_number_is_listed(client, citizen_headers):
    # Unknown region, 31 February and a wrong check character at once.
    response = bind(client, citizen_headers, "张伟", "990105198502310000")
    assert response.status_code == 422
    problems = set(response.json["errors"]["json"]["id_number"])
    assert problems == {"出生日期无效", "地区代码无效", "身份证号码校验位错误"}


@pytest.mark.parametrize(
    "name", ["张", "Zhang Wei", "张伟1", "·张伟", "张伟·", "张··伟", "张 伟", "张" * 31, "", "张\u0000伟"]
)
def test_invalid_names_are_422(client, citizen_headers, row_counts, name):
    before = row_counts()
    response = bind(client, citizen_headers, name, ZHANG_WEI["id_number"])
    assert response.status_code == 422
    assert response.json["error"] == "validation_failed"
    assert response.json["errors"]["json"]["name"]
    assert row_counts() == before


def test_name_and_number_problems_are_reported_together(client, citizen_headers):
    response = bind(client, citizen_headers, "Zhang", "410105198503120014")
    assert set(response.json["errors"]["json"]) == {"name", "id_number"}


@pytest.mark.parametrize(("name", "stored"), [
    ("买买提·艾力", "买买提·艾力"),
    ("买买提•艾力", "买买提·艾力"),  # a bullet typed for the middle dot
    ("𠮷野", "𠮷野"),  # a character outside the basic CJK block
    (" 张伟 ", "张伟"),
])
def test_names_with_dots_and_rare_characters(app, client, login_citizen, no_population_registry, name, stored):
    tokens = login_citizen("named")
    response = bind(client, bearer(tokens["access_token"]), name, "410103197811300350")
    assert response.status_code == 200
    with app.app_context():
        assert vault().decrypt(citizen_row(app, tokens["citizen"]["id"])["real_name_encrypted"]) == stored
    assert response.json["real_name"] == stored[0] + "*" * (len(stored) - 1)


@pytest.mark.parametrize("body", [
    {"name": "张伟"},
    {"id_number": "410105198503120013"},
    {**ZHANG_WEI, "gender": "m"},
    {"name": 1, "id_number": 410105198503120013},
    {"name": None, "id_number": "410105198503120013"},
])
def test_malformed_bodies_are_422(client, citizen_headers, row_counts, body):
    before = row_counts()
    response = client.post("/api/v1/me/real-name", headers=citizen_headers, json=body)
    assert response.status_code == 422
    assert response.json["error"] == "validation_failed"
    assert row_counts() == before


def test_binding_needs_a_citizen_token(client):
    assert client.post("/api/v1/me/real-name", json=ZHANG_WEI).status_code == 401


def test_rebinding_the_same_identity_is_idempotent(client, citizen_headers):
    first = bind(client, citizen_headers, **ZHANG_WEI)
    again = bind(client, citizen_headers, **ZHANG_WEI)
    assert again.status_code == 200 and again.json == first.json


def shown(body: dict) -> dict:
    """A profile without what differs between any two accounts (their ids and creation times)."""
    return {key: value for key, value in body.items() if key not in ("id", "created_at")}


def test_claims_are_not_exclusive_and_say_nothing_about_other_accounts(client, login_citizen):
    # Unclaimed, claimed by another account, bound by face to another account: one and the same answer.
    first = bind(client, bearer(login_citizen("alice")["access_token"]), **ZHANG_WEI)
    second = bind(client, bearer(login_citizen("bob")["access_token"]), **ZHANG_WEI)
    prove(client, bearer(login_citizen("carol")["access_token"]), tuple(ZHANG_WEI.values()))
    third = bind(client, bearer(login_citizen("dave")["access_token"]), **ZHANG_WEI)
    assert first.status_code == second.status_code == third.status_code == 200
    assert shown(first.json) == shown(second.json) == shown(third.json)
    assert first.json["assurance"] == "claimed"
    assert "id_number_taken" not in (second.get_data(as_text=True) + third.get_data(as_text=True))


def test_a_claim_can_be_corrected_before_it_is_proven(client, citizen_headers):
    bind(client, citizen_headers, **ZHANG_WEI)
    response = bind(client, citizen_headers, "李娜", "410102199207040225")
    assert response.status_code == 200
    assert response.json["id_number"] == "4101**********0225" and response.json["real_name"] == "李*"


@pytest.mark.parametrize(("name", "id_number"), [
    ("李娜", "410102199207040225"),  # another person
    ("张卫", "410105198503120013"),  # the same number with another name
])
def test_a_face_bound_identity_cannot_be_changed(app, client, login_citizen, name, id_number):
    tokens = login_citizen("alice")
    headers = prove(client, bearer(tokens["access_token"]), tuple(ZHANG_WEI.values()))
    before = citizen_row(app, tokens["citizen"]["id"])
    assert bind(client, headers, **ZHANG_WEI).json["assurance"] == "face"  # the same pair: a no-op
    response = bind(client, headers, name, id_number)
    assert response.status_code == 409
    assert response.json["error"] == "real_name_already_bound"
    assert citizen_row(app, tokens["citizen"]["id"]) == before


def test_no_identity_in_the_logs(client, citizen_headers, caplog):
    bind(client, citizen_headers, **ZHANG_WEI)
    bind(client, citizen_headers, "张伟", "410105198503120014")
    client.get("/api/v1/me", headers=citizen_headers)
    assert "张伟" not in caplog.text
    assert "410105198503120013" not in caplog.text and "410105198503120014" not in caplog.text

