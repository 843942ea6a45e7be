"""The admins' console in a real browser (fixtures and the Chromium skip in conftest.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from application_flow import review_url, submitted_application

from app.console.forms import BEIJING
from tests.console.conftest import assert_accessible, log_in, needs_chromium, shot

pytestmark = needs_chromium


def test_an_admin_approves_a_connector_a_bureau_registered(served, page, client, staff_headers, bureaus):
    registered = client.post("/api/v1/connectors", headers=staff_headers("bureau-ga"), json={
        "name": "户籍信息查询(浏览器审核)", "base_url": bureaus.url("population"),
        "elements": ["person.name", "person.household_address"]})
    assert registered.status_code == 201, registered.json
    connector_id = registered.json["id"]

    log_in(page, served, "admin")
    page.get_by_role("link", name="系统管理").first.click()
    page.wait_for_url(f"{served}/console/admin/")
    assert "1 个接口待审核" in page.locator("#pending-count").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name=re.compile("^数据接口审核")).click()
    page.wait_for_url(f"{served}/console/admin/connectors/")
    row = page.locator(f"#connector-{connector_id}")
    assert "户籍信息查询(浏览器审核)" in row.inner_text() and "待审核" in row.inner_text()
    shot(page, "admin-connectors")
    assert_accessible(page)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="审核通过 户籍信息查询(浏览器审核)").click()
    page.locator("#notice").wait_for()
    assert "已审核通过" in page.locator("#notice").inner_text()
    assert page.url == f"{served}/console/admin/connectors/{connector_id}"
    history = page.locator("#connector-events").inner_text()
    assert "审核通过" in history and "待审核 → 已启用" in history
    assert_accessible(page)

    # Declining the confirmation changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="停用 户籍信息查询(浏览器审核)").click()
    page.get_by_role("heading", name="户籍信息查询(浏览器审核)").wait_for()
    assert "已启用" in page.locator(".heading-row").inner_text()
    assert page.locator("#connector-events tbody tr").count() == 2


def test_an_admin_edits_a_matter_previews_its_guide_and_opens_the_dashboard(served, page, client, zhang, reviewer):
    delivered = submitted_application(client, zhang)
    for action, body in (("accept", None), ("approve", {}), ("deliver", {"method": "e_certificate"})):
        assert client.post(review_url(delivered, action), headers=reviewer, json=body).status_code == 200
    submitted_application(client, zhang)
    rated = client.post(f"/api/v1/applications/{delivered}/evaluation", headers=zhang, json={"grade": 4})
    assert rated.status_code == 201

    log_in(page, served, "admin")
    page.goto(f"{served}/console/admin/matters/")
    assert_accessible(page)
    page.get_by_label("关键词").fill("公积金")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r".*/console/admin/matters/\?q=.*"))
    page.get_by_role("link", name="修改 住房公积金提取(离休、退休)").click()
    page.wait_for_url(f"{served}/console/admin/matters/GJJ-GG-001")
    assert_accessible(page)

    page.get_by_label("承诺时限(工作日)(必填)").fill("9")  # longer than the legal limit of 3
    page.locator("#save-matter").click()
    page.locator("#error-promised_time_limit_days").wait_for()
    assert page.locator("#error-promised_time_limit_days").inner_text() == "承诺时限不能长于法定时限"
    assert page.get_by_label("承诺时限(工作日)(必填)").get_attribute("aria-invalid") == "true"
    assert_accessible(page)

    page.get_by_label("承诺时限(工作日)(必填)").fill("1")
    page.get_by_label("办理时间").fill("周一至周日 9:00-17:00(节假日不打烊)")
    page.locator("#save-matter").click()
    page.locator("#notice").wait_for()
    assert "已保存为第 2 版" in page.locator("#notice").inner_text()
    assert page.locator("#matter-history tbody tr").count() == 2
    shot(page, "admin-matter")
    assert_accessible(page)

    page.get_by_role("link", name="预览办事指南").click()
    page.wait_for_url(f"{served}/console/admin/matters/GJJ-GG-001/guide")
    guide = page.locator("#guide")
    assert "住房公积金提取(离休、退休)" in guide.inner_text()
    assert page.locator("#g-promised").inner_text() == "1 个工作日"
    assert "周一至周日 9:00-17:00(节假日不打烊)" in guide.inner_text()
    assert_accessible(page)

    page.goto(f"{served}/console/admin/staff/")
    assert page.locator("#staff-admin").is_visible()
    assert_accessible(page)
    page.get_by_role("link", name="新建账号").click()
    page.get_by_label("用户名(必填)").fill("auditor-2")
    page.get_by_label("初始密码(必填)").fill("a-long-password")
    page.get_by_label("审计人员").check()
    page.get_by_role("button", name="新建账号").click()
    page.locator("#staff-auditor-2").wait_for()
    assert_accessible(page)

    page.get_by_role("link", name="统计").first.click()
    page.wait_for_url(f"{served}/console/admin/stats")
    today = datetime.now(BEIJING).date()
    page.get_by_label("起始日期(北京时间)").fill((today - timedelta(days=6)).isoformat())
    page.get_by_label("截止日期(含当天)").fill(today.isoformat())
    page.get_by_role("button", name="统计").click()
    page.wait_for_url(re.compile(r".*/console/admin/stats\?from=.*"))
    page.locator("#summary-title").wait_for()
    assert page.locator("#total-applications").inner_text() == "2"
    for chart in ("chart-applications", "chart-zero-material", "chart-processing", "chart-face", "chart-grades"):
        assert page.locator(f"svg#{chart}").is_visible()
    assert page.locator("#applications-table tbody tr").count() == 2  # the matter and the total
    shot(page, "admin-dashboard")
    assert_accessible(page)
