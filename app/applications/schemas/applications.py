"""Schemas of applications (drafts, consent, prefill) and of the citizen's consents and data-access view."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import Length, OneOf

from app.applications.models import (
    APPLICATION_STATUSES,
    FORM_FIELD_PATTERN,
    MAX_FORM_FIELD_NAME,
    MAX_FORM_LIST,
    MAX_FORM_TEXT,
)
from app.bodies import LARGEST_NUMBER
from app.catalogue.models import EVIDENCE_TYPES
from app.web.schemas import (
    Code,
    ElementLabelSchema,
    PageQuerySchema,
    PageSchema,
    PrefillFieldSchema,
    RequestSchema,
    opaque_id,
)

MATERIAL_STATUSES = ("satisfied", "promised", "deferred", "available", "needs_upload", "in_person", "unavailable",
                     "awaiting_prefill")
MATERIAL_VIA = (*EVIDENCE_TYPES, "deferred")
RECEIPT_STATUSES = ("active", "withdrawn", "superseded")


class Upload(fields.Field):
    """A multipart file part (documented as binary)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"] = {"type": "string", "format": "binary", **kwargs["metadata"]}
        super().__init__(**kwargs)


class ApplicationCreateSchema(RequestSchema):
    matter_code = Code(required=True, metadata={"description": "the matter applied for", "example": "GJJ-GG-001"})
    on_behalf_of = opaque_id("agents only: the id of the citizen who authorised you for this matter "
                             "(GET /api/v1/agent/authorisations)")


class ApplicationListQuerySchema(PageQuerySchema):
    status = fields.String(validate=OneOf(APPLICATION_STATUSES))


class ConsentBodySchema(RequestSchema):
    elements = fields.List(
        fields.String(validate=Length(min=1, max=100)), required=True, validate=Length(max=200),
        metadata={"description": "exactly `consent_required.elements` of the draft (any order)"},
    )
    purpose = fields.String(required=True, validate=Length(min=1, max=500),
                            metadata={"description": "exactly `consent_required.purpose` of the draft"})


class UploadInfoSchema(ma.Schema):
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True)
    content_type = fields.String(required=True)
    uploaded_at = fields.AwareDateTime(required=True)


class MaterialStatusSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    required = fields.Boolean(required=True)
    deferrable = fields.Boolean(metadata={"description": "容缺: may follow after acceptance (POST …/defer)"})
    status = fields.String(
        required=True, validate=OneOf(MATERIAL_STATUSES),
        metadata={"description": "satisfied (via shared_data, face, e_licence or upload); promised (written "
                  "promise signed); deferred (容缺, due by due_on); available (a document-free way is open: "
                  "verify by face or sign the promise); needs_upload; in_person; unavailable (shared data only, "
                  "not obtained); awaiting_prefill (before the first prefill)"},
    )
    via = fields.String(required=True, allow_none=True, validate=OneOf(MATERIAL_VIA),
                        metadata={"description": "the evidence type that satisfies or will satisfy it"})
    elements = fields.List(fields.String(), metadata={"description": "shared_data / e_licence: the elements used"})
    licence_type = fields.String(allow_none=True, metadata={"description": "e_licence: which licence"})
    upload = fields.Nested(UploadInfoSchema, metadata={"description": "upload: what was stored"})
    promised_at = fields.AwareDateTime()
    due_on = fields.Date(allow_none=True, metadata={"description": "deferred: when the material must follow"})


class MaterialProvisionSchema(MaterialStatusSchema):
    application_id = fields.String(required=True)


class PromiseBodySchema(RequestSchema):
    text = fields.String(required=True, validate=Length(min=1, max=2000),
                         metadata={"description": "the promise text of the material (GET …/materials/{code}/promise), "
                                   "signed by sending it back unchanged"})


class PromiseTextSchema(ma.Schema):
    material_code = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "告知承诺书: shown to the applicant, signed as is"})


class UploadFormSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "PDF, JPEG or PNG (checked by content), size-limited"})


class ConsentRequiredSchema(ma.Schema):
    elements = fields.List(fields.String(), required=True,
                           metadata={"description": "the shared-data elements the matter's materials need"})
    purpose = fields.String(required=True, metadata={"description": "the purpose text, naming the matter"})


class ApplicationSummarySchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(APPLICATION_STATUSES))
    status_label = fields.String(required=True, metadata={"description": "the status in Chinese"})
    matter_code = fields.String(required=True)
    matter_name = fields.String(required=True)
    matter_version = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    submitted_at = fields.AwareDateTime(required=True, allow_none=True)
    promised_due_on = fields.Date(required=True, allow_none=True,
                                  metadata={"description": "promised deadline (working days from submission)"})
    overdue = fields.Boolean(required=True, metadata={"description": "past the promised deadline, undecided"})
    bundle_application_id = fields.String(required=True, allow_none=True,
                                          metadata={"description": "the 一件事 application it is part of"})


class ApplicationPageSchema(PageSchema):
    items = fields.List(fields.Nested(ApplicationSummarySchema), required=True)


class DraftSchema(ApplicationSummarySchema):
    """The answer to creating a draft."""

    materials = fields.List(fields.Nested(MaterialStatusSchema), required=True)
    consent_required = fields.Nested(ConsentRequiredSchema, required=True)


class ReceiptFieldsSchema(ma.Schema):
    """What every consent shows: what it allows, and its state (ReceiptStatus)."""

    id = fields.String(required=True)
    elements = fields.List(fields.String(), required=True)
    purpose = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(RECEIPT_STATUSES))
    granted_at = fields.AwareDateTime(required=True)
    withdrawn_at = fields.AwareDateTime(required=True, allow_none=True)
    superseded_at = fields.AwareDateTime(required=True, allow_none=True)


class ConsentReceiptSchema(ReceiptFieldsSchema):
    application_id = fields.String(required=True)
    matter_code = fields.String(required=True)
    version = fields.Integer(required=True, metadata={"description": "the receipt format's version"})


class ConsentPageSchema(PageSchema):
    items = fields.List(fields.Nested(ConsentReceiptSchema), required=True)


ELIGIBILITY_RESULTS = ("eligible", "not_eligible", "unknown")
CONDITION_RESULTS = ("met", "not_met", "unknown", "not_checked")
FACT_STATUSES = ("ok", "not_found", "failed", "timeout", "skipped", "not_consented", "not_fetched")


class FactSourceSchema(ma.Schema):
    connector = fields.String(required=True, allow_none=True)
    bureau = fields.String(required=True, allow_none=True)
    trust_level = fields.String(required=True, allow_none=True)
    source_updated_at = fields.String(required=True, allow_none=True)
    fetched_at = fields.String(required=True, allow_none=True)


class ConditionFactSchema(ma.Schema):
    """One datum a condition used: the element, how it was derived, its value, status and provenance."""

    element = fields.String(required=True)
    label = fields.String(required=True)
    derive = fields.String(required=True, allow_none=True, validate=OneOf(("age", "years_since")),
                           metadata={"description": "age / years_since: the value is the derived integer"})
    value = fields.Raw(allow_none=True, metadata={"description": "the value compared (absent where the stored "
                       "pre-check keeps no values; never an identity number)"})
    status = fields.String(required=True, validate=OneOf(FACT_STATUSES), metadata={
        "description": "the prefill's field status, or not_consented / not_fetched"})
    source = fields.Nested(FactSourceSchema, required=True, allow_none=True)


class ConditionDecisionSchema(ma.Schema):
    met = fields.Boolean(required=True)
    by = fields.String(required=True, validate=OneOf(("reviewer",)))
    at = fields.String(required=True)
    note = fields.String(allow_none=True, metadata={"description": "the reviewer's note (applicant and department)"})


class ConditionCheckResultSchema(ma.Schema):
    index = fields.Integer(required=True, metadata={"description": "the condition's place in the guide's list"})
    text = fields.String(required=True)
    checked = fields.Boolean(required=True, metadata={"description": "false: a text-only condition, not checked"})
    result = fields.String(required=True, validate=OneOf(CONDITION_RESULTS), metadata={
        "description": "met, not_met, unknown (the data to decide it was not at hand), not_checked (text only)"})
    reviewer_may_decide = fields.Boolean(required=True, metadata={
        "description": "an unknown result may be submitted, for the reviewer to decide"})
    reason = fields.String(allow_none=True, metadata={"description": "why, in Chinese (quotes the values)"})
    facts = fields.List(fields.Nested(ConditionFactSchema), required=True)
    decision = fields.Nested(ConditionDecisionSchema, allow_none=True, metadata={
        "description": "a reviewer's decision on an unknown condition (after submission)"})


