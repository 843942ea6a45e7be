"""The bureaus' connector forms: what a posted registration or edit form means, checked by the API's schemas.

A form becomes the body the API would be sent (POST /api/v1/connectors or PATCH /api/v1/connectors/{id}) and
is loaded by that endpoint's own schema, so every rule is the API's; what is left here is reading HTML
inputs: empty inputs are left out (the documented defaults apply, or nothing changes), the elements are
checkboxes, an optional mapping is typed one `element = path` a line, and numbers arrive as text. Errors are
shown next to their fields; marshmallow's built-in English messages (the API's own answer carries them in
`errors`) are put in Chinese for the page.
"""

from __future__ import annotations

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from app.connectors.schemas import ConnectorRegisterSchema, ConnectorWriteSchema
from app.console.forms import DECIMAL, FormInvalid, message, typed_number
from app.errors import AppError
from shared_data import elements

# The inputs of the form, in its order (each a field of the API's body).
TEXT_FIELDS = ("name", "base_url", "query_path", "health_path", "auth_type", "trust_level",
               "source_updated_path")
NUMBER_FIELDS = ("timeout_seconds", "max_response_bytes")

AUTH_LABELS = {"hmac": "HMAC 签名", "api_key": "API 密钥"}
TRUST_LABELS = {"A": "A 级(权威来源)", "B": "B 级", "C": "C 级", "D": "D 级"}
STATUS_LABELS = {"pending": "待审核", "active": "已启用", "disabled": "已停用"}
DOMAIN_LABELS = {
    "person": "人口", "social_insurance": "社会保险", "business": "市场主体", "housing_fund": "住房公积金",
    "birth": "出生", "vehicle": "机动车", "marriage": "婚姻", "property": "不动产", "exit_entry": "出入境",
    "tax": "税务", "civil_affairs": "民政", "health": "卫生健康",
}

def element_groups() -> list[tuple[str, list]]:
    """The data-element dictionary grouped by domain, for the form's checkboxes: [(label, [DataElement])]."""
    groups: dict[str, list] = {}
    for element in elements.ELEMENTS.values():
        groups.setdefault(element.name.split(".", 1)[0], []).append(element)
    return [(DOMAIN_LABELS.get(domain, domain), members) for domain, members in groups.items()]


def values_of(form: MultiDict) -> dict:
    """What the person typed, to show the form again (with its errors)."""
    return {**{name: form.get(name, "") for name in (*TEXT_FIELDS, *NUMBER_FIELDS, "mapping")},
            "elements": form.getlist("elements")}


def values_of_connector(row) -> dict:
    """An existing connector as the edit form shows it; the mapping only where it is not the default one."""
    custom = any(path != element for element, path in row.mapping.items())
    return {
        **{name: getattr(row, name) or "" for name in (*TEXT_FIELDS, *NUMBER_FIELDS)},
        "timeout_seconds": f"{row.timeout_seconds:g}",
        "elements": list(row.mapping),
        "mapping": "\n".join(f"{element} = {path}" for element, path in row.mapping.items()) if custom else "",
    }


def registration(form: MultiDict) -> dict:
    """The body of POST /api/v1/connectors the registration form stands for, as its schema loads it."""
    return _load(ConnectorRegisterSchema(), form)


def changes(form: MultiDict) -> dict:
    """The body of PATCH /api/v1/connectors/{id} the edit form stands for (empty inputs change nothing)."""
    return _load(ConnectorWriteSchema(), form)


def service_errors(error: AppError) -> dict[str, str]:
    """A service's 422 (`unsafe_url`, a field the full check refused) as errors next to the fields."""
    fields = (error.errors or {}).get("json") or {}
    if error.error == "unsafe_url":
        return {"base_url": error.message}
    found = {("elements" if name == "mapping" else name): message(messages)
             for name, messages in fields.items()}
    return found or {"form": error.message}


def _load(schema: ma.Schema, form: MultiDict) -> dict:
    body, errors = _body(form)
    try:
        loaded = schema.load(body)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"form": error.messages}
        for name, field_messages in messages.items():
            errors.setdefault("form" if name == "_schema" else name, message(field_messages))
        loaded = {}
    if errors:
        raise FormInvalid(errors)
    return loaded


def _body(form: MultiDict) -> tuple[dict, dict[str, str]]:
    """The JSON body the form stands for, and the errors of inputs that cannot be read at all."""
    body: dict = {}
    errors: dict[str, str] = {}
    for name in TEXT_FIELDS:
        text = (form.get(name) or "").strip()
        if text:
            body[name] = text
    for name in NUMBER_FIELDS:
        text = (form.get(name) or "").strip()
        if text:
            body[name] = typed_number(text, DECIMAL)
    chosen = [name for name in form.getlist("elements") if name]
    if chosen:
        body["elements"] = chosen
    mapping_text = (form.get("mapping") or "").strip()
    if mapping_text:
        mapping = {}
        for number, line in enumerate(mapping_text.splitlines(), start=1):
            if not line.strip():
                continue
            element, sep, path = line.partition("=")
            if not sep or not element.strip() or not path.strip():
                errors["mapping"] = f"第 {number} 行应为“数据元素 = 来源路径”"
                break
            mapping[element.strip()] = path.strip()
        if "mapping" not in errors:
            body["mapping"] = mapping
    return body, errors
