"""The one error shape of API.md, and every handler that produces it.

    {"code": 422, "status": "Unprocessable Entity", "error": "validation_failed",
     "message": "提交的数据有误", "errors": {"json": {"id_number": ["..."]}}}

Domain code raises an `AppError` subclass; HTTP errors (werkzeug, webargs, Flask-Limiter) and JWT errors are
translated here, so no view builds an error body by hand.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, jsonify
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Default machine code and Chinese message per status, for errors raised without a more specific one.
DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "未登录或登录已失效,请重新登录"),
    403: ("forbidden", "无权进行此操作"),
    404: ("not_found", "请求的资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "请求与当前状态冲突"),
    410: ("gone", "请求的资源已失效"),
    412: ("precondition_failed", "资源已被修改,请刷新后重试"),
    413: ("payload_too_large", "提交的内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型,请使用 application/json"),
    422: ("validation_failed", "提交的数据有误"),
    428: ("precondition_required", "缺少必要的请求头"),
    429: ("rate_limited", "操作过于频繁,请稍后再试"),
    500: ("internal_error", "服务器内部错误,请稍后再试"),
    502: ("upstream_unavailable", "上游服务暂时不可用,请稍后再试"),
    503: ("upstream_unavailable", "服务暂时不可用,请稍后再试"),
    504: ("upstream_unavailable", "上游服务响应超时,请稍后再试"),
}


class ErrorSchema(ma.Schema):
    """The error body every endpoint documents and returns."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status phrase"})
    error = ma.fields.String(required=True, metadata={"description": "stable snake_case reason to branch on"})
    message = ma.fields.String(required=True, metadata={"description": "human-readable text (Chinese)"})
    errors = ma.fields.Dict(metadata={"description": "per-field details, by location then field"})


class AppError(Exception):
    """A domain error that becomes an error response; subclasses set the status and machine code."""

    status_code = 400
    error = "bad_request"
    message = "请求有误"

    def __init__(
        self,
        message: str | None = None,
        *,
        error: str | None = None,
        errors: dict | None = None,
        headers: dict | None = None,
        status_code: int | None = None,
    ):
        self.message = message or self.message
        self.error = error or self.error
        self.errors = errors
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)


class ValidationFailed(AppError):
    status_code, error, message = 422, "validation_failed", "提交的数据有误"

    @classmethod
    def field(cls, field: str, message: str, *, error: str | None = None, location: str = "json"):
        """A 422 about one field of the request body."""
        return cls(message, error=error, errors={location: {field: [message]}})


class Unauthorized(AppError):
    status_code, error, message = 401, "unauthorized", "未登录或登录已失效,请重新登录"


class Forbidden(AppError):
    status_code, error, message = 403, "forbidden", "无权进行此操作"


class AssuranceRequired(Forbidden):
    """A citizen below the assurance level an operation needs (API.md: one code, the message says what to do)."""

    error = "assurance_required"
    MESSAGES = {
        "none": "请先填写姓名和身份证号码完成实名登记,再刷脸核验本人身份",
        "claimed": "请先刷脸核验本人身份(实名认证),核验通过后才能查看或办理涉及个人信息的事项",
    }

    def __init__(self, current: str, required: str = "face"):
        super().__init__(self.MESSAGES.get(current, self.MESSAGES["none"]),
                         errors={"assurance": {"current": current, "required": required}})


class NotFound(AppError):
    status_code, error, message = 404, "not_found", "请求的资源不存在"


class Conflict(AppError):
    status_code, error, message = 409, "conflict", "请求与当前状态冲突"


class RateLimited(AppError):
    status_code, error, message = 429, "rate_limited", "操作过于频繁,请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs):
        super().__init__(message, **kwargs)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))


class UpstreamUnavailable(AppError):
    status_code, error, message = 503, "upstream_unavailable", "上游服务暂时不可用,请稍后再试"


