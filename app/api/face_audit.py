"""Auditors: query the face-verification log and its pass rates (export and verify are in app/api/audit.py)."""

from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity
from marshmallow import RAISE

from app.api.blueprint import Blueprint
from app.auth import require
from app.requestid import request_id
from app.schemas.face import (
    FaceLogQuerySchema,
    FaceLogSearchSchema,
    FacePageSchema,
    FaceStatsQuerySchema,
    FaceStatsSchema,
)
from app.services import audit, face

blp = Blueprint("face_audit", __name__, url_prefix="/api/v1",
                description="Audit: the face-verification log (export and verify: see Audit)")

FACE_LOG_QUERY = FaceLogQuerySchema()
FACE_LOG_SEARCH = FaceLogSearchSchema()
FACE_STATS_QUERY = FaceStatsQuerySchema()



UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
FORBIDDEN = blp.error(403, "`forbidden`: not an auditor token")
# Auditor reads are logged before they are served: when that log cannot be written, nothing is served.
LOG_UNAVAILABLE = blp.error(503, "`audit_log_unavailable`: the auditor-access log cannot be written (see POST "
                             "/api/v1/audit/verify); nothing was served")


@blp.route("/audit/face-verifications")
class FaceLog(MethodView):
    @require("auditor")
    @blp.arguments(FACE_LOG_QUERY, location="query", unknown=RAISE)
    @blp.response(200, FacePageSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(422, "`validation_failed`: a bad filter or cursor")
    def get(self, args):
        """Query the face-verification log in record order, with filters and a cursor; the query is logged.

        Records hold no name, ID number, image or encoding; to find a person's, POST …/search.
        """
        return audit.query("face-verifications", args, actor=get_jwt_identity(), request_id=request_id())


@blp.route("/audit/face-verifications/search")
class FaceLogSearch(MethodView):
    @require("auditor")
    @blp.arguments(FACE_LOG_SEARCH, unknown=RAISE, required=False)  # every filter is optional
    @blp.response(200, FacePageSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(422, "`validation_failed`: a bad filter or cursor")
    def post(self, body):
        """Search the face-verification log, for a person among other filters.

        The same filters as the GET, and `id_number`, in the body: a person's ID number never travels in a URL
        (where access logs and proxies would keep it). It is matched through its keyed hash; the search is
        logged with the hash only.
        """
        return audit.query("face-verifications", body, actor=get_jwt_identity(), request_id=request_id())


@blp.route("/audit/face-verifications/stats")
class FaceStats(MethodView):
    @require("auditor")
    @blp.arguments(FACE_STATS_QUERY, location="query", unknown=RAISE)
    @blp.response(200, FaceStatsSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(422, "`validation_failed`: `from` after `to`, or a range over 366 days")
    def get(self, args):
        """Pass rates per provider and day (China Standard Time): decisions, passes, failures by reason.

        Defaults to the 30 days before `to` (now). The query is logged.
        """
        return face.pass_rate_stats(args, actor=get_jwt_identity(), request_id=request_id())
