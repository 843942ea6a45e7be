"""Flask-JWT-Extended's manager, remembering the claims of tokens it has verified.

Why: every authenticated request arrives with a token the process has usually verified moments before (a
phone's session calls the API many times with one access token). Flask-JWT-Extended parses each token three
times per request (the claims unverified, the header, then the claims verified with the key): about 0.36 ms on
the bench machine, a fifth of an authenticated request's own work (docs/benchmarks.md, "The authenticated hot
path"). Here the verified claims are kept for the exact token text, until the token's `exp`: a hit needs the
same bytes, signature included, so nothing unverified is ever accepted, and expiry is checked on every use.
Revocation is not cached: the blocklist is read on every request, and the account (epoch, active, roles) is
checked on every request after this (app/accounts/guard.py; from memory only while the account's version stamp,
read in the same round trip as the blocklist, holds: app/web/readcache.py), so a revoked token fails at once
in every process.

Per app (a process that builds several apps, with other keys, keeps their tokens apart) and bounded: at most
MAX_TOKENS tokens; the oldest half is dropped when it is full.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, current_app
from flask_jwt_extended import JWTManager

MAX_TOKENS = 20_000
EXTENSION = "verified_tokens"


class _Verified:
    def __init__(self) -> None:
        self.claims: dict[str, dict] = {}
        self.lock = threading.Lock()


class CachingJWTManager(JWTManager):
    def init_app(self, app: Flask, *args, **kwargs) -> None:
        super().init_app(app, *args, **kwargs)
        app.extensions[EXTENSION] = _Verified()

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        # Flask-JWT-Extended's one decoding step (a private method, the only place every path goes through;
        # the package is pinned below 5 in setup.cfg). Cookies' CSRF checks and expired-token reads go the
        # whole way, uncached.
        verified: _Verified = current_app.extensions[EXTENSION]
        cacheable = csrf_value is None and not allow_expired
        if cacheable:
            claims = verified.claims.get(encoded_token)
            if claims is not None and time.time() < claims["exp"]:
                return dict(claims)
        claims = super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if cacheable and "exp" in claims:
            with verified.lock:
                if len(verified.claims) >= MAX_TOKENS:
                    for stale in list(verified.claims)[: MAX_TOKENS // 2]:  # dicts keep insertion order
                        del verified.claims[stale]
                verified.claims[encoded_token] = dict(claims)
        return claims
