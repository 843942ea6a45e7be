"""Fixtures of the console tests: a browser-like test client (cookie kept, CSRF token read from each page), and
for the browser tests (test_browser*.py) the app served on 127.0.0.1 and Debian's Chromium driven by Playwright.

Browser tests are skipped where /usr/bin/chromium is absent (`apt-get install -y chromium fonts-wqy-microhei`;
`.ci/run` installs it). They write screenshots of the pages they pass through to $CONSOLE_SCREENSHOTS (`make
screenshots` points it at docs/screenshots), else to a temporary directory, so a test run leaves the
repository as it was.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from app.sandbox.server import serve
from tests.helpers import REPOSITORY

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPOSITORY / os.environ["CONSOLE_SCREENSHOTS"] if os.environ.get("CONSOLE_SCREENSHOTS") \
    else Path(tempfile.gettempdir()) / "zsb-console-screenshots"
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the console's browser tests need Debian's Chromium: apt-get install -y chromium fonts-wqy-microhei",
)
# axe-core's impacts that fail a page (moderate and minor ones are reported by axe, not failed here).
BLOCKING_IMPACTS = {"serious", "critical"}

TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


class Console:
    """The Flask test client as a browser on the console: cookies kept, the CSRF token read from each page."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def get(self, path: str, **kwargs):
        response = self.client.get(path, **kwargs)
        found = TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, **kwargs)

    def htmx(self, path: str, data: dict | None = None, **kwargs):
        """A POST as htmx sends it: the token in the X-CSRFToken header, not the body."""
        headers = {"HX-Request": "true", "X-CSRFToken": self.token, **kwargs.pop("headers", {})}
        return self.client.post(path, data=data or {}, headers=headers, **kwargs)

    def login(self, username: str, password: str = "sandbox-pass"):
        self.get("/console/login")
        return self.post("/console/login", {"username": username, "password": password})


@pytest.fixture
def console(app):
    return Console(app.test_client())


@pytest.fixture
def logged_in(console):
    """Log the console in as a sandbox account; returns the console (now on its home page's token)."""

    def login(username: str = "auditor") -> Console:
        response = console.login(username)
        assert response.status_code == 302 and response.headers["Location"].endswith("/console/"), response.data
        console.get("/console/")
        return console

    return login


# ------------------------------------------------------------------------------------------ in a real browser


@pytest.fixture
def served(app):
    """The test app as a real HTTP server on a free port of 127.0.0.1."""
    server = serve(app)
    yield server.url
    server.stop()


@pytest.fixture
def page():
    """A Chromium page at 1280 px; the test fails on any CSP violation or script error the page reports."""
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


def log_in(page, served: str, username: str) -> None:
    """Log the browser in as a sandbox account through the login form; it lands on the home page."""
    page.goto(f"{served}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("sandbox-pass")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{served}/console/")


def shot(page, name: str) -> None:
    """A full-page screenshot, console-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


_AXE = None


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now (rules: WCAG 2.1 A and AA)."""
    global _AXE
    from axe_playwright_python.sync_playwright import Axe

    _AXE = _AXE or Axe()
    results = _AXE.run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a",
                                                                              "wcag21aa", "best-practice"]},
                                      "resultTypes": ["violations"]})
    blocking = [f"{violation['id']} ({violation['impact']}): {violation['help']} — "
                + "; ".join(node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
                            for node in violation["nodes"][:3])
                for violation in results.response["violations"] if violation["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"{page.url}: " + "\n".join(blocking)
