"""Login (citizens through WeChat, staff with a password), token refresh and logout."""

from dataclasses import asdict

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt

from app.accounts.guard import caller, current_account, current_citizen, current_staff, require
from app.accounts.models import ROLES
from app.accounts.schemas import (
    AccessTokenSchema,
    CitizenLoginResponseSchema,
    MeSchema,
    StaffLoginResponseSchema,
    StaffLoginSchema,
    StaffSummarySchema,
    WeChatLoginSchema,
)
from app.accounts.services import login as auth_service
from app.extensions import limiter
from app.web import readcache
from app.web.blueprint import Blueprint

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Login, token refresh and logout")

# The citizen's own record: every domain adds its /me routes to this blueprint (one tag in the document).
me = Blueprint("me", __name__, url_prefix="/api/v1", description="The citizen's own record")
# Built once: a schema's construction copies its fields, a cost /me would pay on every cached read.
ME = MeSchema()

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


@blp.route("/auth/wechat/login")
class WeChatLogin(MethodView):
    @blp.arguments(WeChatLoginSchema)
    @blp.response(200, CitizenLoginResponseSchema)
    @blp.error(401, "`wechat_code_invalid`: the code is wrong, expired or already used")
    @blp.error(403, "`wechat_user_blocked`: WeChat's risk control blocks this user")
    @blp.error(503, "`upstream_unavailable`: WeChat did not answer, or not usably")
    def post(self, body):
        """Log a citizen in with a mini-program login code (wx.login)."""
        citizen, tokens = auth_service.login_citizen(body["code"])
        return {**asdict(tokens), "citizen": citizen}


@blp.route("/auth/staff/login")
class StaffLogin(MethodView):
    # Per client address, whatever the username: one address cannot spray passwords over many accounts.
    @limiter.limit(lambda: current_app.config["STAFF_LOGIN_RATE_LIMIT"])
    @blp.arguments(StaffLoginSchema)
    @blp.response(200, StaffLoginResponseSchema)
    @blp.error(401, "`invalid_credentials`: unknown username or wrong password (the same answer for both)")
    @blp.error(403, "`account_disabled`: the password is right but the account is deactivated")
    @blp.error(429, "`rate_limited`: too many failures for this username from this address, or too many logins from "
                "this address",
           headers=RETRY_AFTER)
    def post(self, body):
        """Log a staff member in with username and password."""
        staff, tokens = auth_service.login_staff(body["username"], body["password"],
                                                 client_address=request.remote_addr or "unknown")
        return {**asdict(tokens), "staff": staff}


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @require(refresh=True)
    @blp.response(200, AccessTokenSchema)
    @blp.error(401, "`unauthorized`: no refresh token, or it is invalid, expired, revoked or an access token")
    def post(self):
        """Exchange the refresh token (as the bearer token) for a new access token."""
        return auth_service.refresh_access_token(current_account(), get_jwt())


@blp.route("/auth/logout")
class Logout(MethodView):
    @require(any_token=True)
    @blp.response(204)
    @blp.error(401, "`unauthorized`: no token, or it is invalid, expired or already revoked")
    def post(self):
        """Log out: revoke the bearer token (access or refresh) and every token of the same login."""
        auth_service.logout(get_jwt())


@blp.route("/staff/me")
class StaffMe(MethodView):
    @require(*ROLES)
    @blp.response(200, StaffSummarySchema)
    @blp.error(401, "`unauthorized`: no valid access token")
    @blp.error(403, "`forbidden`: not a staff token")
    def get(self):
        """The calling staff member's account: roles, bureau, department."""
        return current_staff()


@me.route("/me")
class Me(MethodView):
    @require("citizen", assurance="none")
    @me.response(200, MeSchema)
    @me.error(401, "`unauthorized`: no valid access token")
    @me.error(403, "`forbidden`: not a citizen token")
    def get(self):
        """The calling citizen's profile: the assurance level, with the real name and ID number masked."""
        # Served from memory while the account's version stamp holds (app/web/readcache.py).
        citizen_id = caller().id
        return readcache.json_response(("me", citizen_id), [readcache.account_stamp("citizen", citizen_id)],
                                       current_citizen, ME)
