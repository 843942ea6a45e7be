"""The bureaus' console in a real browser (fixtures and the Chromium skip in conftest.py)."""

from __future__ import annotations

import re

from tests.console.conftest import assert_accessible, log_in, needs_chromium, shot

pytestmark = needs_chromium


def test_a_bureau_registers_a_connector_sees_its_secret_once_checks_it_and_views_usage(served, page, bureaus, zhang):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served)
    log_in(page, served, "bureau-ga")
    page.get_by_role("link", name="数据接口").first.click()
    page.wait_for_url(f"{served}/console/connectors/")
    assert page.locator("#connectors tbody tr").count() >= 1
    shot(page, "connectors")
    assert_accessible(page)

    page.get_by_role("link", name="登记新接口").click()
    page.wait_for_url(f"{served}/console/connectors/new")
    assert_accessible(page)
    page.locator("#save-button").click()  # nothing filled in: the errors, next to their fields
    page.locator("#error-name").wait_for()
    assert page.locator("#error-name").inner_text() == "必填"
    assert page.get_by_label("接口名称(必填)").get_attribute("aria-invalid") == "true"
    assert_accessible(page)

    page.get_by_label("接口名称(必填)").fill("户籍信息查询(浏览器)")
    page.get_by_label("服务地址(必填)").fill(bureaus.url("population"))
    page.locator('input[name="elements"][value="person.name"]').check()
    page.locator('input[name="elements"][value="person.household_address"]').check()
    page.locator("#save-button").click()
    secret_box = page.locator("#connector-secret")
    secret_box.wait_for()
    secret = secret_box.inner_text().strip()
    assert len(secret) >= 32
    # htmx put the connector's own page in the address bar.
    assert re.fullmatch(rf"{re.escape(served)}/console/connectors/[0-9a-f]{{32}}", page.url)
    copy = page.get_by_role("button", name="复制密钥")
    assert copy.is_visible()
    shot(page, "connector-registered")
    assert_accessible(page)
    copy.click()
    page.get_by_role("button", name="已复制到剪贴板").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.reload()  # the secret is gone: the connector's page, without it
    page.get_by_role("heading", name="户籍信息查询(浏览器)").wait_for()
    assert secret not in page.content() and page.locator("#connector-secret").count() == 0
    assert "待审核" in page.locator("main").inner_text()
    assert_accessible(page)

    page.locator("#health-button").click()
    result = page.locator("#health-result .health")
    result.wait_for()
    assert re.search(r"(正常|异常).*ms", result.inner_text())
    assert_accessible(page)

    page.goto(f"{served}/console/connectors/")
    page.locator("#health-ga-population").get_by_text("尚未检查").wait_for()
    page.get_by_role("button", name="检查 人口基础信息查询 的健康状况").click()
    page.locator("#health-ga-population .health-ok").wait_for()
    page.get_by_role("link", name="人口基础信息查询 的调用统计").click()
    page.wait_for_url(f"{served}/console/connectors/ga-population/usage")
    assert page.locator("svg#usage-calls").is_visible() and page.locator("svg#usage-latency").is_visible()
    assert page.locator("#usage-table tbody tr").count() == 14
    assert int(page.locator("#total-calls").inner_text()) >= 1  # 张伟's real-name check
    page.get_by_label("统计期间").select_option("7")
    page.get_by_role("button", name="查看").click()
    page.wait_for_url(f"{served}/console/connectors/ga-population/usage?days=7")
    assert page.locator("#usage-table tbody tr").count() == 7
    shot(page, "connector-usage")
    assert_accessible(page)


def test_rotating_the_secret_asks_first(served, page):
    log_in(page, served, "bureau-ga")
    page.goto(f"{served}/console/connectors/ga-population")
    page.get_by_role("link", name="轮换签名密钥").click()
    page.wait_for_url(f"{served}/console/connectors/ga-population/rotate-secret")
    assert "立即失效" in page.locator("main").inner_text()
    assert_accessible(page)
    page.get_by_role("button", name="确认轮换").click()
    page.locator("#connector-secret").wait_for()
    assert page.url == f"{served}/console/connectors/ga-population"
    assert_accessible(page)
