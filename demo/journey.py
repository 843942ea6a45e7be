"""`make demo`: the whole citizen journey over HTTP against the running sandbox, as a mini-program makes it.

    python -m demo.journey [--base-url http://127.0.0.1:5000] [--openid demo-zhangwei]

Start the sandbox first (`make run` in another terminal). The journey: a WeChat login, the real name of the
sandbox person 张伟 claimed and then proven by face (which binds it to this account: 换绑 from any other), the
guide of the zero-material housing-fund matter GJJ-GG-002, a draft, the data consent,
the prefill from the bureaus with its provenance, a face verification, the submission (sent twice with one
Idempotency-Key, as a flaky phone network would), the reviewer accepting, approving and delivering, the
citizen's timeline and evaluation (好差评), the citizen's own data-access record, and the auditor's view of
the logs with their hash chains verified. Every step prints the request, the status and the fields that matter.

The demo is a client like any other: it knows only the HTTP API and the sandbox's documented magic inputs
(docs: /work/shared/design/API.md, "The development sandbox"). It exits 1 with the API's `error` and `message`
when a step answers unexpectedly, and says how to start the API when it is not reachable.
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone
from typing import TextIO

import requests

DEFAULT_BASE_URL = "http://127.0.0.1:5000"
# Generous: the prefill fans out to six bureaus, and a first request may wait for the database to wake.
TIMEOUT_SECONDS = 15.0
MATTER_CODE = "GJJ-GG-002"  # 住房公积金个人缴存证明出具: face for identity, shared data for the rest
RETIREMENT_CODE = "GJJ-GG-001"  # 住房公积金提取(离休、退休): its pre-check refuses 张伟, who is not retired
# A sandbox person every sandbox bureau answers for (fictitious; API.md "The development sandbox").
PERSON_NAME = "张伟"
PERSON_ID_NUMBER = "410105198503120013"
# Every run logs in as the same WeChat user (the stand-in's `dev-<openid>` codes can be used again): the first run
# proves and binds the real name, later runs find it bound (claiming the same name and number again is
# idempotent) and start a new application. Another --openid takes the identity over by its own face pass.
DEFAULT_OPENID = "demo-zhangwei"
REVIEWER, AUDITOR, STAFF_PASSWORD = "reviewer-gjj", "auditor", "sandbox-pass"
CHINA_TIME = timezone(timedelta(hours=8), "CST")

STATUS_LABELS = {
    "draft": "草稿", "submitted": "已提交", "accepted": "已受理", "supplement_requested": "待补正",
    "resubmitted": "已补正", "approved": "已办结", "rejected": "未通过", "delivered": "已送达", "withdrawn": "已撤回",
}
EVENT_LABELS = {
    "created": "创建申请 created", "consent_granted": "授权数据共享 consent granted",
    "consent_withdrawn": "撤回授权 consent withdrawn", "prefilled": "自动预填 prefilled",
    "prefill_blocked": "预填受阻 prefill blocked", "form_updated": "填写表单 form updated",
    "material_uploaded": "上传材料 material uploaded", "material_promised": "告知承诺 material promised",
    "material_deferred": "容缺受理 material deferred", "evaluated": "好差评 evaluated",
    **{status: f"{label} {status}" for status, label in STATUS_LABELS.items()},
}
ACTOR_LABELS = {"citizen": "申请人 citizen", "agent": "代办人 agent", "reviewer": "审核人员 reviewer",
                "system": "系统 system"}
EVIDENCE_LABELS = {
    "face": "刷脸核验 face", "shared_data": "共享数据 shared data", "e_licence": "电子证照 e-licence",
    "in_person": "窗口出示 in person", "upload": "上传 upload", "promise": "告知承诺 promise",
    "deferred": "容缺 deferred", None: "—",
}
MATERIAL_STATUS_LABELS = {
    "satisfied": "已满足 satisfied", "available": "可免交 available (no document needed)",
    "promised": "已承诺 promised", "deferred": "容缺 deferred", "needs_upload": "需上传 needs upload",
    "in_person": "需到窗口 in person", "unavailable": "未取得 unavailable",
    "awaiting_prefill": "待预填 awaiting prefill",
}


class DemoError(Exception):
    """The journey cannot go on; the message says why (and, where it can, what to do)."""


class Api:
    """The mini-program's view of the API: one HTTP session, a timeout on every call, unexpected answers raised."""

    def __init__(self, base_url: str, out: TextIO, *, timeout: float = TIMEOUT_SECONDS):
        self.base_url = base_url.rstrip("/")
        self.out = out
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "zhangshangban-demo/1"

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def call(self, method: str, path: str, *, token: str | None = None, expect: tuple[int, ...] = (200,),
             **kwargs) -> requests.Response:
        """Send one request, print `METHOD path → status`, and raise DemoError unless the status is expected."""
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.session.request(method, self.base_url + path, headers=headers, timeout=self.timeout,
                                            **kwargs)
        except requests.ConnectionError as exc:
            raise DemoError(f"the API at {self.base_url} is not reachable ({type(exc).__name__}): "
                            "start it with `make run` first (in another terminal)") from None
        except requests.Timeout:
            raise DemoError(f"{method} {path} got no answer within {self.timeout:g} s") from None
        print(f"    {method} {response.request.path_url} → {response.status_code} {response.reason}", file=self.out)
        if response.status_code not in expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {describe_error(response)}")
        return response

    def json(self, method: str, path: str, **kwargs) -> dict:
        """`call`, then the JSON body."""
        return self.call(method, path, **kwargs).json()


