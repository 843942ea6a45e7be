"""The console's forms: what a posted HTML form means, checked by the API's own schemas.

No rule is copied here: each role's forms (audit_forms.py, connector_forms.py, …) load a form through the
schema of the API endpoint it stands for, so it is checked exactly as there and an error is shown next to its
field with the API's message. What every role shares is here: login, the reason every auditor view asks for
(the auditor-access log keeps it with the query), times typed as Beijing time, and flattening messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, timezone

from app.audit.schemas import VERIFIABLE_LOGS
from app.face.models import DECISIONS
from app.web.schemas import printable

# The times auditors type (datetime-local inputs) are Beijing time.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
REASON_MAX = 200
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


def beijing_time(value: str) -> str:
    """A time as a datetime-local input sends it (`2024-05-01T09:30`), read as Beijing time unless it names
    its offset."""
    has_offset = value.endswith("Z") or "+" in value[10:] or "-" in value[10:]
    return value if has_offset else value + "+08:00"


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


def error_messages(messages) -> list[str]:
    """A marshmallow field's messages (a list, or nested dicts of lists) as one flat list of texts."""
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in error_messages(value)]
    if isinstance(messages, list):
        return [str(text) for text in messages]
    return [str(messages)]

