"""Checks that run before every view."""

import re

from flask import current_app, request

from app.bodies import UnstorableText, text_problem
from app.errors import AppError, NotFound

BODY_METHODS = {"POST", "PUT", "PATCH"}
ACCEPTED_BODY_TYPES = {"application/json", "multipart/form-data"}


# Query parameters that would carry a personal identifier, and values shaped like a resident ID number: no
# endpoint takes either in a URL (API.md), because access logs and proxies keep URLs.
IDENTIFIER_PARAMS = frozenset({"id_number", "name", "real_name", "phone", "mobile"})
ID_NUMBER_SHAPE = re.compile(r"\s*[0-9]{17}[0-9Xx]\s*")


class IdentifierInUrl(AppError):
    status_code, error = 422, "identifier_in_url"
    message = "个人身份信息不能放在网址中,请在请求体中提交(如 POST /api/v1/audit/{log}/search)"


class UnsupportedMediaType(AppError):
    status_code, error, message = 415, "unsupported_media_type", "不支持的内容类型,请使用 application/json"


# Blueprints whose views take HTML form posts (the staff console, app/console/) add their name here.
FORM_BLUEPRINTS = "form_blueprints"
FORM_BODY_TYPE = "application/x-www-form-urlencoded"


def require_json_body():
    """A request that carries a body must say it is JSON (or multipart, for uploads): 415 otherwise. HTML
    forms are accepted only by the blueprints registered in `app.extensions["form_blueprints"]`."""
    if request.method not in BODY_METHODS:
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if not has_body:
        return
    mimetype = request.mimetype or ""
    if mimetype in ACCEPTED_BODY_TYPES or mimetype.endswith("+json"):
        return
    if mimetype == FORM_BODY_TYPE and request.blueprint in current_app.extensions.get(FORM_BLUEPRINTS, ()):
        return
    raise UnsupportedMediaType()


def refuse_unstorable_text():
    """The path, query string and headers hold no NUL or lone surrogate (app/bodies.py): 404 for the path
    (nothing is named so), 422 for the rest.

    Bodies are checked where views parse them (app/bodies.py `PolicyParser`), after per-view size limits.
    """
    if text_problem(request.path):
        raise NotFound()  # no resource has such a name
    for key, values in request.args.lists():
        if text_problem(key) or any(text_problem(value) for value in values):
            raise UnstorableText(errors={"query": {"_query" if text_problem(key) else key: ["unstorable"]}})
    for key, value in request.headers.items():
        if text_problem(value):
            raise UnstorableText(errors={"headers": {key: ["unstorable"]}})


def refuse_identifiers_in_url():
    """No personal identifier in the query string (API.md): 422 `identifier_in_url`, naming the parameter only.

    The value is neither logged nor echoed; the development server's access log drops query strings
    (app/devserver.py), and production's must too (docs/operations.md).
    """
    for key, values in request.args.lists():
        if key in IDENTIFIER_PARAMS or any(ID_NUMBER_SHAPE.fullmatch(value) for value in values):
            raise IdentifierInUrl(errors={"query": {key: ["personal identifiers go in the request body"]}})
