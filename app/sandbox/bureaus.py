"""The sandbox bureau data services (development and tests only; never imported in production mode).

`create_bureau_app(kind)` builds a small Flask app speaking the connector wire protocol
(`shared_data.connectors`) for one bureau, answering for the sandbox people (`app.sandbox.people`) in that
bureau's own native shape. `flask dev` and the tests run each as a real HTTP server on 127.0.0.1
(`app.sandbox.server.serve`); `sandbox_specs` gives the connector specifications that register them.

Kinds, their bureau (code), query path and native answer (health paths: `BUREAUS[kind].health_path`):

- `population`, 郑州市公安局 (ga), `/rkxx/v1/query`:
  `{"code":0,"msg","data":{"xm","sfzh","xb","csrq":"19850312","hjdz",…,"zp":<base64 JPEG>},"gxsj"}`
- `social_insurance`, 人社局 (rsj), `/api/sbxx/query`:
  `{"code":"0000","message","result":{"insured":{"cbzt","ljjfys":120,"dwmc","yb":{…}},"gxsj"}}`
- `housing_fund`, 公积金中心 (gjj), `/gjj/grzh/query`:
  `{"status":"success","data":{"grzh","zhzt","zhye":"86432.15",…},"update_time"}`
- `property`, 自然资源和规划局 (zrzy), `/bdc/qlxx/query`:
  `{"code":200,"msg","data":{"qlrmc","bdcqz":[{"bdcqzh","zl","mj","yt","djsj"}],"zs":1,"dyzt"},"gxsj"}`
- `business`, 市场监管局 (scjg), `/scztxx/query`:
  `{"success":true,"data":{"total":1,"list":[{"tyshxydm","ztmc","fddbr",…}]},"lastModified":<epoch ms>}`
- `marriage`, 民政局 (mz), `/hydj/query`:
  `{"code":"0","data":{"hyzt","pofxm","pofsfzh","jhzh","djrq"},"gxsj":"20121008102600"}`

Each answers only the requested elements' fields (minimisation on the bureau's side too). Order of checks
on a query: auth (401: HMAC with a ±300 s clock window and nonce replay rejection, or API key; every query is
refused until a secret is set), then the `X-Purpose` header (400 without), then the body (400), then the fault
mode, then the person (404 if the registry does not hold them). `GET {health_path}` → 200 (no auth).

Control API (no auth: it listens on 127.0.0.1 only, in development):

- `POST /_sandbox/mode {"mode": ..., "delay_ms": int?, "size_bytes": int?}` → 200 with the state. Modes:
  `normal` (answer after `delay_ms`, default 0), `slow` (answer after `delay_ms`, default 3000), `hang` (hold
  the request without answering, up to `HANG_SECONDS`, then 504; a mode change releases it early),
  `error500` (HTML 500), `malformed` (truncated JSON), `wrong_types` (every non-string field a Chinese text,
  e.g. months "一百二十"), `oversized` (a valid-looking JSON body of `size_bytes`, default 8 MB, streamed
  without Content-Length), `wrong_content_type` (200 text/html), `redirect` (302 to the cloud metadata
  address), `dribble` (the normal answer, a few bytes every `delay_ms`, default 200). `slow`, `hang` and
  `error500` affect the health path too.
- `POST /_sandbox/secret {"secret": ..., "auth_type"?: "hmac"|"api_key"}` → 204: the secret the platform
  generated when the connector was registered.
- `POST /_sandbox/reset` → 204: normal mode, no delay, empty journal (the secret stays).
- `GET /_sandbox/state` → mode, delay, query count, bytes streamed in oversized mode, and the journal of the
  last queries (elements, purpose, context headers, whether the person was known; never the ID number).

State is per app instance, in memory, behind a lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from flask import Flask, Response, current_app, request

from app.sandbox import people
from shared_data import signing
from shared_data.connectors import (
    ACTING_USER_HEADER,
    APPLICATION_HEADER,
    PURPOSE_HEADER,
    REQUEST_ID_HEADER,
    ConnectorSpec,
    extract,
)
from shared_data.elements import ELEMENTS
from shared_data.errors import SignatureInvalid

MODES = (
    "normal",
    "slow",
    "hang",
    "error500",
    "malformed",
    "wrong_types",
    "oversized",
    "wrong_content_type",
    "redirect",
    "dribble",
)
HANG_SECONDS = 55.0  # far beyond any client timeout, yet a hung request ends by itself within a minute
DEFAULT_SLOW_MS = 3000
DEFAULT_DRIBBLE_MS = 200
DEFAULT_OVERSIZED_BYTES = 8 * 1024 * 1024
MAX_DELAY_MS = 60_000
MAX_OVERSIZED_BYTES = 256 * 1024 * 1024
METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
# What `wrong_types` puts in place of each non-string value, by element type.
WRONG_VALUES = {
    "integer": "一百二十",
    "number": "八万六千元",
    "date": "八五年三月十二日",
    "boolean": "是的",
    "image": "照片暂缺",
    "list": "无",
    "object": "无",
}


def _beijing(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# --- the native answers ------------------------------------------------------------------------------------


def _population(id_number: str) -> dict | None:
    r = people.POPULATION.get(id_number)
    if r is None:
        return None
    data = {
        "xm": r.name,
        "sfzh": r.id_number,
        "xb": r.gender,
        "csrq": r.birth_date.strftime("%Y%m%d"),
        "mz": r.ethnicity,
        "hjqhdm": r.household_region,
        "hjdz": r.household_address,
        "hzxm": r.household_head,
        "hyzk": r.marital_status,
    }
    if r.photo:
        data["zp"] = people.photo_base64(r.photo)
    return {"code": 0, "msg": "查询成功", "data": data, "gxsj": _beijing(r.updated_at)}


def _social_insurance(id_number: str) -> dict | None:
    r = people.SOCIAL_INSURANCE.get(id_number)
    if r is None:
        return None
    insured = {
        "cbzt": r.status,
        "ljjfys": r.months_paid,
        "dwmc": r.employer,
        "cbd": r.insured_region,
        "sbkh": r.card_number,
        "sbkzt": r.card_status,
        "sydjzt": r.unemployment_status,
        "yb": {"cbzt": r.medical_insurance_status, "xzmc": r.medical_insurance_type},
    }
    if r.retirement_date:
        insured["txrq"] = r.retirement_date.isoformat()
    return {
        "code": "0000",
        "message": "成功",
        "result": {"insured": insured, "gxsj": r.updated_at.isoformat()},
    }


def _housing_fund(id_number: str) -> dict | None:
    r = people.HOUSING_FUND.get(id_number)
    if r is None:
        return None
    data = {
        "grzh": r.account_number,
        "zhzt": r.account_status,
        "zhye": f"{r.balance:.2f}",  # amounts as strings, as many finance systems send them
        "yjce": f"{r.monthly_deposit:.2f}",
        "dwmc": r.employer,
        "dwzh": r.unit_account_number,
        "lxjcys": r.deposit_months,
        "dkzt": r.loan_status,
    }
    return {"status": "success", "data": data, "update_time": _beijing(r.updated_at)}


def _property(id_number: str) -> dict | None:
    r = people.PROPERTY.get(id_number)
    holder = people.person(id_number)
    if r is None or holder is None:
        return None
    certificates = [
        {
            "bdcqzh": c.number,
            "zl": c.location,
            "mj": float(c.area_m2),
            "yt": c.usage,
            "djsj": c.registered_on.isoformat(),
        }
        for c in r.certificates
    ]
    data = {"qlrmc": holder.name, "bdcqz": certificates, "zs": len(certificates), "dyzt": r.mortgage_status}
    return {"code": 200, "msg": "ok", "data": data, "gxsj": _beijing(r.updated_at)}


def _business(id_number: str) -> dict | None:
    r = people.BUSINESS.get(id_number)
    if r is None:
        return None
    entity = {
        "tyshxydm": r.uscc,
        "ztmc": r.name,
        "fddbr": r.legal_representative,
        "ztlx": r.type,
        "zs": r.registered_address,
        "djzt": r.status,
        "zczb": float(r.registered_capital),
        "jyfw": r.scope,
        "clrq": r.established_date.isoformat(),
    }
    if r.food_licence_number:
        entity["spjyxkzh"] = r.food_licence_number
    return {
        "success": True,
        "data": {"total": 1, "list": [entity]},
        "lastModified": int(r.updated_at.timestamp() * 1000),
    }


def _marriage(id_number: str) -> dict | None:
    r = people.MARRIAGE.get(id_number)
    if r is None:
        return None
    data = {
        "hyzt": r.status,
        "pofxm": r.spouse_name,
        "pofsfzh": r.spouse_id_number,
        "jhzh": r.certificate_number,
        "djrq": r.registration_date.isoformat(),
        "djjg": r.registration_office,
    }
    return {"code": "0", "data": data, "gxsj": r.updated_at.strftime("%Y%m%d%H%M%S")}


@dataclass(frozen=True)
class Bureau:
    """One kind of sandbox bureau: its connector's identity, paths and native answer shape."""

    kind: str
    code: str  # the bureau's short code
    connector_id: str
    name: str  # the connector's name, in Chinese
    bureau: str
    query_path: str
    health_path: str
    record_path: str  # where the person's record object sits in the native answer
    fields: Mapping[str, str]  # element → dotted key path inside the record object
    updated_path: str
    answer: Callable[[str], dict | None]  # id_number → the full native answer, or None if not held

    @property
    def mapping(self) -> dict[str, str]:
        """The connector mapping: element → source path in the native answer."""
        return {element: f"{self.record_path}.{path}" for element, path in self.fields.items()}


