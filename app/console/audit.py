"""The auditors' pages: search each log, a record's detail, verify chains and checkpoints, bundles, exports.

Every view calls the API's audit services (app/audit/services.py, transparency.py) with the auditor's reason,
as `staff:<id>`, so each query, record view and export is in the auditor-access log exactly as the API's are
(a view of one record as action `view`). Forms are loaded by the API's schemas (audit_forms.py). A person's
ID number travels only in a form body; pages, record views and exports are POSTs wherever they are logged.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from flask import Response, render_template, request, stream_with_context

from app.audit import services as audit
from app.audit import transparency
from app.audit.api import EXTENSIONS, MEDIA_TYPES
from app.console import audit_forms, forms
from app.console.views import actor, bp, is_htmx, role
from app.errors import NotFound, ValidationFailed
from app.ledger import checkpoints
from app.web.requestid import request_id

LOG_TITLES = {"face-verifications": "刷脸核验日志", "data-access": "数据调用日志", "auditor-access": "审计访问日志"}
LOG_HINTS = {
    "face-verifications": "每次刷脸核验的事件与决定;记录中没有姓名、身份证号或人脸图像,当事人以密钥哈希表示。",
    "data-access": "每次向委办局数据接口调取数据:谁、为哪个办件、调取了哪些数据项、结果如何。",
    "auditor-access": "审计人员自己的每次查询、查看、导出与校验(含事由);按身份证号可查谁查阅过此人的记录。",
}
SEARCH_PARTIALS = {log: f"console/audit/_{log.replace('-', '_')}_search.html" for log in LOG_TITLES}
OUTCOME_LABELS = {"ok": "成功", "not_found": "未查到", "failed": "失败", "timeout": "超时"}
COLUMN_LABELS = {
    "seq": "序号", "id": "记录编号", "recorded_at": "记录时间(北京)", "event": "事件", "session_id": "核验会话",
    "citizen_pseudonym": "当事人(密钥哈希)", "actor": "操作人", "purpose": "用途", "matter_code": "事项编码",
    "application_id": "办件编号", "provider": "核验服务方", "adapter_version": "适配器版本",
    "provider_session_id": "服务方会话", "provider_request_id": "服务方请求", "provider_code": "服务方代码",
    "outcome": "结果", "decision": "核验决定", "reason": "原因", "liveness": "活体检测", "similarity": "相似度",
    "threshold": "阈值", "attempt": "第几次", "failures": "窗口内失败次数", "failure_limit": "失败上限",
    "verified_until": "核验有效期至", "request_id": "请求编号", "prev_hash": "前一条哈希", "record_hash": "本条哈希",
    "connector_id": "数据接口", "bureau": "委办局代码", "bureau_name": "委办局", "elements_requested": "请求的数据项",
    "elements_returned": "返回的数据项", "latency_ms": "耗时(毫秒)", "error": "错误", "http_status": "HTTP 状态",
    "action": "操作", "log": "日志", "filters": "条件与事由", "result_count": "结果条数",
}
LABELS = {"decisions": forms.DECISION_LABELS, "logs": forms.LOG_LABELS, "events": audit_forms.EVENT_LABELS,
          "actions": audit_forms.ACTION_LABELS, "outcomes": OUTCOME_LABELS, "formats": audit_forms.FORMAT_LABELS,
          "page_sizes": [(str(size), f"{size} 条") for size in audit_forms.PAGE_SIZES], "titles": LOG_TITLES,
          "hints": LOG_HINTS, "columns": COLUMN_LABELS, "exportable": audit_forms.EXPORTABLE}
LOGS = "<any('face-verifications', 'data-access', 'auditor-access'):log>"


@bp.get("/audit/")
@role("auditor")
def audit_index():
    return render_template("console/audit/index.html", title="审计", **LABELS)


# ------------------------------------------------------------------------------------------ the searches


def log_page(log: str, status: int = 200, **context):
    """A log's page: its search form (and results, after a search), a record's panel, export and verify."""
    context = {"values": {}, "errors": {}, "page": None, "export_values": {}, "export_errors": {}, **context}
    return render_template("console/audit/log.html", log=log, search_partial=SEARCH_PARTIALS[log],
                           **LABELS, **context), status


def search(log: str):
    """One page of `log`'s search (the API's service: the query, with its reason, is in the auditor-access log);
    htmx gets the search section, a plain form post the whole page."""
    values = audit_forms.values(request.form, audit_forms.FILTERS[log])
    try:
        filters, why = audit_forms.search(log, request.form)
    except forms.FormInvalid as invalid:
        errors, page, status = invalid.errors, None, 422
    else:
        errors, status = {}, 200
        page = audit.query(log, {**filters, "reason": why}, actor=actor(), request_id=request_id())
    if is_htmx():
        return render_template(SEARCH_PARTIALS[log], log=log, values=values, errors=errors, page=page,
                               **LABELS), status
    return log_page(log, status, values=values, errors=errors, page=page)


@bp.get("/audit/face-verifications")
@role("auditor")
def face_verifications():
    """The face-verification log's search form, its export, and the chain verification."""
    return log_page("face-verifications")


