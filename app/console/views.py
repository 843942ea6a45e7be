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
from app.console import forms, sessions
from app.errors import AppError, Forbidden
from app.extensions import csrf, limiter

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


# ------------------------------------------------------------------------------------------ home


@bp.get("/")
def home():
    """The caller's roles' sections."""
    return render_template("console/home.html")
