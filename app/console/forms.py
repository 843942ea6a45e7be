"""The console's forms: what a posted HTML form means, checked by the API's own schemas.

No rule is copied here: each role's forms (audit_forms.py, connector_forms.py, …) load a form through the
schema of the API endpoint it stands for, so it is checked exactly as there and an error is shown next to its
field with the API's message. What every role shares is here: login, the reason every auditor view asks for
(the auditor-access log keeps it with the query), times typed as Beijing time, and flattening messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta, timezone

from app.audit.schemas import VERIFIABLE_LOGS
from app.catalogue.models import TRUST_LEVELS
from app.face.models import DECISIONS
from app.web.schemas import printable

# The times auditors type (datetime-local inputs) are Beijing time.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
REASON_MAX = 200
DECISION_LABELS = {"pass": "通过", "fail": "未通过"}
LOG_LABELS = {"all": "全部日志", "face-verifications": "刷脸核验日志", "data-access": "数据调用日志",
              "auditor-access": "审计访问日志"}
assert set(DECISION_LABELS) == set(DECISIONS) and set(LOG_LABELS) == set(VERIFIABLE_LOGS)
# How far a value can be trusted (the catalogue's levels), as reviewers and admins read it.
TRUST_LABELS = {"A": "A 级 · 权威来源", "B": "B 级 · 人工核验", "C": "C 级 · 用户上传", "D": "D 级 · 本人承诺"}
assert set(TRUST_LABELS) == set(TRUST_LEVELS)


INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
DECIMAL = re.compile(r"[+-]?[0-9]{1,9}(\.[0-9]{1,6})?")
# marshmallow's English default messages, as the console shows them.
_TRANSLATIONS = (
    (re.compile(r"Missing data for required field\."), "必填"),
    (re.compile(r"Field may not be null\."), "不能为空"),
    (re.compile(r"Length must be between (\d+) and (\d+)\."), r"长度须在 \1 到 \2 之间"),
    (re.compile(r"Shorter than minimum length (\d+)\."), r"长度不能少于 \1"),
    (re.compile(r"Longer than maximum length (\d+)\."), r"长度不能超过 \1"),
    (re.compile(r"Must be one of: (.+)\."), r"须为以下之一:\1"),
    (re.compile(r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\."), r"须在 \1 到 \2 之间"),
    (re.compile(r"Not a valid (string|list|mapping)\."), "格式无效"),
)


class FormInvalid(Exception):
    """A posted form with errors: field name → message (shown next to the field)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def field_text(form: Mapping, name: str) -> str:
    """An input's text: stripped, with the browser's CRLF line breaks as LF."""
    return (form.get(name) or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def login(form: Mapping) -> tuple[str, str]:
    """Username and password of the login form (both required)."""
    username, password = field_text(form, "username"), form.get("password") or ""
    errors = {name: "必填" for name, value in (("username", username), ("password", password)) if not value}
    if errors:
        raise FormInvalid(errors)
    return username, password


def typed_number(text: str, pattern: re.Pattern = INTEGER):
    """A typed number as JSON would carry it; anything else stays text, for the schema's own message."""
    if not pattern.fullmatch(text):
        return text
    return float(text) if "." in text else int(text)


def reason(form: Mapping) -> str:
    """The reason for an auditor's view: required, one line of printable text."""
    text = field_text(form, "reason")
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
    log = field_text(form, "log") or "all"
    errors = {} if log in VERIFIABLE_LOGS else {"log": "未知的日志"}
    try:
        why = reason(form)
    except FormInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise FormInvalid(errors)
    return log, why


def message(messages) -> str:
    """marshmallow's messages of one field (nested ones too) as one line, in Chinese where they were not (the
    API's schemas leave some of marshmallow's English defaults: "Missing data for required field.")."""
    return "；".join(_texts(messages))


def _texts(messages) -> list[str]:
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in _texts(value)]
    if isinstance(messages, list | tuple):
        return [text for value in messages for text in _texts(value)]
    return [_chinese(str(messages))]


def _chinese(text: str) -> str:
    for pattern, replacement in _TRANSLATIONS:
        if pattern.fullmatch(text):
            return pattern.sub(replacement, text)
    return text