class EligibilitySchema(ma.Schema):
    """智能预审: the matter's conditions over the prefilled data."""

    result = fields.String(required=True, validate=OneOf(ELIGIBILITY_RESULTS), metadata={
        "description": "not_eligible if any condition is not_met; else unknown if any is unknown; else eligible"})
    conditions = fields.List(fields.Nested(ConditionCheckResultSchema), required=True)


class PrefillResultSchema(ma.Schema):
    """Per-field values with provenance, per-material status, and whether no upload is needed."""

    fields_ = fields.Dict(
        keys=fields.String(), values=fields.Nested(PrefillFieldSchema), required=True,
        data_key="fields", attribute="fields", metadata={"description": "element → {value, status, locked, source}"},
    )
    materials = fields.List(fields.Nested(MaterialStatusSchema), required=True)
    zero_material = fields.Boolean(required=True,
                                   metadata={"description": "no required material needs an upload or a visit"})
    eligibility = fields.Nested(EligibilitySchema, required=True, metadata={
        "description": "智能预审: each condition met / not_met / unknown with the values and provenance used"})
    prefilled_at = fields.AwareDateTime(required=True)


class PrefillAnswerSchema(PrefillResultSchema):
    application_id = fields.String(required=True)


class TimelineEntrySchema(ma.Schema):
    at = fields.AwareDateTime(required=True)
    kind = fields.String(required=True, metadata={
        "description": "created, consent_granted, consent_withdrawn, prefilled, prefill_blocked, form_updated, "
                       "material_uploaded, material_promised, material_deferred, a new status (submitted, "
                       "accepted, …; a draft withdrawn by the system after RETENTION_DRAFT_DAYS says "
                       "reason: expired), promise_breach_recorded, evaluated, uploads_erased and values_erased "
                       "(retention: the files, or the values, of an application long decided)"})
    actor = fields.String(required=True, validate=OneOf(("citizen", "agent", "reviewer", "system")))
    detail = fields.Dict(required=True)


class SubmittedSchema(ma.Schema):
    """What was submitted, frozen: later registry changes do not alter it."""

    fields_ = fields.Dict(keys=fields.String(), values=fields.Nested(PrefillFieldSchema), required=True,
                          data_key="fields", attribute="fields")
    form = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True)
    materials = fields.List(fields.Nested(MaterialStatusSchema), required=True)
    eligibility = fields.Nested(EligibilitySchema, required=True, allow_none=True, metadata={
        "description": "the pre-check as submitted, with reviewers' decisions on unknown conditions (null for "
                       "applications submitted before pre-checks)"})
    conditions_to_decide = fields.List(fields.Integer(), required=True, metadata={
        "description": "indices of unknown conditions still waiting for the reviewer's decision"})


class DeliverySchema(ma.Schema):
    method = fields.String(required=True, validate=OneOf(("e_certificate", "mail")))
    certificate_number = fields.String()
    carrier = fields.String()
    tracking_number = fields.String()
    fee = fields.Integer(required=True, metadata={"description": "always 0: delivery is free of charge"})
    recipient = fields.Dict(metadata={"description": "mail: name, phone and address (applicant and reviewer only)"})


class ApplicationDetailSchema(DraftSchema):
    department_code = fields.String(required=True, allow_none=True)
    consent = fields.Nested(ConsentReceiptSchema, required=True, allow_none=True,
                            metadata={"description": "the active receipt covering today's consent_required"})
    prefill = fields.Nested(PrefillResultSchema, required=True, allow_none=True,
                            metadata={"description": "the last prefill; null before the first"})
    form = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True)
    submission = fields.Nested(SubmittedSchema, required=True, allow_none=True)
    zero_material = fields.Boolean(required=True)
    accepted_at = fields.AwareDateTime(required=True, allow_none=True)
    decided_at = fields.AwareDateTime(required=True, allow_none=True)
    delivered_at = fields.AwareDateTime(required=True, allow_none=True)
    legal_due_on = fields.Date(required=True, allow_none=True)
    supplement_items = fields.List(fields.String(), required=True, allow_none=True,
                                   metadata={"description": "everything to fix, listed at once (补正)"})
    result = fields.Dict(required=True, allow_none=True)
    rejection_reason = fields.String(required=True, allow_none=True)
    delivery = fields.Nested(DeliverySchema, required=True, allow_none=True)
    acting_user = fields.String(required=True, validate=OneOf(("citizen", "agent")), attribute="acting_user_kind",
                                metadata={"description": "who created it"})
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)