def error_body(status: int, error: str | None = None, message: str | None = None, errors=None) -> dict:
    """The error payload for `status`, filling the machine code and message from DEFAULTS."""
    default_error, default_message = DEFAULTS.get(status, ("error", HTTPStatus(status).phrase))
    body = {
        "code": status,
        "status": HTTPStatus(status).phrase,
        "error": error or default_error,
        "message": message or default_message,
    }
    if errors:
        body["errors"] = errors
    return body


def error_response(status: int, error: str | None = None, message: str | None = None, errors=None,
                   headers: dict | None = None):
    """A JSON response in the one error shape."""
    response = jsonify(error_body(status, error, message, errors))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 503 and "Retry-After" in response.headers:
        # Kept aside for app/web/ratelimit.py, which puts it back after Flask-Limiter's headers.
        response.headers[OWN_RETRY_AFTER] = response.headers["Retry-After"]
    return response


# Carries a 503's own Retry-After past Flask-Limiter (which replaces it with its window); removed before sending.
OWN_RETRY_AFTER = "X-Zsb-Retry-After"
# Where each app keeps its own OpenAPI document (app/web/openapi.py describe_configuration).
DOCUMENT = "openapi_document"


class Api(SmorestApi):
    """flask-smorest's Api with our error schema in the OpenAPI document and our shape for HTTP errors."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        return handle_http_exception(error)

    def _openapi_json(self):
        # flask-smorest serves `self.spec`, which is the latest app's when a process builds several (a
        # management script, the tests): serve the document of the app that answers. Overrides its private
        # view of /openapi.json (flask-smorest is pinned below 0.48 in setup.cfg).
        from flask import current_app

        spec = current_app.extensions.get(DOCUMENT, self.spec)
        return current_app.response_class(current_app.json.dumps(spec.to_dict(), indent=2, sort_keys=False),
                                          mimetype="application/json")


def handle_http_exception(error: HTTPException):
    """werkzeug/webargs/Flask-Limiter errors → the error shape, keeping headers such as Allow."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    message = data.get("message")
    if status == 400 and errors and "json" in errors:
        message = "请求体不是有效的 JSON"
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")}
    headers.update(data.get("headers") or {})
    if status == 429:
        limit = getattr(error, "limit", None)
        if limit is not None and "Retry-After" not in headers:
            headers["Retry-After"] = str(int(limit.limit.get_expiry()))
    if status >= 500:
        # werkzeug's own text would be English and may describe internals: use ours.
        message = None
    return error_response(status, message=message, errors=errors, headers=headers)


def handle_app_error(error: AppError):
    return error_response(error.status_code, error.error, error.message, error.errors, error.headers)


class ServiceUnavailable(AppError):
    """Our own database or Redis does not answer: a clear 503 the client may retry, not a 500."""

    status_code, error, message = 503, "service_unavailable", "服务暂时不可用,请稍后再试"


def handle_outage(error: Exception):
    """The database or Redis went away mid-request (a restart, a failover, a network cut). The pool drops
    connections a disconnect broke, so the next request reconnects by itself; /readyz says which is down."""
    from app.extensions import db

    log.warning("dependency unavailable: %s", type(error).__name__)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the session may be as broken as its connection; removed at teardown
        pass
    return handle_app_error(ServiceUnavailable(headers={"Retry-After": "5"}))


def handle_unexpected(error: Exception):
    # The client sees no internals; the log keeps the traceback for the operator.
    log.exception("unhandled exception")
    return error_response(500)


def register_error_handlers(app: Flask) -> None:
    """Send every error through the one shape (called after flask-smorest registered its own handler)."""
    import redis
    from sqlalchemy import exc as sa_exc

    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    # Outages of our own dependencies: the DBAPI's operational and interface errors (connection refused or
    # lost, server shutting down, SQLite busy), the pool's timeout, Redis's connection errors and timeouts.
    for outage in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                   redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        app.register_error_handler(outage, handle_outage)
    app.register_error_handler(Exception, handle_unexpected)
