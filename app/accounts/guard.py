"""Who is calling: JWT identities, revocation, and the role checks each endpoint declares.

A token's subject is `citizen:<id>` or `staff:<id>`; staff tokens also carry their roles. Views declare
who may call them with `@require("citizen")`, `@require("admin", "auditor")` and so on; the declaration also
marks the operation as needing a bearer token in the OpenAPI document.

Citizen tokens also carry the assurance level they were issued with (`assurance`: none, claimed, face) and the
account's token epoch (`epoch`). A citizen's access needs `face` unless the view says otherwise
(`assurance="none"` for the profile, the claim and the face verification that proves it): personal data is
served only to a face-bound identity (BRIEF lesson 11). What is enforced is the account's level now, read
from its row (or the copy this process keeps while the row's version stamp holds, app/web/readcache.py), so a
bind takes effect at once, without a new token; when the account loses its identity (moved to another account
by another face pass) its epoch is raised and every earlier token, access or refresh, is refused at once, in
every process. The epoch lives in
the database rather than in the revocation store: Redis may forget a key, and a forgotten revocation would
bring a rebound account's tokens back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from flask import Flask, current_app
from flask_jwt_extended import current_user, get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint

from app.accounts.models import ASSURANCE_LEVELS, Citizen, StaffUser, assurance_rank
from app.errors import AssuranceRequired, Forbidden, Unauthorized, error_response
from app.extensions import db, jwt
from app.web import readcache

CITIZEN = "citizen"
BEARER = [{"bearerAuth": []}]
# For the 403 descriptions of views a citizen needs `face` for.
ASSURANCE_DOC = ("`assurance_required`: a citizen whose identity is not yet proven by face (`assurance` below "
                 "`face`: claim a real name, then pass a `real_name` face verification)")


def subject_for(user: Citizen | StaffUser) -> str:
    kind = "citizen" if isinstance(user, Citizen) else "staff"
    return f"{kind}:{user.id}"


def claims_for(user: Citizen | StaffUser) -> dict:
    """Extra claims: the roles (the token carries them, API.md) and a staff member's scope."""
    if isinstance(user, Citizen):
        return {"roles": [CITIZEN], "assurance": user.assurance, "epoch": user.token_epoch}
    return {"roles": list(user.roles), "bureau": user.bureau_code, "department": user.department_code}


class AccountGone(Unauthorized):
    message = "账号不存在、已停用或权限已变更,请重新登录"


class IdentityMoved(Unauthorized):
    message = "该账号的实名身份已在另一账号刷脸绑定,请重新登录"


def require(*roles: str, refresh: bool = False, any_token: bool = False, assurance: str = "face"):
    """Allow the call only with a valid, unrevoked token holding one of `roles` (any role when empty).

    The token must be an access token, a refresh token with `refresh=True`, either with `any_token=True`.
    A citizen calling a view open to `citizen` also needs `assurance` (default `face`): 403
    `assurance_required` below it.
    """
    if assurance not in ASSURANCE_LEVELS:
        raise ValueError(f"unknown assurance level {assurance!r}")
    citizen_assurance = assurance if CITIZEN in roles else "none"

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh, verify_type=not any_token)
            held = set(get_jwt().get("roles", []))
            if roles and not held.intersection(roles):
                raise Forbidden()
            if current_user.kind == CITIZEN:
                _check_citizen_token(current_user, get_jwt(), citizen_assurance)
            return view(*args, **kwargs)

        # `x-roles` tells client authors (and the schemathesis run) who may call the operation;
        # `x-assurance` the level a citizen needs.
        extra = {"x-roles": list(roles) or ["any"]}
        if CITIZEN in roles:
            extra["x-assurance"] = citizen_assurance
        return Blueprint.doc(security=BEARER, **extra)(wrapper)

    return decorator


def _check_citizen_token(citizen: Caller, payload: dict, needed: str) -> None:
    # Tokens from before the account lost its identity are dead (module docstring); tokens from before epochs
    # existed carry none and count as epoch 0, the epoch of every account the migration found.
    if int(payload.get("epoch") or 0) != citizen.token_epoch:
        raise IdentityMoved()
    if assurance_rank(citizen.assurance) < assurance_rank(needed):
        raise AssuranceRequired(citizen.assurance, needed)


def _scope_holds(staff: Caller, payload: dict) -> bool:
    """Whether a staff access token's roles and scope still hold: one carrying a role the account no longer has,
    or another bureau or department, is refused (accounts.services.staff.update_staff), so a role taken away
    goes at once, not at the token's expiry. A refresh token passes: the token it issues carries the account's
    roles as they are now (a role added reaches the client at its next refresh)."""
    if payload.get("type") == "refresh":
        return True
    return (set(payload.get("roles") or []) <= set(staff.roles) and payload.get("bureau") == staff.bureau_code
            and payload.get("department") == staff.department_code)


