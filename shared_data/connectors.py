"""Connector specifications, the registry of active ones, and the mapping of bureau answers to data elements.

A **connector** is a bureau's data service registered on the platform. Its `ConnectorSpec` says where the
service is, how to authenticate to it, which standard data elements (`shared_data.elements`) it provides and
where each element sits in the bureau's own response (`mapping`).

Wire protocol (the platform's standard for bureau data services)
-----------------------------------------------------------------

Query: `POST {base_url}{query_path}` with a JSON body (UTF-8)

    {"id_number": "410105198503120013", "elements": ["person.name", "person.household_address"]}

`elements` lists **standard data element names** (our dictionary, not the bureau's field names): the bureau
learns exactly what the platform asks for and why, may answer with only those fields (minimisation on both
sides), and a bureau's internal field names can change without the request changing. Only elements the
connector is registered for are ever requested.

Headers on every query:

| header | value |
|---|---|
| `Content-Type` | `application/json` |
| `Accept` / `Accept-Encoding` | `application/json` / `identity` (compressed answers are refused) |
| `X-Purpose` | the purpose the citizen consented to, UTF-8 percent-encoded (`quote(s, safe="")`) |
| `X-Application-Id` | the application the data is for (opaque id) |
| `X-Acting-User` | who acts: a pseudonymous id such as `citizen:42` or `staff:7` (never a name) |
| `X-Request-Id` | our request id, for correlating both sides' logs |
| auth | `X-Api-Key: <secret>`, or HMAC: `X-Timestamp`, `X-Nonce`, `X-Signature` (see `shared_data.signing`) |

Answers: found → `200` with `Content-Type: application/json` and a JSON object in the bureau's **own native
shape** (the spec's `mapping` says where each element is, e.g. `data.hjdz`); not found → `404` (any body);
bad auth → `401`; missing purpose or bad body → `400`. Any other status, a redirect, a non-JSON or oversized
body is a failed call. Health: `GET {base_url}{health_path}` → `200`.

Source paths
------------

A path addresses a value in the JSON answer: dotted object keys and list indices, e.g. `data.hjdz`,
`result.insured.months`, `data.list[0].tyshxydm`, and `[*]` to collect one field from every item of a list
(`data.zs[*].bdcqzh` → a list of certificate numbers). Nothing else: no expressions, no eval.

Values are checked against the element's declared type (`coerce`) and returned as JSON-native values:
`date` → `"YYYY-MM-DD"`, `image` → base64 string, `number` → int or float.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from shared_data.elements import ELEMENTS, UnknownElement
from shared_data.errors import (
    DuplicateConnector,
    InvalidPath,
    InvalidSpec,
    PathNotFound,
    UnknownConnector,
    ValueTypeError,
)

# Context headers of the wire protocol (auth headers: shared_data.signing).
PURPOSE_HEADER = "X-Purpose"
APPLICATION_HEADER = "X-Application-Id"
ACTING_USER_HEADER = "X-Acting-User"
REQUEST_ID_HEADER = "X-Request-Id"

AuthType = Literal["api_key", "hmac"]
TrustLevel = Literal["A", "B", "C", "D"]
AUTH_TYPES = ("api_key", "hmac")
TRUST_LEVELS = ("A", "B", "C", "D")  # 电子证照 trust levels, most trusted first
LOCKING_TRUST_LEVELS = frozenset({"A", "B"})  # values from these sources are locked in the form

MIN_TIMEOUT_SECONDS = 0.1
MAX_TIMEOUT_SECONDS = 30.0
MIN_RESPONSE_BYTES = 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MIN_SECRET_LENGTH = 16

CONNECTOR_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
# Bureau times without a UTC offset are Beijing time (China has one time zone and no daylight saving).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


# --- source paths -----------------------------------------------------------------------------------------

WILDCARD = "*"  # the `[*]` step: every item of a list
Step = str | int  # an object key, a list index, or WILDCARD (a key can never be "*")
_SEGMENT = re.compile(r"([^\W\d][\w-]*)((?:\[(?:[0-9]{1,6}|\*)\])*)")
_INDEX = re.compile(r"\[([0-9]+|\*)\]")
MAX_PATH_LENGTH = 200


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[Step, ...]:
    """The steps of a source path (`data.list[0].name` → ("data", "list", 0, "name")); InvalidPath if bad."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"a path is 1-{MAX_PATH_LENGTH} characters")
    steps: list[Step] = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if not match:
            raise InvalidPath(f"bad path segment {segment!r} in {path!r}")
        steps.append(match.group(1))
        for index in _INDEX.findall(match.group(2)):
            steps.append(WILDCARD if index == WILDCARD else int(index))
    return tuple(steps)


def extract(document: Any, path: str) -> Any:
    """The value at `path` in a parsed JSON document; PathNotFound if it leads nowhere."""
    return _walk(document, parse_path(path), path)


