"""The sandbox bureaus as connectors: where they listen, starting them, and handing them their secrets.

Development and tests only (imported when SANDBOX_ENABLED). `flask dev` starts the six bureaus on
SANDBOX_BUREAU_BASE_PORT and the following ports (app/devserver.py); `flask seed` registers them as active connectors
(app/sandbox/seed.py `seed_sandbox_connectors`), and `push_secrets` tells each running bureau the
secret the platform generated for it, as a bureau operator would configure it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from app.sandbox.bureaus import BUREAUS, KINDS


def bureau_urls(config: Mapping) -> dict[str, str]:
    """kind → base URL of each sandbox bureau, from SANDBOX_BUREAU_URLS or the host and base port."""
    configured = config.get("SANDBOX_BUREAU_URLS")
    if configured:
        return {kind: configured[kind].rstrip("/") for kind in KINDS if kind in configured}
    host, base = config["SANDBOX_HOST"], int(config["SANDBOX_BUREAU_BASE_PORT"])
    return {kind: f"http://{host}:{base + offset}" for offset, kind in enumerate(KINDS)}


def push_secrets(connectors: Mapping[str, tuple[str, str, str]], *, timeout: float = 5.0) -> None:
    """Give each running bureau its connector's secret: kind → (base URL, secret, auth type)."""
    for _kind, (url, secret, auth_type) in connectors.items():
        response = requests.post(
            f"{url}/_sandbox/secret", json={"secret": secret, "auth_type": auth_type}, timeout=timeout
        )
        response.raise_for_status()


def reset(urls: Mapping[str, str], *, timeout: float = 5.0) -> None:
    """Put every bureau back in normal mode with an empty journal (releases requests held in hang mode)."""
    for url in urls.values():
        requests.post(f"{url}/_sandbox/reset", timeout=timeout).raise_for_status()


def connector_kind(connector_id: str) -> str | None:
    """The sandbox bureau kind whose stable connector id this is, if any."""
    return next((kind for kind, bureau in BUREAUS.items() if bureau.connector_id == connector_id), None)
