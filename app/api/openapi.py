"""How the OpenAPI document states our rules where apispec's defaults would misstate them."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Api


def object_sizes_as_properties(_converter, field, ret, **_kwargs) -> dict:
    """A `Length` on a `Dict` bounds its entries, but apispec writes it as `minLength`/`maxLength`, which
    JSON Schema applies to strings only (so clients and the fuzzer never saw the bound): make it
    `minProperties`/`maxProperties`."""
    if isinstance(field, ma.fields.Dict):
        for string_bound, object_bound in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
            if string_bound in ret:
                ret[object_bound] = ret.pop(string_bound)
    return {}


def init_app(api: Api) -> None:
    """Teach the app's marshmallow-to-OpenAPI converter our corrections (before any blueprint is registered)."""
    api.ma_plugin.converter.add_attribute_function(object_sizes_as_properties)
