"""The auditors' pages over the Flask test client: each log's search (filters, pages, the ID number in form
bodies only), a record's detail, exports (CSV guarded against formulas), verification and checkpoints — each
view and export in the auditor-access log with its reason — and 403 for every other role."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import sqlalchemy as sa
from face_flow import LI_NA

from app.connectors.models import AuditorAccessRecord, DataAccessRecord
from app.extensions import db
from app.face.models import FaceVerificationRecord
from app.ledger import chain

ZHANG_ID = "410105198503120013"
FACE, DATA, ACCESS = "face-verifications", "data-access", "auditor-access"
PAGES = ("/console/audit/", "/console/audit/face-verifications", "/console/audit/data-access",
         "/console/audit/auditor-access", "/console/audit/integrity")
URL_ATTRIBUTES = re.compile(r'\b(?:href|action|hx-post|hx-get|hx-vals|src)=("[^"]*"|\'[^\']*\')')


def access_records(app, action: str | None = None) -> list[AuditorAccessRecord]:
    with app.app_context():
        records = db.session.scalars(sa.select(AuditorAccessRecord).order_by(AuditorAccessRecord.seq)).all()
    return [record for record in records if action is None or record.action == action]


def rows(html: str) -> int:
    """Data rows of the results table (its header row aside)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return body.count("<tr>")


def seqs(app, model, **where) -> list[int]:
    with app.app_context():
        query = sa.select(model.seq).filter_by(**where).order_by(model.seq)
        return list(db.session.scalars(query))


def assert_no_id_in_urls(html: str) -> None:
    for value in URL_ATTRIBUTES.findall(html):
        assert ZHANG_ID not in value


@pytest.fixture
def zhang_and_li(zhang, citizen_as):
    """张伟 and 李娜 face-bound: each with face-verification records and a data-access record (the real-name
    check against the population registry)."""
    return zhang, citizen_as(*LI_NA)


# ------------------------------------------------------------------------------------------ the pages


def test_the_index_links_every_auditor_page_and_each_page_renders(console, logged_in, app):
    logged_in("auditor")
    index = console.get("/console/audit/").get_data(as_text=True)
    for path in PAGES[1:]:
        assert f'href="{path}"' in index
        page = console.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store", path
        assert '<html lang="zh-CN">' in html and "退出登录" in html  # the console's base page
        assert "<style" not in html and " style=" not in html and "<script>" not in html
    assert not access_records(app)  # reading a form logs nothing


def test_every_control_has_a_label(console, logged_in):
    logged_in("auditor")
    for path in PAGES[1:]:
        html = console.get(path).get_data(as_text=True)
        for control in re.findall(r"<(?:input|select)\b[^>]*>", html):
            if 'type="hidden"' in control:
                continue
            found = re.search(r'id="([^"]+)"', control)
            assert found and f'for="{found.group(1)}"' in html, (path, control)


def test_other_roles_get_403_on_every_auditor_page(console, logged_in, app):
    for username in ("bureau-ga", "reviewer-gjj", "admin"):
        logged_in(username)
        for path in PAGES:
            assert console.get(path).status_code == 403, (username, path)
        for path, data in (
            ("/console/audit/face-verifications/search", {"reason": "核查"}),
            ("/console/audit/data-access/search", {"reason": "核查"}),
            ("/console/audit/auditor-access/search", {"reason": "核查"}),
            ("/console/audit/face-verifications/records/1", {"reason": "核查"}),
            ("/console/audit/data-access/export", {"reason": "核查", "format": "csv"}),
            ("/console/audit/verify", {"log": "all", "reason": "核查"}),
        ):
            response = console.htmx(path, data)
            assert response.status_code == 403 and "无权访问" in response.get_data(as_text=True), (username, path)
        console.post("/console/logout")
    assert not access_records(app)


# ------------------------------------------------------------------------------------------ searches


def test_data_access_search_by_person_connector_and_application(console, logged_in, zhang_and_li, app):
    logged_in("auditor")
    found = console.htmx("/console/audit/data-access/search", {"id_number": ZHANG_ID, "reason": "信访件核查"})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and found.headers["Cache-Control"] == "no-store"
    assert rows(html) == 1 and "ga-population" in html and "实名认证" in html and "成功" in html
    assert_no_id_in_urls(html)
    [record] = access_records(app, "query")
    assert record.log == DATA and record.filters["reason"] == "信访件核查"
    assert record.filters["id_number_pseudonym"] and ZHANG_ID not in json.dumps(record.filters)

    both = console.htmx("/console/audit/data-access/search", {"connector": "ga-population", "reason": "核查"})
    assert rows(both.get_data(as_text=True)) == 2  # 张伟's and 李娜's real-name checks
    none = console.htmx("/console/audit/data-access/search", {"application_id": "no-such-app", "reason": "核查"})
    assert rows(none.get_data(as_text=True)) == 0 and "没有符合条件的记录" in none.get_data(as_text=True)
    bad = console.htmx("/console/audit/data-access/search", {"connector": "坏 编号", "reason": "核查"})
    assert bad.status_code == 422
    assert re.search(r'class="field-error" id="data-search-connector-error">编号格式无效', bad.get_data(as_text=True))


