"""Applications: drafts, the consent their prefill needs, and the prefill from shared data."""

from functools import wraps

from flask import Response, current_app, request
from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.api import me
from app.accounts.guard import ASSURANCE_DOC, caller, current_account, current_citizen, require
from app.applications.schemas.applications import (
    ApplicationCreateSchema,
    ApplicationDetailSchema,
    ApplicationListQuerySchema,
    ApplicationPageSchema,
    ConsentBodySchema,
    ConsentPageSchema,
    ConsentReceiptSchema,
    DataAccessViewPageSchema,
    DraftSchema,
    FormAnswerSchema,
    FormBodySchema,
    MaterialProvisionSchema,
    MyDataAccessQuerySchema,
    PrefillAnswerSchema,
    PromiseBodySchema,
    PromiseTextSchema,
    SubmitAnswerSchema,
    UploadFormSchema,
    WithdrawBodySchema,
)
from app.applications.services import consent, my_data, prefill, state
from app.applications.services import drafting as applications
from app.applications.services import submitting as submission
from app.applications.services.lifecycle import Actor
from app.applications.workdays import work_calendar
from app.errors import ValidationFailed
from app.web import readcache
from app.web.blueprint import Blueprint
from app.web.openapi import links
from app.web.requestid import request_id
from app.web.schemas import PageQuerySchema

# Built once: a schema's construction copies its fields, a cost the list would pay on every cached read.
APPLICATION_PAGE = ApplicationPageSchema()
blp = Blueprint("applications", __name__, url_prefix="/api/v1",
                description="Applications: drafts, consent and prefill from shared data")

LIST_QUERY = ApplicationListQuerySchema()
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    "description": "a unique key per submission (e.g. a UUID): a retry with the same key returns the first "
                   "answer and changes nothing",
}


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
NOT_FOUND = blp.error(404, "`not_found`: no such application of yours (or of a citizen who authorised you)")
NOT_APPLICANT = blp.error(403, f"`forbidden`: neither a citizen nor an agent token; {ASSURANCE_DOC}")
NOT_EDITABLE = blp.error(409, "`invalid_transition`: the application is not a draft or awaiting a supplement")


def applicant() -> Actor:
    """The caller as an applicant: the citizen, or an agent acting under a citizen's authorisation."""
    return Actor.of(current_account(), "agent")


def applicant_application(application_id: str):
    return state.applicant_application(application_id, applicant())


# Where a draft goes next (OpenAPI links from POST /applications): consent, prefill, form, submit, read, withdraw.
JOURNEY = {
    "GiveConsent": ("post", "/api/v1/applications/{application_id}/consent"),
    "Prefill": ("post", "/api/v1/applications/{application_id}/prefill"),
    "FillForm": ("put", "/api/v1/applications/{application_id}/form"),
    "Submit": ("post", "/api/v1/applications/{application_id}/submit"),
    "ReadApplication": ("get", "/api/v1/applications/{application_id}"),
    "Withdraw": ("post", "/api/v1/applications/{application_id}/withdraw"),
}


@blp.route("/applications")
class Applications(MethodView):
    @require("citizen")
    @blp.arguments(LIST_QUERY, location="query", unknown=RAISE)
    @blp.response(200, ApplicationPageSchema)
    @UNAUTHORIZED
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    def get(self, args):
        """The caller's applications, newest first."""
        # Served from memory while the citizen's list has not changed (app/web/readcache.py); `overdue` turns
        # with the date, so the date is part of the key.
        citizen_id = caller().id
        key = ("applications", citizen_id, work_calendar().today(), tuple(sorted(args.items())))
        return readcache.json_response(key, [readcache.applications_stamp(citizen_id)],
                                       lambda: applications.list_applications(current_citizen(), **args),
                                       APPLICATION_PAGE)

    @require("citizen", "agent")
    @blp.arguments(ApplicationCreateSchema)
    @blp.response(201, DraftSchema)
    @blp.doc(**links(201, JOURNEY, parameters={"application_id": "$response.body#/id"}, bodies={
        "GiveConsent": {"elements": "$response.body#/consent_required/elements",
                        "purpose": "$response.body#/consent_required/purpose"}}))
    @UNAUTHORIZED
    @blp.error(403, f"{ASSURANCE_DOC}; `agent_not_authorised`: an agent without the citizen's current "
                "authorisation for the matter (granted from a face-bound account); `forbidden`: neither a "
                "citizen nor an agent token")
    @blp.error(404, "`not_found`: no such matter")
    @blp.error(422, "`validation_failed`: an agent must name `on_behalf_of`, a citizen must not")
    def post(self, body):
        """Start a draft for a matter: its materials, and the shared-data elements and purpose to consent to.

        An agent (帮办代办) names the citizen in `on_behalf_of`; the citizen must have authorised the agent
        for this matter (POST /api/v1/me/agent-authorisations) and the authorisation must be current.
        """
        application = applications.apply(applicant(), body["matter_code"], body.get("on_behalf_of"))
        return applications.draft_view(application)


