"""Department staff: the reviewers' inbox, decisions, delivery, and recorded false promises."""

from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.guard import current_staff, require
from app.applications.api.applications import file_response
from app.applications.schemas.applications import ApplicationDetailSchema
from app.applications.schemas.review import (
    ApproveBodySchema,
    ConditionDecisionBodySchema,
    DeliverBodySchema,
    InboxPageSchema,
    InboxQuerySchema,
    PromiseBreachBodySchema,
    PromiseBreachSchema,
    RejectBodySchema,
    SupplementBodySchema,
)
from app.applications.services import drafting as applications
from app.applications.services import lifecycle, review
from app.applications.services.lifecycle import Actor
from app.web.blueprint import Blueprint

blp = Blueprint("review", __name__, url_prefix="/api/v1/review",
                description="Department staff: inbox, accept, supplement, approve, reject, deliver")

INBOX_QUERY = InboxQuerySchema()


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
NOT_REVIEWER = blp.error(403, "`forbidden`: not a reviewer token")
NOT_FOUND = blp.error(404, "`not_found`: no such submitted application in your department")
INVALID = blp.error(409, "`invalid_transition`: not allowed from the application's current status")


def reviewer() -> Actor:
    return Actor.of(current_staff(), "reviewer")


def department_application(application_id: str):
    return lifecycle.reviewer_application(application_id, reviewer())


def decided(application):
    return applications.detail_view(application)


@blp.route("/applications")
class Inbox(MethodView):
    @require("reviewer")
    @blp.arguments(INBOX_QUERY, location="query", unknown=RAISE)
    @blp.response(200, InboxPageSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    def get(self, args):
        """The department's submitted applications, oldest first; filter by status, overdue, matter, days."""
        return review.inbox(reviewer(), **args)


@blp.route("/applications/<application_id>")
class ReviewDetail(MethodView):
    @require("reviewer")
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    def get(self, application_id):
        """One application of the department: the submitted values with provenance, materials, timeline."""
        return decided(department_application(application_id))


@blp.route("/applications/<application_id>/materials/<material_code>")
class ReviewMaterial(MethodView):
    @require("reviewer")
    @blp.response(200, description="the uploaded file, as stored", content_type="application/octet-stream")
    @UNAUTHORIZED
    @NOT_REVIEWER
    @blp.error(404, "`not_found`: no such application in your department, or nothing uploaded for the material")
    def get(self, application_id, material_code):
        """Download a material the applicant uploaded."""
        return file_response(department_application(application_id), material_code)


@blp.route("/applications/<application_id>/accept")
class Accept(MethodView):
    @require("reviewer")
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    @INVALID
    def post(self, application_id):
        """受理: accept a submitted application."""
        return decided(review.accept(department_application(application_id), reviewer()))


@blp.route("/applications/<application_id>/request-supplement")
class RequestSupplement(MethodView):
    @require("reviewer")
    @blp.arguments(SupplementBodySchema)
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    @INVALID
    def post(self, body, application_id):
        """补正: ask for everything to fix at once; the applicant resubmits."""
        return decided(review.request_supplement(department_application(application_id), reviewer(),
                                                 body["items"]))


@blp.route("/applications/<application_id>/approve")
class Approve(MethodView):
    @require("reviewer")
    @blp.arguments(ApproveBodySchema)
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    @blp.error(409, "`invalid_transition`: not allowed from the application's current status; "
                    "`conditions_undecided`: a condition submitted as unknown waits for your decision "
                    "(POST …/conditions/{index}/decide); `conditions_not_met`: one was decided not met (reject)")
    def post(self, body, application_id):
        """办结: approve with the result (its name and number default from the matter)."""
        return decided(review.approve(department_application(application_id), reviewer(), body.get("result")))


@blp.route("/applications/<application_id>/reject")
class Reject(MethodView):
    @require("reviewer")
    @blp.arguments(RejectBodySchema)
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    @INVALID
    def post(self, body, application_id):
        """不予受理 / 不予许可, with the reason."""
        return decided(review.reject(department_application(application_id), reviewer(), body["reason"]))


@blp.route("/applications/<application_id>/deliver")
class Deliver(MethodView):
    @require("reviewer")
    @blp.arguments(DeliverBodySchema)
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    @INVALID
    @blp.error(422, "`validation_failed`: mail without recipient or tracking number")
    def post(self, body, application_id):
        """送达: an e-certificate, or free mail with the recipient and tracking number."""
        return decided(review.deliver(department_application(application_id), reviewer(), body))


@blp.route("/applications/<application_id>/promise-breach")
class PromiseBreach(MethodView):
    @require("reviewer")
    @blp.arguments(PromiseBreachBodySchema)
    @blp.response(201, PromiseBreachSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @NOT_FOUND
    @blp.error(422, "`validation_failed`: that material was not provided by a written promise")
    def post(self, body, application_id):
        """Record that a written promise (告知承诺) was false: its maker can no longer use promises."""
        return review.record_promise_breach(department_application(application_id), reviewer(),
                                            body["material_code"], body["reason"])


@blp.route("/applications/<application_id>/conditions/<int:index>/decide")
class DecideCondition(MethodView):
    @require("reviewer")
    @blp.arguments(ConditionDecisionBodySchema)
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_REVIEWER
    @blp.error(404, "`not_found`: no such submitted application in your department, or its pre-check has no "
                    "checked condition at `index`")
    @blp.error(409, "`condition_not_decidable`: the condition was decided by the data (met) or already by a "
                    "reviewer; `invalid_transition`: the application is decided already")
    def post(self, body, application_id, index):
        """Decide by hand a condition the shared data left `unknown` (the matter lets a reviewer decide it).

        The decision is on the timeline (`condition_decided`); the note, which may name people, is kept
        encrypted. Approval waits until every such condition is decided; one decided not met means a rejection.
        """
        return decided(review.decide_condition(department_application(application_id), reviewer(), index,
                                               body["met"], body.get("note")))
