"""Schemas of the operators' statistics (GET /api/v1/stats/...)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import OneOf

from app.applications.models import APPLICATION_STATUSES, GRADES
from app.audit.schemas import TimeRangeSchema
from app.face.schemas import PROVIDER_PATTERN
from app.web.schemas import FullMatch


class FaceStatsQuerySchema(TimeRangeSchema):
    provider = fields.String(validate=FullMatch(PROVIDER_PATTERN, error="提供方名称无效"))


class FaceStatsItemSchema(ma.Schema):
    day = fields.String(required=True, metadata={"description": "calendar day in China Standard Time (UTC+8)",
                                                 "format": "date"})
    provider = fields.String(required=True)
    decisions = fields.Integer(required=True)
    passed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    pass_rate = fields.Float(required=True, allow_none=True, metadata={"description": "passed / decisions"})
    failure_reasons = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class FaceStatsSchema(ma.Schema):
    from_ = fields.AwareDateTime(required=True, data_key="from", attribute="from")
    to = fields.AwareDateTime(required=True)
    items = fields.List(fields.Nested(FaceStatsItemSchema), required=True)


class StatsQuerySchema(TimeRangeSchema):
    """`from` (inclusive) and `to` (exclusive), UTC when no offset is given."""


def _counts(description: str, keys=None) -> fields.Dict:
    return fields.Dict(keys=fields.String(**({"validate": OneOf(keys)} if keys else {})), values=fields.Integer(),
                       required=True, metadata={"description": description})


class ApplicationFiguresSchema(ma.Schema):
    total = fields.Integer(required=True, metadata={"description": "applications created in the period"})
    by_status = _counts("count per status (every status present)", APPLICATION_STATUSES)
    submitted = fields.Integer(required=True, metadata={"description": "of them, submitted at some point"})
    zero_material = fields.Integer(required=True, metadata={"description": "submitted with zero uploads"})
    zero_material_share = fields.Float(required=True, allow_none=True,
                                       metadata={"description": "zero_material / submitted"})
    decided = fields.Integer(required=True, metadata={"description": "approved, rejected or delivered"})
    average_processing_working_days = fields.Float(
        required=True, allow_none=True, metadata={"description": "submission to decision, in working days"})
    decided_late = fields.Integer(required=True, metadata={"description": "decided after the promised date"})
    overdue_undecided = fields.Integer(required=True,
                                       metadata={"description": "undecided and past the promised date today"})
    decided_first_time = fields.Integer(required=True, metadata={
        "description": "decided without a supplement request (补正)"})
    first_time_pass_rate = fields.Float(required=True, allow_none=True, metadata={
        "description": "一次性通过率: decided_first_time / decided"})
    first_time_pass_target = fields.Float(required=True, metadata={
        "description": "the target (FIRST_TIME_PASS_TARGET, the seed city's 95%)"})
    meets_target = fields.Boolean(required=True, allow_none=True, metadata={
        "description": "first_time_pass_rate ≥ the target; null when nothing was decided"})
    prechecked_eligible = fields.Integer(required=True, metadata={
        "description": "submitted with the pre-check (智能预审) eligible (the rest: unknown, for a reviewer)"})
    prechecked_eligible_share = fields.Float(required=True, allow_none=True, metadata={
        "description": "prechecked_eligible / submitted"})
    refused_for_conditions = fields.Integer(required=True, metadata={
        "description": "submissions refused because a condition was not met or could not be checked (by when)"})
    rejected_for_conditions = fields.Integer(required=True, metadata={
        "description": "rejected after a reviewer decided a condition not met"})


class MatterFiguresSchema(ApplicationFiguresSchema):
    matter_code = fields.String(required=True)
    matter_name = fields.String(required=True)
    department_code = fields.String(required=True, allow_none=True)
    promised_time_limit_days = fields.Integer(required=True, allow_none=True,
                                              metadata={"description": "the promised limit, in working days"})


class PeriodSchema(ma.Schema):
    from_ = fields.AwareDateTime(required=True, allow_none=True, data_key="from", attribute="from")
    to = fields.AwareDateTime(required=True, allow_none=True)
    as_of = fields.Date(required=True, metadata={"description": "the day (Beijing time) overdue is judged on"})


class DepartmentApplicationFiguresSchema(ApplicationFiguresSchema):
    department_code = fields.String(required=True)
    department_name = fields.String(required=True)


class ApplicationStatsSchema(PeriodSchema):
    items = fields.List(fields.Nested(MatterFiguresSchema), required=True)
    departments = fields.List(fields.Nested(DepartmentApplicationFiguresSchema), required=True,
                              metadata={"description": "the same figures per implementing department"})
    totals = fields.Nested(ApplicationFiguresSchema, required=True)


class FaceFiguresSchema(ma.Schema):
    decisions = fields.Integer(required=True)
    passed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    pass_rate = fields.Float(required=True, allow_none=True, metadata={"description": "passed / decisions"})
    failure_reasons = _counts("failures per reason")


class FaceProviderFiguresSchema(FaceFiguresSchema):
    provider = fields.String(required=True)


class FaceStatsOverallSchema(FaceFiguresSchema):
    from_ = fields.AwareDateTime(required=True, data_key="from", attribute="from")
    to = fields.AwareDateTime(required=True)
    providers = fields.List(fields.Nested(FaceProviderFiguresSchema), required=True)
    items = fields.List(fields.Nested(FaceStatsItemSchema), required=True,
                        metadata={"description": "per provider and day (China Standard Time)"})


class RectificationCountsSchema(ma.Schema):
    open = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    unfixable = fields.Integer(required=True)
    overdue = fields.Integer(required=True, metadata={"description": "open and past the due date today"})


class EvaluationFiguresSchema(ma.Schema):
    evaluations = fields.Integer(required=True)
    average_grade = fields.Float(required=True, allow_none=True)
    grades = _counts("count per grade, \"1\" to \"5\"", [str(grade) for grade in GRADES])
    poor = fields.Integer(required=True, metadata={"description": "grades 1 and 2"})
    poor_share = fields.Float(required=True, allow_none=True, metadata={"description": "poor / evaluations"})
    rectifications = fields.Nested(RectificationCountsSchema, required=True,
                                   metadata={"description": "opened in the period, by status now"})


class DepartmentFiguresSchema(EvaluationFiguresSchema):
    department_code = fields.String(required=True)
    department_name = fields.String(required=True)


class EvaluationStatsSchema(PeriodSchema):
    items = fields.List(fields.Nested(DepartmentFiguresSchema), required=True)
    totals = fields.Nested(EvaluationFiguresSchema, required=True)
