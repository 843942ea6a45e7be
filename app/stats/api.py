"""Statistics: the operators' (applications, face verification, evaluations; the catalogue's are the
catalogue's) and the auditors' face pass rates per provider and day.

For the `admin` role only: the figures are the operator's view of the service. Auditors already have the
face pass rates per provider and day (GET /api/v1/audit/face-verifications/stats).
"""

from flask import current_app
from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity
from marshmallow import RAISE

from app.accounts.guard import require
from app.audit.api import FORBIDDEN as NOT_AUDITOR
from app.audit.api import LOG_UNAVAILABLE
from app.audit.api import UNAUTHORIZED as NO_AUDITOR_TOKEN
from app.audit.api import blp as audit
from app.stats import services as stats
from app.stats.schemas import (
    ApplicationStatsSchema,
    EvaluationStatsSchema,
    FaceStatsOverallSchema,
    FaceStatsQuerySchema,
    FaceStatsSchema,
    StatsQuerySchema,
)
from app.web.blueprint import Blueprint
from app.web.requestid import request_id

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats",
                description="Operators' statistics: applications, face pass rates, evaluations (admin)")

STATS_QUERY = StatsQuerySchema()


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
NOT_ADMIN = blp.error(403, "`forbidden`: not an admin token")
BAD_PERIOD = blp.error(422, "`validation_failed`: a malformed time, or `from` after `to`")


@blp.route("/applications")
class ApplicationStats(MethodView):
    @require("admin")
    @blp.arguments(STATS_QUERY, location="query", unknown=RAISE)
    @blp.response(200, ApplicationStatsSchema)
    @UNAUTHORIZED
    @NOT_ADMIN
    @BAD_PERIOD
    def get(self, args):
        """Applications created in the period, per matter, per department and overall: counts per status, the
        share submitted with zero uploads, average processing time in working days against the promised limit,
        overdue counts, and the pre-check's figures: first-time pass rate (decided without a supplement request
        ÷ decided) against the target (95%), share submitted as eligible, refusals and rejections for conditions.

        `from` and `to` are optional (default: all time).
        """
        return stats.application_stats(since=args.get("from"), until=args.get("to"),
                                       target=current_app.config["FIRST_TIME_PASS_TARGET"])


@blp.route("/face")
class FaceStats(MethodView):
    @require("admin")
    @blp.arguments(STATS_QUERY, location="query", unknown=RAISE)
    @blp.response(200, FaceStatsOverallSchema)
    @UNAUTHORIZED
    @NOT_ADMIN
    @blp.error(422, "`validation_failed`: a malformed time, `from` after `to`, or a range over 366 days")
    def get(self, args):
        """Face verification pass rate overall, per provider, and per provider and day.

        Defaults to the 30 days before `to` (now), at most 366 days; the query is logged like an auditor's.
        """
        return stats.face_stats(args, actor=get_jwt_identity(), request_id=request_id())


@blp.route("/evaluations")
class EvaluationStats(MethodView):
    @require("admin")
    @blp.arguments(STATS_QUERY, location="query", unknown=RAISE)
    @blp.response(200, EvaluationStatsSchema)
    @UNAUTHORIZED
    @NOT_ADMIN
    @BAD_PERIOD
    def get(self, args):
        """好差评 per department and overall: count, average grade, count per grade, share of poor grades (1–2),
        and the rectifications opened in the period by status, with those overdue.

        `from` and `to` are optional (default: all time).
        """
        return stats.evaluation_stats(since=args.get("from"), until=args.get("to"))


# Face verification pass rates: on the auditors' blueprint (their path, their tag), computed here.
@audit.route("/audit/face-verifications/stats")
class FacePassRates(MethodView):
    @require("auditor")
    @audit.arguments(FaceStatsQuerySchema(), location="query", unknown=RAISE)
    @audit.response(200, FaceStatsSchema)
    @NO_AUDITOR_TOKEN
    @NOT_AUDITOR
    @LOG_UNAVAILABLE
    @audit.error(422, "`validation_failed`: `from` after `to`, or a range over 366 days")
    def get(self, args):
        """Pass rates per provider and day (China Standard Time): decisions, passes, failures by reason.

        Defaults to the 30 days before `to` (now). The query is logged.
        """
        return stats.pass_rate_stats(args, actor=get_jwt_identity(), request_id=request_id())
