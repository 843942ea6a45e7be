"""The reviewers' forms: what a posted review form (or the inbox's filters) means, checked by the API's schemas.

Each form becomes the body (or query) of the API endpoint it stands for — `POST /api/v1/review/applications/
{id}/request-supplement`, `/approve`, `/reject`, `/deliver`, `/promise-breach`, `GET /api/v1/review/
applications`, the rectifications' list, `/resolve` and `/unfixable` — and is loaded by that endpoint's own
schema, so every rule is the API's. What is left here is reading HTML inputs: empty inputs are left out (the
API's defaults apply), nested fields are named with dots (`result.name`, `recipient.phone`), and the
supplement's items are typed one a line, so everything the applicant must fix is listed at once (一次性告知).
Errors come back keyed by the input's name, in Chinese (forms.message), to be shown next to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import marshmallow as ma

from app.applications.schemas.evaluations import RectificationQuerySchema, ResolveBodySchema, UnfixableBodySchema
from app.applications.schemas.review import (
    ApproveBodySchema,
    DeliverBodySchema,
    InboxQuerySchema,
    PromiseBreachBodySchema,
    RejectBodySchema,
    SupplementBodySchema,
)
from app.console.forms import FormInvalid, field_text, message
from app.errors import AppError

# The inputs of each form, by the dotted names of the body's fields.
APPROVE_FIELDS = ("result.name", "result.number", "result.note")
REJECT_FIELDS = ("reason",)
MAIL_FIELDS = ("recipient.name", "recipient.phone", "recipient.address", "carrier", "tracking_number")
CERTIFICATE_FIELDS = ("certificate_number",)
BREACH_FIELDS = ("material_code", "reason")
INBOX_FILTERS = ("status", "overdue", "matter_code", "submitted_from", "submitted_to", "per_page")
RECTIFICATION_FILTERS = ("status", "overdue", "per_page")
PAGE_SIZES = (20, 50, 100)



def _body(form: Mapping, names: Iterable[str]) -> dict:
    """The JSON body the inputs `names` stand for: `a.b` becomes {"a": {"b": …}}; empty inputs are left out."""
    body: dict = {}
    for name in names:
        value = field_text(form, name)
        if value:
            *parents, leaf = name.split(".")
            node = body
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
    return body


def _flat(messages, prefix: str = "") -> dict[str, str]:
    """marshmallow's (nested) messages as {dotted input name: one line of Chinese}; a list's item errors (keyed
    by index) stay with the list's input."""
    if not isinstance(messages, dict):
        return {prefix or "form": message(messages)}
    found: dict[str, str] = {}
    for key, value in messages.items():
        if isinstance(key, int):
            found[prefix] = "；".join(filter(None, (found.get(prefix), message(value))))
            continue
        name = "form" if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and not all(isinstance(inner, int) for inner in value):
            found.update(_flat(value, name))
        else:
            found[name] = message(value)
    return found


def _load(schema: ma.Schema, body: dict) -> dict:
    try:
        return schema.load(body)
    except ma.ValidationError as error:
        raise FormInvalid(_flat(error.messages)) from None


def service_errors(error: AppError) -> dict[str, str]:
    """A service's 422 (`validation_failed` with the fields it names) as errors next to those inputs, or the
    message for the whole form."""
    fields = (error.errors or {}).get("json") or {}
    return _flat(fields) if fields else {"form": error.message}


# ------------------------------------------------------------------------------------------ the actions


def supplement(form: Mapping) -> list[str]:
    """The items of a supplement request (补正), one a line, as `SupplementBodySchema` loads them."""
    items = [line.strip() for line in (form.get("items") or "").splitlines() if line.strip()]
    return _load(SupplementBodySchema(), {"items": items})["items"]


def approve(form: Mapping) -> dict | None:
    """The result of an approval (办结): name, number and note, each optional (the API's defaults apply)."""
    return _load(ApproveBodySchema(), _body(form, APPROVE_FIELDS)).get("result")


def reject(form: Mapping) -> str:
    """The reason of a rejection (不予受理 / 不予许可), told to the applicant."""
    return _load(RejectBodySchema(), _body(form, REJECT_FIELDS))["reason"]


def deliver(form: Mapping) -> dict:
    """The delivery (送达): the method chosen, with only its own inputs (an e-certificate's number, or the
    mail's recipient, carrier and tracking number)."""
    method = field_text(form, "method")
    names = MAIL_FIELDS if method == "mail" else CERTIFICATE_FIELDS if method == "e_certificate" else ()
    return _load(DeliverBodySchema(), {**({"method": method} if method else {}), **_body(form, names)})


def promise_breach(form: Mapping) -> tuple[str, str]:
    """Which promised material (告知承诺) was found untrue, and why."""
    body = _load(PromiseBreachBodySchema(), _body(form, BREACH_FIELDS))
    return body["material_code"], body["reason"]


def resolve(form: Mapping) -> str:
    """What the department changed (整改完成)."""
    return _load(ResolveBodySchema(), _body(form, ("resolution",)))["resolution"]


def unfixable(form: Mapping) -> str:
    """Why the complaint cannot be rectified (无法整改)."""
    return _load(UnfixableBodySchema(), _body(form, ("reason",)))["reason"]


# ------------------------------------------------------------------------------------------ the lists


def _query(schema: ma.Schema, args: Mapping, names: Iterable[str]) -> tuple[dict, dict[str, str]]:
    """The query the list's filters stand for, as the API's query schema loads it, and the errors of its
    inputs (the list is then shown unfiltered by the refused ones)."""
    query = {name: field_text(args, name) for name in (*names, "page")}
    query = {name: value for name, value in query.items() if value}
    try:
        return schema.load(query), {}
    except ma.ValidationError as error:
        errors = _flat(error.messages)
        kept = {name: value for name, value in query.items() if name not in errors}
        return schema.load(kept), errors


def inbox(args: Mapping) -> tuple[dict, dict[str, str]]:
    """The inbox's filters (status, overdue, matter, submission days, page) as `InboxQuerySchema` loads them."""
    return _query(InboxQuerySchema(), args, INBOX_FILTERS)


def rectifications(args: Mapping) -> tuple[dict, dict[str, str]]:
    """The rectifications' filters (status, overdue, page) as `RectificationQuerySchema` loads them."""
    return _query(RectificationQuerySchema(), args, RECTIFICATION_FILTERS)


def values(form: Mapping, names: Iterable[str]) -> dict[str, str]:
    """What the reviewer typed, to show the form again with its errors."""
    return {name: form.get(name, "") for name in names}


def choices(schema: type[ma.Schema], name: str) -> tuple[str, ...]:
    """The values a field of the API's schema accepts (its OneOf), for a form's select."""
    field = schema().fields[name]
    return next(tuple(validator.choices) for validator in field.validators if isinstance(validator, ma.validate.OneOf))


INBOX_STATUSES = choices(InboxQuerySchema, "status")
RECTIFICATION_STATUSES = choices(RectificationQuerySchema, "status")


def condition_decision(form: Mapping) -> tuple[bool, str | None]:
    """A reviewer's decision on a condition the data left unknown: met (yes/no) and an optional note."""
    met = field_text(form, "met")
    if met not in ("yes", "no"):
        raise FormInvalid({"met": "请选择是否符合该受理条件"})
    note = field_text(form, "note")
    if len(note) > 1000:
        raise FormInvalid({"note": "说明不能超过 1000 字"})
    return met == "yes", note or None
