"""The auditors' console in a real browser (fixtures and the Chromium skip in conftest.py)."""

from __future__ import annotations

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