BUREAUS: dict[str, Bureau] = {
    b.kind: b
    for b in (
        Bureau(
            kind="population",
            code="ga",
            connector_id="ga-population",
            name="人口基础信息查询",
            bureau="郑州市公安局",
            query_path="/rkxx/v1/query",
            health_path="/health",
            record_path="data",
            fields={
                "person.name": "xm",
                "person.id_number": "sfzh",
                "person.gender": "xb",
                "person.birth_date": "csrq",
                "person.ethnicity": "mz",
                "person.household_region": "hjqhdm",
                "person.household_address": "hjdz",
                "person.household_head": "hzxm",
                "person.marital_status": "hyzk",
                "person.photo": "zp",
            },
            updated_path="gxsj",
            answer=_population,
        ),
        Bureau(
            kind="social_insurance",
            code="rsj",
            connector_id="rsj-social-insurance",
            name="社会保险参保信息查询",
            bureau="郑州市人力资源和社会保障局",
            query_path="/api/sbxx/query",
            health_path="/api/health",
            record_path="result.insured",
            fields={
                "social_insurance.status": "cbzt",
                "social_insurance.months_paid": "ljjfys",
                "social_insurance.employer": "dwmc",
                "social_insurance.insured_region": "cbd",
                "social_insurance.card_number": "sbkh",
                "social_insurance.card_status": "sbkzt",
                "social_insurance.unemployment_status": "sydjzt",
                "social_insurance.medical_insurance_status": "yb.cbzt",
                "social_insurance.medical_insurance_type": "yb.xzmc",
                "social_insurance.retirement_date": "txrq",
            },
            updated_path="result.gxsj",
            answer=_social_insurance,
        ),
        Bureau(
            kind="housing_fund",
            code="gjj",
            connector_id="gjj-housing-fund",
            name="住房公积金个人账户查询",
            bureau="郑州住房公积金管理中心",
            query_path="/gjj/grzh/query",
            health_path="/gjj/health",
            record_path="data",
            fields={
                "housing_fund.account_number": "grzh",
                "housing_fund.account_status": "zhzt",
                "housing_fund.balance": "zhye",
                "housing_fund.monthly_deposit": "yjce",
                "housing_fund.employer": "dwmc",
                "housing_fund.unit_account_number": "dwzh",
                "housing_fund.deposit_months": "lxjcys",
                "housing_fund.loan_status": "dkzt",
            },
            updated_path="update_time",
            answer=_housing_fund,
        ),
        Bureau(
            kind="property",
            code="zrzy",
            connector_id="zrzy-property",
            name="不动产登记信息查询",
            bureau="郑州市自然资源和规划局",
            query_path="/bdc/qlxx/query",
            health_path="/bdc/health",
            record_path="data",
            fields={
                # A list of the bureau's own certificate objects: {bdcqzh, zl, mj, yt, djsj}.
                "property.certificates": "bdcqz",
                "property.count": "zs",
                "property.mortgage_status": "dyzt",
            },
            updated_path="gxsj",
            answer=_property,
        ),
        Bureau(
            kind="business",
            code="scjg",
            connector_id="scjg-business",
            name="市场主体登记信息查询",
            bureau="郑州市市场监督管理局",
            query_path="/scztxx/query",
            health_path="/health",
            record_path="data.list[0]",
            fields={
                "business.uscc": "tyshxydm",
                "business.name": "ztmc",
                "business.legal_representative": "fddbr",
                "business.type": "ztlx",
                "business.registered_address": "zs",
                "business.status": "djzt",
                "business.registered_capital": "zczb",
                "business.scope": "jyfw",
                "business.established_date": "clrq",
                "business.food_licence_number": "spjyxkzh",
            },
            updated_path="lastModified",
            answer=_business,
        ),
        Bureau(
            kind="marriage",
            code="mz",
            connector_id="mz-marriage",
            name="婚姻登记信息查询",
            bureau="郑州市民政局",
            query_path="/hydj/query",
            health_path="/health",
            record_path="data",
            fields={
                "marriage.status": "hyzt",
                "marriage.spouse_name": "pofxm",
                "marriage.spouse_id_number": "pofsfzh",
                "marriage.certificate_number": "jhzh",
                "marriage.registration_date": "djrq",
            },
            updated_path="gxsj",
            answer=_marriage,
        ),
    )
}
KINDS = tuple(BUREAUS)


