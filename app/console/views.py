"""The staff console: server-rendered pages (Jinja2) with htmx for the parts that change, under /console/.

A plain Flask blueprint, not flask-smorest's: its HTML pages are no part of the API's OpenAPI document. Views
are thin: they read a form (forms.py, through the API's own schemas) and call the services the API calls,
with the same actor (`staff:<id>`), so every action is logged as the API's is. Every request of the blueprint
passes its CSRF check and the session check here; every response carries the headers of `security_headers`.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from app.accounts.guard import subject_for
from app.accounts.services import login as login_service
from app.audit import services as audit
from app.console import forms, sessions
from app.errors import AppError, Forbidden
from app.extensions import csrf, limiter
from app.web.requestid import request_id

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static",
               static_url_path="/static")

# Each role's section: (role, URL segment, title). A staff member sees the sections of their roles.
SECTIONS = (
    ("auditor", "audit", "审计"),
    ("bureau", "connectors", "数据接口"),
    ("reviewer", "review", "办件审核"),
    ("admin", "admin", "系统管理"),
)
PUBLIC_ENDPOINTS = {"console.login", "console.static"}
SESSION_KEY = "sid"

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "object-src 'none'",
))
# The messages of the errors the console shows as a page (AppErrors bring their own).
HTTP_MESSAGES = {
    400: "请求无效:页面可能已过期,请刷新页面后重试",
    403: "无权访问此页面",
    404: "页面不存在",
    405: "不支持此操作",
    429: "操作过于频繁,请稍后再试",
}


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


# ------------------------------------------------------------------------------------------ every request


@bp.before_request
def check_request():
    """CSRF on every state-changing request, then the session: no session → the login page."""
    if request.endpoint == "console.static":
        return None
    csrf.protect()  # only unsafe methods (WTF_CSRF_METHODS); 400 CSRFError without a valid token
    g.console = sessions.resume(session.get(SESSION_KEY))
    if g.console is None and request.endpoint not in PUBLIC_ENDPOINTS:
        login_url = url_for("console.login")
        if is_htmx():  # a partial request: have htmx load the login page instead of swapping it in
            return Response(status=401, headers={"HX-Redirect": login_url})
        return redirect(login_url)
    return None


@bp.after_request
def security_headers(response: Response) -> Response:
    """A strict CSP (no inline script or style, nothing from another host) and no caching of any page."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "console.static":
        # Pages show personal data: neither the browser nor a proxy keeps them.
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
    return response


@bp.app_template_filter("beijing")
def beijing_time(value) -> str:
    """A stored (UTC) time as Beijing time, to the second."""
    return value.astimezone(forms.BEIJING).strftime("%Y-%m-%d %H:%M:%S") if value else ""


@bp.context_processor
def console_context() -> dict:
    current = g.get("console")
    roles = set(current.staff.roles) if current else set()
    return {"staff": current.staff if current else None,
            "sections": [(segment, title) for role, segment, title in SECTIONS if role in roles]}


def render_error(status: int, message: str) -> tuple[str, int]:
    template = "console/_error.html" if is_htmx() else "console/error.html"
    return render_template(template, status=status, message=message), status


@bp.errorhandler(AppError)
def app_error(error: AppError):
    return render_error(error.status_code, error.message)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    status = error.code or 500
    return render_error(status, HTTP_MESSAGES.get(status, "请求未能完成"))


def role(name: str):
    """Only for staff holding role `name`: 403 (an HTML page) for everyone else."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if name not in g.console.staff.roles:
                raise Forbidden("无权访问此页面:它属于其他岗位")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def actor() -> str:
    """Who acts, as the API's logs name them (`staff:<id>`)."""
    return subject_for(g.console.staff)


# ------------------------------------------------------------------------------------------ login, logout


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["STAFF_LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    """The login page; a right password (the API's accounts, hashing and lockout) starts a session."""
    if request.method == "GET":
        if g.console is not None:
            return redirect(url_for("console.home"))
        return render_template("console/login.html", errors={}, username="")
    username = (request.form.get("username") or "").strip()
    try:
        username, password = forms.login(request.form)
        staff = login_service.authenticate_staff(username, password, client_address=request.remote_addr or "unknown")
    except forms.FormInvalid as invalid:
        return render_template("console/login.html", errors=invalid.errors, username=username), 422
    except AppError as error:  # wrong password, locked, deactivated: the API's message and status
        return render_template("console/login.html", errors={"form": error.message}, username=username), \
            error.status_code
    sessions.end(session.get(SESSION_KEY))
    session.clear()  # a new session id and a new CSRF token: nothing survives from before the login
    session[SESSION_KEY] = sessions.start(staff)
    return redirect(url_for("console.home"))


@bp.post("/logout")
def logout():
    """End the session on the server (its cookie is worthless from now on) and forget the cookie."""
    sessions.end(session.get(SESSION_KEY))
    session.clear()
    return redirect(url_for("console.login"))


# ------------------------------------------------------------------------------------------ home, sections


@bp.get("/")
def home():
    """The caller's roles' sections."""
    return render_template("console/home.html")


def section_page(role_name: str, segment: str, title: str):
    @role(role_name)
    def view():
        return render_template(f"console/{segment}/index.html" if segment == "audit" else "console/section.html",
                               title=title)

    view.__name__ = f"{segment}_index"
    bp.add_url_rule(f"/{segment}/", endpoint=f"{segment}_index", view_func=view)


for _role, _segment, _title in SECTIONS:
    section_page(_role, _segment, _title)


# ------------------------------------------------------------------------------------------ auditors


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
