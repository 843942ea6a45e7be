"""The one policy for what a request may carry: JSON that every part of the stack can hold, and nothing else.

Python's `json` accepts more than JSON (NaN, Infinity), more than `int()` will convert (4,300 digits and
beyond raise ValueError), and nesting that exhausts the stack (RecursionError); it decodes `\\u0000` and lone
surrogates into strings that PostgreSQL refuses (NUL) or that cannot be encoded as UTF-8 at all. Each of these
was a 500. Here every JSON body is parsed once under bounds (`parse`), text anywhere in a request is checked
(`text_problem`), and responses are serialised without NaN (`PolicyJSONProvider`), so a mini-program's
`JSON.parse` never meets an answer it rejects.

Bodies are parsed where every view's arguments are (`PolicyParser`, the parser of our flask-smorest
Blueprint, app/web/blueprint.py) and by Flask's own `request.get_json` (`PolicyJSONProvider`); query strings,
headers and the path are checked before any view runs (app/web/guards.py). Violations are `BodyRejected` → 400
`bad_request` (not acceptable JSON) or 422 `validation_failed` (a string the service cannot store), in the one
error shape, and nothing is stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider
from marshmallow.experimental.context import Context
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from app.errors import AppError

MAX_DEPTH = 32  # arrays and objects within one another: the deepest real body here is 4
MAX_INTEGER_DIGITS = 18  # every integer the API takes fits in a signed 64-bit column
# Every number, integer or not, lies strictly between -10^18 and 10^18 (the integers' bound, for floats too,
# so the OpenAPI document can state one bound for both; no form or setting needs more).
MAX_NUMBER_MAGNITUDE = 10**MAX_INTEGER_DIGITS
# The same bound as the OpenAPI document states it (inclusive; 10^18 itself has 19 digits, and no double lies
# between the two).
LARGEST_NUMBER = MAX_NUMBER_MAGNITUDE - 1
MAX_NUMBER_CHARS = 40  # a float's text: digits, sign, point, exponent
# NUL (PostgreSQL text cannot hold it) and lone UTF-16 surrogates (no UTF-8 encoding exists).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Strings and brackets of a JSON text, to measure the nesting without recursion.
# (The unrolled string pattern scans a 4 MB base64 photo in milliseconds.)
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class BodyRejected(AppError):
    """The request carries something the service will not parse or cannot store."""

    status_code, error, message = 400, "bad_request", "请求内容不是有效的 JSON"


class UnstorableText(BodyRejected):
    status_code, error, message = 422, "validation_failed", "内容含有无法保存的字符(如 NUL 或不成对的代理字符)"


def _reject_constant(name: str):
    raise BodyRejected(f"JSON 中不允许 {name}", errors={"json": {"_body": [f"non-finite number {name}"]}})


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BodyRejected("数字过长",
                           errors={"json": {"_body": [f"integers have at most {MAX_INTEGER_DIGITS} digits"]}})
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text) if len(text) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(value):
        raise BodyRejected("数字超出范围", errors={"json": {"_body": ["numbers must be finite"]}})
    if abs(value) >= MAX_NUMBER_MAGNITUDE:
        raise BodyRejected("数字超出范围", errors={"json": {"_body": [
            f"numbers lie strictly between -10^{MAX_INTEGER_DIGITS} and 10^{MAX_INTEGER_DIGITS}"]}})
    return value


def depth_of(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), without recursing."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
        elif token in "]}":
            depth -= 1
    return deepest


def parse(text: str | bytes) -> Any:
    """The value of a JSON text under the policy (module docstring); BodyRejected otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyRejected("请求内容不是 UTF-8 编码") from None
    if depth_of(text) > MAX_DEPTH:
        raise BodyRejected("JSON 嵌套过深", errors={"json": {"_body": [f"at most {MAX_DEPTH} levels of nesting"]}})
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise BodyRejected() from None
    where = unstorable_path(value)
    if where is not None:
        raise UnstorableText(errors={"json": {where or "_body": ["contains NUL or a lone surrogate"]}})
    return value


def unstorable_path(value: Any, path: str = "") -> str | None:
    """Where in `value` a string (or an object key) holds an unstorable character: a dotted path, or None."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                if UNSTORABLE.search(key):
                    return where or "_body"
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def text_problem(text: str) -> bool:
    """Whether `text` (a query value, a header, a form field) holds an unstorable character."""
    return bool(UNSTORABLE.search(text))


class PolicyJSONProvider(DefaultJSONProvider):
    """Flask's JSON with the policy: bodies parsed by `parse`, answers never carrying NaN or Infinity."""

    ensure_ascii = False  # Chinese text as UTF-8, not \\u escapes: half the size for citizens' phones

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse(s)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


class PolicyParser(FlaskParser):
    """webargs' Flask parser (what flask-smorest's `@blp.arguments` uses) with the body policy.

    It runs inside the view, after any per-view body limit (face evidence, uploads) has been set.
    """

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        # Fields may ask where their value came from (app/web/jsontypes.py: text is a number in a query
        # string, never in a JSON body).
        location = location or self.location
        with Context({"location": location}):
            return super().parse(argmap, req, location=location, **kwargs)

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data.strip():
            return core.missing
        return parse(data)

    def load_form(self, req, schema):
        form = super().load_form(req, schema)
        for key, values in req.form.lists():
            if text_problem(key) or any(text_problem(value) for value in values):
                raise UnstorableText(errors={"form": {key if not text_problem(key) else "_form": ["unstorable"]}})
        for key, file in req.files.items(multi=True):
            if text_problem(file.filename or ""):
                raise UnstorableText(errors={"files": {key: ["the file name holds unstorable characters"]}})
        return form