def sandbox_specs(
    base_urls: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    auth_type: str = "hmac",
    timeout_seconds: float = 2.0,
) -> list[ConnectorSpec]:
    """Connector specs for the sandbox bureaus running at `base_urls` (kind → URL), with `secrets` by kind."""
    return [
        ConnectorSpec(
            id=b.connector_id,
            name=b.name,
            bureau=b.bureau,
            base_url=base_urls[b.kind],
            mapping=b.mapping,
            secret=secrets[b.kind],
            auth_type=auth_type,
            query_path=b.query_path,
            health_path=b.health_path,
            timeout_seconds=timeout_seconds,
            trust_level="A",
            source_updated_path=b.updated_path,
            max_response_bytes=1024 * 1024,
        )
        for b in BUREAUS.values()
        if b.kind in base_urls
    ]


# --- state and control -------------------------------------------------------------------------------------


class BureauState:
    """One sandbox bureau's switchable behaviour and journal; thread-safe."""

    def __init__(self, *, secret: str | None, auth_type: str):
        self._lock = threading.Lock()
        self.secret = secret
        self.auth_type = auth_type
        self.nonces = signing.NonceCache()
        self.mode = "normal"
        self.delay_ms = 0
        self.size_bytes = DEFAULT_OVERSIZED_BYTES
        self.queries = 0
        self.streamed_bytes = 0
        self.stream_completed = False
        self.journal: deque[dict] = deque(maxlen=200)
        self._release = threading.Event()  # set to end the current hangs early

    def set_mode(self, mode: str, delay_ms: int, size_bytes: int) -> None:
        with self._lock:
            self.mode, self.delay_ms, self.size_bytes = mode, delay_ms, size_bytes
            self._release.set()
            self._release = threading.Event()

    def set_secret(self, secret: str, auth_type: str) -> None:
        with self._lock:
            self.secret, self.auth_type = secret, auth_type

    def reset(self) -> None:
        self.set_mode("normal", 0, DEFAULT_OVERSIZED_BYTES)
        with self._lock:
            self.queries = 0
            self.streamed_bytes = 0
            self.stream_completed = False
            self.journal.clear()

    def behaviour(self) -> tuple[str, int, int, threading.Event]:
        """The current mode, delay, oversized size, and the event that releases hangs."""
        with self._lock:
            return self.mode, self.delay_ms, self.size_bytes, self._release

    def credentials(self) -> tuple[str | None, str]:
        with self._lock:
            return self.secret, self.auth_type

    def record(self, entry: dict) -> None:
        with self._lock:
            self.queries += 1
            self.journal.append(entry)

    def streamed(self, count: int, *, completed: bool = False) -> None:
        with self._lock:
            self.streamed_bytes += count
            self.stream_completed = self.stream_completed or completed

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "mode": self.mode,
                "delay_ms": self.delay_ms,
                "size_bytes": self.size_bytes,
                "auth_type": self.auth_type,
                "secret_set": self.secret is not None,
                "queries": self.queries,
                "streamed_bytes": self.streamed_bytes,
                "stream_completed": self.stream_completed,
                "journal": list(self.journal),
            }


