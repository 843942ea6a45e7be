"""The auditors' console in a real browser (fixtures and the Chromium skip in conftest.py)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import assert_accessible, log_in, needs_chromium, shot

ZHANG_ID = "410105198503120013"

pytestmark = needs_chromium


def test_an_auditor_finds_zhang_weis_verifications_and_verifies_the_chains(served, page, zhang):
    page.goto(f"{served}/console/")
    assert page.url.endswith("/console/login")  # not logged in: the login page
    shot(page, "login")
    assert_accessible(page)
    log_in(page, served, "auditor")
    assert page.get_by_role("link", name="审计").first.is_visible()
    shot(page, "home")
    assert_accessible(page)

    page.goto(f"{served}/console/audit/face-verifications")
    page.get_by_label("身份证号").fill(ZHANG_ID)
    page.get_by_label("查阅事由(必填)").fill("信访件核查")
    with page.expect_response(lambda response: response.url.endswith("/face-verifications/search")) as answer:
        page.locator("#search-button").click()
    assert answer.value.status == 200 and answer.value.request.method == "POST"
    assert ZHANG_ID not in answer.value.url
    rows = page.locator("#face-results tbody tr")
    rows.first.wait_for()
    assert rows.count() >= 1
    assert page.url == f"{served}/console/audit/face-verifications"  # nothing of the search in the URL
    shot(page, "face-verifications")
    assert_accessible(page)

    page.get_by_label("查阅事由", exact=True).fill("季度例行核查")
    page.locator("#verify-button").click()
    page.locator("#verify-ok").wait_for()
    assert "校验通过" in page.locator("#verify-ok").inner_text()
    shot(page, "verify")
    assert_accessible(page)


def test_a_page_without_the_session_cookie_and_another_roles_page(served, page):
    log_in(page, served, "auditor")
    response = page.goto(f"{served}/console/admin/")
    assert response.status == 403 and "无权访问" in page.content()
    assert response.headers["cache-control"] == "no-store"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    # A form post without the CSRF token (as another site's form would send it) is refused.
    refused = page.request.post(f"{served}/console/logout", form={})
    assert refused.status == 400
    assert page.goto(f"{served}/console/").status == 200  # still logged in
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(f"{served}/console/login")
    assert page.goto(f"{served}/console/").url.endswith("/console/login")


def test_an_auditor_searches_every_log_verifies_chains_and_checkpoints_and_exports(served, page, zhang, tmp_path):
    import csv
    import io
    import json

    log_in(page, served, "auditor")
    page.goto(f"{served}/console/audit/")
    for name in ("刷脸核验日志", "数据调用日志", "审计访问日志", "校验与检查点"):
        assert page.get_by_role("link", name=name).is_visible()
    shot(page, "audit-index")
    assert_accessible(page)

    # 张伟's face verifications, by his ID number typed into the form (never in a URL), and one record's detail.
    page.get_by_role("link", name="刷脸核验日志").click()
    page.wait_for_url(f"{served}/console/audit/face-verifications")
    page.get_by_label("身份证号").fill(ZHANG_ID)
    page.get_by_label("事件").select_option("decision")
    page.get_by_label("查阅事由(必填)").fill("信访件核查")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.locator("#search-button").click()
    rows = page.locator("#face-results tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and "核验决定" in rows.first.inner_text()
    rows.first.get_by_role("button", name="详情").click()
    page.locator("#record").wait_for()
    assert "通过" in page.locator("#record").inner_text() and "本条哈希" in page.locator("#record").inner_text()
    assert all(ZHANG_ID not in url for url in requests) and page.url.endswith("/face-verifications")
    shot(page, "audit-face-detail")
    assert_accessible(page)

    # A CSV export of the log (its reason in the form body): a download, with formulas defused.
    page.get_by_label("导出事由(必填)").fill("专项检查")
    with page.expect_download() as download_info:
        page.locator("#export-button").click()
    download = download_info.value
    name = download.suggested_filename
    assert name.startswith("face-verifications-") and name.endswith(".csv")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert table and {"seq", "event", "record_hash"} <= set(table[0])
    # … and the evidence bundle.
    page.get_by_label("格式").select_option("bundle")
    with page.expect_download() as download_info:
        page.locator("#export-button").click()
    bundle = tmp_path / "bundle.json"
    download_info.value.save_as(bundle)
    assert json.loads(bundle.read_text(encoding="utf-8"))["format"] == "zsb-evidence-bundle/v1"
    assert_accessible(page)

    # The data-access log: 张伟's real-name check against the population registry.
    page.goto(f"{served}/console/audit/data-access")
    page.get_by_label("身份证号").fill(ZHANG_ID)
    page.get_by_label("查阅事由(必填)").fill("信访件核查")
    page.locator("#search-button").click()
    page.locator("#data-results tbody tr").first.wait_for()
    assert "ga-population" in page.locator("#data-results").inner_text()
    shot(page, "audit-data-access")
    assert_accessible(page)

    # The auditor-access log: the searches for 张伟 above, the exports, each with its reason.
    page.goto(f"{served}/console/audit/auditor-access")
    page.get_by_label("被查询人身份证号").fill(ZHANG_ID)
    page.get_by_label("查阅事由(必填)").fill("监督抽查")
    page.locator("#search-button").click()
    page.locator("#access-results tbody tr").first.wait_for()
    assert page.locator("#access-results tbody tr").count() == 2  # the face and the data-access search
    assert "信访件核查" in page.locator("#access-results").inner_text()
    page.get_by_label("被查询人身份证号").fill("")
    page.get_by_label("操作", exact=True).select_option("export")
    page.locator("#search-button").click()
    # The table held two rows before this search too: wait for the new rows' content, not just their count.
    expect(page.locator("#access-results")).to_contain_text("专项检查")
    expect(page.locator("#access-results tbody tr")).to_have_count(2)
    # A missing reason is shown next to its field (the browser's own check bypassed, as a script could).
    page.get_by_label("查阅事由(必填)").evaluate("input => { input.required = false; input.value = ''; }")
    page.locator("#search-button").click()
    page.locator("#access-search-reason-error").wait_for()
    assert page.locator("#access-search-reason-error").inner_text() == "请填写查阅事由"
    shot(page, "audit-auditor-access")
    assert_accessible(page)

    # One click verifies every chain and its signed checkpoints.
    page.goto(f"{served}/console/audit/integrity")
    assert page.locator("#checkpoints tbody tr").count() == 3
    page.get_by_label("查阅事由", exact=True).fill("季度例行核查")
    page.locator("#verify-button").click()
    page.locator("#verify-ok").wait_for()
    assert "校验通过" in page.locator("#verify-ok").inner_text()
    assert page.locator("#verify-logs tbody tr").count() == 3
    shot(page, "audit-integrity")
    assert_accessible(page)


TABLET = {"width": 768, "height": 1024}
# Each role's main pages, as that role: on a tablet nothing is wider than the screen (no sideways scrolling of
# the page: wide tables scroll inside their own box) and every page still passes axe.
ROLE_PAGES = {
    "auditor": ["/console/", "/console/audit/", "/console/audit/face-verifications", "/console/audit/integrity"],
    "bureau-ga": ["/console/connectors/", "/console/connectors/new"],
    "reviewer-gjj": ["/console/review/", "/console/review/rectifications"],
    "admin": ["/console/admin/", "/console/admin/connectors/", "/console/admin/matters/", "/console/admin/staff/",
              "/console/admin/stats"],
}


def test_every_roles_pages_fit_a_tablet(served, page):
    page.set_viewport_size(TABLET)
    for username, paths in ROLE_PAGES.items():
        page.context.clear_cookies()
        log_in(page, served, username)
        for path in paths:
            response = page.goto(f"{served}{path}")
            assert response.status == 200, path
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow} px wider than a tablet"
            assert_accessible(page)
    shot(page, "tablet-dashboard")
