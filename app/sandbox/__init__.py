"""Development stand-ins: the WeChat API, the six bureau data services, the sandbox people, and seeding.

Nothing in the service's own modules imports this package (an import-linter contract, setup.cfg): the app
factory calls `init_app` when SANDBOX_ENABLED is on, and `flask dev`, `flask seed` and the tests use the rest.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """What running with the sandbox changes in an app: unless CONNECTOR_ALLOWED_INSECURE_ORIGINS says
    otherwise, the sandbox bureaus' plain-HTTP loopback origins pass the connectors' URL guard."""
    from app.sandbox.connectors import bureau_urls

    if app.config.get("CONNECTOR_ALLOWED_INSECURE_ORIGINS") is None:
        app.config["CONNECTOR_ALLOWED_INSECURE_ORIGINS"] = list(bureau_urls(app.config).values())
