"""The auditors' pages: search each log, a record's detail, verify chains and checkpoints, bundles, exports.

Every view calls the API's audit services with the auditor's reason, so each query and export is in the
auditor-access log exactly as the API's are.
"""

from __future__ import annotations

from flask import render_template, request

from app.audit import services as audit
from app.console import forms
from app.console.views import actor, bp, is_htmx, role
from app.web.requestid import request_id


@bp.get("/audit/")
@role("auditor")
def audit_index():
    return render_template("console/audit/index.html", title="审计")


@bp.get("/audit/face-verifications")
@role("auditor")
def face_verifications():
    """The face-verification log's search form, and the chain verification."""
    return render_template("console/audit/face_verifications.html", values={}, errors={}, page=None,
                           decisions=forms.DECISION_LABELS, logs=forms.LOG_LABELS)


@bp.post("/audit/face-verifications/search")
@role("auditor")
def face_search():
    """One page of the search (the API's service: the query, with its reason, is in the auditor-access log)."""
    values = {name: request.form.get(name, "") for name in (*forms.FACE_FILTERS, "reason")}
    values.pop("cursor")
    context = {"values": values, "decisions": forms.DECISION_LABELS, "logs": forms.LOG_LABELS}
    template = "console/audit/_face_search.html" if is_htmx() else "console/audit/face_verifications.html"
    try:
        filters, why = forms.face_search(request.form)
    except forms.FormInvalid as invalid:
        return render_template(template, errors=invalid.errors, page=None, **context), 422
    page = audit.query("face-verifications", {**filters, "reason": why}, actor=actor(), request_id=request_id())
    return render_template(template, errors={}, page=page, **context)


@bp.post("/audit/verify")
@role("auditor")
def verify():
    """Verify a chain (or all) with the API's service; the first broken link, if any."""
    try:
        log, why = forms.verify(request.form)
    except forms.FormInvalid as invalid:
        return render_template("console/audit/_verify_result.html", errors=invalid.errors, result=None), 422
    result = audit.verify(log, actor=actor(), request_id=request_id(), reason=why)
    return render_template("console/audit/_verify_result.html", errors={}, result=result,
                           log_label=forms.LOG_LABELS[log])
