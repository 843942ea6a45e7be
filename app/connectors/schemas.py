"""Schemas of the connector registry (bureaus and admins). Secrets appear only in the register/rotate answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range

from app.connectors.models import DEFAULTS, EVENT_ACTIONS, MAX_USAGE_DAYS, STATUSES
from app.web.jsontypes import JsonNumber, WholeNumber
from app.web.schemas import PRINTABLE_PATTERN, FullMatch, PageQuerySchema, PageSchema, RequestSchema, Text, element_name
from shared_data.connectors import (
    AUTH_TYPES,
    MAX_RESPONSE_BYTES,
    MAX_TIMEOUT_SECONDS,
    MIN_RESPONSE_BYTES,
    MIN_TIMEOUT_SECONDS,
    TRUST_LEVELS,
)

_printable = FullMatch(PRINTABLE_PATTERN, error="不能包含控制字符")


def _path(description: str, **kwargs) -> fields.String:
    return fields.String(validate=[Length(min=1, max=200), _printable], metadata={"description": description},
                         **kwargs)


def _base_url(**kwargs) -> fields.String:
    return fields.String(
        validate=[Length(min=1, max=2048), _printable],
        metadata={"description": "https://host[:port][/prefix] of the service; plain http and private "
                  "addresses only for origins the platform's configuration allows (the sandbox's own)",
                  "example": "https://data.ga.zhengzhou.gov.cn/api"},
        **kwargs,
    )


class ConnectorWriteSchema(RequestSchema):
    """The fields a bureau sets; see POST /connectors for the defaults."""

    name = Text(min_length=1, max_length=100, metadata={"description": "shown to people, in Chinese",
                                                         "example": "人口基础信息查询"})
    base_url = _base_url()
    elements = fields.List(
        element_name(), validate=Length(min=1, max=100),
        metadata={"description": "standard data element names provided; without `mapping`, each is read from "
                  "its own dotted name in the answer (e.g. person.name → {\"person\": {\"name\": …}})",
                  "example": ["person.name", "person.household_address"]},
    )
    mapping = fields.Dict(
        keys=element_name(), values=fields.String(validate=Length(min=1, max=200)),
        validate=Length(min=1, max=100),
        metadata={"description": "element → source path in the native answer (e.g. `data.hjdz`, `data.list[0].x`, "
                  "`data.zs[*].bdcqzh`); its keys are the elements provided"},
    )
    query_path = _path(f"the query endpoint (POST), default `{DEFAULTS['query_path']}`")
    health_path = _path(f"the health endpoint (GET), default `{DEFAULTS['health_path']}`")
    auth_type = fields.String(validate=OneOf(AUTH_TYPES),
                              metadata={"description": "`hmac` (default: signed requests) or `api_key`"})
    timeout_seconds = JsonNumber(
        validate=Range(min=MIN_TIMEOUT_SECONDS, max=MAX_TIMEOUT_SECONDS),
        metadata={"description": f"cap of one call, default {DEFAULTS['timeout_seconds']}"},
    )
    trust_level = fields.String(validate=OneOf(TRUST_LEVELS), metadata={"description": "default A (authority)"})
    source_updated_path = fields.String(
        allow_none=True, validate=[Length(min=1, max=200), _printable],
        metadata={"description": "where the record's last-updated time is; default `updated_at` with the "
                  "default mapping convention, none otherwise"},
    )
    max_response_bytes = WholeNumber(
        validate=Range(min=MIN_RESPONSE_BYTES, max=MAX_RESPONSE_BYTES),
        metadata={"description": f"answers above this are refused, default {DEFAULTS['max_response_bytes']}"},
    )

    @validates_schema
    def check_elements(self, data: dict, **_kwargs) -> None:
        names = data.get("elements")
        if names is not None and len(set(names)) != len(names):
            raise ValidationError("数据元素重复", "elements")
        if names is not None and "mapping" in data and set(names) != set(data["mapping"]):
            raise ValidationError("elements 须与 mapping 的数据元素一致", "elements")


class ConnectorRegisterSchema(ConnectorWriteSchema):
    """POST /connectors: at least `name`, `base_url` and `elements` (or a `mapping`)."""

    name = Text(required=True, min_length=1, max_length=100,
                metadata={"description": "shown to people, in Chinese", "example": "人口基础信息查询"})
    base_url = _base_url(required=True)

    @validates_schema
    def check_required(self, data: dict, **_kwargs) -> None:
        if "elements" not in data and "mapping" not in data:
            raise ValidationError("须列出提供的数据元素(elements)或映射(mapping)", "elements")


class ConnectorListQuerySchema(PageQuerySchema):
    status = fields.String(validate=OneOf(STATUSES))


class ConnectorSchema(ma.Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    bureau = fields.String(required=True, attribute="bureau_code", metadata={"description": "the bureau's code"})
    base_url = fields.String(required=True)
    query_path = fields.String(required=True)
    health_path = fields.String(required=True)
    auth_type = fields.String(required=True, validate=OneOf(AUTH_TYPES))
    timeout_seconds = fields.Float(required=True)
    trust_level = fields.String(required=True, validate=OneOf(TRUST_LEVELS))
    elements = fields.List(fields.String(), required=True)
    mapping = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    source_updated_path = fields.String(required=True, allow_none=True)
    max_response_bytes = fields.Integer(required=True)
    status = fields.String(required=True, validate=OneOf(STATUSES))
    version = fields.Integer(required=True, metadata={"description": "bumped by every change"})
    created_by = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    approved_by = fields.String(required=True, allow_none=True)
    approved_at = fields.AwareDateTime(required=True, allow_none=True)


class ConnectorWithSecretSchema(ConnectorSchema):
    secret = fields.String(
        required=True,
        metadata={"description": "the signing secret (HMAC key or API key): shown only in this answer; "
                  "configure it in the bureau's service now"},
    )


class ConnectorPageSchema(PageSchema):
    items = fields.List(fields.Nested(ConnectorSchema), required=True)


class ConnectorEventSchema(ma.Schema):
    id = fields.String(required=True)
    action = fields.String(required=True, validate=OneOf(EVENT_ACTIONS))
    actor = fields.String(required=True, metadata={"description": "`staff:<id>` or `seed`"})
    at = fields.AwareDateTime(required=True)
    changes = fields.Dict(required=True, metadata={"description": "{field: {from, to}}; never a secret"})


class ConnectorEventListSchema(ma.Schema):
    items = fields.List(fields.Nested(ConnectorEventSchema), required=True)


class HealthCheckSchema(ma.Schema):
    ok = fields.Boolean(required=True)
    latency_ms = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True,
                          metadata={"description": "e.g. connect_timeout, http_503, redirect_refused, unsafe_url"})


class UsageQuerySchema(ma.Schema):
    days = WholeNumber(load_default=30, validate=Range(min=1, max=MAX_USAGE_DAYS),
                          metadata={"description": f"the last N UTC days, today included (at most {MAX_USAGE_DAYS})"})


class UsageCountsSchema(ma.Schema):
    calls = fields.Integer(required=True)
    ok = fields.Integer(required=True)
    not_found = fields.Integer(required=True)
    errors = fields.Integer(required=True, metadata={"description": "failed or timed out"})
    timeouts = fields.Integer(required=True)
    p50_ms = fields.Integer(required=True, allow_none=True, metadata={"description": "null without calls"})
    p95_ms = fields.Integer(required=True, allow_none=True)


class UsageDaySchema(UsageCountsSchema):
    date = fields.Date(required=True)


class UsageSchema(ma.Schema):
    connector_id = fields.String(required=True)
    from_ = fields.Date(required=True, data_key="from", attribute="from")
    to = fields.Date(required=True)
    days = fields.List(fields.Nested(UsageDaySchema), required=True)
    total = fields.Nested(UsageCountsSchema, required=True)
