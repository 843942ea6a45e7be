"""Checks that run before every view."""

from flask import request

from app.errors import AppError

BODY_METHODS = {"POST", "PUT", "PATCH"}
ACCEPTED_BODY_TYPES = {"application/json", "multipart/form-data"}


class UnsupportedMediaType(AppError):
    status_code, error, message = 415, "unsupported_media_type", "不支持的内容类型,请使用 application/json"


def require_json_body():
    """A request that carries a body must say it is JSON (or multipart, for uploads): 415 otherwise."""
    if request.method not in BODY_METHODS:
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if not has_body:
        return
    mimetype = request.mimetype or ""
    if mimetype in ACCEPTED_BODY_TYPES or mimetype.endswith("+json"):
        return
    raise UnsupportedMediaType()
