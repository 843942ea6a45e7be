"""Applications: drafts, the consent their prefill needs, and the prefill from shared data."""

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth import current_citizen, require
from app.errors import ErrorSchema
from app.requestid import request_id
from app.schemas.applications import (
    ApplicationCreateSchema,
    ApplicationDetailSchema,
    ApplicationPageSchema,
    ConsentBodySchema,
    ConsentReceiptSchema,
    DraftSchema,
    PrefillAnswerSchema,
)
from app.schemas.common import PageQuerySchema
from app.services import applications

blp = Blueprint("applications", __name__, url_prefix="/api/v1",
                description="Applications: drafts, consent and prefill from shared data")

PAGE_QUERY = PageQuerySchema()


def error(status: int, description: str):
    """Document an error response of the one error shape."""
    return blp.alt_response(status, schema=ErrorSchema, description=description)


UNAUTHORIZED = error(401, "`unauthorized`: no valid access token")
NOT_FOUND = error(404, "`not_found`: no such application of yours")


@blp.route("/applications")
class Applications(MethodView):
    @require("citizen")
    @blp.arguments(PAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, ApplicationPageSchema)
    @UNAUTHORIZED
    @error(403, "`forbidden`: not a citizen token")
    def get(self, args):
        """The caller's applications, newest first."""
        return applications.list_applications(current_citizen(), **args)

    @require("citizen")
    @blp.arguments(ApplicationCreateSchema)
    @blp.response(201, DraftSchema)
    @UNAUTHORIZED
    @error(403, "`forbidden`: not a citizen token")
    @error(404, "`not_found`: no such matter")
    def post(self, body):
        """Start a draft for a matter: its materials, and the shared-data elements and purpose to consent to.

        (Agents applying on a citizen's behalf, `on_behalf_of`, come with the agent flow.)
        """
        citizen = current_citizen()
        return applications.draft_view(applications.create_draft(citizen, body["matter_code"]))


@blp.route("/applications/<application_id>")
class ApplicationDetail(MethodView):
    @require("citizen")
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @error(403, "`forbidden`: not a citizen token")
    @NOT_FOUND
    def get(self, application_id):
        """One of the caller's applications with its timeline, consent and last prefill."""
        return applications.detail_view(applications.own_application(application_id, current_citizen()))


@blp.route("/applications/<application_id>/consent")
class Consent(MethodView):
    @require("citizen")
    @blp.arguments(ConsentBodySchema)
    @blp.response(201, ConsentReceiptSchema)
    @UNAUTHORIZED
    @error(403, "`forbidden`: not a citizen token")
    @NOT_FOUND
    @error(422, "`consent_mismatch`: the elements or purpose differ from the draft's `consent_required`")
    def post(self, body, application_id):
        """Consent to fetching exactly the draft's `consent_required` elements for its purpose → the receipt.

        A new consent supersedes the application's previous one; withdraw with DELETE /me/consents/{id}.
        """
        citizen = current_citizen()
        application = applications.own_application(application_id, citizen)
        return applications.grant_consent(application, citizen, body["elements"], body["purpose"])


@blp.route("/applications/<application_id>/prefill")
class Prefill(MethodView):
    @require("citizen")
    @blp.response(200, PrefillAnswerSchema)
    @UNAUTHORIZED
    @error(403, "`consent_required`: no active consent covering the matter's elements and purpose (none, "
                "withdrawn, or the matter changed since); `real_name_required`: bind a real name first; "
                "`forbidden`: not a citizen token")
    @NOT_FOUND
    @error(409, "`invalid_transition`: the application is no longer a draft")
    @error(422, "`prefill_blocked`: the registry holding data the matter cannot go without has no record "
                "of the citizen (the connector and bureau are named)")
    @error(503, "`prefill_blocked`: data the matter cannot go without could not be fetched (bureau failed, "
                "timed out or no connector provides it; named in the message and `errors.prefill`)")
    def post(self, application_id):
        """Fetch the matter's shared data in parallel: per field `{value, status, locked, source}`, per
        material its status, and `zero_material` for this citizen.

        A failing bureau degrades only its own fields (`failed`, `timeout`; `not_found` when it holds no
        record, `skipped` when no active connector provides the element); every call is in the data-access log.
        """
        citizen = current_citizen()
        application = applications.own_application(application_id, citizen)
        return applications.prefill(application, citizen, request_id=request_id())