def test_face_search_offers_every_filter_of_the_api(console, logged_in, zhang_and_li, app):
    logged_in("auditor")
    html = console.get("/console/audit/face-verifications").get_data(as_text=True)
    for name in ("from", "to", "decision", "event", "provider", "matter_code", "session_id", "id_number", "limit"):
        assert f'name="{name}"' in html, name
    decisions = seqs(app, FaceVerificationRecord, event="decision")
    only = console.htmx("/console/audit/face-verifications/search",
                        {"event": "decision", "id_number": ZHANG_ID, "reason": "核查"})
    assert rows(only.get_data(as_text=True)) == len(decisions) // 2 == 1  # 张伟's of the two people's
    with app.app_context():
        session_id = db.session.scalar(sa.select(FaceVerificationRecord.session_id)
                                       .where(FaceVerificationRecord.event == "decision").limit(1))
    by_session = console.htmx("/console/audit/face-verifications/search", {"session_id": session_id, "reason": "核查"})
    assert rows(by_session.get_data(as_text=True)) == len(seqs(app, FaceVerificationRecord, session_id=session_id))
    future = console.htmx("/console/audit/face-verifications/search", {"from": "2999-01-01T00:00", "reason": "核查"})
    assert "没有符合条件的记录" in future.get_data(as_text=True)
    bad = console.htmx("/console/audit/face-verifications/search", {"limit": "0", "reason": "核查"})
    assert bad.status_code == 422 and 'id="face-search-limit-error"' in bad.get_data(as_text=True)


def test_search_pages_follow_the_cursor(console, logged_in, zhang_and_li, app):
    logged_in("auditor")
    everything = seqs(app, FaceVerificationRecord)
    seen, cursor = [], None
    for _ in range(len(everything)):
        data = {"reason": "抽查", "limit": "5", **({"cursor": cursor} if cursor else {})}
        html = console.htmx("/console/audit/face-verifications/search", data).get_data(as_text=True)
        seen += [int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]
        found = re.search(r'"cursor": "([^"]+)"', html)
        if not found:
            break
        assert 'id="next-page"' in html and "还有下一页" in html
        cursor = found.group(1)
    assert seen == everything and len(everything) > 10  # more than one page, each record once, in order
    # The form again as it was (the cursor is no part of it), on a non-htmx post: the whole page.
    page = console.post("/console/audit/face-verifications/search", {"reason": "抽查", "limit": "20"})
    assert page.status_code == 200 and "<h1>刷脸核验日志</h1>" in page.get_data(as_text=True)
    bad = console.htmx("/console/audit/face-verifications/search", {"reason": "抽查", "cursor": "not a cursor"})
    assert bad.status_code == 422 and "分页游标无效" in bad.get_data(as_text=True)


def test_auditor_access_search_shows_who_looked_for_a_person(console, logged_in, zhang_and_li, app):
    logged_in("auditor")
    console.htmx("/console/audit/face-verifications/search", {"id_number": ZHANG_ID, "reason": "信访件核查"})
    console.htmx("/console/audit/verify", {"log": "all", "reason": "季度例行核查"})
    looked = console.htmx("/console/audit/auditor-access/search", {"id_number": ZHANG_ID, "reason": "监督抽查"})
    html = looked.get_data(as_text=True)
    assert looked.status_code == 200 and rows(html) == 1 and "信访件核查" in html and "刷脸核验日志" in html
    assert_no_id_in_urls(html)
    verified = console.htmx("/console/audit/auditor-access/search", {"action": "verify", "reason": "监督抽查"})
    assert rows(verified.get_data(as_text=True)) == 1 and "季度例行核查" in verified.get_data(as_text=True)
    [staff_actor] = {record.actor for record in access_records(app)}
    mine = console.htmx("/console/audit/auditor-access/search", {"actor": staff_actor, "log": FACE, "reason": "抽查"})
    assert rows(mine.get_data(as_text=True)) == 1
    nobody = console.htmx("/console/audit/auditor-access/search", {"actor": "staff:nobody", "reason": "抽查"})
    assert "没有符合条件的记录" in nobody.get_data(as_text=True)
    bad = console.htmx("/console/audit/auditor-access/search", {"actor": "张三", "reason": "抽查"})
    assert bad.status_code == 422 and "操作人格式无效" in bad.get_data(as_text=True)
    # The searches of the auditor-access log are in it too, the ID number as its pseudonym only.
    queries = [record for record in access_records(app, "query") if record.log == ACCESS]
    assert len(queries) == 4 and ZHANG_ID not in json.dumps([record.filters for record in queries])