def _walk(node: Any, steps: tuple[Step, ...], path: str) -> Any:
    for position, step in enumerate(steps):
        if step == WILDCARD:
            if not isinstance(node, list):
                raise PathNotFound(path)
            rest = steps[position + 1 :]
            return [_walk(item, rest, path) for item in node]
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise PathNotFound(path)
        elif not isinstance(node, dict) or step not in node:
            raise PathNotFound(path)
        node = node[step]
    return node


# --- value types --------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,18}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COMPACT_DATE = re.compile(r"[0-9]{8}")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG


def coerce(value: Any, type_: str) -> Any:
    """`value` as a JSON-native value of the element type `type_`; ValueTypeError if it is not one."""
    try:
        check = _COERCERS[type_]
    except KeyError:
        raise ValueError(f"unknown element type {type_!r}") from None
    return check(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if _is_int(value):  # account and card numbers sometimes arrive as JSON numbers
        return str(value)
    raise ValueTypeError("string", f"got {_kind(value)}")


def _integer(value: Any) -> int:
    if _is_int(value):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueTypeError("integer", f"not an integer (got {_kind(value)})")


def _number(value: Any) -> int | float:
    if _is_int(value):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value.strip())  # amounts often arrive as strings ("86432.15")
    raise ValueTypeError("number", f"not a number (got {_kind(value)})")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueTypeError("boolean", f"not a boolean (got {_kind(value)})")


