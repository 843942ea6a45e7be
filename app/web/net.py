"""Who is calling: the client address, honouring only the proxies the operator says to trust."""

from flask import request


def client_address() -> str:
    """The caller's IP address; ProxyFix (set up in create_app per TRUSTED_PROXIES) has already unwrapped it."""
    return request.remote_addr or "unknown"
