"""Logging in and out: citizens through WeChat, staff with a password; our own JWTs for both.

Every login starts a login session: its access and refresh tokens (and the access tokens later refreshed
from it) share a random `sid` claim, so logging out with any one of them ends them all (app/accounts/guard.py).

Staff lockout: STAFF_LOGIN_MAX_FAILURES wrong passwords for one username *from one client address* within
STAFF_LOGIN_WINDOW_SECONDS lock that username for that address for STAFF_LOGIN_WINDOW_SECONDS; while locked
even the right password gets 429 there. Failures from one address never lock the account for another: a
lock per username alone let anyone lock `admin` out with five wrong passwords (a denial of service against
the people who run the service). Guessing across many usernames from one address is held by the per-address
limit of the login endpoint (STAFF_LOGIN_RATE_LIMIT). Unknown usernames count and lock the same way and cost
the same hash verification, so neither the answer nor its timing tells whether an account exists. The
counters live in the shared state store (Redis in production), keyed by a pseudonym of username and address.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.guard import claims_for, revoke, subject_for
from app.accounts.models import Citizen, StaffUser
from app.accounts.services.staff import dummy_hash, hash_password, needs_rehash, normalise_username, verify_password
from app.errors import Forbidden, RateLimited, Unauthorized
from app.extensions import db
from app.integrations import wechat
from app.modelbase import utcnow
from app.pii import vault

log = logging.getLogger(__name__)


class InvalidCredentials(Unauthorized):
    error, message = "invalid_credentials", "用户名或密码错误"


class AccountLocked(RateLimited):
    message = "登录失败次数过多,账号已暂时锁定,请稍后再试"


class AccountDisabled(Forbidden):
    error, message = "account_disabled", "账号已停用,请联系管理员"


def access_token_seconds() -> int:
    """How long an access token lives (the `expires_in` of token responses)."""
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


@dataclass(frozen=True)
class Tokens:
    """What a login or a refresh hands out: an access token (and, at login, its refresh token)."""

    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str | None = field(default=None, repr=False)
    token_type: str = "Bearer"


def issue_tokens(user: Citizen | StaffUser) -> Tokens:
    """A new login session for `user`: access and refresh token."""
    identity, claims = subject_for(user), {**claims_for(user), "sid": secrets.token_hex(16)}
    return Tokens(access_token=create_access_token(identity, fresh=True, additional_claims=claims),
                  refresh_token=create_refresh_token(identity, additional_claims=claims),
                  expires_in=access_token_seconds())


def refresh_access_token(user: Citizen | StaffUser, refresh_payload: dict) -> Tokens:
    """A new access token in the login session of `refresh_payload`, with `user`'s current roles."""
    sid = refresh_payload.get("sid")
    claims = claims_for(user) | ({"sid": sid} if sid else {})
    return Tokens(access_token=create_access_token(subject_for(user), fresh=False, additional_claims=claims),
                  expires_in=access_token_seconds())


def logout(payload: dict) -> None:
    """End the login session of the token whose claims are `payload`."""
    revoke(payload)


def login_citizen(code: str) -> tuple[Citizen, Tokens]:
    """Exchange a mini-program login code with WeChat; create or update the citizen; issue tokens."""
    session = wechat.client().code2session(code)
    citizen = _upsert_citizen(session.openid, session.unionid, vault().encrypt(session.session_key))
    return citizen, issue_tokens(citizen)


def _upsert_citizen(openid: str, unionid: str | None, session_key_encrypted: str) -> Citizen:
    for attempt in range(2):
        citizen = db.session.scalar(select(Citizen).where(Citizen.openid == openid))
        if citizen is None:
            citizen = Citizen(openid=openid)
            db.session.add(citizen)
        citizen.unionid = unionid or citizen.unionid
        citizen.session_key_encrypted = session_key_encrypted
        citizen.last_login_at = utcnow()
        try:
            db.session.commit()
            return citizen
        except IntegrityError:
            # A concurrent first login of the same openid inserted the row: update that one instead.
            db.session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _login_keys(username: str, client_address: str) -> tuple[str, str]:
    key = vault().pseudonym(f"{username}\n{client_address}", kind="staff-login")
    return f"staff-login:failures:{key}", f"staff-login:locked:{key}"


def login_staff(username: str, password: str, *, client_address: str) -> tuple[StaffUser, Tokens]:
    """Check a staff password (with the lockout per username and address) and issue tokens."""
    user = authenticate_staff(username, password, client_address=client_address)
    return user, issue_tokens(user)


def authenticate_staff(username: str, password: str, *, client_address: str) -> StaffUser:
    """Check a staff password with the lockout per username and address; the account, without tokens (the
    staff console keeps its own server-side session instead)."""
    config, store = current_app.config, current_app.extensions["state"]
    username = normalise_username(username)
    failures_key, locked_key = _login_keys(username, client_address)
    if store.exists(locked_key):
        raise AccountLocked(retry_after=store.ttl(locked_key))

    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if not verify_password(user.password_hash if user else dummy_hash(), password) or user is None:
        window = config["STAFF_LOGIN_WINDOW_SECONDS"]
        failures = store.incr(failures_key, window)
        if failures >= config["STAFF_LOGIN_MAX_FAILURES"]:
            store.set(locked_key, window)
            store.delete(failures_key)
            log.warning("staff login %s locked for %ss after %s failures", failures_key[-12:], window,
                        failures)
        else:
            log.info("staff login %s failed (%s)", failures_key[-12:], failures)
        raise InvalidCredentials()
    if not user.active:
        raise AccountDisabled()

    store.delete(failures_key)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user
