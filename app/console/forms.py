"""The console's forms: what a posted HTML form means, checked by the API's own schemas.

No rule is copied here: a search form is loaded through the schema of the API endpoint it stands for
(POST /api/v1/audit/face-verifications/search), so its filters are checked exactly as there and an error is
shown next to its field with the API's message. The console adds one field of its own: the reason every
auditor view asks for, which the auditor-access log keeps with the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, timezone

import marshmallow as ma

from app.audit.schemas import VERIFIABLE_LOGS, FaceLogSearchSchema
from app.face.models import DECISIONS
from app.web.schemas import printable

# The times auditors type (datetime-local inputs) are Beijing time.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
REASON_MAX = 200
FACE_FILTERS = ("from", "to", "decision", "provider", "matter_code", "id_number", "cursor")
DECISION_LABELS = {"pass": "通过", "fail": "未通过"}
LOG_LABELS = {"all": "全部日志", "face-verifications": "刷脸核验日志", "data-access": "数据调用日志",
              "auditor-access": "审计访问日志"}
assert set(DECISION_LABELS) == set(DECISIONS) and set(LOG_LABELS) == set(VERIFIABLE_LOGS)


class FormInvalid(Exception):
    """A posted form with errors: field name → message (shown next to the field)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def _text(form: Mapping, name: str) -> str:
    return (form.get(name) or "").strip()


def login(form: Mapping) -> tuple[str, str]:
    """Username and password of the login form (both required)."""
    username, password = _text(form, "username"), form.get("password") or ""
    errors = {name: "必填" for name, value in (("username", username), ("password", password)) if not value}
    if errors:
        raise FormInvalid(errors)
    return username, password


def reason(form: Mapping) -> str:
    """The reason for an auditor's view: required, one line of printable text."""
    text = _text(form, "reason")
    if not text:
        raise FormInvalid({"reason": "请填写查阅事由"})
    if len(text) > REASON_MAX or "\n" in text or "\r" in text or printable.regex.fullmatch(text) is None:
        raise FormInvalid({"reason": f"事由须为不超过 {REASON_MAX} 个字的单行文字"})
    return text


def _beijing_time(value: str) -> str:
    # `2024-05-01T09:30` from the browser: Beijing time, unless it says otherwise.
    has_offset = value.endswith("Z") or "+" in value[10:] or "-" in value[10:]
    return value if has_offset else value + "+08:00"


def face_search(form: Mapping) -> tuple[dict, str]:
    """The filters of the face-verification search form (as the API's search body loads them) and its reason."""
    errors: dict[str, str] = {}
    try:
        why = reason(form)
    except FormInvalid as invalid:
        errors.update(invalid.errors)
        why = ""
    body = {name: _text(form, name) for name in FACE_FILTERS if _text(form, name)}
    for name in ("from", "to"):
        if name in body:
            body[name] = _beijing_time(body[name])
    try:
        filters = FaceLogSearchSchema().load(body)
    except ma.ValidationError as error:
        errors.update({name: "；".join(_messages(messages)) for name, messages in error.messages.items()})
        filters = {}
    if errors:
        raise FormInvalid(errors)
    return filters, why


def verify(form: Mapping) -> tuple[str, str]:
    """Which chain to verify (`all` unless chosen) and the reason."""
    log = _text(form, "log") or "all"
    errors = {} if log in VERIFIABLE_LOGS else {"log": "未知的日志"}
    try:
        why = reason(form)
    except FormInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise FormInvalid(errors)
    return log, why


def _messages(messages) -> list[str]:
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in _messages(value)]
    if isinstance(messages, list):
        return [str(text) for text in messages]
    return [str(messages)]