@blp.route("/applications/<application_id>")
class ApplicationDetail(MethodView):
    @require("citizen", "agent")
    @blp.response(200, ApplicationDetailSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @NOT_FOUND
    def get(self, application_id):
        """One application with its timeline, materials, consent, last prefill, deadlines and decision."""
        return applications.detail_view(applicant_application(application_id))


@blp.route("/applications/<application_id>/consent")
class Consent(MethodView):
    @require("citizen")
    @blp.arguments(ConsentBodySchema)
    @blp.response(201, ConsentReceiptSchema)
    @blp.doc(**links(201, {name: JOURNEY[name] for name in ("Prefill", "ReadApplication")},
                     parameters={"application_id": "$response.body#/application_id"}))
    @UNAUTHORIZED
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @NOT_FOUND
    @blp.error(422, "`consent_mismatch`: the elements or purpose differ from the draft's `consent_required`")
    def post(self, body, application_id):
        """Consent to fetching exactly the draft's `consent_required` elements for its purpose → the receipt.

        A new consent supersedes the application's previous one; withdraw with DELETE /me/consents/{id}.
        """
        citizen = current_citizen()
        application = state.own_application(application_id, citizen)
        return consent.grant_consent(application, citizen, body["elements"], body["purpose"])


@blp.route("/applications/<application_id>/prefill")
class Prefill(MethodView):
    @require("citizen", "agent")
    @blp.response(200, PrefillAnswerSchema)
    @blp.doc(**links(200, {name: JOURNEY[name] for name in ("FillForm", "Submit", "ReadApplication")},
                     parameters={"application_id": "$response.body#/application_id"}))
    @UNAUTHORIZED
    @blp.error(403, f"{ASSURANCE_DOC}; `consent_required`: no active consent covering the matter's elements and "
                "purpose (none, withdrawn, or the matter changed since); `forbidden`: neither a citizen nor an "
                "agent token")
    @NOT_FOUND
    @blp.error(409, "`invalid_transition`: the application is no longer a draft")
    @blp.error(422, "`prefill_blocked`: the registry holding data the matter cannot go without has no record "
                "of the citizen (the connector and bureau are named)")
    @blp.error(503, "`prefill_blocked`: data the matter cannot go without could not be fetched (bureau failed, "
                "timed out or no connector provides it; named in the message and `errors.prefill`)")
    def post(self, application_id):
        """Fetch the matter's shared data in parallel: per field `{value, status, locked, source}`, per
        material its status, and `zero_material` for this citizen.

        A failing bureau degrades only its own fields (`failed`, `timeout`; `not_found` when it holds no
        record, `skipped` when no active connector provides the element); every call is in the data-access log.
        """
        application = applicant_application(application_id)
        return prefill.prefill(application, state.citizen_of(application), request_id=request_id(),
                               actor=applicant())


@blp.route("/applications/<application_id>/form")
class Form(MethodView):
    @require("citizen", "agent")
    @blp.arguments(FormBodySchema)
    @blp.response(200, FormAnswerSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @NOT_FOUND
    @blp.error(409, "`prefill_locked`: a locked prefilled field would change (named in `errors`); "
                "`invalid_transition`: not a draft or awaiting a supplement")
    def put(self, body, application_id):
        """Fill in the form (the whole form; a locked prefilled field may only be sent unchanged)."""
        application = applicant_application(application_id)
        return submission.update_form(application, applicant(), body["fields"])


def upload_sized(view):
    """Let this request's body reach UPLOAD_MAX_BYTES (plus multipart overhead) before the form is parsed;
    every other endpoint keeps the small MAX_CONTENT_LENGTH."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        request.max_content_length = current_app.config["UPLOAD_MAX_BYTES"] + MULTIPART_OVERHEAD
        return view(*args, **kwargs)

    return wrapper


@blp.route("/applications/<application_id>/materials/<material_code>")
class MaterialUpload(MethodView):
    @require("citizen", "agent")
    @upload_sized
    @blp.arguments(UploadFormSchema, location="files")
    @blp.response(201, MaterialProvisionSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @blp.error(404, "`not_found`: no such application of yours, or no such material in its matter")
    @NOT_EDITABLE
    @blp.error(413, "`payload_too_large`: over UPLOAD_MAX_BYTES")
    @blp.error(422, "`upload_type_not_allowed`: the content is not PDF, JPEG or PNG (whatever its name says); "
                "`upload_empty`; `evidence_not_offered`: the material is not provided by upload")
    def post(self, files, application_id, material_code):
        """Upload a material that could not be prefilled (multipart field `file`; the type is checked by
        content, the size limited; stored with its SHA-256)."""
        application = applicant_application(application_id)
        data = files["file"].read(current_app.config["UPLOAD_MAX_BYTES"] + 1)
        return submission.upload(application, applicant(), material_code, data)

    @require("citizen", "agent")
    @blp.response(200, description="the uploaded file, as stored",
                  content_type="application/octet-stream")
    @UNAUTHORIZED
    @NOT_APPLICANT
    @blp.error(404, "`not_found`: no such application of yours, or nothing uploaded for the material")
    def get(self, application_id, material_code):
        """Download the material's upload (its owner and their authorised agent; reviewers use /review)."""
        return file_response(applicant_application(application_id), material_code)


def file_response(application, material_code: str) -> Response:
    data, content_type = submission.open_upload(application, material_code)
    return Response(data, content_type=content_type,
                    headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, no-store"})


@blp.route("/applications/<application_id>/materials/<material_code>/promise")
class MaterialPromise(MethodView):
    @require("citizen", "agent")
    @blp.response(200, PromiseTextSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @blp.error(404, "`not_found`: no such application, material, or the material offers no promise")
    def get(self, application_id, material_code):
        """The written promise (告知承诺书) to show the applicant before they sign it."""
        application = applicant_application(application_id)
        return submission.promise_to_sign(application, material_code)

    @require("citizen", "agent")
    @blp.arguments(PromiseBodySchema)
    @blp.response(201, MaterialProvisionSchema)
    @UNAUTHORIZED
    @blp.error(403, f"{ASSURANCE_DOC}; `promise_not_allowed`: the applicant has a recorded false promise; "
                "`forbidden`: neither a citizen nor an agent token")
    @blp.error(404, "`not_found`: no such application of yours, or no such material")
    @NOT_EDITABLE
    @blp.error(422, "`evidence_not_offered`: the material offers no promise; `validation_failed`: the text differs")
    def post(self, body, application_id, material_code):
        """Sign the material's written promise by sending its text back unchanged."""
        application = applicant_application(application_id)
        return submission.promise(application, applicant(), material_code, body["text"])


@blp.route("/applications/<application_id>/materials/<material_code>/defer")
class MaterialDeferral(MethodView):
    @require("citizen", "agent")
    @blp.response(201, MaterialProvisionSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @blp.error(404, "`not_found`: no such application of yours, or no such material")
    @NOT_EDITABLE
    @blp.error(422, "`evidence_not_offered`: the matter does not mark this material deferrable (容缺)")
    def post(self, application_id, material_code):
        """容缺受理: supply this material later (only where the matter allows it), by the due date shown."""
        application = applicant_application(application_id)
        return submission.defer(application, applicant(), material_code)


@blp.route("/applications/<application_id>/submit")
class Submit(MethodView):
    @require("citizen", "agent")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    @blp.response(200, SubmitAnswerSchema)
    @UNAUTHORIZED
    @blp.error(403, f"{ASSURANCE_DOC}; `face_verification_required`: a face matter and no open face-verified window; "
                "`forbidden`: neither a citizen nor an agent token")
    @NOT_FOUND
    @blp.error(409, "`invalid_transition`: not a draft; `prefill_locked`: a locked prefilled field was changed")
    @blp.error(422, "`materials_missing`: required materials not provided (listed in `errors.materials`); "
                "`idempotency_key_reused`: the key was used for another request")
    def post(self, application_id):
        """Submit the application; with `Idempotency-Key` a retry returns the first answer and creates nothing.

        The submission freezes the prefilled values with their provenance; deadlines are counted in working
        days from now.
        """
        application = applicant_application(application_id)
        return submission.submit(application, applicant(), idempotency_key=idempotency_key())


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128 or not key.isascii() or not key.isprintable():
        raise ValidationFailed.field("Idempotency-Key", "Idempotency-Key 须为 1–128 个可打印 ASCII 字符",
                                     location="headers")
    return key


@blp.route("/applications/<application_id>/resubmit")
class Resubmit(MethodView):
    @require("citizen", "agent")
    @blp.response(200, SubmitAnswerSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @NOT_FOUND
    @blp.error(409, "`invalid_transition`: no supplement was requested; `prefill_locked`")
    @blp.error(422, "`materials_missing`: required materials still not provided")
    def post(self, application_id):
        """Send the application back to the department after the requested supplement (补正)."""
        application = applicant_application(application_id)
        return submission.resubmit(application, applicant())


@blp.route("/applications/<application_id>/withdraw")
class Withdraw(MethodView):
    @require("citizen", "agent")
    @blp.arguments(WithdrawBodySchema)
    @blp.response(200, SubmitAnswerSchema)
    @UNAUTHORIZED
    @NOT_APPLICANT
    @NOT_FOUND
    @blp.error(409, "`invalid_transition`: already accepted (or decided): ask the department instead")
    def post(self, body, application_id):
        """Withdraw the application before the department accepts it."""
        application = applicant_application(application_id)
        return submission.withdraw(application, applicant(), body.get("reason"))


@me.route("/me/consents")
class MyConsents(MethodView):
    @require("citizen")
    @me.arguments(PageQuerySchema(), location="query", unknown=RAISE)
    @me.response(200, ConsentPageSchema)
    @me.error(401, "`unauthorized`: no valid access token")
    @me.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    def get(self, args):
        """The caller's consent receipts, newest first (active, withdrawn and superseded)."""
        return consent.list_consents(current_citizen(), **args)


@me.route("/me/consents/<receipt_id>")
class MyConsent(MethodView):
    @require("citizen")
    @me.response(200, ConsentReceiptSchema)
    @me.error(401, "`unauthorized`: no valid access token")
    @me.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @me.error(404, "`not_found`: no such receipt of yours")
    def delete(self, receipt_id):
        """Withdraw a consent (idempotent): its application's prefill needs a new one (403 `consent_required`)."""
        return consent.withdraw_consent(receipt_id, current_citizen())


@me.route("/me/data-access")
class MyDataAccess(MethodView):
    @require("citizen")
    @me.arguments(MyDataAccessQuerySchema(), location="query", unknown=RAISE)
    @me.response(200, DataAccessViewPageSchema)
    @me.error(401, "`unauthorized`: no valid access token")
    @me.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @me.error(404, "`not_found`: `application_id` is not an application of yours")
    def get(self, args):
        """Who fetched which data about me, when, for which application and purpose, and the outcome.

        Newest first; matched through the keyed pseudonym of the face-bound ID number.
        """
        return my_data.my_data_access(current_citizen(), **args)
