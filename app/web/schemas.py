"""Fields and schemas several API areas share: UTC times in queries, pages, data element references."""

from __future__ import annotations

import re
from datetime import UTC

import marshmallow as ma
from marshmallow import ValidationError, fields
from marshmallow.validate import Length, OneOf, Range, Regexp

from app.web.jsontypes import WholeNumber
from shared_data import elements

# Matter, material and bundle codes: they appear in URLs, so letters, digits, dot, dash and underscore.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CODE_RE = re.compile(CODE_PATTERN)
PHONE_PATTERN = r"^[0-9][0-9-]{2,19}$"
MAX_PAGE = 10_000
MAX_PER_PAGE = 100
# Control characters and lone surrogates: no citizen types them, and PostgreSQL refuses NUL outright.
# Written as a pattern so the OpenAPI document states the rule too.
# Control characters are refused here; NUL and lone surrogates already by the body policy (app/bodies.py), and
# they cannot arrive percent-encoded in a URL. (A surrogate range in the pattern would also make schemathesis
# ignore the whole pattern.)
PRINTABLE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# No control character and no white space, spelled out: what Python's `\s` matches differs from JavaScript's.
KEYWORD_PATTERN = r"^[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+$"


class FullMatch(Regexp):
    """A Regexp validator that must match the whole value (Regexp's `$` would allow a trailing newline)."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


printable = FullMatch(PRINTABLE_PATTERN, error="不能包含控制字符")


class Text(fields.String):
    """Printable text of bounded length."""

    def __init__(self, *, max_length: int, min_length: int = 0, **kwargs):
        super().__init__(validate=[Length(min=min_length, max=max_length), printable], **kwargs)


class Code(fields.String):
    """A matter, material or bundle code."""

    def __init__(self, **kwargs):
        super().__init__(
            validate=FullMatch(CODE_PATTERN, error="编码只能包含字母、数字、点、横线和下划线(最长 64 位)"),
            **kwargs,
        )



class RequestSchema(ma.Schema):
    """A request body: unknown fields are refused (marshmallow's default), with Chinese messages."""

    error_messages = {"type": "请求体应为 JSON 对象", "unknown": "不支持的字段"}


def text(description: str, *, example: str | None = None, **kwargs) -> ma.fields.String:
    """A required string field of a request, with Chinese messages."""
    metadata = {"description": description} | ({"example": example} if example else {})
    return ma.fields.String(
        required=True,
        error_messages={"required": "缺少必填字段", "null": "不能为空", "invalid": "应为字符串"},
        metadata=metadata,
        **kwargs,
    )


class PageQuerySchema(ma.Schema):
    page = WholeNumber(load_default=1, validate=Range(min=1, max=MAX_PAGE))
    per_page = WholeNumber(
        load_default=20,
        validate=Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"at most {MAX_PER_PAGE}"},
    )



# Opaque ids in paths and queries: what we issue (32 hex characters, or a sandbox connector's name).
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
FIELD_STATUSES = ("ok", "not_found", "failed", "timeout", "skipped")

# Field metadata for rules that depend on the deployment (app/web/openapi.py states them once the app is
# configured): the name of the config value that is a field's only accepted value; a face adapter's evidence.
ENUM_FROM_CONFIG = "x-enum-from-config"
FACE_EVIDENCE = "x-face-evidence"


# The years a query time may name, as written (before conversion to UTC, so the rule is one the document can
# state as a pattern); nothing this service keeps is older, and conversion to UTC never overflows.
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000
YEAR_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3}|9000)-"


class UtcDateTime(fields.DateTime):
    """An ISO 8601 time as an aware UTC datetime; a time without an offset is taken as UTC."""

    def __init__(self, *args, **kwargs):
        kwargs["metadata"] = {"pattern": YEAR_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
            raise ValidationError(f"时间须在 {EARLIEST_YEAR} 年至 {LATEST_YEAR} 年之间")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


def element_name(**kwargs) -> fields.String:
    """A standard data element name (GET /api/v1/data-elements)."""

    def known(name: str) -> None:
        if not elements.exists(name):
            raise ValidationError(f"未知的数据元素:{name}")

    # The dictionary is fixed at build time, so the document can list it (and clients choose from it).
    metadata = {"enum": sorted(elements.ELEMENTS), **kwargs.pop("metadata", {})}
    return fields.String(validate=known, metadata=metadata, **kwargs)


def opaque_id(description: str, **kwargs) -> fields.String:
    return fields.String(validate=FullMatch(ID_PATTERN, error="编号格式无效"),
                         metadata={"description": description}, **kwargs)


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
