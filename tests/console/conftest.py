"""Fixtures of the console tests: a browser-like client that keeps its cookie and reads the page's CSRF token."""

from __future__ import annotations

import re

import pytest

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
