"""Schemas of 好差评 (evaluations) and the departments' rectifications (整改)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import Length, OneOf, Range

from app.applications.models import GRADE_LABELS, RECTIFICATION_STATUSES
from app.web.jsontypes import WholeNumber
from app.web.schemas import PageQuerySchema, PageSchema, RequestSchema

GRADE_SCALE = ", ".join(f"{grade} {label}" for grade, label in sorted(GRADE_LABELS.items(), reverse=True))


def _text(description: str, *, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=Length(min=1, max=1000), metadata={"description": description})


# ------------------------------------------------------------------------------------------ evaluations


class EvaluationBodySchema(RequestSchema):
    grade = WholeNumber(required=True, validate=Range(min=1, max=5),
                           metadata={"description": f"{GRADE_SCALE}; 1 and 2 open a rectification"})
    comment = fields.String(allow_none=True, validate=Length(max=500),
                            metadata={"description": "optional; shown only to you and the department"})


class RectificationRefSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(RECTIFICATION_STATUSES))
    due_on = fields.Date(required=True)


class EvaluationSchema(ma.Schema):
    id = fields.String(required=True)
    application_id = fields.String(required=True)
    grade = fields.Integer(required=True)
    grade_label = fields.String(required=True)
    comment = fields.String(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    rectification = fields.Nested(RectificationRefSchema, required=True, allow_none=True,
                                  metadata={"description": "opened by a grade of 1 or 2; null otherwise"})


# ------------------------------------------------------------------------------------------ rectifications


class RectificationQuerySchema(PageQuerySchema):
    status = fields.String(validate=OneOf(RECTIFICATION_STATUSES))
    overdue = fields.Boolean(metadata={"description": "true: open and past its due date"})


class RectificationSchema(ma.Schema):
    id = fields.String(required=True)
    application_id = fields.String(required=True)
    matter_code = fields.String(required=True)
    matter_name = fields.String(required=True)
    evaluation_id = fields.String(required=True)
    grade = fields.Integer(required=True)
    grade_label = fields.String(required=True)
    comment = fields.String(required=True, allow_none=True)
    evaluated_at = fields.AwareDateTime(required=True)
    status = fields.String(required=True, validate=OneOf(RECTIFICATION_STATUSES))
    status_label = fields.String(required=True)
    due_on = fields.Date(required=True, metadata={"description": "RECTIFICATION_WORKING_DAYS working days after "
                                                                 "the evaluation"})
    overdue = fields.Boolean(required=True)
    resolution = fields.String(required=True, allow_none=True,
                               metadata={"description": "what was changed, or why it cannot be"})
    resolved_by = fields.String(required=True, allow_none=True)
    resolved_at = fields.AwareDateTime(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class RectificationPageSchema(PageSchema):
    items = fields.List(fields.Nested(RectificationSchema), required=True)


class ResolveBodySchema(RequestSchema):
    resolution = _text("what the department changed")


class UnfixableBodySchema(RequestSchema):
    reason = _text("why the complaint cannot be rectified")