@dataclass(frozen=True)
class Caller:
    """What the guard knows of the caller's account: the row's fields it checks, remembered between requests
    while the account's version stamp holds (app/web/readcache.py). Views that need the account itself ask
    for it (`current_citizen()`, `current_staff()`, `current_account()`)."""

    kind: str  # "citizen" or "staff"
    id: str
    token_epoch: int = 0
    assurance: str = "none"
    roles: tuple[str, ...] = ()
    bureau_code: str | None = None
    department_code: str | None = None
    active: bool = True

    @classmethod
    def of(cls, user: Citizen | StaffUser) -> Caller:
        if isinstance(user, Citizen):
            return cls(CITIZEN, user.id, token_epoch=user.token_epoch, assurance=user.assurance)
        return cls("staff", user.id, roles=tuple(user.roles), bureau_code=user.bureau_code,
                   department_code=user.department_code, active=user.active)


def caller() -> Caller:
    """The caller as the guard checked it (only after @require)."""
    return current_user


def current_account() -> Citizen | StaffUser:
    """The caller's account row, loaded into this request's session (only after @require)."""
    known: Caller = current_user
    account = db.session.get(Citizen if known.kind == CITIZEN else StaffUser, known.id)
    if account is None:  # removed since the guard's check: as if the token had been refused
        raise AccountGone()
    return account


def current_citizen() -> Citizen:
    """The calling citizen (only after @require("citizen"))."""
    return current_account()


def current_staff() -> StaffUser:
    """The calling staff member (only after a staff @require)."""
    return current_account()


def _revocations():
    return current_app.extensions["state"]


def _revocation_key(jwt_payload: dict) -> str:
    # Tokens issued at login carry the login session's id (`sid`): revoking one revokes the session, so a
    # logout with the access token also ends its refresh token. Other tokens are revoked one by one.
    sid = jwt_payload.get("sid")
    return f"revoked-session:{sid}" if sid else f"revoked:{jwt_payload['jti']}"


def revoke(jwt_payload: dict) -> None:
    """Revoke a token (and its login session's other tokens) until they would have expired anyway."""
    import time

    if jwt_payload.get("sid"):
        # A session's refresh token expires at most this long after now.
        remaining = int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()) + 1
    else:
        remaining = int(jwt_payload["exp"] - time.time()) + 1
    if remaining > 0:
        _revocations().set(_revocation_key(jwt_payload), remaining)


def _caller(model: type, ident: str) -> Caller | None:
    user = db.session.get(model, ident)
    return Caller.of(user) if user is not None else None


def _stamps_of(payload: dict) -> list[str]:
    kind, _, ident = str(payload.get("sub")).partition(":")
    stamps = [readcache.account_stamp(kind, ident)]
    if kind == CITIZEN:
        stamps.append(readcache.applications_stamp(ident))
    return stamps


readcache.watch(Citizen, lambda row: [readcache.account_stamp(CITIZEN, row.id)])
readcache.watch(StaffUser, lambda row: [readcache.account_stamp("staff", row.id)])


def init_app(app: Flask) -> None:
    """Connect Flask-JWT-Extended's callbacks to our models, revocation list and error shape."""

    @jwt.user_lookup_loader
    def load_user(_header, payload):
        kind, _, ident = str(payload["sub"]).partition(":")
        model = {"citizen": Citizen, "staff": StaffUser}.get(kind)
        if model is None:
            return None
        known = readcache.remember(("caller", kind, ident), [readcache.account_stamp(kind, ident)],
                                   lambda: _caller(model, ident))
        if known is None or (known.kind == "staff" and not (known.active and _scope_holds(known, payload))):
            return None
        return known

    @jwt.token_in_blocklist_loader
    def is_revoked(_header, payload):
        # The account's (and a citizen's list's) version stamps come back with the answer: what the rest of
        # the request may serve from memory (app/web/readcache.py).
        return readcache.check_revoked_reading_stamps(_revocation_key(payload), _stamps_of(payload))

    def unauthorized(message: str):
        return error_response(401, "unauthorized", message)

    jwt.unauthorized_loader(lambda _reason: unauthorized("缺少访问令牌,请先登录"))
    jwt.invalid_token_loader(lambda _reason: unauthorized("访问令牌无效"))
    jwt.expired_token_loader(lambda _h, _p: unauthorized("访问令牌已过期,请刷新或重新登录"))
    jwt.revoked_token_loader(lambda _h, _p: unauthorized("访问令牌已注销,请重新登录"))
    jwt.user_lookup_error_loader(lambda _h, _p: unauthorized(AccountGone.message))
    jwt.needs_fresh_token_loader(lambda _h, _p: unauthorized("需要重新登录"))
    jwt.token_verification_failed_loader(lambda _h, _p: unauthorized("访问令牌无效"))
