"""好差评: the applicant rates a completed application; the department's reviewers work the rectifications."""

from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.guard import ASSURANCE_DOC, current_citizen, require
from app.applications.api.review import reviewer
from app.applications.schemas.evaluations import (
    EvaluationBodySchema,
    EvaluationSchema,
    RectificationPageSchema,
    RectificationQuerySchema,
    RectificationSchema,
    ResolveBodySchema,
    UnfixableBodySchema,
)
from app.applications.services import evaluations, state
from app.applications.services.lifecycle import Actor
from app.web.blueprint import Blueprint

blp = Blueprint("evaluations", __name__, url_prefix="/api/v1",
                description="好差评: evaluations of completed applications and the departments' rectifications")

RECTIFICATION_QUERY = RectificationQuerySchema()


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
# An agent (帮办代办) gets this too: the rating is the citizen's own satisfaction, not the agent's.
NOT_CITIZEN = blp.error(403, "`forbidden`: not a citizen token (an agent cannot evaluate for the citizen); "
                         f"{ASSURANCE_DOC}")
NOT_REVIEWER = blp.error(403, "`forbidden`: not a reviewer token")
NO_APPLICATION = blp.error(404, "`not_found`: no such application of yours")
NO_RECTIFICATION = blp.error(404, "`not_found`: no such rectification in your department")
NOT_OPEN = blp.error(409, "`invalid_transition`: the rectification is no longer open")


@blp.route("/applications/<application_id>/evaluation")
class ApplicationEvaluation(MethodView):
    @require("citizen")
    @blp.arguments(EvaluationBodySchema)
    @blp.response(201, EvaluationSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @NO_APPLICATION
    @blp.error(409, "`evaluation_not_allowed`: the application is not approved, rejected or delivered yet; "
                "`already_evaluated`: it has been evaluated (one evaluation per application)")
    @blp.error(422, "`validation_failed`: a grade outside 1–5, or a comment over 500 characters")
    def post(self, body, application_id):
        """好差评: rate a completed application from 5 (非常满意) to 1 (非常不满意), once.

        A grade of 1 or 2 opens a rectification (整改) for the department, due in RECTIFICATION_WORKING_DAYS
        working days (15 by default).
        """
        citizen = current_citizen()
        application = state.own_application(application_id, citizen)
        return evaluations.evaluate(application, Actor.of(citizen), body["grade"], body.get("comment"))

    @require("citizen")
    @blp.response(200, EvaluationSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @blp.error(404, "`not_found`: no such application of yours, or it has not been evaluated")
    def get(self, application_id):
        """Your evaluation of the application, with the status of the rectification it opened."""
        return evaluations.get_evaluation(state.own_application(application_id, current_citizen()))


@blp.route("/review/rectifications")
class Rectifications(MethodView):
    @require("reviewer")
    @blp.arguments(RECTIFICATION_QUERY, location="query", unknown=RAISE)
    @blp.response(200, RectificationPageSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    def get(self, args):
        """The department's rectifications of poor grades, earliest due first; filter by status or overdue."""
        return evaluations.list_rectifications(reviewer(), **args)


@blp.route("/review/rectifications/<rectification_id>/resolve")
class Resolve(MethodView):
    @require("reviewer")
    @blp.arguments(ResolveBodySchema)
    @blp.response(200, RectificationSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NO_RECTIFICATION
    @NOT_OPEN
    @blp.error(422, "`validation_failed`: no resolution")
    def post(self, body, rectification_id):
        """整改完成: say what the department changed."""
        return evaluations.resolve(rectification_id, reviewer(), body["resolution"])


@blp.route("/review/rectifications/<rectification_id>/unfixable")
class Unfixable(MethodView):
    @require("reviewer")
    @blp.arguments(UnfixableBodySchema)
    @blp.response(200, RectificationSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NO_RECTIFICATION
    @NOT_OPEN
    @blp.error(422, "`validation_failed`: no reason")
    def post(self, body, rectification_id):
        """无法整改: close the rectification as unfixable, with the reason."""
        return evaluations.mark_unfixable(rectification_id, reviewer(), body["reason"])