def _state() -> BureauState:
    return current_app.extensions["sandbox_bureau"]


def _bureau() -> Bureau:
    return current_app.extensions["sandbox_bureau_kind"]


def _json(document: Any, status: int = 200) -> Response:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type="application/json; charset=utf-8")


def _error(status: int, message: str, reason: str | None = None) -> Response:
    document: dict[str, Any] = {"code": status, "msg": message}
    if reason:
        document["reason"] = reason
    return _json(document, status)


def set_mode():
    """POST /_sandbox/mode: switch the fault mode."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("mode") not in MODES:
        return _error(400, f"mode 必须是 {', '.join(MODES)} 之一")
    delay = body.get("delay_ms", 0)
    size = body.get("size_bytes", DEFAULT_OVERSIZED_BYTES)
    if not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_MS:
        return _error(400, f"delay_ms 须为 0 到 {MAX_DELAY_MS} 的整数")
    if not isinstance(size, int) or not 1024 <= size <= MAX_OVERSIZED_BYTES:
        return _error(400, f"size_bytes 须为 1024 到 {MAX_OVERSIZED_BYTES} 的整数")
    _state().set_mode(body["mode"], delay, size)
    return _json(_state().snapshot())


def set_secret():
    """POST /_sandbox/secret: the signing secret (and auth type) the platform generated."""
    body = request.get_json(silent=True)
    secret = body.get("secret") if isinstance(body, dict) else None
    auth_type = body.get("auth_type", _state().auth_type) if isinstance(body, dict) else None
    if not isinstance(secret, str) or len(secret) < 16 or auth_type not in ("hmac", "api_key"):
        return _error(400, "secret 至少 16 个字符;auth_type 为 hmac 或 api_key")
    _state().set_secret(secret, auth_type)
    return Response(status=204)


def reset():
    """POST /_sandbox/reset: normal mode, no delay, empty journal."""
    _state().reset()
    return Response(status=204)


def show_state():
    """GET /_sandbox/state: mode, counters and the journal of recent queries."""
    return _json(_state().snapshot())


# --- the data service --------------------------------------------------------------------------------------


def health():
    """GET {health_path}: 200 while up (the slow, hang and error500 modes apply)."""
    mode, delay_ms, _, release = _state().behaviour()
    if mode == "hang":
        release.wait(HANG_SECONDS)
        return _error(504, "网关超时")
    if mode == "error500":
        return Response(
            "<html><body><h1>500 Internal Server Error</h1></body></html>", 500, mimetype="text/html"
        )
    _sleep(mode, delay_ms)
    return _json({"status": "UP"})


def query():
    """POST {query_path}: the wire protocol's query."""
    state, bureau = _state(), _bureau()
    raw = request.get_data(cache=True)
    refusal = _check_auth(state, raw)
    if refusal is not None:
        return refusal
    try:
        purpose = unquote(request.headers.get(PURPOSE_HEADER, ""), errors="strict")
    except UnicodeDecodeError:
        purpose = ""
    if not purpose.strip():
        return _error(400, "缺少查询用途(X-Purpose)")
    body = request.get_json(silent=True)
    id_number = body.get("id_number") if isinstance(body, dict) else None
    elements = body.get("elements") if isinstance(body, dict) else None
    if (
        not isinstance(id_number, str)
        or not isinstance(elements, list)
        or not elements
        or not all(isinstance(e, str) and e in bureau.fields for e in elements)
    ):
        return _error(400, "请求体须为 {id_number, elements},且只含本部门提供的数据项")
    answer = bureau.answer(id_number)
    state.record(
        {
            "elements": list(elements),
            "purpose": purpose,
            "application_id": request.headers.get(APPLICATION_HEADER),
            "acting_user": request.headers.get(ACTING_USER_HEADER),
            "request_id": request.headers.get(REQUEST_ID_HEADER),
            "known_person": answer is not None,
        }
    )
    mode, delay_ms, size_bytes, release = state.behaviour()
    fault = _fault(mode, delay_ms, size_bytes, release, state)
    if fault is not None:
        return fault
    if answer is None:
        return _error(404, "查无此人")
    answer = _minimised(answer, bureau, elements)
    if mode == "wrong_types":
        _corrupt(answer, bureau, elements)
    if mode == "dribble":
        return _dribble(answer, delay_ms or DEFAULT_DRIBBLE_MS)
    return _json(answer)