def test_the_id_number_never_goes_in_a_url(console, logged_in, zhang):
    logged_in("auditor")
    for path in PAGES[1:4]:
        assert console.get(f"{path}?id_number={ZHANG_ID}").status_code == 422
        assert console.get(f"{path}?q={ZHANG_ID}").status_code == 422  # by its shape, whatever the name
    for log in (FACE, DATA, ACCESS):
        answer = console.post(f"/console/audit/{log}/search", {"id_number": ZHANG_ID, "reason": "核查"})
        assert answer.status_code == 200
        assert_no_id_in_urls(answer.get_data(as_text=True))


def test_a_search_needs_a_reason_and_logs_nothing_without_one(console, logged_in, app):
    logged_in("auditor")
    for log in (FACE, DATA, ACCESS):
        missing = console.htmx(f"/console/audit/{log}/search", {"id_number": ZHANG_ID})
        html = missing.get_data(as_text=True)
        assert missing.status_code == 422 and "请填写查阅事由" in html and 'aria-invalid="true"' in html
    assert not access_records(app)


# ------------------------------------------------------------------------------------------ a record


def test_a_records_detail_is_a_logged_post_with_a_reason(console, logged_in, zhang, app):
    logged_in("auditor")
    [seq] = seqs(app, FaceVerificationRecord, event="decision")
    search = console.htmx("/console/audit/face-verifications/search", {"event": "decision", "reason": "信访件核查"})
    assert f'action="/console/audit/face-verifications/records/{seq}"' in search.get_data(as_text=True)
    panel = console.htmx(f"/console/audit/face-verifications/records/{seq}", {"reason": "信访件核查"})
    html = panel.get_data(as_text=True)
    assert panel.status_code == 200 and panel.headers["Cache-Control"] == "no-store"
    assert "<html" not in html and f"第 {seq} 条" in html and "核验决定" in html and "通过" in html
    assert "本条哈希" in html and ZHANG_ID not in html
    [view] = access_records(app, "view")
    assert (view.log, view.filters, view.result_count) == (FACE, {"seq": seq, "reason": "信访件核查"}, 1)

    page = console.post(f"/console/audit/face-verifications/records/{seq}", {"reason": "核查"})
    assert page.status_code == 200 and "<h1>记录详情</h1>" in page.get_data(as_text=True)
    [data_seq] = seqs(app, DataAccessRecord)
    data = console.htmx(f"/console/audit/data-access/records/{data_seq}", {"reason": "核查"})
    assert data.status_code == 200 and "ga-population" in data.get_data(as_text=True)
    access = console.htmx("/console/audit/auditor-access/records/1", {"reason": "核查"})
    assert access.status_code == 200 and "信访件核查" in access.get_data(as_text=True)

    missing = console.htmx(f"/console/audit/face-verifications/records/{seq}", {})
    assert missing.status_code == 422 and "请填写查阅事由" in missing.get_data(as_text=True)
    assert console.htmx("/console/audit/face-verifications/records/99999", {"reason": "核查"}).status_code == 404
    assert console.get(f"/console/audit/face-verifications/records/{seq}").status_code == 405
    assert len(access_records(app, "view")) == 4  # the refused ones are not views


# ------------------------------------------------------------------------------------------ exports


def export(console, log: str, **data):
    return console.post(f"/console/audit/{log}/export", {"reason": "专项检查", **data})


def test_csv_and_jsonl_exports_are_logged_downloads(console, logged_in, zhang, app):
    logged_in("auditor")
    answer = export(console, FACE, format="csv")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and re.search(r'filename="face-verifications-[\d-]+\.csv"',
                                                               disposition)
    assert answer.headers["Cache-Control"] == "no-store"
    table = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [int(row["seq"]) for row in table] == seqs(app, FaceVerificationRecord)
    lines = export(console, DATA, format="jsonl", **{"from": "2000-01-01T08:00"})
    assert lines.status_code == 200 and lines.headers["Content-Type"].startswith("application/x-ndjson")
    [one] = [json.loads(line) for line in lines.get_data(as_text=True).splitlines()]
    assert one["connector_id"] == "ga-population"
    exports = access_records(app, "export")
    assert [(record.log, record.filters["format"], record.filters["reason"]) for record in exports] == [
        (FACE, "csv", "专项检查"), (DATA, "jsonl", "专项检查")]
    assert exports[1].filters["from"] == "2000-01-01T00:00:00.000000Z"  # Beijing time, logged in UTC