_FORM_SCALARS = [
    {"type": "string", "maxLength": MAX_FORM_TEXT},
    {"type": "number", "minimum": -LARGEST_NUMBER, "maximum": LARGEST_NUMBER},
    {"type": "boolean"},
    {"type": "null"},
]
# What a form accepts as a value (app/applications/services/state.py checks it; this states it).
FORM_VALUE_SCHEMA = {"anyOf": [*_FORM_SCALARS,
                               {"type": "array", "maxItems": MAX_FORM_LIST, "items": {"anyOf": _FORM_SCALARS}}]}


class FormBodySchema(RequestSchema):
    fields_ = fields.Dict(
        keys=fields.String(validate=Length(min=1, max=MAX_FORM_FIELD_NAME),
                           metadata={"pattern": FORM_FIELD_PATTERN}),
        values=fields.Raw(allow_none=True, metadata=FORM_VALUE_SCHEMA), required=True,
        data_key="fields", attribute="fields", validate=Length(max=200),
        metadata={"description": "element or form field → value (text ≤ 2000, number, boolean or a list of "
                  "them); the whole form: fields left out are cleared. A locked prefilled field may be sent "
                  "only unchanged"},
    )


class FormAnswerSchema(ma.Schema):
    application_id = fields.String(required=True)
    fields_ = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True,
                          data_key="fields", attribute="fields")
    updated_at = fields.AwareDateTime(required=True)


class SubmitAnswerSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(APPLICATION_STATUSES))
    matter_code = fields.String(required=True)
    submitted_at = fields.AwareDateTime(required=True, allow_none=True)
    zero_material = fields.Boolean(required=True, allow_none=True,
                                   metadata={"description": "submitted without any document"})
    promised_due_on = fields.Date(required=True, allow_none=True)
    legal_due_on = fields.Date(required=True, allow_none=True)


class WithdrawBodySchema(RequestSchema):
    reason = fields.String(validate=Length(max=500), metadata={"description": "optional, kept out of the log"})


class MyDataAccessQuerySchema(PageQuerySchema):
    application_id = opaque_id("only the accesses for this application of yours")


class DataAccessViewSchema(ma.Schema):
    """One access to the citizen's data, as the citizen sees it."""

    id = fields.String(required=True)
    seq = fields.Integer(required=True, metadata={
        "description": "its place in the data-access log: GET /api/v1/audit/data-access/proof/inclusion?seq= "
                       "proves it is in the log"})
    at = fields.AwareDateTime(required=True)
    connector = fields.String(required=True)
    bureau = fields.String(required=True)
    bureau_name = fields.String(required=True)
    elements_requested = fields.List(fields.Nested(ElementLabelSchema), required=True)
    elements_returned = fields.List(fields.String(), required=True)
    application_id = fields.String(required=True, allow_none=True)
    matter_code = fields.String(required=True, allow_none=True)
    matter_name = fields.String(required=True, allow_none=True)
    purpose = fields.String(required=True)
    acting_user = fields.String(required=True, validate=OneOf(("citizen", "agent", "system")), metadata={
        "description": "citizen, agent (帮办代办), or system (the 免申即享 check the citizen opted in to)"})
    outcome = fields.String(required=True, validate=OneOf(("ok", "not_found", "failed", "timeout")))


class DataAccessViewPageSchema(PageSchema):
    items = fields.List(fields.Nested(DataAccessViewSchema), required=True)


BUNDLE_STATUSES = ("draft", "in_progress", "completed", "rejected", "withdrawn")


class BundleChildSchema(ma.Schema):
    id = fields.String(required=True)
    matter_code = fields.String(required=True)
    matter_name = fields.String(required=True)
    department_code = fields.String(required=True, allow_none=True,
                                    metadata={"description": "the department deciding this child"})
    status = fields.String(required=True, validate=OneOf(APPLICATION_STATUSES))
    status_label = fields.String(required=True)
    promised_due_on = fields.Date(required=True, allow_none=True)