def describe_error(response: requests.Response) -> str:
    """`error`: `message` of the API's one error shape, or the start of whatever else came back."""
    try:
        body = response.json()
    except ValueError:
        return f"(not JSON) {response.text[:200]!r}"
    if isinstance(body, dict) and "error" in body:
        details = f" {body['errors']}" if body.get("errors") else ""
        return f"{body['error']}: {body.get('message', '')}{details}"
    return str(body)[:300]


# ------------------------------------------------------------------------------------------------ printing


def text_width(text: str) -> int:
    """Columns `text` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - text_width(text))


def clip(text: str, columns: int) -> str:
    """`text` cut to `columns` terminal columns, with an ellipsis when cut."""
    if text_width(text) <= columns:
        return text
    kept = ""
    for ch in text:
        if text_width(kept + ch) > columns - 1:
            break
        kept += ch
    return kept + "…"


def local_time(iso: str | None) -> str:
    """An API time (UTC, ISO 8601) as Beijing time, to the second."""
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")


def short_hash(value: str | None) -> str:
    return f"{value[:12]}…" if value else "—"


class Report:
    """Numbered steps, indented lines and aligned tables on one text stream."""

    def __init__(self, out: TextIO):
        self.out = out
        self.number = 0

    def step(self, chinese: str, english: str) -> None:
        """Start the next numbered step."""
        self.number += 1
        print(f"\n{self.number:>2}. {chinese} — {english}", file=self.out)

    def line(self, text: str = "", indent: int = 4) -> None:
        """One line under the current step."""
        print(" " * indent + text, file=self.out)

    def pairs(self, rows: list[tuple[str, object]]) -> None:
        """`label: value` lines with the values aligned."""
        columns = max(text_width(label) for label, _ in rows)
        for label, value in rows:
            self.line(f"{pad(label, columns)} : {value}", indent=6)

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        """An aligned table, headers underlined."""
        columns = [max(text_width(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
        self.line("  ".join(pad(h, w) for h, w in zip(headers, columns, strict=True)).rstrip(), indent=6)
        self.line("  ".join("-" * w for w in columns), indent=6)
        for row in rows:
            self.line("  ".join(pad(str(c), w) for c, w in zip(row, columns, strict=True)).rstrip(), indent=6)


# ------------------------------------------------------------------------------------------------ the journey


def run_journey(base_url: str = DEFAULT_BASE_URL, out: TextIO = sys.stdout, *, openid: str = DEFAULT_OPENID,
                timeout: float = TIMEOUT_SECONDS) -> dict:
    """Run the whole journey against the API at `base_url`, printing each step; returns what it produced.

    The answer: `application_id`, `status` (delivered), `certificate_number`, `evaluated` (False while the
    evaluation endpoint does not exist), `chains_ok`. Raises DemoError when a step answers unexpectedly.
    """
    api = Api(base_url, out, timeout=timeout)
    try:
        return _journey(api, Report(out), openid)
    finally:
        api.close()


CONDITION_RESULTS = {"met": "符合 met", "not_met": "不符合 not met", "unknown": "待核验 unknown",
                     "not_checked": "不核验 text only"}


def _eligibility(report: Report, eligibility: dict) -> None:
    """The pre-check: each condition's result, the data it rests on and where that came from."""
    report.line(f"预审结果 result: {eligibility['result']}")
    rows = []
    for condition in eligibility["conditions"]:
        facts = "; ".join(f"{fact['label']}={fact.get('value')} ({(fact.get('source') or {}).get('bureau', '—')})"
                          for fact in condition["facts"]) or "—"
        rows.append([clip(condition["text"], 24), CONDITION_RESULTS.get(condition["result"], condition["result"]),
                     clip(facts, 60)])
    report.table(["受理条件 condition", "result", "依据 data (source)"], rows)