def test_the_evidence_bundle_download(console, logged_in, zhang, app):
    logged_in("auditor")
    answer = export(console, FACE, format="bundle", consistency_from="1")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.headers["Content-Disposition"].endswith('.bundle.json"')
    bundle = json.loads(answer.get_data(as_text=True))
    assert bundle["format"] == "zsb-evidence-bundle/v1" and bundle["log"] == FACE
    assert [record["seq"] for record in bundle["records"]] == seqs(app, FaceVerificationRecord)
    assert bundle["consistency"]["from"] == 1 and bundle["checkpoint"]
    [record] = access_records(app, "export")
    assert record.filters["format"] == "bundle" and record.filters["reason"] == "专项检查"
    beyond = export(console, FACE, format="bundle", consistency_from="100000")
    assert beyond.status_code == 422 and "日志目前只有" in beyond.get_data(as_text=True)


def test_an_export_needs_a_reason_and_a_valid_form(console, logged_in, app):
    logged_in("auditor")
    missing = console.post("/console/audit/face-verifications/export", {"format": "csv"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 422 and "Content-Disposition" not in missing.headers
    assert 'id="export-reason-error">请填写查阅事由' in html
    not_bundle = export(console, DATA, format="csv", consistency_from="1")
    assert not_bundle.status_code == 422
    assert "只有 format=bundle 时才能要求一致性证明" in not_bundle.get_data(as_text=True)
    assert export(console, FACE, format="xlsx").status_code == 422
    assert export(console, ACCESS, format="csv").status_code == 404  # as the API: no export of that log
    assert not access_records(app)


def test_csv_exports_defuse_formulas(console, logged_in, zhang, app):
    with app.app_context():
        chain.append(DataAccessRecord, connector_id="ga-population", bureau="ga", bureau_name="-郑州市公安局",
                     citizen_pseudonym="p" * 64, application_id=None, purpose='=HYPERLINK("http://x","y")',
                     actor="citizen:x", elements_requested=["+person.name"], elements_returned=["@SUM(A1)"],
                     outcome="ok", latency_ms=5, error="\tcmd", http_status=200, request_id="r" * 8)
    logged_in("auditor")
    table = list(csv.DictReader(io.StringIO(export(console, DATA, format="csv").get_data(as_text=True))))
    row = table[-1]
    assert row["purpose"] == "'=HYPERLINK(\"http://x\",\"y\")" and row["bureau_name"] == "'-郑州市公安局"
    assert row["elements_requested"] == "'+person.name" and row["elements_returned"] == "'@SUM(A1)"
    assert row["error"] == "'\tcmd"
    assert table[0]["purpose"] == "实名认证"  # plain text stays as it is


# ------------------------------------------------------------------------------------------ verification


def test_the_integrity_page_shows_each_logs_checkpoint(console, logged_in, zhang, app, client, staff_headers):
    cut = client.post("/api/v1/audit/face-verifications/checkpoint", headers=staff_headers("auditor"))
    assert cut.status_code == 201
    logged_in("auditor")
    html = console.get("/console/audit/integrity").get_data(as_text=True)
    assert 'id="checkpoints"' in html and "刷脸核验日志" in html and "数据调用日志" in html
    assert cut.get_data(as_text=True).splitlines()[0] in html  # the signed note, as the API serves it
    assert 'id="verify-button"' in html


def test_verify_all_checks_chains_and_checkpoints(console, logged_in, zhang, app, client, staff_headers):
    client.post("/api/v1/audit/face-verifications/checkpoint", headers=staff_headers("auditor"))
    logged_in("auditor")
    answer = console.htmx("/console/audit/verify", {"log": "all", "reason": "季度例行核查"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'id="verify-ok"' in html and 'id="verify-logs"' in html
    for title in ("刷脸核验日志", "数据调用日志", "审计访问日志"):
        assert f"<td>{title}</td>" in html
    assert html.count("完好") >= 3
    with app.app_context():
        first = db.session.scalars(sa.select(DataAccessRecord).order_by(DataAccessRecord.seq)).first()
        seq = first.seq
        db.session.execute(sa.update(DataAccessRecord).where(DataAccessRecord.id == first.id).values(purpose="改"))
        db.session.commit()
    broken = console.htmx("/console/audit/verify", {"log": "all", "reason": "复核"}).get_data(as_text=True)
    assert 'id="verify-broken"' in broken and "<dd>数据调用日志</dd>" in broken and f"<dd>{seq}</dd>" in broken
    assert f"序号 {seq}:" in broken
    missing = console.htmx("/console/audit/verify", {"log": "all"})
    assert missing.status_code == 422 and "请填写查阅事由" in missing.get_data(as_text=True)
    assert [record.filters["reason"] for record in access_records(app, "verify")] == ["季度例行核查", "复核"]