class BundleApplicationSchema(ma.Schema):
    id = fields.String(required=True)
    bundle_code = fields.String(required=True)
    bundle_name = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(BUNDLE_STATUSES),
                           metadata={"description": "draft, in_progress, completed (every child approved or "
                                     "delivered), rejected (all decided, one or more rejected), withdrawn"})
    created_at = fields.AwareDateTime(required=True)
    children = fields.List(fields.Nested(BundleChildSchema), required=True)
    consent_required = fields.Nested(ConsentRequiredSchema, required=True,
                                     metadata={"description": "the one consent covering every child"})


class BundleApplicationPageSchema(PageSchema):
    items = fields.List(fields.Nested(BundleApplicationSchema), required=True)


class BundleCreateSchema(RequestSchema):
    """An empty body (or none): everything comes from the bundle."""


class BundleConsentAnswerSchema(ma.Schema):
    bundle_application_id = fields.String(required=True)
    elements = fields.List(fields.String(), required=True)
    purpose = fields.String(required=True)
    receipts = fields.List(fields.Nested(ConsentReceiptSchema), required=True,
                           metadata={"description": "one per child, with exactly that child's elements"})


class BundlePrefillChildSchema(ma.Schema):
    id = fields.String(required=True)
    matter_code = fields.String(required=True)
    materials = fields.List(fields.Nested(MaterialStatusSchema), required=True)
    zero_material = fields.Boolean(required=True)
    eligibility = fields.Nested(EligibilitySchema, required=True, metadata={
        "description": "智能预审 of this child's matter"})


class BundlePrefillSchema(ma.Schema):
    bundle_application_id = fields.String(required=True)
    fields_ = fields.Dict(keys=fields.String(), values=fields.Nested(PrefillFieldSchema), required=True,
                          data_key="fields", attribute="fields")
    children = fields.List(fields.Nested(BundlePrefillChildSchema), required=True)
    zero_material = fields.Boolean(required=True, metadata={"description": "true when every child is"})
    eligibility_result = fields.String(required=True, validate=OneOf(ELIGIBILITY_RESULTS), metadata={
        "description": "not_eligible when a child is (the bundle cannot be submitted), else unknown or eligible"})


class BundleFormAnswerSchema(ma.Schema):
    bundle_application_id = fields.String(required=True)
    fields_ = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True,
                          data_key="fields", attribute="fields")
    children = fields.List(fields.String(), required=True, metadata={"description": "the children updated"})


class BundleSubmitAnswerSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(BUNDLE_STATUSES))
    children = fields.List(fields.Nested(SubmitAnswerSchema), required=True)


# ---------------------------------------------------------------------------------------------- 免申即享


class ProactiveMatterSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    elements = fields.List(fields.String(), required=True,
                           metadata={"description": "the elements its conditions read (asked of the bureaus)"})


class ProactiveOfferSchema(ma.Schema):
    """What a citizen may opt in to."""

    matters = fields.List(fields.Nested(ProactiveMatterSchema), required=True)
    purpose = fields.String(required=True, metadata={"description": "the purpose text to consent to"})


class ProactiveOptInBodySchema(RequestSchema):
    matter_codes = fields.List(Code(), required=True, validate=Length(min=1, max=20), metadata={
        "description": "proactive matters (GET /api/v1/me/proactive/offer); any other → 422 `not_proactive`",
        "uniqueItems": True})
    elements = fields.List(fields.String(validate=Length(min=1, max=100)), required=True, validate=Length(max=200),
                           metadata={"description": "exactly the union of the chosen matters' `elements`"})
    purpose = fields.String(required=True, validate=Length(min=1, max=500),
                            metadata={"description": "exactly the offer's `purpose`"})


class ProactiveOptInSchema(ReceiptFieldsSchema):
    """A 免申即享 consent receipt."""

    matter_codes = fields.List(fields.String(), required=True)
    last_evaluated_at = fields.AwareDateTime(required=True, allow_none=True,
                                             metadata={"description": "when the data was last checked under it"})


class ProactiveOptInPageSchema(PageSchema):
    items = fields.List(fields.Nested(ProactiveOptInSchema), required=True)
