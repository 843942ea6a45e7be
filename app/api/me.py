"""The citizen's own record: profile and real-name binding."""

from flask.views import MethodView
from flask_smorest import Blueprint

from app.auth import current_citizen, require
from app.errors import ErrorSchema
from app.schemas.me import MeSchema, RealNameSchema
from app.services import identity

blp = Blueprint("me", __name__, url_prefix="/api/v1", description="The citizen's own record")


def error(status: int, description: str):
    """Document an error response of the one error shape."""
    return blp.alt_response(status, schema=ErrorSchema, description=description)


@blp.route("/me")
class Me(MethodView):
    @require("citizen")
    @blp.response(200, MeSchema)
    @error(401, "`unauthorized`: no valid access token")
    @error(403, "`forbidden`: not a citizen token")
    def get(self):
        """The calling citizen's profile, with the real name and ID number masked."""
        return identity.profile(current_citizen())


@blp.route("/me/real-name")
class RealName(MethodView):
    @require("citizen")
    @blp.arguments(RealNameSchema)
    @blp.response(200, MeSchema)
    @error(401, "`unauthorized`: no valid access token")
    @error(403, "`forbidden`: not a citizen token")
    @error(409, "`id_number_taken`: another account holds this ID number; `real_name_already_bound`: this "
                "account is bound to another identity")
    def post(self, body):
        """Bind a real name and resident ID number (GB 11643) to the calling citizen; idempotent.

        422 `validation_failed` names each problem per field (e.g. 身份证号码校验位错误, 出生日期无效,
        地区代码无效); once the population connector is active, 422 `identity_mismatch` when the registry
        does not hold this name for this number.
        """
        citizen = identity.bind_real_name(current_citizen(), body["name"], body["id_number"])
        return identity.profile(citizen)
