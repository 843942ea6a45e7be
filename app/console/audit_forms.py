"""The auditors' forms: each log's search, a record's view, an export — loaded by the API's own schemas.

A search form is loaded through the schema of the search it stands for (`POST /api/v1/audit/{log}/search`; for
the auditor-access log, which only the console queries, the audit domain's `AuditorAccessSearchSchema`), an
export form through the export's (`GET /api/v1/audit/{log}/export`): no rule is copied here, and an error is
shown next to its field with the API's message. The form's fields are the schema's, so a filter the API adds
reaches the form's loader without an edit here (its template still has to show it). Every form also asks the
reason, which the auditor-access log keeps with the query, view or export (forms.reason).
"""

from __future__ import annotations

from collections.abc import Mapping

import marshmallow as ma

from app.audit.schemas import (
    ACCESS_ACTIONS,
    EXPORT_FORMATS,
    AuditorAccessSearchSchema,
    DataAccessSearchSchema,
    ExportQuerySchema,
    FaceLogSearchSchema,
)
from app.console.forms import FormInvalid, beijing_time, message, reason
from app.face.models import EVENTS

SEARCH_SCHEMAS: dict[str, type[ma.Schema]] = {
    "face-verifications": FaceLogSearchSchema,
    "data-access": DataAccessSearchSchema,
    "auditor-access": AuditorAccessSearchSchema,
}
# The logs the API exports (GET /api/v1/audit/{log}/export), and so the console.
EXPORTABLE = ("face-verifications", "data-access")
TIME_FIELDS = ("from", "to")
PAGE_SIZES = (20, 50, 100, 200, 500)


def _field_names(schema: type[ma.Schema]) -> tuple[str, ...]:
    return tuple(field.data_key or name for name, field in schema().fields.items())


# Each log's form fields, as its schema names them (`from`, not `from_`), `cursor` and `limit` included.
FILTERS: dict[str, tuple[str, ...]] = {log: _field_names(schema) for log, schema in SEARCH_SCHEMAS.items()}
EXPORT_FIELDS = _field_names(ExportQuerySchema)

EVENT_LABELS = {
    "claim_recorded": "登记实名信息", "claim_refused": "实名登记被拒", "identity_bound": "身份绑定账号",
    "identity_rebound": "身份换绑", "identity_unbound": "身份被解绑", "claim_dropped": "实名登记作废",
    "consent_granted": "同意人脸识别", "consent_withdrawn": "撤回同意", "session_refused": "拒绝发起核验",
    "session_started": "发起核验", "start_failed": "发起失败", "rate_limited": "频次受限",
    "wrong_citizen": "他人会话", "replay_rejected": "重放被拒", "expired": "会话过期",
    "invalid_evidence": "核验材料无效", "reference_unavailable": "无可用底照", "result_pending": "结果未出",
    "provider_unavailable": "服务方不可用", "result": "服务方结果", "decision": "核验决定",
}
ACTION_LABELS = {"query": "查询", "view": "查看记录", "export": "导出", "verify": "校验", "checkpoint": "签发检查点",
                 "proof": "证明", "stats": "统计"}
FORMAT_LABELS = {"csv": "CSV(表格)", "jsonl": "JSON Lines", "bundle": "证据包(可离线校验)"}
assert set(EVENT_LABELS) == set(EVENTS) and set(ACTION_LABELS) == set(ACCESS_ACTIONS)
assert set(FORMAT_LABELS) == set(EXPORT_FORMATS)


def _load(schema: ma.Schema, form: Mapping, names: tuple[str, ...]) -> tuple[dict, str]:
    """The form's fields `names` loaded by `schema`, and its reason: every error of both, or both values."""
    errors: dict[str, str] = {}
    try:
        why = reason(form)
    except FormInvalid as invalid:
        errors.update(invalid.errors)
        why = ""
    body = {name: (form.get(name) or "").strip() for name in names}
    body = {name: value for name, value in body.items() if value}
    for name in TIME_FIELDS:
        if name in body:
            body[name] = beijing_time(body[name])
    try:
        loaded = schema.load(body)
    except ma.ValidationError as error:
        errors.update({name: message(found) for name, found in error.messages.items()})
        loaded = {}
    if errors:
        raise FormInvalid(errors)
    return loaded, why


def search(log: str, form: Mapping) -> tuple[dict, str]:
    """The filters of `log`'s search form, as the log's search schema loads them, and the reason."""
    return _load(SEARCH_SCHEMAS[log](), form, FILTERS[log])


def export(form: Mapping) -> tuple[dict, str]:
    """The export form (format, time range, a bundle's `consistency_from`) as the API's export loads it, and
    the reason."""
    return _load(ExportQuerySchema(), form, EXPORT_FIELDS)


def values(form: Mapping, names: tuple[str, ...]) -> dict[str, str]:
    """What the auditor typed, to show the form again as it was (the cursor is no part of it)."""
    return {name: form.get(name, "") for name in (*names, "reason") if name != "cursor"}
