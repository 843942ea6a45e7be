"""一件事 applications: one form, one consent, one prefill, fanned out to one application per matter."""

from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.guard import ASSURANCE_DOC, current_citizen, require
from app.applications.api.applications import IDEMPOTENCY_KEY, idempotency_key
from app.applications.schemas.applications import (
    BundleApplicationPageSchema,
    BundleApplicationSchema,
    BundleConsentAnswerSchema,
    BundleCreateSchema,
    BundleFormAnswerSchema,
    BundlePrefillSchema,
    BundleSubmitAnswerSchema,
    ConsentBodySchema,
    FormBodySchema,
)
from app.applications.services import bundles
from app.applications.services.lifecycle import Actor
from app.web.blueprint import Blueprint
from app.web.requestid import request_id
from app.web.schemas import PageQuerySchema

blp = Blueprint("bundle-applications", __name__, url_prefix="/api/v1",
                description="一件事 applications fanned out to one application per matter")

PAGE_QUERY = PageQuerySchema()


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
NOT_CITIZEN = blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
NOT_FOUND = blp.error(404, "`not_found`: no such 一件事 application of yours")


def citizen_bundle(bundle_application_id: str):
    return bundles.applicant_bundle(bundle_application_id, Actor.of(current_citizen()))


@blp.route("/bundles/<code>/applications")
class BundleApplications(MethodView):
    @require("citizen")
    @blp.arguments(BundleCreateSchema)
    @blp.response(201, BundleApplicationSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @blp.error(404, "`not_found`: no such bundle")
    def post(self, _body, code):
        """Apply for a 一件事: one child draft per matter, each routed to its department (an empty body)."""
        return bundles.view(bundles.create(current_citizen(), code))


@blp.route("/bundle-applications")
class MyBundleApplications(MethodView):
    @require("citizen")
    @blp.arguments(PAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, BundleApplicationPageSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    def get(self, args):
        """My 一件事 applications, newest first, with their children's statuses."""
        return bundles.list_for(current_citizen(), **args)


@blp.route("/bundle-applications/<bundle_application_id>")
class BundleApplicationDetail(MethodView):
    @require("citizen")
    @blp.response(200, BundleApplicationSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @NOT_FOUND
    def get(self, bundle_application_id):
        """One 一件事 application: its aggregate status and each child's (details under /applications/{id})."""
        return bundles.view(citizen_bundle(bundle_application_id))


@blp.route("/bundle-applications/<bundle_application_id>/consent")
class BundleConsent(MethodView):
    @require("citizen")
    @blp.arguments(ConsentBodySchema)
    @blp.response(201, BundleConsentAnswerSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @NOT_FOUND
    @blp.error(422, "`consent_mismatch`: not exactly the bundle's `consent_required` elements and purpose")
    def post(self, body, bundle_application_id):
        """One consent for the whole 一件事 (recorded as one receipt per child, each with its own elements)."""
        row = citizen_bundle(bundle_application_id)
        return bundles.consent(row, current_citizen(), body["elements"], body["purpose"])


@blp.route("/bundle-applications/<bundle_application_id>/prefill")
class BundlePrefill(MethodView):
    @require("citizen")
    @blp.response(200, BundlePrefillSchema)
    @UNAUTHORIZED
    @blp.error(403, f"`consent_required`: a child has no valid consent; {ASSURANCE_DOC}; `forbidden`")
    @NOT_FOUND
    @blp.error(422, "`prefill_blocked`: a registry holds no record a child's matter cannot go without")
    @blp.error(503, "`prefill_blocked`: data a child's matter cannot go without could not be fetched")
    def post(self, bundle_application_id):
        """One prefill for every child: each connector is called once for all the elements it provides."""
        row = citizen_bundle(bundle_application_id)
        return bundles.prefill(row, current_citizen(), request_id=request_id())


@blp.route("/bundle-applications/<bundle_application_id>/form")
class BundleForm(MethodView):
    @require("citizen")
    @blp.arguments(FormBodySchema)
    @blp.response(200, BundleFormAnswerSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @NOT_FOUND
    @blp.error(409, "`prefill_locked`: a locked prefilled field of some child would change (nothing is written)")
    def put(self, body, bundle_application_id):
        """The shared form, filled once for every child still editable (all or none)."""
        row = citizen_bundle(bundle_application_id)
        return bundles.update_form(row, Actor.of(current_citizen()), body["fields"])


@blp.route("/bundle-applications/<bundle_application_id>/submit")
class BundleSubmit(MethodView):
    @require("citizen")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    @blp.response(200, BundleSubmitAnswerSchema)
    @UNAUTHORIZED
    @blp.error(403, f"`face_verification_required`: a child's matter needs a fresh face verification; {ASSURANCE_DOC}; "
                "`forbidden`")
    @NOT_FOUND
    @blp.error(409, "`invalid_transition`: already submitted; `prefill_locked`")
    @blp.error(422, "`materials_missing` (of a child, named in the message); `idempotency_key_reused`")
    def post(self, bundle_application_id):
        """Submit every child at once (all or none): each goes to its own department, decided in parallel."""
        row = citizen_bundle(bundle_application_id)
        return bundles.submit(row, Actor.of(current_citizen()), idempotency_key=idempotency_key())