@bp.post("/audit/face-verifications/search")
@role("auditor")
def face_search():
    return search("face-verifications")


@bp.get("/audit/data-access")
@role("auditor")
def data_access():
    """The data-access log's search form (connector, application, person, time), its export, verification."""
    return log_page("data-access")


@bp.post("/audit/data-access/search")
@role("auditor")
def data_access_search():
    return search("data-access")


@bp.get("/audit/auditor-access")
@role("auditor")
def auditor_access():
    """The auditor-access log: who looked at what, when and why (also whose ID number was searched for)."""
    return log_page("auditor-access")


@bp.post("/audit/auditor-access/search")
@role("auditor")
def auditor_access_search():
    return search("auditor-access")


# ------------------------------------------------------------------------------------------ one record


@bp.post(f"/audit/{LOGS}/records/<int:seq>")
@role("auditor")
def record(log: str, seq: int):
    """One record in full (the view, with its reason, is in the auditor-access log): a panel for htmx, else a
    page. A POST, since it is logged and asks a reason."""
    template = "console/audit/_record.html" if is_htmx() else "console/audit/record.html"
    try:
        why = forms.reason(request.form)
    except forms.FormInvalid as invalid:
        return render_template(template, log=log, seq=seq, row=None, errors=invalid.errors, **LABELS), 422
    row = audit.record(log, seq, actor=actor(), request_id=request_id(), reason=why)
    fields = [(name, getattr(row, name)) for name in audit.LOG_VIEWS[log].columns]
    return render_template(template, log=log, seq=seq, row=row, fields=fields, errors={}, **LABELS)


# ------------------------------------------------------------------------------------------ exports


@bp.post(f"/audit/{LOGS}/export")
@role("auditor")
def export(log: str):
    """A download of the log as the API's export makes it (CSV, JSON Lines or an evidence bundle), logged with
    its reason before the first byte; the form again, with its errors, when it has any."""
    if log not in audit_forms.EXPORTABLE:
        raise NotFound("该日志不提供导出")  # as the API's export
    export_values = audit_forms.values(request.form, audit_forms.EXPORT_FIELDS)
    try:
        args, why = audit_forms.export(request.form)
    except forms.FormInvalid as invalid:
        return log_page(log, 422, export_values=export_values, export_errors=invalid.errors)
    fmt, filters = args["format"], {**args, "reason": why}
    if fmt == "bundle":
        try:
            lines = transparency.evidence_bundle(log, filters, actor=actor(), request_id=request_id(),
                                                 consistency_from=args.get("consistency_from"))
        except ValidationFailed as error:  # `consistency_from` beyond the log (logged first, as the API's)
            found = {name: "；".join(texts) for where in (error.errors or {}).values() for name, texts in where.items()}
            return log_page(log, 422, export_values=export_values, export_errors=found or {"form": error.message})
    else:
        lines = audit.export(log, fmt, filters, actor=actor(), request_id=request_id())
    stamp = datetime.now(UTC).astimezone(forms.BEIJING).strftime("%Y%m%d-%H%M%S")
    response = Response(stream_with_context(lines), mimetype=MEDIA_TYPES[fmt].split(";")[0])
    response.headers["Content-Type"] = MEDIA_TYPES[fmt]
    response.headers["Content-Disposition"] = f'attachment; filename="{log}-{stamp}.{EXTENSIONS[fmt]}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------------------------------ verification


@bp.get("/audit/integrity")
@role("auditor")
def integrity():
    """Each chain's latest signed checkpoint, and the one-click verification of every chain and checkpoint."""
    latest = {log: checkpoints.latest(model.CHAIN) for log, model in audit.CHAINED_LOGS.items()}
    roots = {log: base64.b64encode(signed.root_hash).decode() for log, signed in latest.items() if signed}
    return render_template("console/audit/integrity.html", latest=latest, roots=roots,
                           keys=transparency.public_keys(), **LABELS)


@bp.post("/audit/verify")
@role("auditor")
def verify():
    """Verify a chain (or all) with the API's service — hash chain, Merkle tree, signed checkpoints and the
    witness — and show the first broken link, if any."""
    try:
        log, why = forms.verify(request.form)
    except forms.FormInvalid as invalid:
        return render_template("console/audit/_verify_result.html", errors=invalid.errors, result=None), 422
    result = audit.verify(log, actor=actor(), request_id=request_id(), reason=why)
    return render_template("console/audit/_verify_result.html", errors={}, result=result,
                           log_label=forms.LOG_LABELS[log], **LABELS)
