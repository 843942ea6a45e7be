"""How the OpenAPI document states our rules where apispec's defaults would misstate or omit them.

The document is the contract clients are built against and the fuzzer generates from, so every rule the
server enforces on a request's shape is in it: object sizes, the names an object's keys may take, the
bounds of every number (the body policy's, app/bodies.py, where a field has none of its own), and the parts
that depend on this deployment's configuration (the consent text's version, the face adapter's evidence).
"""

from __future__ import annotations

import copy

import marshmallow as ma
from flask import Flask
from flask_smorest import Api

from app.bodies import LARGEST_NUMBER
from app.errors import DOCUMENT
from app.web.schemas import ENUM_FROM_CONFIG, FACE_EVIDENCE


def object_sizes_as_properties(_converter, field, ret, **_kwargs) -> dict:
    """A `Length` on a `Dict` bounds its entries, but apispec writes it as `minLength`/`maxLength`, which
    JSON Schema applies to strings only (so clients and the fuzzer never saw the bound): make it
    `minProperties`/`maxProperties`."""
    if isinstance(field, ma.fields.Dict):
        for string_bound, object_bound in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
            if string_bound in ret:
                ret[object_bound] = ret.pop(string_bound)
    return {}


def key_rules_as_property_names(converter, field, ret, **_kwargs) -> dict:
    """apispec documents a `Dict`'s values but drops the rules on its keys: state them as `propertyNames`."""
    if isinstance(field, ma.fields.Dict) and field.key_field is not None:
        keys = converter.field2property(field.key_field)
        rules = {name: keys[name] for name in ("pattern", "minLength", "maxLength", "enum") if name in keys}
        if rules:
            ret["propertyNames"] = rules
    return {}


def numbers_within_policy(_converter, field, ret, **_kwargs) -> dict:
    """A number field without bounds of its own still only takes what the body policy lets through."""
    if isinstance(field, ma.fields.Number) and ret.get("type") in ("integer", "number", ["integer", "null"],
                                                                    ["number", "null"]):
        if "minimum" not in ret and "exclusiveMinimum" not in ret:
            ret["minimum"] = -LARGEST_NUMBER
        if "maximum" not in ret and "exclusiveMaximum" not in ret:
            ret["maximum"] = LARGEST_NUMBER
    return {}


def init_app(api: Api) -> None:
    """Teach the app's marshmallow-to-OpenAPI converter our corrections (before any blueprint is registered)."""
    for function in (object_sizes_as_properties, key_rules_as_property_names, numbers_within_policy):
        api.ma_plugin.converter.add_attribute_function(function)


def describe_configuration(api: Api, app: Flask, *, face_evidence: dict) -> None:
    """State the rules that follow from this deployment's configuration (after the adapters are built):
    fields marked ENUM_FROM_CONFIG take exactly their config value, and FACE_EVIDENCE fields the configured
    face adapter's evidence (`face_evidence`, its JSON Schema)."""

    def walk(node):
        if isinstance(node, dict):
            key = node.pop(ENUM_FROM_CONFIG, None)
            if key is not None:
                node["enum"] = [app.config[key]]
            if node.pop(FACE_EVIDENCE, None):
                description = node.get("description")
                node.clear()
                node.update(face_evidence)
                if description:
                    node["description"] = description
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    # Each schema is copied before it is changed: the dicts apispec builds share the fields' metadata, so
    # changing them in place would leave the markers gone (and the first app's values in) for the next app.
    schemas = api.spec.components.schemas
    for name in list(schemas):
        schemas[name] = copy.deepcopy(schemas[name])
    walk(schemas)
    # Served per app (errors.Api): `api` is one object, whose spec is the latest app's.
    app.extensions[DOCUMENT] = api.spec


def operation_ref(method: str, path: str) -> str:
    """The JSON pointer to an operation of this document: `#/paths/~1api~1v1~1x~1%7Bid%7D/get`."""
    escaped = path.replace("~", "~0").replace("/", "~1").replace("{", "%7B").replace("}", "%7D")
    return f"#/paths/{escaped}/{method.lower()}"


def links(status: int, targets: dict[str, tuple[str, str]], *, parameters: dict[str, str] | None = None,
          bodies: dict[str, dict] | None = None) -> dict:
    """A `blp.doc` fragment: OpenAPI links from this operation's `status` answer to the operations that
    continue from it (name → (method, path)), with the runtime expressions that fill their path parameters
    and, per target name, their request bodies. Clients read them as "what to call next"; schemathesis'
    stateful phase follows them through the application journey."""
    made = {}
    for name, (method, path) in targets.items():
        link = {"operationRef": operation_ref(method, path)}
        wanted = {key: value for key, value in (parameters or {}).items() if f"{{{key}}}" in path}
        if wanted:
            link["parameters"] = wanted
        if bodies and name in bodies:
            link["requestBody"] = bodies[name]
            # OpenAPI means a link's requestBody as the whole body; schemathesis merges it into a generated
            # one unless told (a consent must carry exactly the draft's elements and purpose).
            link["x-schemathesis"] = {"merge_body": False}
        made[name] = link
    return {"responses": {status: {"links": made}}}