def _journey(api: Api, report: Report, openid: str) -> dict:
    print(f"掌上办 demo: 张伟 applies for a housing-fund deposit certificate, against {api.base_url}", file=report.out)
    api.call("GET", "/healthz")

    report.step("微信登录", "WeChat login (wx.login code through the WeChat stand-in)")
    login = api.json("POST", "/api/v1/auth/wechat/login", json={"code": f"dev-{openid}"})
    citizen_token = login["access_token"]
    already_bound = login["citizen"]["real_name_verified"]
    report.pairs([("citizen id", login["citizen"]["id"]),
                  ("已实名 real name verified", already_bound),
                  ("access token", f"{login['token_type']}, expires in {login['expires_in']} s")])

    report.step("实名登记", f"claim the real name {PERSON_NAME} (checked against the population registry)")
    me = api.json("POST", "/api/v1/me/real-name", token=citizen_token,
                  json={"name": PERSON_NAME, "id_number": PERSON_ID_NUMBER})
    report.pairs([("姓名 name", f"{me['real_name']} (masked)"), ("身份证号 ID number", f"{me['id_number']} (masked)"),
                  ("assurance", f"{me['assurance']} (a claim, not proof: no personal data is served yet)")])
    if already_bound:
        report.line("(bound on an earlier run: claiming the same name and number again is idempotent)")
    else:
        report.step("刷脸实名", "prove the claim by face (purpose `real_name`, sandbox evidence `pass`)")
        proof = api.json("POST", "/api/v1/face/sessions", token=citizen_token, expect=(201,),
                         json={"purpose": "real_name", "biometric_consent": True})
        bound = api.json("POST", f"/api/v1/face/sessions/{proof['session_id']}/complete", token=citizen_token,
                         json={"evidence": {"sandbox": "pass"}})
        if bound.get("assurance") != "face":
            raise DemoError(f"the real-name face verification answered {bound['decision']} ({bound.get('reason')})")
        citizen_token = bound["tokens"]["access_token"]
        report.pairs([("decision", bound["decision"]), ("assurance", bound["assurance"]),
                      ("tokens", "new ones, carrying assurance face")])

    report.step("办事指南", f"the matter's guide (一次告知): {MATTER_CODE}")
    matter = api.json("GET", f"/api/v1/matters/{MATTER_CODE}")
    labels = {element["name"]: element["label"] for element in matter.get("data_elements", [])}
    report.pairs([("事项 matter", f"{matter['name']} ({matter['code']})"),
                  ("部门 department", matter["department"]["name"]),
                  ("零材料 zero_material", matter["zero_material"]),
                  ("刷脸办 face", matter["face"]),
                  ("承诺时限 promised limit", f"{matter['promised_time_limit_days']} working days"),
                  ("收费 fees", "免费 free" if matter["fees"]["free"] else matter["fees"])])
    report.line("materials and how each can be provided:")
    for material in matter["materials"]:
        ways = ", ".join(EVIDENCE_LABELS.get(e["type"], e["type"]) for e in material["evidence"])
        report.line(f"- {material['name']} ({material['code']}): {ways}", indent=6)
    report.line(f"不刷脸的办理方式 non-face path: {matter['non_face_path']}")

    report.step("创建申请", "create the application (a draft)")
    draft = api.json("POST", "/api/v1/applications", token=citizen_token, expect=(201,),
                     json={"matter_code": MATTER_CODE})
    application_id = draft["id"]
    report.pairs([("application id", application_id),
                  ("状态 status", f"{draft['status']} ({draft['status_label']})")])
    _materials(report, draft["materials"])

    report.step("授权数据共享", "consent to fetching the shared data, for the stated purpose")
    required = draft["consent_required"]
    receipt = api.json("POST", f"/api/v1/applications/{application_id}/consent", token=citizen_token,
                       expect=(201,), json={"elements": required["elements"], "purpose": required["purpose"]})
    report.pairs([("receipt id", receipt["id"]), ("状态 status", receipt["status"]),
                  ("用途 purpose", receipt["purpose"])])
    report.line("数据项 elements:")
    for element in receipt["elements"]:
        report.line(f"- {labels.get(element, element)} ({element})", indent=6)

    report.step("自动预填", "prefill from the bureaus, with provenance")
    prefill = api.json("POST", f"/api/v1/applications/{application_id}/prefill", token=citizen_token)
    rows = []
    for element, field in prefill["fields"].items():
        source = field.get("source") or {}
        rows.append([clip(labels.get(element, element), 22), clip(str(field.get("value")), 26), field["status"],
                     "yes" if field["locked"] else "no", source.get("bureau", "—"),
                     source.get("trust_level", "—"), local_time(source.get("fetched_at"))])
    report.table(["数据项 element", "值 value", "status", "locked", "来源 bureau", "trust", "fetched_at (CST)"], rows)
    _materials(report, prefill["materials"])
    report.line(f"零材料 zero_material for 张伟: {prefill['zero_material']}")
    if not prefill["zero_material"]:
        raise DemoError("the prefill left materials to upload: is every sandbox bureau running (make run)?")

    report.step("智能预审", "the matter's conditions checked from the prefilled data (一次告知)")
    _eligibility(report, prefill["eligibility"])
    if prefill["eligibility"]["result"] != "eligible":
        raise DemoError("张伟's deposit certificate did not pre-check eligible: is every sandbox bureau running?")
    report.line(f"and for the retirement withdrawal ({RETIREMENT_CODE}), which 张伟 (41, working) does not meet:")
    other = api.json("POST", "/api/v1/applications", token=citizen_token, expect=(201,),
                     json={"matter_code": RETIREMENT_CODE})
    api.json("POST", f"/api/v1/applications/{other['id']}/consent", token=citizen_token, expect=(201,),
             json=other["consent_required"])
    checked = api.json("POST", f"/api/v1/applications/{other['id']}/prefill", token=citizen_token)
    _eligibility(report, checked["eligibility"])
    refused = api.call("POST", f"/api/v1/applications/{other['id']}/submit", token=citizen_token, expect=(422,))
    report.line(f"submitting it anyway: {refused.json()['error']} — {refused.json()['message']}")

    report.step("刷脸核验", "face verification (sandbox provider, evidence `pass`)")
    consent_text = api.json("GET", "/api/v1/me/biometric-consent", token=citizen_token)
    report.line(f"biometric consent text version {consent_text['current']['version']} shown, the citizen agrees")
    face = api.json("POST", "/api/v1/face/sessions", token=citizen_token, expect=(201,),
                    json={"purpose": "apply", "application_id": application_id, "biometric_consent": True})
    report.pairs([("session id", face["session_id"]), ("provider", face["provider"]),
                  ("expires_at (CST)", local_time(face["expires_at"]))])
    result = api.json("POST", f"/api/v1/face/sessions/{face['session_id']}/complete", token=citizen_token,
                      json={"evidence": {"sandbox": "pass"}})
    if result["decision"] != "pass":
        raise DemoError(f"the sandbox face provider answered {result['decision']} ({result.get('reason')})")
    report.pairs([("decision", result["decision"]),
                  ("face_verified_until (CST)", local_time(result["face_verified_until"]))])

    report.step("提交申请", "submit with an Idempotency-Key, then retry it as a flaky network would")
    key = str(uuid.uuid4())
    submitted = api.json("POST", f"/api/v1/applications/{application_id}/submit", token=citizen_token,
                         headers={"Idempotency-Key": key})
    report.pairs([("Idempotency-Key", key), ("状态 status", f"{submitted['status']} "
                                                               f"({STATUS_LABELS[submitted['status']]})"),
                  ("submitted_at (CST)", local_time(submitted["submitted_at"])),
                  ("零材料 zero_material", submitted["zero_material"]),
                  ("承诺办结日 promised_due_on", submitted["promised_due_on"])])
    retried = api.json("POST", f"/api/v1/applications/{application_id}/submit", token=citizen_token,
                       headers={"Idempotency-Key": key})
    if retried != submitted:
        raise DemoError(f"the retry with the same Idempotency-Key answered differently: {retried}")
    report.line("retry with the same key: the same answer, nothing new created ✓")

    report.step("部门审核", f"the reviewer `{REVIEWER}` accepts, approves and delivers")
    staff = api.json("POST", "/api/v1/auth/staff/login", json={"username": REVIEWER, "password": STAFF_PASSWORD})
    reviewer_token = staff["access_token"]
    report.pairs([("staff", f"{staff['staff']['display_name']} ({staff['staff']['username']})"),
                  ("roles", ", ".join(staff["staff"]["roles"])), ("department", staff["staff"]["department"])])
    inbox = api.json("GET", "/api/v1/review/applications", token=reviewer_token,
                     params={"status": "submitted", "matter_code": MATTER_CODE, "per_page": 100})
    mine = next((item for item in inbox["items"] if item["id"] == application_id), None)
    report.line(f"inbox: {inbox['total']} submitted application(s) of {MATTER_CODE}")
    if mine is None:
        raise DemoError("the submitted application is not in the reviewer's inbox")
    report.line(f"this one: applicant {mine['applicant_id_number_masked']}, zero_material {mine['zero_material']}, "
                f"promised by {mine['promised_due_on']}")
    review = f"/api/v1/review/applications/{application_id}"
    accepted = api.json("POST", f"{review}/accept", token=reviewer_token)
    report.line(f"受理 accepted at {local_time(accepted['accepted_at'])} → {accepted['status']}")
    approved = api.json("POST", f"{review}/approve", token=reviewer_token, json={})
    outcome = approved.get("result") or {}
    report.line(f"办结 approved at {local_time(approved['decided_at'])} → {approved['status']}; result: "
                + ", ".join(f"{k} {v}" for k, v in outcome.items() if v is not None))
    delivered = api.json("POST", f"{review}/deliver", token=reviewer_token, json={"method": "e_certificate"})
    delivery = delivered["delivery"]
    report.line(f"送达 delivered at {local_time(delivered['delivered_at'])} → {delivered['status']}: "
                f"{delivery['method']} {delivery.get('certificate_number', '')}, fee {delivery['fee']}")

    report.step("办理进度", "the citizen follows the case: the timeline")
    detail = api.json("GET", f"/api/v1/applications/{application_id}", token=citizen_token)
    report.line(f"状态 status: {detail['status']} ({detail['status_label']})")
    report.table(["时间 time (CST)", "事件 event", "操作人 actor"],
                 [[local_time(e["at"]), EVENT_LABELS.get(e["kind"], e["kind"]),
                   ACTOR_LABELS.get(e["actor"], e["actor"])] for e in detail["timeline"]])

    report.step("好差评", "the citizen rates the service: grade 5")
    evaluated = _evaluate(api, report, citizen_token, application_id)

    report.step("我的数据使用记录", "who fetched which of my data, when and why")
    accesses = api.json("GET", "/api/v1/me/data-access", token=citizen_token, params={"per_page": 5})
    report.line(f"{accesses['total']} access(es) in all; the latest {len(accesses['items'])}:")
    for access in accesses["items"]:
        elements = "、".join(e["label"] for e in access["elements_requested"])
        report.line(f"- {local_time(access['at'])}  {access['bureau_name']} ({access['connector']})  "
                    f"outcome {access['outcome']}, by the {access['acting_user']}", indent=6)
        report.line(f"数据 data: {elements}", indent=8)
        report.line(f"用途 purpose: {access['purpose']}", indent=8)
        if access["application_id"]:
            report.line(f"申请 application: {access['application_id']} ({access['matter_name']})", indent=8)

    report.step("审计", f"the auditor `{AUDITOR}` reads the logs and verifies their hash chains")
    auditor = api.json("POST", "/api/v1/auth/staff/login", json={"username": AUDITOR, "password": STAFF_PASSWORD})
    auditor_token = auditor["access_token"]
    report.pairs([("staff", f"{auditor['staff']['display_name']} ({auditor['staff']['username']})"),
                  ("roles", ", ".join(auditor["staff"]["roles"]))])
    report.line("data-access log, this application (records hold a keyed pseudonym, never the ID number):")
    records = api.json("GET", "/api/v1/audit/data-access", token=auditor_token,
                       params={"application_id": application_id})
    report.table(["seq", "recorded_at (CST)", "connector", "actor", "outcome", "elements", "pseudonym",
                  "record_hash"],
                 [[r["seq"], local_time(r["recorded_at"]), r["connector_id"], clip(r["actor"], 20), r["outcome"],
                   len(r["elements_requested"]), short_hash(r["citizen_pseudonym"]), short_hash(r["record_hash"])]
                  for r in records["items"]])
    report.line("face-verification log since this application was created (5 at most):")
    faces = api.json("GET", "/api/v1/audit/face-verifications", token=auditor_token,
                     params={"from": draft["created_at"], "limit": 5})
    report.table(["seq", "recorded_at (CST)", "event", "outcome", "provider", "purpose", "matter", "pseudonym"],
                 [[r["seq"], local_time(r["recorded_at"]), r["event"], r.get("outcome") or r.get("decision") or "—",
                   r["provider"], r.get("purpose") or "—", r.get("matter_code") or "—",
                   short_hash(r["citizen_pseudonym"])] for r in faces["items"]])
    verified = api.json("POST", "/api/v1/audit/verify", token=auditor_token, json={"log": "all"})
    report.table(["log", "ok", "checked", "first_broken", "head_hash"],
                 [[name, chain["ok"], chain["checked"], chain["first_broken"] or "—", short_hash(chain["head_hash"])]
                  for name, chain in verified.get("logs", {}).items()])
    report.line(f"verify all: ok={verified['ok']} checked={verified['checked']}")
    if not verified["ok"]:
        raise DemoError(f"a log's hash chain is broken: {verified}")

    print(f"\n✓ journey complete: application {application_id} {detail['status']}, certificate "
          f"{delivery.get('certificate_number', '—')}, evaluation {'recorded' if evaluated else 'skipped'}, "
          "audit chains intact", file=report.out)
    return {"application_id": application_id, "status": detail["status"],
            "certificate_number": delivery.get("certificate_number"), "evaluated": evaluated,
            "chains_ok": verified["ok"]}


