"""Staff accounts: creation with validation, password hashing, and the sandbox accounts.

Passwords are hashed with argon2id, with the argon2-cffi profile PASSWORD_HASH_PROFILE names (by default
RFC 9106's low-memory profile: 64 MiB, 3 passes, about 0.1 s here; the test suite's mode uses the cheapest).
`verify_password` also tells the caller when a stored hash was made with other parameters, so login can
upgrade it.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from sqlalchemy import select

from app.accounts.models import ROLES, StaffUser
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.web.paging import Page, page_of

log = logging.getLogger(__name__)


@functools.cache
def _hasher_for(profile: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(getattr(profiles, profile))


def hasher() -> PasswordHasher:
    """The password hasher of the current app's PASSWORD_HASH_PROFILE (argon2-cffi's defaults outside an app)."""
    profile = current_app.config.get("PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY") if has_app_context() \
        else "RFC_9106_LOW_MEMORY"
    return _hasher_for(profile)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
UNIT_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class UsernameTaken(Conflict):
    error, message = "username_taken", "用户名已存在"


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with today's parameters and a fresh salt."""
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash` (False for a mismatch or an unreadable hash)."""
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with parameters other than today's."""
    try:
        return hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, verified against when a username is unknown so timing stays alike."""
    return hash_password(secrets.token_urlsafe(16))


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up in lower case."""
    return username.strip().lower()


def staff_problems(username: str, password: str, roles, bureau_code, department_code) -> dict[str, list[str]]:
    """Everything wrong with a new account's fields, by field (in Chinese); empty when it may be created."""
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if not USERNAME.fullmatch(username):
        add("username", "用户名应为2至64位小写字母、数字或 . _ -,并以字母或数字开头")
    sandbox = current_app.config["SANDBOX_ENABLED"]
    min_length = 1 if sandbox else MIN_PASSWORD_LENGTH
    if not min_length <= len(password) <= MAX_PASSWORD_LENGTH:
        add("password", f"密码长度应为{min_length}至{MAX_PASSWORD_LENGTH}个字符")
    elif password.lower() == username:
        add("password", "密码不能与用户名相同")
    for field, messages in _scope_problems(roles, bureau_code, department_code).items():
        for message in messages:
            add(field, message)
    return problems


def _scope_problems(roles, bureau_code, department_code) -> dict[str, list[str]]:
    """What is wrong with an account's roles and its bureau or department, by field."""
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if not roles:
        add("roles", "至少需要一个角色")
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        add("roles", f"未知角色:{', '.join(unknown)}(可选:{', '.join(ROLES)})")
    if len(set(roles)) != len(roles):
        add("roles", "角色不能重复")
    for field, code, role, label in (
        ("bureau_code", bureau_code, "bureau", "委办局"),
        ("department_code", department_code, "reviewer", "部门"),
    ):
        if role in roles and not code:
            add(field, f"{role} 账号必须指定所属{label}代码")
        elif code and role not in roles:
            add(field, f"只有 {role} 账号可以指定{label}代码")
        elif code and not UNIT_CODE.fullmatch(code):
            add(field, f"{label}代码应为小写字母、数字、_ 或 -")
    return problems


def create_staff(
    username: str,
    password: str,
    roles,
    *,
    bureau_code: str | None = None,
    department_code: str | None = None,
    display_name: str = "",
) -> StaffUser:
    """Create a staff account; ValidationFailed lists every problem, UsernameTaken if the name is in use.

    A `bureau` account needs the code of its bureau, a `reviewer` the code of its department. Passwords
    need at least 12 characters outside the sandbox.
    """
    username = normalise_username(username)
    roles = list(roles)
    problems = staff_problems(username, password, roles, bureau_code, department_code)
    if problems:
        first = next(iter(problems.values()))[0]
        raise ValidationFailed(first, errors={"json": problems})
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise UsernameTaken()
    user = StaffUser(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=hash_password(password),
        roles=roles,
        bureau_code=bureau_code,
        department_code=department_code,
    )
    db.session.add(user)
    db.session.commit()
    return user




def update_staff(user: StaffUser, *, roles, bureau_code: str | None, department_code: str | None, active: bool,
                 by: StaffUser) -> StaffUser:
    """Change an account's roles, its bureau or department, or whether it is active; ValidationFailed lists
    every problem. The same rules as a new account's, and an admin can neither take their own admin role
    away nor deactivate themselves (the city would lose its last way in).

    What the account held before ends at once: its console sessions read the account on every request, and
    an API access token carrying a role taken away, or another scope, is refused (the guard's user lookup), as
    every token of a deactivated account is; a refresh token gets the account's roles as they now are."""
    roles = list(roles)
    problems = _scope_problems(roles, bureau_code, department_code)
    if user.id == by.id and "admin" not in roles:
        problems.setdefault("roles", []).append("不能取消自己的管理员角色")
    if user.id == by.id and not active:
        problems.setdefault("active", []).append("不能停用自己的账号")
    if problems:
        raise ValidationFailed(next(iter(problems.values()))[0], errors={"json": problems})
    user.roles = roles
    user.bureau_code = bureau_code
    user.department_code = department_code
    user.active = active
    db.session.commit()
    log.info("staff account %s changed by staff:%s: roles %s, active %s", user.id, by.id, ",".join(roles), active)
    return user


def list_staff(*, page: int = 1, per_page: int = 20) -> Page:
    """Every staff account by username, a page at a time."""
    return page_of(select(StaffUser).order_by(StaffUser.username), page=page, per_page=per_page)


def get_staff(staff_id: str) -> StaffUser:
    """The account `staff_id`; NotFound when there is none."""
    user = db.session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("没有这个工作人员账号")
    return user
