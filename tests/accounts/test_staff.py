"""Staff accounts: the service's validation, the sandbox seed, and `flask create-staff`."""

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from app.accounts.models import StaffUser
from app.accounts.services.staff import UsernameTaken, create_staff
from app.errors import ValidationFailed
from app.extensions import db
from app.sandbox import seed as sandbox_seed
from app.sandbox.seed import seed_sandbox_staff

STRONG = "correct-horse-battery"


def test_create_staff_hashes_with_argon2id(app):
    with app.app_context():
        user = create_staff("Alice", STRONG, ["reviewer"], department_code="gjj", display_name="王审核")
        assert user.username == "alice"
        assert user.password_hash.startswith("$argon2id$")
        assert STRONG not in user.password_hash
        assert PasswordHasher().verify(user.password_hash, STRONG)
        assert (user.roles, user.department_code, user.bureau_code) == (["reviewer"], "gjj", None)
        assert user.active and user.display_name == "王审核"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"roles": ["wizard"]}, "roles"),
    ({"roles": []}, "roles"),
    ({"roles": ["admin", "admin"]}, "roles"),
    ({"roles": ["bureau"]}, "bureau_code"),
    ({"roles": ["reviewer"]}, "department_code"),
    ({"roles": ["admin"], "bureau_code": "ga"}, "bureau_code"),
    ({"roles": ["admin"], "department_code": "gjj"}, "department_code"),
    ({"roles": ["bureau"], "bureau_code": "公安局"}, "bureau_code"),
    ({"roles": ["admin"], "username": "x"}, "username"),
    ({"roles": ["admin"], "username": "bad name"}, "username"),
    ({"roles": ["admin"], "password": ""}, "password"),
    ({"roles": ["admin"], "username": "carol", "password": "CAROL"}, "password"),
])
def test_create_staff_validates(app, row_counts, kwargs, field):
    before = row_counts()
    args = {"username": "carol", "password": STRONG, **kwargs}
    with app.app_context(), pytest.raises(ValidationFailed) as raised:
        create_staff(args.pop("username"), args.pop("password"), args.pop("roles"), **args)
    assert field in raised.value.errors["json"]
    assert row_counts() == before


def test_short_passwords_are_refused_outside_the_sandbox(app, monkeypatch):
    monkeypatch.setitem(app.config, "SANDBOX_ENABLED", False)
    with app.app_context():
        with pytest.raises(ValidationFailed) as raised:
            create_staff("dave", "short-pass", ["admin"])
        assert "password" in raised.value.errors["json"]
        assert create_staff("dave", "x" * 12, ["admin"]).username == "dave"


def test_usernames_are_unique(app):
    with app.app_context(), pytest.raises(UsernameTaken):
        create_staff("ADMIN", STRONG, ["admin"])


def test_sandbox_seed_is_idempotent_and_hashes_once(app, row_counts):
    with app.app_context():
        before = {u.username: (u.id, u.password_hash) for u in db.session.scalars(select(StaffUser))}
        counts = row_counts()
        seed_sandbox_staff()
        after = {u.username: (u.id, u.password_hash) for u in db.session.scalars(select(StaffUser))}
    assert after == before and row_counts() == counts
    assert set(before) == {"admin", "auditor", "reviewer-gjj", "bureau-ga", "agent"}
    # Every test seeds again after emptying the tables; the hash of sandbox-pass is computed once.
    assert sandbox_seed._sandbox_password_hash.cache_info().misses == 1


def test_sandbox_seed_restores_a_missing_account(app):
    with app.app_context():
        db.session.delete(db.session.scalar(select(StaffUser).where(StaffUser.username == "auditor")))
        db.session.commit()
        seed_sandbox_staff()
        roles = db.session.scalar(select(StaffUser.roles).where(StaffUser.username == "auditor"))
    assert roles == ["auditor"]


# --- flask create-staff ----------------------------------------------------------------------------------

def test_cli_creates_an_account_that_can_log_in(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "erin", "--role", "bureau", "--bureau", "rs", "--password-stdin"],
        input=f"{STRONG}\n",
    )
    assert result.exit_code == 0, result.output
    assert "erin" in result.output and STRONG not in result.output
    login = client.post("/api/v1/auth/staff/login", json={"username": "erin", "password": STRONG})
    assert login.status_code == 200
    assert login.json["staff"]["roles"] == ["bureau"] and login.json["staff"]["bureau"] == "rs"


def test_cli_prompts_for_the_password_twice_without_echo(app):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "frank", "--role", "admin", "--role", "auditor"],
        input=f"{STRONG}\n{STRONG}\n",
    )
    assert result.exit_code == 0, result.output
    assert STRONG not in result.output
    with app.app_context():
        assert db.session.scalar(select(StaffUser.roles).where(StaffUser.username == "frank")) == [
            "admin", "auditor"]


def test_cli_reports_every_problem(app):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "gina", "--role", "reviewer", "--password-stdin"], input=f"{STRONG}\n"
    )
    assert result.exit_code == 1
    assert "department_code" in result.output
    with app.app_context():
        assert db.session.scalar(select(StaffUser).where(StaffUser.username == "gina")) is None


def test_cli_refuses_a_taken_username(app):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "admin", "--role", "admin", "--password-stdin"], input=f"{STRONG}\n"
    )
    assert result.exit_code == 1 and "用户名已存在" in result.output


def test_cli_refuses_unknown_roles(app):
    result = app.test_cli_runner().invoke(args=["create-staff", "hank", "--role", "root", "--password-stdin"],
                                          input=f"{STRONG}\n")
    assert result.exit_code == 2
