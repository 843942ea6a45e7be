"""Fields and schemas several API areas share: UTC times in queries, pages, data element references."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma
from marshmallow import ValidationError, fields
from marshmallow.validate import Length, OneOf, Range

from app.schemas.catalogue import MAX_PAGE, MAX_PER_PAGE, FullMatch
from shared_data import elements

# Opaque ids in paths and queries: what we issue (32 hex characters, or a sandbox connector's name).
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
FIELD_STATUSES = ("ok", "not_found", "failed", "timeout", "skipped")


class UtcDateTime(fields.DateTime):
    """An ISO 8601 time as an aware UTC datetime; a time without an offset is taken as UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("时间超出范围") from None
        if not 1970 <= parsed.year <= 9000:
            raise ValidationError("时间超出范围")
        return parsed


def element_name(**kwargs) -> fields.String:
    """A standard data element name (GET /api/v1/data-elements)."""

    def known(name: str) -> None:
        if not elements.exists(name):
            raise ValidationError(f"未知的数据元素:{name}")

    return fields.String(validate=known, **kwargs)


def opaque_id(description: str, **kwargs) -> fields.String:
    return fields.String(validate=FullMatch(ID_PATTERN, error="编号格式无效"),
                         metadata={"description": description}, **kwargs)


class PageQuerySchema(ma.Schema):
    page = fields.Integer(load_default=1, validate=Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=Range(min=1, max=MAX_PER_PAGE),
                              metadata={"description": f"at most {MAX_PER_PAGE}"})


class PageSchema(ma.Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class ElementLabelSchema(ma.Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)


class FieldSourceSchema(ma.Schema):
    """Where a prefilled value came from (BRIEF §4.1)."""

    connector = fields.String(required=True)
    bureau = fields.String(required=True)
    trust_level = fields.String(required=True, validate=OneOf(("A", "B", "C", "D")))
    source_updated_at = fields.String(
        required=True, allow_none=True,
        metadata={"format": "date-time", "description": "the bureau's last change of the record, if it says"},
    )
    fetched_at = fields.String(
        required=True, allow_none=True, metadata={"format": "date-time", "description": "null when no answer"}
    )


class PrefillFieldSchema(ma.Schema):
    """One prefilled element: its value, status, lock and provenance."""

    value = fields.Raw(required=True, allow_none=True,
                       metadata={"description": "JSON value of the element's type; null unless status is ok"})
    status = fields.String(required=True, validate=OneOf(FIELD_STATUSES))
    locked = fields.Boolean(required=True,
                            metadata={"description": "a government-verified value the form cannot change"})
    source = fields.Nested(FieldSourceSchema, required=True, allow_none=True,
                           metadata={"description": "null when skipped (no active connector provides it)"})


def limited_text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=Length(min=1, max=max_length), **kwargs)