def _check_auth(state: BureauState, raw: bytes) -> Response | None:
    secret, auth_type = state.credentials()
    if secret is None:
        return _error(401, "未配置接入密钥", "no_secret")
    try:
        if auth_type == "api_key":
            signing.verify_api_key(secret, request.headers.get(signing.API_KEY_HEADER))
        else:
            signing.verify_signature(
                secret,
                method=request.method,
                path=request.path,
                headers=request.headers,
                body=raw,
                now=time.time(),
                nonces=state.nonces,
            )
    except SignatureInvalid as exc:
        return _error(401, "认证失败", exc.reason)
    return None


def _sleep(mode: str, delay_ms: int) -> None:
    if mode == "slow":
        time.sleep((delay_ms or DEFAULT_SLOW_MS) / 1000)
    elif mode in ("normal", "wrong_types") and delay_ms:
        time.sleep(delay_ms / 1000)


def _fault(mode: str, delay_ms: int, size_bytes: int, release: threading.Event, state: BureauState):
    """The response a fault mode gives instead of the normal answer, or None to answer normally."""
    if mode == "hang":
        release.wait(HANG_SECONDS)
        return _error(504, "网关超时")
    if mode == "error500":
        return Response(
            "<html><body><h1>500 Internal Server Error</h1></body></html>", 500, mimetype="text/html"
        )
    if mode == "malformed":
        return Response('{"code":0,"data":{"xm":', 200, content_type="application/json; charset=utf-8")
    if mode == "wrong_content_type":
        return Response("<html><body>统一身份认证平台 - 请登录</body></html>", 200, mimetype="text/html")
    if mode == "redirect":
        return Response("", 302, headers={"Location": METADATA_URL})
    if mode == "oversized":
        return Response(_oversized(size_bytes, state), 200, content_type="application/json; charset=utf-8")
    _sleep(mode, delay_ms)
    return None


