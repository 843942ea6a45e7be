"""The console in a real browser: Debian's Chromium driven by Playwright, against the app served on 127.0.0.1.

Skipped where /usr/bin/chromium is absent (install it with `apt-get install -y chromium fonts-wqy-microhei`;
`.ci/run` does). Screenshots of the pages go to docs/screenshots/console-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.sandbox.server import serve
from tests.helpers import REPOSITORY

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPOSITORY / "docs" / "screenshots"
ZHANG_ID = "410105198503120013"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the console's browser tests need Debian's Chromium: apt-get install -y chromium fonts-wqy-microhei",
)


@pytest.fixture
def served(app):
    """The test app as a real HTTP server on a free port of 127.0.0.1."""
    server = serve(app)
    yield server.url
    server.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = context.new_page()
        errors: list[str] = []
        # A CSP violation (an inline script or style slipping in) shows as a console error ("Refused to …").
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        browser.close()
        assert not errors, errors


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def test_an_auditor_finds_zhang_weis_verifications_and_verifies_the_chains(served, page, zhang):
    page.goto(f"{served}/console/")
    assert page.url.endswith("/console/login")  # not logged in: the login page
    shot(page, "login")
    page.get_by_label("用户名").fill("auditor")
    page.get_by_label("密码").fill("sandbox-pass")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{served}/console/")
    assert page.get_by_role("link", name="审计").first.is_visible()
    shot(page, "home")

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

    page.get_by_label("查阅事由", exact=True).fill("季度例行核查")
    page.locator("#verify-button").click()
    page.locator("#verify-ok").wait_for()
    assert "校验通过" in page.locator("#verify-ok").inner_text()
    shot(page, "verify")


def test_a_page_without_the_session_cookie_and_another_roles_page(served, page):
    page.goto(f"{served}/console/login")
    page.get_by_label("用户名").fill("auditor")
    page.get_by_label("密码").fill("sandbox-pass")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{served}/console/")
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
