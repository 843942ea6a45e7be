"""Schemas of applications (drafts, consent, prefill) and of the citizen's consents and data-access view."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import Length, OneOf

from app.models.matter import EVIDENCE_TYPES
from app.schemas.auth import RequestSchema
from app.schemas.catalogue import Code
from app.schemas.common import (
    ElementLabelSchema,
    PageQuerySchema,
    PageSchema,
    PrefillFieldSchema,
    opaque_id,
)

MATERIAL_STATUSES = ("satisfied", "available", "needs_upload", "in_person", "unavailable", "awaiting_prefill")
APPLICATION_STATUSES = ("draft",)
RECEIPT_STATUSES = ("active", "withdrawn", "superseded")


class ApplicationCreateSchema(RequestSchema):
    matter_code = Code(required=True, metadata={"description": "the matter applied for", "example": "GJJ-GG-001"})


class ConsentBodySchema(RequestSchema):
    elements = fields.List(
        fields.String(validate=Length(min=1, max=100)), required=True, validate=Length(max=200),
        metadata={"description": "exactly `consent_required.elements` of the draft (any order)"},
    )
    purpose = fields.String(required=True, validate=Length(min=1, max=500),
                            metadata={"description": "exactly `consent_required.purpose` of the draft"})


class MaterialStatusSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    required = fields.Boolean(required=True)
    status = fields.String(
        required=True, validate=OneOf(MATERIAL_STATUSES),
        metadata={"description": "satisfied (by shared data); available (face, e-licence or promise, to be "
                  "completed later); needs_upload; in_person; unavailable (shared data only, not obtained); "
                  "awaiting_prefill (before the first prefill)"},
    )
    via = fields.String(required=True, allow_none=True, validate=OneOf(EVIDENCE_TYPES),
                        metadata={"description": "the evidence type that satisfies or will satisfy it"})


class ConsentRequiredSchema(ma.Schema):
    elements = fields.List(fields.String(), required=True,
                           metadata={"description": "the shared-data elements the matter's materials need"})
    purpose = fields.String(required=True, metadata={"description": "the purpose text, naming the matter"})


class ApplicationSummarySchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(APPLICATION_STATUSES))
    matter_code = fields.String(required=True)
    matter_name = fields.String(required=True)
    matter_version = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class ApplicationPageSchema(PageSchema):
    items = fields.List(fields.Nested(ApplicationSummarySchema), required=True)


class DraftSchema(ApplicationSummarySchema):
    """The answer to creating a draft."""

    materials = fields.List(fields.Nested(MaterialStatusSchema), required=True)
    consent_required = fields.Nested(ConsentRequiredSchema, required=True)


class ConsentReceiptSchema(ma.Schema):
    id = fields.String(required=True)
    application_id = fields.String(required=True)
    matter_code = fields.String(required=True)
    elements = fields.List(fields.String(), required=True)
    purpose = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(RECEIPT_STATUSES))
    granted_at = fields.AwareDateTime(required=True)
    withdrawn_at = fields.AwareDateTime(required=True, allow_none=True)
    superseded_at = fields.AwareDateTime(required=True, allow_none=True)
    version = fields.Integer(required=True, metadata={"description": "the receipt format's version"})


class ConsentPageSchema(PageSchema):
    items = fields.List(fields.Nested(ConsentReceiptSchema), required=True)


class PrefillResultSchema(ma.Schema):
    """Per-field values with provenance, per-material status, and whether no upload is needed."""

    fields_ = fields.Dict(
        keys=fields.String(), values=fields.Nested(PrefillFieldSchema), required=True,
        data_key="fields", attribute="fields", metadata={"description": "element → {value, status, locked, source}"},
    )
    materials = fields.List(fields.Nested(MaterialStatusSchema), required=True)
    zero_material = fields.Boolean(required=True,
                                   metadata={"description": "no required material needs an upload or a visit"})
    prefilled_at = fields.AwareDateTime(required=True)


class PrefillAnswerSchema(PrefillResultSchema):
    application_id = fields.String(required=True)


class TimelineEntrySchema(ma.Schema):
    at = fields.AwareDateTime(required=True)
    kind = fields.String(required=True, metadata={
        "description": "created, consent_granted, consent_withdrawn, prefilled, prefill_blocked"})
    actor = fields.String(required=True, metadata={"description": "citizen or agent"})
    detail = fields.Dict(required=True)


class ApplicationDetailSchema(DraftSchema):
    consent = fields.Nested(ConsentReceiptSchema, required=True, allow_none=True,
                            metadata={"description": "the active receipt covering today's consent_required"})
    prefill = fields.Nested(PrefillResultSchema, required=True, allow_none=True,
                            metadata={"description": "the last prefill; null before the first"})
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)


class MyDataAccessQuerySchema(PageQuerySchema):
    application_id = opaque_id("only the accesses for this application of yours")


class DataAccessViewSchema(ma.Schema):
    """One access to the citizen's data, as the citizen sees it."""

    id = fields.String(required=True)
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
    acting_user = fields.String(required=True, validate=OneOf(("citizen", "agent")))
    outcome = fields.String(required=True, validate=OneOf(("ok", "not_found", "failed", "timeout")))


class DataAccessViewPageSchema(PageSchema):
    items = fields.List(fields.Nested(DataAccessViewSchema), required=True)