def _materials(report: Report, materials: list[dict]) -> None:
    report.line("材料 materials:")
    for material in materials:
        status = MATERIAL_STATUS_LABELS.get(material["status"], material["status"])
        report.line(f"- {material['name']} ({material['code']}): {status}, via "
                    f"{EVIDENCE_LABELS.get(material.get('via'), material.get('via'))}", indent=6)


def _evaluate(api: Api, report: Report, token: str, application_id: str) -> bool:
    """Grade the application 5; False (with a note) when this server has no evaluation endpoint yet."""
    response = api.call("POST", f"/api/v1/applications/{application_id}/evaluation", token=token,
                        expect=(201, 404, 405), json={"grade": 5, "comment": "全程掌上办,零材料,很方便"})
    if response.status_code != 201:
        report.line(f"note: this server has no evaluation endpoint yet ({describe_error(response)}); "
                    "skipping 好差评")
        return False
    body = response.json()
    rectification = body.get("rectification")
    report.pairs([("评价 grade", f"{body['grade']} {body.get('grade_label', '')}".rstrip()),
                  ("评价内容 comment", body.get("comment") or "—"), ("evaluation id", body["id"]),
                  ("整改 rectification", f"{rectification['status']}, due {rectification['due_on']}" if rectification
                   else "none (only grades 1–2 open one)")])
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: run the journey, exit 1 with the reason when it cannot complete."""
    parser = argparse.ArgumentParser(prog="python -m demo.journey", description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("DEMO_BASE_URL", DEFAULT_BASE_URL),
                        help="the running API (env DEMO_BASE_URL; default %(default)s)")
    parser.add_argument("--openid", default=DEFAULT_OPENID,
                        help="the WeChat user to log in as (default %(default)s; keep it across runs)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds per HTTP call")
    args = parser.parse_args(argv)
    try:
        run_journey(args.base_url, openid=args.openid, timeout=args.timeout)
    except DemoError as exc:
        sys.stdout.flush()
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
