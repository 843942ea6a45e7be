"""The citizen's own record: profile, real-name binding, consent receipts and who accessed my data."""

from flask.views import MethodView
from marshmallow import RAISE

from app.api.blueprint import Blueprint
from app.auth import ASSURANCE_DOC, current_citizen, require
from app.requestid import request_id
from app.schemas.applications import (
    ConsentPageSchema,
    ConsentReceiptSchema,
    DataAccessViewPageSchema,
    MyDataAccessQuerySchema,
)
from app.schemas.common import PageQuerySchema
from app.schemas.me import MeSchema, RealNameSchema
from app.services import applications, data_access, identity

blp = Blueprint("me", __name__, url_prefix="/api/v1", description="The citizen's own record")

PAGE_QUERY = PageQuerySchema()
MY_DATA_ACCESS_QUERY = MyDataAccessQuerySchema()


@blp.route("/me")
class Me(MethodView):
    @require("citizen", assurance="none")
    @blp.response(200, MeSchema)
    @blp.error(401, "`unauthorized`: no valid access token")
    @blp.error(403, "`forbidden`: not a citizen token")
    def get(self):
        """The calling citizen's profile: the assurance level, with the real name and ID number masked."""
        return identity.profile(current_citizen())


@blp.route("/me/real-name")
class RealName(MethodView):
    @require("citizen", assurance="none")
    @blp.arguments(RealNameSchema)
    @blp.response(200, MeSchema)
    @blp.error(401, "`unauthorized`: no valid access token")
    @blp.error(403, "`forbidden`: not a citizen token")
    @blp.error(409, "`real_name_already_bound`: this account is face-bound to another identity (it can only re-prove "
                "its own)")
    @blp.error(422, "`validation_failed`: per-field problems; `identity_mismatch`: the population registry holds "
                "another name for this number, or does not hold the number")
    @blp.error(429, "`rate_limited`: too many claims from this account or for this ID number, or too many registry "
                "mismatches for this account (Retry-After)")
    @blp.error(503, "`upstream_unavailable`: the population registry did not answer; nothing was claimed")
    def post(self, body):
        """Claim a real name and resident ID number (GB 11643) for the calling citizen: `assurance: "claimed"`.

        A claim is not proof and unlocks no personal data: prove it with a face verification of purpose
        `real_name` (POST /api/v1/face/sessions), which binds the identity to this account (`assurance:
        "face"`). The answer is the same whether or not the number is claimed or bound by another account.
        422 `validation_failed` names each problem per field (e.g. 身份证号码校验位错误, 出生日期无效,
        地区代码无效). Where a population connector is active, the registry must hold this name for this
        number (the call is logged in the data-access log with the purpose 实名认证): 422 `identity_mismatch`
        otherwise — also when the number is not in the registry, so the answer does not tell which numbers
        exist. Idempotent for the pair already claimed or bound.
        """
        citizen = identity.claim_real_name(current_citizen(), body["name"], body["id_number"],
                                           request_id=request_id())
        return identity.profile(citizen)


@blp.route("/me/consents")
class MyConsents(MethodView):
    @require("citizen")
    @blp.arguments(PAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, ConsentPageSchema)
    @blp.error(401, "`unauthorized`: no valid access token")
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    def get(self, args):
        """The caller's consent receipts, newest first (active, withdrawn and superseded)."""
        return applications.list_consents(current_citizen(), **args)


@blp.route("/me/consents/<receipt_id>")
class MyConsent(MethodView):
    @require("citizen")
    @blp.response(200, ConsentReceiptSchema)
    @blp.error(401, "`unauthorized`: no valid access token")
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @blp.error(404, "`not_found`: no such receipt of yours")
    def delete(self, receipt_id):
        """Withdraw a consent (idempotent): its application's prefill needs a new one (403 `consent_required`)."""
        return applications.withdraw_consent(receipt_id, current_citizen())


@blp.route("/me/data-access")
class MyDataAccess(MethodView):
    @require("citizen")
    @blp.arguments(MY_DATA_ACCESS_QUERY, location="query", unknown=RAISE)
    @blp.response(200, DataAccessViewPageSchema)
    @blp.error(401, "`unauthorized`: no valid access token")
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @blp.error(404, "`not_found`: `application_id` is not an application of yours")
    def get(self, args):
        """Who fetched which data about me, when, for which application and purpose, and the outcome.

        Newest first; matched through the keyed pseudonym of the face-bound ID number.
        """
        return data_access.my_data_access(current_citizen(), **args)
