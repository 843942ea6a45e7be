"""Who is calling: JWT identities, revocation, and the role checks each endpoint declares.

A token's subject is `citizen:<id>` or `staff:<id>`; staff tokens also carry their roles. Views declare
who may call them with `@require("citizen")`, `@require("admin", "auditor")` and so on; the declaration also
marks the operation as needing a bearer token in the OpenAPI document.
"""

from __future__ import annotations

from functools import wraps

from flask import Flask, current_app
from flask_jwt_extended import current_user, get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint

from app.errors import Forbidden, error_response
from app.extensions import db, jwt
from app.models.citizen import Citizen
from app.models.staff import StaffUser

CITIZEN = "citizen"
BEARER = [{"bearerAuth": []}]


def subject_for(user: Citizen | StaffUser) -> str:
    kind = "citizen" if isinstance(user, Citizen) else "staff"
    return f"{kind}:{user.id}"


def claims_for(user: Citizen | StaffUser) -> dict:
    """Extra claims: the roles (the token carries them, API.md) and a staff member's scope."""
    if isinstance(user, Citizen):
        return {"roles": [CITIZEN]}
    return {"roles": list(user.roles), "bureau": user.bureau_code, "department": user.department_code}


def require(*roles: str, refresh: bool = False, any_token: bool = False):
    """Allow the call only with a valid, unrevoked token holding one of `roles` (any role when empty).

    The token must be an access token, a refresh token with `refresh=True`, either with `any_token=True`.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh, verify_type=not any_token)
            held = set(get_jwt().get("roles", []))
            if roles and not held.intersection(roles):
                raise Forbidden()
            return view(*args, **kwargs)

        # `x-roles` tells client authors (and the schemathesis run) who may call the operation.
        return Blueprint.doc(security=BEARER, **{"x-roles": list(roles) or ["any"]})(wrapper)

    return decorator


def current_citizen() -> Citizen:
    """The calling citizen (only after @require("citizen"))."""
    return current_user


def current_staff() -> StaffUser:
    """The calling staff member (only after a staff @require)."""
    return current_user


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


def init_app(app: Flask) -> None:
    """Connect Flask-JWT-Extended's callbacks to our models, revocation list and error shape."""

    @jwt.user_lookup_loader
    def load_user(_header, payload):
        kind, _, ident = str(payload["sub"]).partition(":")
        model = {"citizen": Citizen, "staff": StaffUser}.get(kind)
        if model is None:
            return None
        user = db.session.get(model, ident)
        if user is None or (isinstance(user, StaffUser) and not user.active):
            return None
        return user

    @jwt.token_in_blocklist_loader
    def is_revoked(_header, payload):
        return _revocations().exists(_revocation_key(payload))

    def unauthorized(message: str):
        return error_response(401, "unauthorized", message)

    jwt.unauthorized_loader(lambda _reason: unauthorized("缺少访问令牌,请先登录"))
    jwt.invalid_token_loader(lambda _reason: unauthorized("访问令牌无效"))
    jwt.expired_token_loader(lambda _h, _p: unauthorized("访问令牌已过期,请刷新或重新登录"))
    jwt.revoked_token_loader(lambda _h, _p: unauthorized("访问令牌已注销,请重新登录"))
    jwt.user_lookup_error_loader(lambda _h, _p: unauthorized("账号不存在或已停用"))
    jwt.needs_fresh_token_loader(lambda _h, _p: unauthorized("需要重新登录"))
    jwt.token_verification_failed_loader(lambda _h, _p: unauthorized("访问令牌无效"))
