"""The request id: one per request, sent to bureaus (X-Request-Id), kept in the data-access log, echoed back.

A caller's own `X-Request-Id` is kept when it is a short token of safe characters (a gateway's id lets both
sides' logs be matched up); anything else is replaced by a fresh random id.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-Id"
ACCEPTED = re.compile(r"[A-Za-z0-9._-]{8,128}")


def request_id() -> str:
    """The current request's id (a fresh one outside a request, e.g. in a CLI command)."""
    if not has_request_context():
        return uuid.uuid4().hex
    if "request_id" not in g:
        offered = request.headers.get(HEADER, "")
        g.request_id = offered if ACCEPTED.fullmatch(offered) else uuid.uuid4().hex
    return g.request_id


def init_app(app: Flask) -> None:
    """Give every response the request's id."""

    @app.after_request
    def echo_request_id(response):
        response.headers[HEADER] = request_id()
        return response