def _date(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            if _ISO_DATE.fullmatch(text):
                return date.fromisoformat(text).isoformat()
            if _COMPACT_DATE.fullmatch(text):  # 19850312, common in Chinese registries
                return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
        except ValueError:
            raise ValueTypeError("date", "no such calendar date") from None
    raise ValueTypeError("date", f"not a date (got {_kind(value)})")


def _list(value: Any) -> list:
    if isinstance(value, list):
        return value
    raise ValueTypeError("list", f"got {_kind(value)}")


def _object(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    raise ValueTypeError("object", f"got {_kind(value)}")


def _image(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueTypeError("image", f"got {_kind(value)}")
    text = "".join(value.split())
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueTypeError("image", "not base64") from None
    if not data.startswith(_IMAGE_MAGIC):
        raise ValueTypeError("image", "not a JPEG or PNG image")
    return text


def _kind(value: Any) -> str:
    """What a bad value is, for an error message: its JSON type, never the value (it is personal data)."""
    return {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


_COERCERS = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "list": _list,
    "object": _object,
    "image": _image,
}


def parse_source_time(value: Any) -> datetime:
    """A record's last-updated time as an aware UTC datetime; naive times are Beijing time."""
    if _is_int(value) or (isinstance(value, float) and math.isfinite(value)):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueTypeError("time", "epoch out of range") from None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueTypeError("time", f"not a time (got {_kind(value)})")
    text = value.strip()
    try:
        if re.fullmatch(r"[0-9]{14}", text):  # 20240516093000
            parsed = datetime.strptime(text, "%Y%m%d%H%M%S")
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueTypeError("time", f"not a time (got {_kind(value)})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BEIJING)
    return parsed.astimezone(UTC)


# --- specifications ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConnectorSpec:
    """An active connector: where the bureau service is, how to call it, what it provides and from where."""

    id: str  # stable machine name, e.g. "ga-population"
    name: str  # shown to people, in Chinese
    bureau: str  # the bureau that operates it (provenance shown with every value)
    base_url: str
    # element name → source path in the native answer; its keys are the elements this connector provides.
    mapping: Mapping[str, str] = field(hash=False)
    secret: str = field(repr=False)
    auth_type: AuthType = "hmac"
    query_path: str = "/query"
    health_path: str = "/health"
    # The wall-clock cap of one call: connect + wait + read the whole body (the connect part is capped lower).
    timeout_seconds: float = 3.0
    trust_level: TrustLevel = "A"
    source_updated_path: str | None = None  # where the record's last-updated time is, if the bureau says
    max_response_bytes: int = 1024 * 1024

    def __post_init__(self):
        # Frozen means frozen: a caller keeping a reference to the dict it passed cannot change the spec.
        object.__setattr__(self, "mapping", MappingProxyType(dict(self.mapping)))

    @property
    def elements(self) -> frozenset[str]:
        """The data elements this connector provides."""
        return frozenset(self.mapping)

    @property
    def query_url(self) -> str:
        return self.base_url.rstrip("/") + self.query_path

    @property
    def health_url(self) -> str:
        return self.base_url.rstrip("/") + self.health_path

    def validate(self) -> None:
        """Raise InvalidSpec listing every problem (of form: `UrlGuard.check` judges the URL's safety)."""
        errors: dict[str, list[str]] = {}

        def problem(name: str, message: str) -> None:
            errors.setdefault(name, []).append(message)

        if not isinstance(self.id, str) or not CONNECTOR_ID.fullmatch(self.id):
            problem("id", "2-64 characters of a-z 0-9 _ -, starting with a letter or digit")
        for name in ("name", "bureau"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip() or len(text) > 100:
                problem(name, "1-100 characters")
        self._validate_base_url(problem)
        for name in ("query_path", "health_path"):
            path = getattr(self, name)
            if (
                not isinstance(path, str)
                or not URL_PATH.fullmatch(path)
                or "//" in path
                or "/../" in path + "/"
            ):
                problem(name, "an absolute path of A-Z a-z 0-9 . _ ~ / -")
        if self.auth_type not in AUTH_TYPES:
            problem("auth_type", f"one of {', '.join(AUTH_TYPES)}")
        if not isinstance(self.secret, str) or len(self.secret) < MIN_SECRET_LENGTH:
            problem("secret", f"at least {MIN_SECRET_LENGTH} characters")
        timeout = self.timeout_seconds
        if not isinstance(timeout, (int, float)) or not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS:
            problem("timeout_seconds", f"between {MIN_TIMEOUT_SECONDS} and {MAX_TIMEOUT_SECONDS}")
        if self.trust_level not in TRUST_LEVELS:
            problem("trust_level", f"one of {', '.join(TRUST_LEVELS)}")
        size = self.max_response_bytes
        if not _is_int(size) or not MIN_RESPONSE_BYTES <= size <= MAX_RESPONSE_BYTES:
            problem("max_response_bytes", f"between {MIN_RESPONSE_BYTES} and {MAX_RESPONSE_BYTES}")
        if not self.mapping:
            problem("mapping", "at least one element")
        for element, path in self.mapping.items():
            if element not in ELEMENTS:
                problem("mapping", f"unknown data element {element!r}")
            try:
                parse_path(path)
            except InvalidPath as exc:
                problem("mapping", f"{element}: {exc}")
        if self.source_updated_path is not None:
            try:
                parse_path(self.source_updated_path)
            except InvalidPath as exc:
                problem("source_updated_path", str(exc))
        if errors:
            raise InvalidSpec(errors)

    def _validate_base_url(self, problem) -> None:
        url = self.base_url
        if not isinstance(url, str) or len(url) > 2048 or not url.isprintable() or " " in url:
            problem("base_url", "a URL of at most 2048 printable characters")
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem("base_url", "an http(s) URL with a host")
        if parts.query or parts.fragment or "@" in parts.netloc:
            problem("base_url", "no query, fragment or user info")


def locks(trust_level: str) -> bool:
    """Whether a value from a source of this trust level is locked (A: authority, B: staff-checked)."""
    return trust_level in LOCKING_TRUST_LEVELS


# --- the registry -----------------------------------------------------------------------------------------


class ConnectorRegistry:
    """The active connectors; `connectors_for` picks one provider per element, most trusted first.

    Build it from the active specifications and then only read it: lookups are safe from many threads, and
    `register` takes a lock. When the active set changes, the app builds a new registry.
    """

    def __init__(self, specs: Iterable[ConnectorSpec] = ()):
        self._specs: dict[str, ConnectorSpec] = {}
        self._lock = threading.Lock()
        for spec in specs:
            self.register(spec)

    def register(self, spec: ConnectorSpec) -> None:
        """Add a validated spec; InvalidSpec if it is invalid, DuplicateConnector if its id is taken."""
        spec.validate()
        with self._lock:
            if spec.id in self._specs:
                raise DuplicateConnector(spec.id)
            self._specs = {**self._specs, spec.id: spec}  # copy on write: readers never see a half update

    def get(self, connector_id: str) -> ConnectorSpec:
        """The spec with this id; UnknownConnector if none."""
        try:
            return self._specs[connector_id]
        except KeyError:
            raise UnknownConnector(connector_id) from None

    def __contains__(self, connector_id: object) -> bool:
        return connector_id in self._specs

    def __iter__(self):
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def providers_of(self, element: str) -> list[ConnectorSpec]:
        """The connectors providing `element`, most trusted first, then by name and id."""
        if element not in ELEMENTS:
            raise UnknownElement(element)
        providers = [spec for spec in self._specs.values() if element in spec.mapping]
        return sorted(providers, key=lambda spec: (TRUST_LEVELS.index(spec.trust_level), spec.name, spec.id))

    def connectors_for(self, elements: Iterable[str]) -> dict[ConnectorSpec, list[str]]:
        """One provider for each element that has one: {spec: [its elements, in the order given]}.

        Elements no active connector provides are left out (the prefill engine reports them `skipped`).
        """
        plan: dict[ConnectorSpec, list[str]] = {}
        for element in dict.fromkeys(elements):
            providers = self.providers_of(element)
            if providers:
                plan.setdefault(providers[0], []).append(element)
        return plan
