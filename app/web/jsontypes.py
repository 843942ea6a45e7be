"""Numbers and booleans as JSON means them, for request fields.

marshmallow's `Integer` truncates 1.5 to 1 and takes "5" in a JSON body; with `strict=True` it refuses 1.0,
which JSON (and JSON Schema's `integer`) counts as an integer. `WholeNumber` takes a JSON integer or an
integral float (1.0, 2e0), and decimal digits only where every value is text (a query string, a form); it
refuses 1.5, booleans and text in a JSON body, so the server accepts exactly what the OpenAPI document's
`type: integer` says. (Where a value came from, PolicyParser puts in marshmallow's Context.) `JsonNumber` and
`JsonBoolean` likewise take only a JSON number or a JSON true/false in a body (marshmallow would take `true` as
1.0 and 1, "yes" or "true" as true). Query strings keep marshmallow's own fields, which parse text.
"""

from __future__ import annotations

import re

from marshmallow import fields
from marshmallow.experimental.context import Context

_DIGITS = re.compile(r"[+-]?[0-9]{1,18}")


def from_json_body() -> bool:
    """Whether the value being loaded came from a JSON body (PolicyParser says so; a direct load is not)."""
    return Context.get(default={}).get("location") == "json"


class WholeNumber(fields.Integer):
    default_error_messages = {"invalid": "应为整数"}

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        if isinstance(value, str) and (from_json_body() or not _DIGITS.fullmatch(value)):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class JsonNumber(fields.Float):
    default_error_messages = {"invalid": "应为数字"}

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class JsonBoolean(fields.Boolean):
    """A JSON true or false only: consent (or any flag) is never inferred from 1, "yes" or "true"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value
