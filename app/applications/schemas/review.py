"""Schemas of the reviewers' endpoints and of agents' authorisations (帮办代办)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import Length, OneOf

from app.applications.models import APPLICATION_STATUSES
from app.web.jsontypes import JsonBoolean
from app.web.schemas import Code, PageQuerySchema, PageSchema, RequestSchema, UtcDateTime

AUTHORISATION_STATUSES = ("active", "expired", "revoked")


class InboxQuerySchema(PageQuerySchema):
    status = fields.String(validate=OneOf(APPLICATION_STATUSES[1:]),
                           metadata={"description": "only applications in this status"})
    overdue = fields.Boolean(metadata={"description": "true: past the promised deadline and undecided"})
    matter_code = Code()
    submitted_from = fields.Date(metadata={"description": "submitted on or after this day (Beijing time)"})
    submitted_to = fields.Date(metadata={"description": "submitted on or before this day (Beijing time)"})

    @ma.validates_schema
    def days_in_order(self, data, **kwargs):
        if data.get("submitted_from") and data.get("submitted_to") and data["submitted_from"] > data["submitted_to"]:
            raise ma.ValidationError("起始日期不能晚于截止日期", "submitted_to")


class InboxItemSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(APPLICATION_STATUSES))
    status_label = fields.String(required=True)
    matter_code = fields.String(required=True)
    matter_name = fields.String(required=True)
    applicant_id_number_masked = fields.String(required=True, allow_none=True)
    acting_user = fields.String(required=True, validate=OneOf(("citizen", "agent")), attribute="acting_user_kind")
    zero_material = fields.Boolean(required=True, allow_none=True)
    submitted_at = fields.AwareDateTime(required=True)
    promised_due_on = fields.Date(required=True, allow_none=True)
    legal_due_on = fields.Date(required=True, allow_none=True)
    overdue = fields.Boolean(required=True)


class InboxPageSchema(PageSchema):
    items = fields.List(fields.Nested(InboxItemSchema), required=True)


class SupplementBodySchema(RequestSchema):
    items = fields.List(fields.String(validate=Length(min=1, max=500)), required=True,
                        validate=Length(min=1, max=50),
                        metadata={"description": "everything the applicant must fix, listed at once (一次性告知)"})


class DecisionResultSchema(RequestSchema):
    name = fields.String(validate=Length(min=1, max=200),
                         metadata={"description": "default: the matter's result name"})
    number = fields.String(validate=Length(min=1, max=100), metadata={"description": "default: generated"})
    note = fields.String(validate=Length(max=1000))


class ApproveBodySchema(RequestSchema):
    result = fields.Nested(DecisionResultSchema)


class RejectBodySchema(RequestSchema):
    reason = fields.String(required=True, validate=Length(min=1, max=1000),
                           metadata={"description": "told to the applicant (法定理由)"})


class ConditionDecisionBodySchema(RequestSchema):
    met = JsonBoolean(required=True, metadata={"description": "whether the applicant meets the condition"})
    note = fields.String(validate=Length(min=1, max=1000), metadata={
        "description": "what the decision rests on (e.g. the document seen); kept encrypted, shown to the "
                       "applicant and the department"})


class RecipientSchema(RequestSchema):
    name = fields.String(required=True, validate=Length(min=1, max=50))
    phone = fields.String(required=True, validate=Length(min=5, max=20))
    address = fields.String(required=True, validate=Length(min=5, max=300))


class DeliverBodySchema(RequestSchema):
    method = fields.String(required=True, validate=OneOf(("e_certificate", "mail")))
    certificate_number = fields.String(validate=Length(min=1, max=100),
                                       metadata={"description": "e_certificate: default the result's number"})
    recipient = fields.Nested(RecipientSchema, metadata={"description": "mail: required"})
    carrier = fields.String(validate=Length(min=1, max=50), metadata={"description": "mail: default EMS"})
    tracking_number = fields.String(validate=Length(min=1, max=50), metadata={"description": "mail: required"})


class PromiseBreachBodySchema(RequestSchema):
    material_code = Code(required=True)
    reason = fields.String(required=True, validate=Length(min=1, max=1000))


class PromiseBreachSchema(ma.Schema):
    id = fields.String(required=True)
    application_id = fields.String(required=True)
    material_code = fields.String(required=True)
    reason = fields.String(required=True)
    recorded_at = fields.AwareDateTime(required=True)


class AuthorisationBodySchema(RequestSchema):
    agent = fields.String(required=True, validate=Length(min=1, max=64),
                          metadata={"description": "the agent's staff username", "example": "agent"})
    matter_code = Code(required=True)
    valid_until = UtcDateTime(required=True, metadata={"description": "at most AGENT_AUTHORISATION_MAX_DAYS ahead"})


class AgentRefSchema(ma.Schema):
    id = fields.String(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)


class PrincipalSchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "pass as `on_behalf_of` when applying"})
    id_number_masked = fields.String(required=True, allow_none=True)


class AuthorisationSchema(ma.Schema):
    id = fields.String(required=True)
    agent = fields.Nested(AgentRefSchema, required=True)
    matter_code = fields.String(required=True)
    valid_from = fields.AwareDateTime(required=True)
    valid_until = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(required=True, allow_none=True)
    status = fields.String(required=True, validate=OneOf(AUTHORISATION_STATUSES))
    created_at = fields.AwareDateTime(required=True)


class AuthorisationPageSchema(PageSchema):
    items = fields.List(fields.Nested(AuthorisationSchema), required=True)


class GivenAuthorisationSchema(AuthorisationSchema):
    """An authorisation as its agent sees it: with whom it is from."""

    citizen = fields.Nested(PrincipalSchema, required=True, metadata={"description": "who authorised the agent"})


class GivenAuthorisationPageSchema(PageSchema):
    items = fields.List(fields.Nested(GivenAuthorisationSchema), required=True)