def _oversized(size_bytes: int, state: BureauState) -> Iterator[bytes]:
    """A JSON body of about `size_bytes`, streamed; counts what it managed to hand to the socket."""
    chunk = b"x" * 65536
    head, tail = b'{"code":0,"data":{"padding":"', b'"}}'
    yield head
    sent = len(head)
    state.streamed(len(head))
    while sent < size_bytes:
        yield chunk
        sent += len(chunk)
        state.streamed(len(chunk))
    yield tail
    state.streamed(len(tail), completed=True)


def _dribble(answer: dict, delay_ms: int) -> Response:
    body = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()

    def pieces() -> Iterator[bytes]:
        stop = time.monotonic() + HANG_SECONDS
        for start in range(0, len(body), 8):
            yield body[start : start + 8]
            if time.monotonic() > stop:
                return
            time.sleep(delay_ms / 1000)

    return Response(pieces(), 200, content_type="application/json; charset=utf-8")


def _minimised(answer: dict, bureau: Bureau, elements: list[str]) -> dict:
    """`answer` with only the requested elements' fields left in its record object."""
    record = extract(answer, bureau.record_path)
    kept: dict[str, Any] = {}
    for element in elements:
        keys = bureau.fields[element].split(".")
        node: Any = record
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            target = kept
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = node
    record.clear()
    record.update(kept)
    return answer


def _corrupt(answer: dict, bureau: Bureau, elements: list[str]) -> None:
    """Replace every requested non-string value with Chinese text (the `wrong_types` fault)."""
    record = extract(answer, bureau.record_path)
    for element in elements:
        wrong = WRONG_VALUES.get(ELEMENTS[element].type)
        keys = bureau.fields[element].split(".")
        target = record
        for key in keys[:-1]:
            target = target.get(key, {})
        if wrong is not None and keys[-1] in target:
            target[keys[-1]] = wrong


def create_bureau_app(kind: str, *, secret: str | None = None, auth_type: str = "hmac") -> Flask:
    """A sandbox bureau data service of `kind` (see BUREAUS); without `secret` it refuses every query."""
    if kind not in BUREAUS:
        raise ValueError(f"unknown sandbox bureau kind {kind!r}; one of {', '.join(KINDS)}")
    if auth_type not in ("hmac", "api_key"):
        raise ValueError("auth_type must be hmac or api_key")
    bureau = BUREAUS[kind]
    app = Flask(f"app.sandbox.bureaus.{kind}")
    app.extensions["sandbox_bureau"] = BureauState(secret=secret, auth_type=auth_type)
    app.extensions["sandbox_bureau_kind"] = bureau
    app.add_url_rule(bureau.query_path, "query", query, methods=["POST"])
    app.add_url_rule(bureau.health_path, "health", health, methods=["GET"])
    app.add_url_rule("/_sandbox/mode", "set_mode", set_mode, methods=["POST"])
    app.add_url_rule("/_sandbox/secret", "set_secret", set_secret, methods=["POST"])
    app.add_url_rule("/_sandbox/reset", "reset", reset, methods=["POST"])
    app.add_url_rule("/_sandbox/state", "state", show_state, methods=["GET"])
    return app
